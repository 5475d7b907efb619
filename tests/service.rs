//! Running under systemd: `contrib/besedka.service` checked by the real `systemd-analyze
//! verify` (and its command line run as written); `READY=1` and `STOPPING=1` on a
//! `NOTIFY_SOCKET` the test binds, as systemd's would be; standard error without timestamps
//! when it is the journal (`JOURNAL_STREAM` naming it), with them otherwise.
//!
//! Needs `systemd-analyze` (Debian's `systemd`) for the unit's check; without it that test is
//! skipped (said on stderr), except under CI, where it fails: `.ci/run` installs it.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, Client, WAIT};

const UNIT: &str = include_str!("../contrib/besedka.service");
/// Where the unit installs the binary, and the state directory systemd makes for it.
const INSTALLED: &str = "/usr/local/bin/besedka";
const STATE: &str = "/var/lib/besedka";
/// Where the unit reads its config file.
const CONFIG: &str = "/etc/besedka/besedka.toml";

/// The unit with its binary replaced by the one under test (verify checks that ExecStart's
/// program exists), written as `besedka.service` (verify reads the type from the name).
fn write_unit(dir: &Path, text: &str) -> std::path::PathBuf {
    assert!(text.contains(&format!("ExecStart={INSTALLED} ")), "{text}");
    let path = dir.join("besedka.service");
    std::fs::write(&path, text.replace(INSTALLED, bin())).unwrap();
    path
}

/// `systemd-analyze verify` on `text`; None (after saying why) without systemd-analyze.
fn verify(text: &str) -> Option<Output> {
    let dir = tempfile::tempdir().unwrap();
    let unit = write_unit(dir.path(), text);
    // --man=no: the unit's Documentation= names the man page, installed on a server by
    // hand (docs/service.md), not on a test machine.
    match Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
    {
        Ok(out) => Some(out),
        Err(e) => {
            common::skip("systemd-analyze verify", &format!("systemd-analyze: {e}"));
            None
        }
    }
}

#[test]
fn the_unit_passes_systemd_analyze_verify_without_a_word() {
    let Some(out) = verify(UNIT) else { return };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    // Unknown keys and bad values are only warnings to verify (exit 0): none may be printed.
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify said: {said}"
    );
}

/// The check above can fail: a misspelled key is named, a missing binary fails it.
#[test]
fn systemd_analyze_verify_catches_a_misspelled_key_and_a_missing_binary() {
    let misspelled = UNIT.replace("ProtectSystem=strict", "ProtectSytem=strict");
    let Some(out) = verify(&misspelled) else {
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unknown key") && err.contains("ProtectSytem"),
        "{err}"
    );

    let missing = UNIT.replace(
        &format!("ExecStart={INSTALLED} "),
        &format!("ExecStart={INSTALLED}-missing "),
    );
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("besedka.service");
    std::fs::write(&unit, missing).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("besedka-missing"),
        "{out:?}"
    );
}

/// The unit's ExecStart= as written, with the binary under test, the state directory in
/// `state`, and a free loopback port for its address; the arguments after it appended.
fn exec_start(state: &Path, more: &[&str]) -> Command {
    // The config file as an operator would start from: the example, on a free port.
    let config = state.join("besedka.toml");
    let example = std::fs::read_to_string("contrib/besedka.toml").unwrap();
    let example = example.replace("addr = \"127.0.0.1:7777\"", "addr = \"127.0.0.1:0\"");
    assert!(example.contains("addr = \"127.0.0.1:0\""));
    std::fs::write(&config, example).unwrap();
    let line = UNIT
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart= line");
    let words: Vec<String> = line
        .split_whitespace()
        .map(|w| {
            w.replace(INSTALLED, bin())
                .replace(STATE, state.to_str().unwrap())
                .replace(CONFIG, config.to_str().unwrap())
        })
        .collect();
    assert_eq!(words[0], bin(), "{line}");
    assert!(
        words.iter().any(|w| w.starts_with(state.to_str().unwrap())),
        "the database is in the state directory: {line}"
    );
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]).args(more);
    cmd
}

/// Whether `fd` has something to read right now (poll with no wait).
fn readable_now(fd: &impl AsRawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the call's duration.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n == 1 && pfd.revents & libc::POLLIN != 0
}

fn wait_exit(child: &mut Child) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("the server did not exit within {WAIT:?}");
}

fn sigterm(child: &Child) {
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
}

#[test]
fn ready_comes_once_every_listener_takes_connections_and_stopping_at_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&path).unwrap();
    notify.set_read_timeout(Some(WAIT)).unwrap();
    // The unit's own command line, as systemd runs it (standard input /dev/null), with an
    // SSH listener too: READY=1 must wait for both.
    let mut child = exec_start(dir.path(), &["--ssh-addr", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    let mut buf = [0u8; 4096];
    let n = notify.recv(&mut buf).unwrap_or_else(|e| {
        panic!(
            "no notification within WAIT ({e}); the server said:\n{}",
            log()
        )
    });
    let said = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(said.lines().any(|l| l == "READY=1"), "{said:?}");
    assert!(said.contains("STATUS=listening on 127.0.0.1:"), "{said:?}");

    // The server prints its startup line once every listener is bound and started; READY=1
    // came after it, so the line is already there to read.
    let stdout = child.stdout.take().unwrap();
    assert!(
        readable_now(&stdout),
        "READY=1 came before the startup line"
    );
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let addr = |way: &str| -> std::net::SocketAddr {
        first
            .trim_start_matches("besedka listening on ")
            .split(", ")
            .find(|s| s.contains(&format!(" ({way})")))
            .and_then(|s| s.split(' ').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no {way} address in {first:?}"))
    };
    Client::connect(addr("telnet")).expect("Name: ");
    let mut ssh = std::net::TcpStream::connect_timeout(&addr("ssh"), WAIT).unwrap();
    ssh.set_read_timeout(Some(WAIT)).unwrap();
    let mut banner = [0u8; 8];
    ssh.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"SSH-2.0-");

    // Nothing more until shutdown begins.
    notify.set_nonblocking(true).unwrap();
    let early = notify.recv(&mut buf).map(|n| buf[..n].to_vec());
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "{early:?}"
    );
    notify.set_nonblocking(false).unwrap();
    // `systemctl reload` (ExecReload= sends SIGHUP): RELOADING=1, then READY=1 again once
    // the config file is reread, and the server still serves.
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    let n = notify.recv(&mut buf).expect("RELOADING=1 within WAIT");
    assert_eq!(String::from_utf8_lossy(&buf[..n]), "RELOADING=1\n");
    let n = notify.recv(&mut buf).expect("READY=1 again within WAIT");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("READY=1\n"));
    Client::connect(addr("telnet")).expect("Name: ");
    sigterm(&child);
    let n = notify.recv(&mut buf).expect("STOPPING=1 within WAIT");
    assert_eq!(String::from_utf8_lossy(&buf[..n]), "STOPPING=1\n");
    assert_eq!(wait_exit(&mut child), Some(0));
}

/// The server's log line about listening, on standard error (a file) and in --log-file,
/// with `JOURNAL_STREAM` set to what `stream` makes of standard error's file.
fn listening_lines(stream: impl Fn(&std::fs::Metadata) -> String) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("stderr");
    let err = File::create(&err_path).unwrap();
    let journal = stream(&err.metadata().unwrap());
    let log_file = dir.path().join("besedka.log");
    let mut child = Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--no-console", "--db"])
        .arg(dir.path().join("besedka.db"))
        .arg("--log-file")
        .arg(&log_file)
        .env("JOURNAL_STREAM", journal)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("besedka listening on "), "{first}");
    sigterm(&child);
    assert_eq!(wait_exit(&mut child), Some(0));
    let line = |path: &Path| {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .find(|l| l.contains("listening on"))
            .unwrap_or_else(|| panic!("no 'listening on' in {text}"))
            .to_string()
    };
    (line(&err_path), line(&log_file))
}

/// Whether a log line starts with `2026-11-30T23:42:31Z `.
fn stamped(line: &str) -> bool {
    let first = line.split(' ').next().unwrap_or_default();
    humantime::parse_rfc3339(first).is_ok()
}

#[test]
fn standard_error_that_is_the_journal_gets_no_timestamp_and_the_log_file_keeps_it() {
    let (stderr, file) = listening_lines(|m| format!("{}:{}", m.dev(), m.ino()));
    assert!(stderr.starts_with("INFO "), "{stderr}");
    assert!(stamped(&file), "{file}");
    assert!(
        file.ends_with(stderr.as_str()),
        "the same record: {file} / {stderr}"
    );
}

#[test]
fn journal_stream_naming_another_file_leaves_the_timestamp() {
    // Inherited from a service by a program whose standard error went elsewhere.
    let (stderr, _) = listening_lines(|m| format!("{}:{}", m.dev(), m.ino() + 1));
    assert!(stamped(&stderr), "{stderr}");
}
