//! Real IRC clients for tests/irc_clients.rs: weechat (Debian's `weechat-headless`, commands
//! written to its fifo plugin) and irssi (on a private tmux server's pane, keys typed with
//! `send-keys`), each in its own temporary home. What a client showed is read from its own
//! log files (weechat's logger, irssi's autolog), one per channel, never from a screen
//! capture: a log line is what the client parsed and put in that channel's window.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::expect::have;

/// How long a real client may take to show something (it starts, connects and logs in on a
/// machine shared with other builds). Every wait polls a log file up to this, no longer.
pub const CLIENT_WAIT: Duration = Duration::from_secs(20);

/// A real IRC client logged in as one account, driven as its user would drive it.
pub trait RealClient {
    /// The program, for messages.
    fn program(&self) -> &'static str;
    /// Says `text` in `channel` (joined), as typed there.
    fn say(&mut self, channel: &str, text: &str);
    /// Runs an IRC command as typed (`/join #tea`, `/part #tea`).
    fn command(&mut self, line: &str);
    /// The client's log file of `channel`.
    fn log_path(&self, channel: &str) -> PathBuf;
    /// How its log shows `nick` saying `text` in a channel (the tail of the line, without
    /// the mode character a client may put before the nick).
    fn said(&self, nick: &str, text: &str) -> String;
    /// What the client itself reports (its core log or its screen), for a failure message.
    fn diagnostics(&self) -> String;
    /// How far each channel's log has been read by [`RealClient::expect_in`].
    fn cursors(&mut self) -> &mut HashMap<String, usize>;

    /// Waits (bounded by [`CLIENT_WAIT`]) until `channel`'s log shows `text` after what
    /// earlier calls read; returns the log up to and including it.
    fn expect_in(&mut self, channel: &str, text: &str) -> String {
        let path = self.log_path(channel);
        let from = *self.cursors().get(channel).unwrap_or(&0);
        let start = Instant::now();
        loop {
            let log = read(&path);
            if let Some(at) = log.get(from..).and_then(|rest| rest.find(text)) {
                let end = from + at + text.len();
                self.cursors().insert(channel.to_string(), end);
                return log[from..end].to_string();
            }
            if start.elapsed() > CLIENT_WAIT {
                panic!(
                    "{} never showed {text:?} in {channel} within {CLIENT_WAIT:?}; its log of \
                     {channel} after what was read:\n{}\n{}",
                    self.program(),
                    log.get(from..).unwrap_or(&log),
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The whole log of `channel` as it is now.
    fn log(&self, channel: &str) -> String {
        read(&self.log_path(channel))
    }
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// `weechat-headless` logged in to `irc` as `name` with SASL PLAIN, its `#lobby` joined; or
/// `None` when it is not installed (the test is skipped: said on stderr, a failure under CI).
pub struct Weechat {
    child: Child,
    dir: tempfile::TempDir,
    cursors: HashMap<String, usize>,
}

impl Weechat {
    pub fn start(test: &str, irc: SocketAddr, name: &str, password: &str) -> Option<Weechat> {
        if !have(test, &["weechat-headless"], "weechat-headless") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let server = "irc.server.besedka";
        let commands = [
            // The logger writes each line at once (its default waits up to 120 s).
            "/set logger.file.flush_delay 0".to_string(),
            format!("/server add besedka {}/{} -notls", irc.ip(), irc.port()),
            format!("/set {server}.nicks {name}"),
            format!("/set {server}.sasl_mechanism plain"),
            format!("/set {server}.sasl_username {name}"),
            format!("/set {server}.sasl_password {password}"),
            // A failed login stops there instead of retrying (five failures lock the account).
            format!("/set {server}.sasl_fail disconnect"),
            format!("/set {server}.autoreconnect off"),
            // Its own flood control off, so lines go out as they are typed: weechat 3.x has
            // two options, 4.x one (the other version's /set only prints an error).
            format!("/set {server}.anti_flood_prio_high 0"),
            format!("/set {server}.anti_flood_prio_low 0"),
            format!("/set {server}.anti_flood 0"),
            "/connect besedka".to_string(),
        ];
        let mut cmd = Command::new("weechat-headless");
        cmd.arg("-d").arg(dir.path());
        // Only what the test uses: startup is faster without the script plugins.
        cmd.args(["-P", "irc,logger,fifo"]);
        for c in &commands {
            cmd.arg("-r").arg(c);
        }
        let child = cmd
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.txt")).unwrap())
            .spawn()
            .expect("spawn weechat-headless");
        let mut w = Weechat {
            child,
            dir,
            cursors: HashMap::new(),
        };
        w.expect_in("#lobby", "has joined #lobby");
        Some(w)
    }

    /// Writes one line to the fifo plugin's pipe: `BUFFER *TEXT` (text or a command, as
    /// typed in that buffer). The pipe is opened without blocking, so a weechat that has gone
    /// fails the test instead of hanging it.
    fn fifo(&mut self, buffer: &str, text: &str) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let start = Instant::now();
        // The plugin makes `weechat_fifo_PID` in the runtime directory (here `-d`).
        let pipe = loop {
            let found = std::fs::read_dir(self.dir.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .and_then(|f| f.to_str())
                        .is_some_and(|f| f.starts_with("weechat_fifo"))
                });
            match found {
                Some(p) => break p,
                None if start.elapsed() < CLIENT_WAIT => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                None => panic!("weechat made no fifo; {}", self.diagnostics()),
            }
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&pipe)
            .unwrap_or_else(|e| {
                panic!(
                    "weechat's fifo {}: {e}; {}",
                    pipe.display(),
                    self.diagnostics()
                )
            });
        f.write_all(format!("{buffer} *{text}\n").as_bytes())
            .expect("write to weechat's fifo");
    }
}

impl RealClient for Weechat {
    fn program(&self) -> &'static str {
        "weechat"
    }

    fn say(&mut self, channel: &str, text: &str) {
        self.fifo(&format!("irc.besedka.{channel}"), text);
    }

    fn command(&mut self, line: &str) {
        self.fifo("irc.server.besedka", line);
    }

    fn log_path(&self, channel: &str) -> PathBuf {
        // The logger's default mask, `$plugin.$name.weechatlog`.
        self.dir
            .path()
            .join("logs")
            .join(format!("irc.besedka.{channel}.weechatlog"))
    }

    fn said(&self, nick: &str, text: &str) -> String {
        // `DATE\tPREFIX\tMESSAGE`, the prefix being the nick.
        format!("{nick}\t{text}\n")
    }

    fn diagnostics(&self) -> String {
        let logs = self.dir.path().join("logs");
        format!(
            "weechat's server buffer:\n{}\nits core buffer:\n{}\nits stderr:\n{}",
            read(&logs.join("irc.server.besedka.weechatlog")),
            read(&logs.join("core.weechat.weechatlog")),
            read(&self.dir.path().join("stderr.txt"))
        )
    }

    fn cursors(&mut self) -> &mut HashMap<String, usize> {
        &mut self.cursors
    }
}

impl Drop for Weechat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// irssi in a pane of its own tmux server (a socket in its temporary home), logged in to
/// `irc` as `name` with SASL PLAIN, its `#lobby` joined; or `None` when irssi or tmux is not
/// installed (skipped, a failure under CI).
pub struct Irssi {
    dir: tempfile::TempDir,
    cursors: HashMap<String, usize>,
}

impl Irssi {
    pub fn start(test: &str, irc: SocketAddr, name: &str, password: &str) -> Option<Irssi> {
        if !have(test, &["irssi", "tmux"], "irssi and tmux") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // Run at startup from `--home`; `$` would be expanded there, so the autolog path
        // stays irssi's default, `~/irclogs/$tag/$0.log`, under the private HOME.
        let startup = [
            // Its own flood control off, so lines go out as they are typed.
            "/set cmd_queue_speed 0".to_string(),
            // Keys arriving at once are typed lines, not a paste to confirm.
            "/set paste_detect_time 0".to_string(),
            "/set autolog on".to_string(),
            "/set autolog_level all".to_string(),
            format!(
                "/network add -nick {name} -sasl_username {name} -sasl_password {password} \
                 -sasl_mechanism PLAIN besedka"
            ),
            format!("/server add -network besedka {} {}", irc.ip(), irc.port()),
            "/connect besedka".to_string(),
        ];
        std::fs::write(dir.path().join("startup"), startup.join("\n") + "\n").unwrap();
        let mut i = Irssi {
            dir,
            cursors: HashMap::new(),
        };
        let home = i.dir.path().display().to_string();
        let out = i
            .tmux()
            .args(["new-session", "-d", "-s", "irc", "-x", "200", "-y", "50"])
            .arg(format!("irssi --home={home}"))
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux new-session: {out:?}");
        i.expect_in("#lobby", "has joined #lobby");
        Some(i)
    }

    /// tmux on this client's own server, which starts with the private HOME and a UTF-8
    /// locale in its environment (irssi inherits them).
    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S")
            .arg(self.dir.path().join("tmux.sock"))
            .env("HOME", self.dir.path())
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env_remove("TMUX")
            .stdin(Stdio::null());
        c
    }

    /// Types `line` and Enter into irssi.
    fn type_line(&mut self, line: &str) {
        for keys in [&["-l", line][..], &["Enter"][..]] {
            let out = self
                .tmux()
                .args(["send-keys", "-t", "irc"])
                .args(keys)
                .output()
                .expect("run tmux");
            assert!(
                out.status.success(),
                "tmux send-keys: {out:?}; {}",
                self.diagnostics()
            );
        }
    }
}

impl RealClient for Irssi {
    fn program(&self) -> &'static str {
        "irssi"
    }

    fn say(&mut self, channel: &str, text: &str) {
        // From whichever window is active, irssi shows it in the channel's own.
        self.type_line(&format!("/msg {channel} {text}"));
    }

    fn command(&mut self, line: &str) {
        self.type_line(line);
    }

    fn log_path(&self, channel: &str) -> PathBuf {
        self.dir
            .path()
            .join("irclogs")
            .join("besedka")
            .join(format!("{channel}.log"))
    }

    fn said(&self, nick: &str, text: &str) -> String {
        // `HH:MM < nick> text`, with a mode character (or a space) before the nick.
        format!("{nick}> {text}\n")
    }

    fn diagnostics(&self) -> String {
        let screen = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "irc"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        format!("irssi's screen:\n{screen}")
    }

    fn cursors(&mut self) -> &mut HashMap<String, usize> {
        &mut self.cursors
    }
}

impl Drop for Irssi {
    fn drop(&mut self) {
        // Its own server, by its own socket: irssi goes with it.
        let _ = self.tmux().arg("kill-server").output();
    }
}
