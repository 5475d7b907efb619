//! `--server ngircd --spawn`: a temporary ngircd to compare besedka's IRC listener with, on
//! the same protocol and load.
//!
//! It runs from a configuration written into a temporary directory: `127.0.0.1` on a free
//! port, in the foreground (`-n`), passive (`-p`: no links to other servers). ngircd's
//! defaults are for the open internet, and would measure its defences, not its delivery:
//! its flood penalties (a client is not read for a second after a burst of commands:
//! `MaxPenaltyTime = 0` turns them off), five connections per address
//! (`MaxConnectionsIP = 0`: unlimited), nicks of 9 characters (`MaxNickLength = 31`, its
//! most), and a DNS and ident lookup at each connect. It keeps no history and no accounts:
//! the clients register with `NICK` and `USER`.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::spawn::{temp_dir, Running};

/// How long ngircd may take to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long it may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running temporary ngircd and its directory (configuration, log), removed when dropped.
pub struct Ngircd {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
    log: PathBuf,
    stopped: bool,
}

/// ngircd's executable: on `PATH`, or where Debian puts it (`/usr/sbin` is not on every
/// user's `PATH`).
pub fn find() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("ngircd"))
        .find(|exe| exe.is_file())
        .ok_or_else(|| {
            "ngircd is not installed (Debian's package `ngircd`: apt-get install ngircd)".into()
        })
}

fn config(port: u16) -> String {
    format!(
        "# Written by besedka bench for one run: see src/bench/ngircd.rs.\n\
         [Global]\n\
         Name = bench.invalid\n\
         Info = besedka bench\n\
         AdminInfo1 = besedka bench\n\
         AdminInfo2 = a temporary server\n\
         AdminEMail = bench@bench.invalid\n\
         Listen = 127.0.0.1\n\
         Ports = {port}\n\
         MotdPhrase = besedka bench\n\
         [Limits]\n\
         MaxConnections = 0\n\
         MaxConnectionsIP = 0\n\
         MaxJoins = 0\n\
         MaxNickLength = 31\n\
         MaxPenaltyTime = 0\n\
         PingTimeout = 600\n\
         PongTimeout = 600\n\
         [Options]\n\
         DNS = no\n\
         Ident = no\n\
         PAM = no\n"
    )
}

impl Ngircd {
    /// Writes a configuration and starts ngircd on it; returns once it listens.
    pub fn start() -> Result<Ngircd, String> {
        let exe = find()?;
        let dir = temp_dir()?;
        Ngircd::start_in(&exe, &dir).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&dir);
        })
    }

    fn start_in(exe: &Path, dir: &Path) -> Result<Ngircd, String> {
        // A free port: ngircd takes no port 0. Another program could take it before ngircd
        // does; ngircd then says so in its log, shown below.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port for ngircd: {e}"))?
            .port();
        let conf = dir.join("ngircd.conf");
        std::fs::File::create(&conf)
            .and_then(|mut f| f.write_all(config(port).as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
        let log = dir.join("ngircd.log");
        let out = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let child = Command::new(exe)
            .args(["-n", "-p", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        // From here on an error drops it, which kills it and removes the directory.
        let mut server = Ngircd {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir: dir.to_path_buf(),
            log,
            stopped: false,
        };
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&server.log).unwrap_or_default();
            if text.contains("Now listening on") {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(server.failure(&format!("ngircd exited ({status}) before it listened")));
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(server.failure("ngircd did not start listening within 15 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `what`, with the last lines of ngircd's log.
    fn failure(&self, what: &str) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        if tail.is_empty() {
            return what.to_string();
        }
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("{what}; ngircd's log ends:\n{}", tail.join("\n"))
    }
}

impl Running for Ngircd {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn explain(&mut self, error: String) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => self.failure(&format!("{error}\nngircd exited ({status})")),
            _ => self.failure(&error),
        }
    }

    /// SIGTERM, as its init script stops it; killed if still there 10 s later.
    fn stop(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(self.failure("ngircd did not stop within 10 s; killed it"));
                }
            }
        }
    }
}

impl Drop for Ngircd {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
