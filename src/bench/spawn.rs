//! `--spawn`: a temporary server to measure, started from this same executable.
//!
//! The accounts and their tokens are written straight into the new database before the
//! server starts, so the bench logs every client in with `/token` and the server spends no
//! argon2 time on the login storm. One password is hashed once and its PHC string reused for
//! every account: argon2 is slow on purpose, and 10,000 hashes would take minutes.
//!
//! The server runs on `127.0.0.1:0` with the per-user rate lifted, loopback exempt from the
//! per-address limits and no history replay; `--serve-arg` adds flags or overrides these.
//! With `--proto irc` it also listens for IRC (`--irc-addr 127.0.0.1:0`), and the clients
//! connect there. It is stopped through its console (`shutdown` on its standard input), killed if it has
//! not exited 10 s later; its log goes to a file shown when something fails.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use besedka::auth::{self, Hasher};
use besedka::store::{tokens, users, Store};

/// How long the server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long it may take to exit after `shutdown`.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running temporary server and its directory (database, log), removed when dropped.
pub struct Spawned {
    child: Child,
    /// Where the clients connect: the line protocol's listener, or the IRC one.
    pub addr: SocketAddr,
    dir: PathBuf,
    log: PathBuf,
    stopped: bool,
}

/// A fresh directory under the system's temporary directory.
pub(super) fn temp_dir() -> Result<PathBuf, String> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!(
            "besedka-bench-{}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(format!(
                    "cannot create a directory in {}: {e}",
                    base.display()
                ))
            }
        }
    }
    Err(format!("cannot create a directory in {}", base.display()))
}

/// Creates the database with `names` as accounts; returns each name's token.
fn seed(db: &Path, names: &[String], password: &str) -> Result<Vec<String>, String> {
    let store = Store::open(db).map_err(|e| format!("cannot create {}: {e}", db.display()))?;
    let conn = store.conn().map_err(|e| e.to_string())?;
    let hasher = Hasher::new(1);
    let phc = hasher.hash(password).map_err(|e| e.to_string());
    hasher.stop();
    let phc = phc?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let user = users::create(&conn, name, &phc)
            .map_err(|e| format!("cannot create user {name}: {e}"))?
            .ok_or_else(|| format!("cannot create user {name}: the name clashes"))?;
        let (token, hash) = auth::new_token();
        tokens::insert(&conn, user.id, &hash, 1)
            .map_err(|e| format!("cannot store a token for {name}: {e}"))?;
        out.push(token);
    }
    Ok(out)
}

/// Whether `flag` (`--max-rate`) is among the user's serve arguments, as `--flag` or
/// `--flag=VALUE`: then ours is left out (clap refuses most flags given twice).
fn overridden(flag: &str, extra: &[String]) -> bool {
    extra
        .iter()
        .any(|a| a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
}

impl Spawned {
    /// Seeds a database with `names` and starts `serve` on it (with an IRC listener if
    /// `irc`, which is then the address the clients use); returns the server and the tokens,
    /// in the order of `names`.
    pub fn start(
        names: &[String],
        password: &str,
        extra: &[String],
        exe: Option<&Path>,
        irc: bool,
    ) -> Result<(Spawned, Vec<String>), String> {
        let dir = temp_dir()?;
        Spawned::start_in(&dir, names, password, extra, exe, irc).inspect_err(|_| {
            // A server that got as far as starting has removed it already.
            let _ = std::fs::remove_dir_all(&dir);
        })
    }

    fn start_in(
        dir: &Path,
        names: &[String],
        password: &str,
        extra: &[String],
        exe: Option<&Path>,
        irc: bool,
    ) -> Result<(Spawned, Vec<String>), String> {
        let log = dir.join("server.log");
        let db = dir.join("bench.db");
        let tokens = seed(&db, names, password)?;
        let exe = match exe {
            Some(path) => path.to_path_buf(),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find this executable to start the server: {e}"))?,
        };
        let max_clients = (names.len() + 64).min(65_536).to_string();
        let mut ours: Vec<(&str, &str)> = vec![
            ("--worker-idle", "2s"),
            ("--addr", "127.0.0.1:0"),
            ("--max-clients", &max_clients),
            ("--max-rate", "1000000"),
            ("--history", "0"),
            ("--log-level", "warn"),
        ];
        if irc {
            ours.push(("--irc-addr", "127.0.0.1:0"));
        }
        let mut cmd = Command::new(exe);
        cmd.arg("--db").arg(&db).arg("serve");
        for (flag, value) in ours {
            if !overridden(flag, extra) {
                cmd.arg(flag).arg(value);
            }
        }
        // Repeatable: the user's own ranges add to this one.
        cmd.args(["--allow-ip", "127.0.0.1"]).args(extra);
        let log_file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        cmd.env_remove("BESEDKA_DB")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let stdout = child.stdout.take();
        // From here on an error drops the server, which kills it and removes the directory.
        let mut server = Spawned {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir: dir.to_path_buf(),
            log,
            stopped: false,
        };
        let stdout = stdout.ok_or("the server's standard output is not a pipe")?;
        server.addr = server.listening(stdout, if irc { "irc" } else { "" })?;
        Ok((server, tokens))
    }

    /// Reads the `besedka listening on ADDR (telnet), ADDR (irc) (db: …)` line, then drains
    /// the server's output on a thread of its own so the console never blocks on a full pipe.
    /// Returns the first address, or the one of the listener `kind` if not empty.
    fn listening(
        &mut self,
        stdout: std::process::ChildStdout,
        kind: &str,
    ) -> Result<SocketAddr, String> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("serve-stdout".into())
            .spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let first = lines.next();
                let _ = tx.send(first);
                for _ in lines.map_while(Result::ok) {}
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(self.failure("the server exited before it listened"))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(self.failure("the server did not start listening within 15 s"))
            }
        };
        let kind = format!(" ({kind})");
        line.strip_prefix("besedka listening on ")
            .and_then(|rest| match kind.as_str() {
                " ()" => rest.split_whitespace().next(),
                _ => rest
                    .split(", ")
                    .find(|l| l.contains(&kind))?
                    .split(' ')
                    .next(),
            })
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| self.failure(&format!("unexpected first line from the server: {line}")))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running? Otherwise an error with the end of its log.
    pub fn check(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.failure(&format!("the server exited ({status})"))),
            Err(e) => Err(format!("cannot check on the server: {e}")),
        }
    }

    /// A failure of the bench explained by the server where it can be: its exit, or the end
    /// of its log (warnings and errors only: it runs with `--log-level warn`).
    pub fn explain(&mut self, error: String) -> String {
        match self.check() {
            Err(exited) => format!("{error}\n{exited}"),
            Ok(()) => self.failure(&error),
        }
    }

    /// `what`, with the last lines of the server's log.
    fn failure(&self, what: &str) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        if tail.is_empty() {
            return what.to_string();
        }
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("{what}; its log ends:\n{}", tail.join("\n"))
    }

    /// Asks the server to shut down; kills it if it is still there after 10 s.
    pub fn stop(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"shutdown\n");
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(self.failure(&format!("the server exited with {status}")))
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(self.failure("the server did not stop within 10 s; killed it"));
                }
            }
        }
    }
}

/// A server the bench started and measures: besedka ([`Spawned`]) or ngircd
/// ([`super::ngircd::Ngircd`]).
pub trait Running {
    fn pid(&self) -> u32;
    /// A failure of the bench, with what the server's exit or log says of it.
    fn explain(&mut self, error: String) -> String;
    fn stop(&mut self) -> Result<(), String>;
}

impl Running for Spawned {
    fn pid(&self) -> u32 {
        Spawned::pid(self)
    }
    fn explain(&mut self, error: String) -> String {
        Spawned::explain(self, error)
    }
    fn stop(&mut self) -> Result<(), String> {
        Spawned::stop(self)
    }
}

impl Drop for Spawned {
    /// Only an error path gets here with the server running: it is killed, not asked.
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_flags_replace_ours() {
        let extra = ["--max-rate=5".to_string(), "--history".into(), "3".into()];
        assert!(overridden("--max-rate", &extra));
        assert!(overridden("--history", &extra));
        assert!(!overridden("--max-clients", &extra));
        assert!(!overridden("--max", &extra));
    }
}
