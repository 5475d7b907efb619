//! SSH (`--ssh-addr`) with the real OpenSSH client (driven by `expect` on a pty where it
//! needs a terminal): the dialogue inside the channel, SSH password authentication, the
//! server-side line editor, `exec`, and the limits every transport obeys.
//!
//! Needs `ssh` and `expect` on PATH; without them the tests that drive them are skipped (said
//! on stderr), except under CI, where they fail: `.ci/run` installs openssh-client and expect.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::expect::{self, send, wait_for};
use common::ssh::{have_clients, run_async, ssh_command, ssh_server, succeeded};
use common::{closed_within, Server};

#[test]
fn the_dialogue_line_editing_and_cyrillic_over_ssh() {
    if !have_clients("ssh dialogue") {
        return;
    }
    let (server, dir) = ssh_server(false, &[]);
    let (mut watcher, _) = server.register("watcher", "secret12");
    let port = server.ssh_addr.unwrap().port();
    let mut s = format!("spawn {}\n", ssh_command(port, "nobody", ""));
    // nobody is a free name: offered to register; Enter gives another name.
    s.push_str(&wait_for("nobody is free", 9));
    s.push_str(&wait_for("Password: ", 9));
    s.push_str(&send("\r"));
    s.push_str(&wait_for("Name: ", 10));
    s.push_str(&send("Вера\r"));
    s.push_str(&wait_for("Password: ", 11));
    s.push_str(&send("tajnaja-parola\r"));
    s.push_str(&wait_for("Repeat password: ", 12));
    s.push_str(&send("tajnaja-parola\r"));
    s.push_str(&wait_for("* In #lobby (2): ", 13));
    // One backspace removes one Cyrillic letter (two bytes).
    s.push_str(&send("приветт\x7f\r"));
    // Half a line typed when a line arrives: it is drawn again under the new line.
    s.push_str(&send("hal"));
    s.push_str(&wait_for("watcher: ping\r\nhal", 14));
    s.push_str(&send("f\r"));
    s.push_str(&wait_for("watcher: пока", 15));
    s.push_str(&send("\x03")); // Ctrl-C quits
    s.push_str("expect {\n    eof {}\n    timeout { puts stderr {ssh did not exit}; exit 16 }\n}\nexit 0\n");
    let run = run_async(dir.path(), s);
    watcher.expect("* Вера joined\r\n");
    watcher.expect("Вера: привет\r\n");
    std::thread::sleep(Duration::from_millis(500)); // "hal" is typed meanwhile
    watcher.send("ping");
    watcher.expect("Вера: half\r\n");
    watcher.send("пока");
    watcher.expect("* Вера left\r\n");
    let run = run.join().unwrap();
    let report = succeeded(&run, &server);
    assert!(
        !run.transcript.contains("tajnaja"),
        "the password was echoed; {report}"
    );
    assert!(
        run.transcript.contains("Name: Вера"),
        "the name is echoed; {report}"
    );
    server.expect_log("Вера logged in (registration, ssh)");
}

#[test]
fn ssh_password_authentication_logs_in_an_account() {
    if !have_clients("ssh password") {
        return;
    }
    let (server, dir) = ssh_server(false, &[]);
    drop(server.register("carol", "secret12"));
    let port = server.ssh_addr.unwrap().port();
    let mut s = format!(
        "spawn {}\n",
        ssh_command(port, "carol", "-o PreferredAuthentications=password")
    );
    s.push_str(&wait_for("password: ", 10));
    s.push_str(&send("wrong-one\r"));
    s.push_str(&wait_for("password: ", 11));
    s.push_str(&send("secret12\r"));
    // No Name: dialogue: SSH proved who this is.
    s.push_str(&wait_for("* Hello, carol!", 12));
    s.push_str(&wait_for("* In #lobby (1): carol", 13));
    s.push_str(&send("\x04")); // Ctrl-D on an empty line quits
    s.push_str("expect {\n    eof {}\n    timeout { puts stderr {ssh did not exit}; exit 14 }\n}\nexit 0\n");
    let run = expect::run(dir.path(), &s);
    let report = succeeded(&run, &server);
    assert!(!run.transcript.contains("Name: "), "{report}");
    server.expect_log("failed SSH login for carol");
    server.expect_log("carol logged in (password, ssh)");
}

#[test]
fn an_ssh_command_gets_a_usage_hint() {
    if !expect::have("ssh exec", &["ssh"], "openssh-client") {
        return;
    }
    let (server, _dir) = ssh_server(false, &[]);
    let port = server.ssh_addr.unwrap().port().to_string();
    let out = std::process::Command::new("ssh")
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            "-o",
            "PubkeyAuthentication=no",
            "-p",
            &port,
            "nobody@127.0.0.1",
            "ls",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "besedka is a chat: connect without a command, e.g. ssh -p {port} 127.0.0.1\r\n"
        )),
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn ssh_obeys_the_per_address_limit_and_bans_and_keeps_its_host_key() {
    let (mut server, dir) = ssh_server(true, &["--max-per-ip", "1"]);
    let ssh_addr = server.ssh_addr.unwrap();
    let mut first = TcpStream::connect(ssh_addr).unwrap();
    let mut banner = [0u8; 8];
    first.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"SSH-2.0-", "an SSH server answers");
    closed_within(
        TcpStream::connect(ssh_addr).unwrap(),
        Duration::from_secs(3),
    );
    drop(first);
    server.expect_log("SSH connection ended");
    server.ask("ban 127.0.0.1 testing", "Banned");
    closed_within(
        TcpStream::connect(ssh_addr).unwrap(),
        Duration::from_secs(3),
    );
    // The host key was made once, readable by its owner only, and is kept across restarts.
    let key_path = dir.path().join("host_key");
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert!(key.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_path).unwrap().permissions(),
    );
    assert_eq!(mode & 0o077, 0);
    server.command("shutdown");
    assert_eq!(server.wait_exit(), Some(0));
    let again = Server::start_on(
        &server.db,
        &[
            "--ssh-addr",
            "127.0.0.1:0",
            "--ssh-host-key",
            key_path.to_str().unwrap(),
        ],
    );
    assert!(again.ssh_addr.is_some());
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), key);
    assert!(
        !again.stderr.lock().unwrap().contains("PRIVATE KEY"),
        "the key is never logged"
    );
}

#[test]
fn an_ssh_connection_that_never_logs_in_is_cut_at_the_login_timeout() {
    let (server, _dir) = ssh_server(false, &["--login-timeout", "1"]);
    let start = Instant::now();
    closed_within(
        TcpStream::connect(server.ssh_addr.unwrap()).unwrap(),
        Duration::from_secs(5),
    );
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "{:?}",
        start.elapsed()
    );
}

/// `ssh-keygen` makes a key pair at `path` (no passphrase); returns the public line.
fn keygen(path: &Path) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test key", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// `ssh-keygen -l`'s fingerprint of a public key file.
fn fingerprint(public: &Path) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(public)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn a_key_added_with_slash_key_logs_its_owner_in() {
    if !expect::have(
        "ssh keys",
        &["ssh", "ssh-keygen", "expect"],
        "openssh-client and expect",
    ) {
        return;
    }
    let (server, dir) = ssh_server(false, &[]);
    let port = server.ssh_addr.unwrap().port();
    let (key, other) = (dir.path().join("id"), dir.path().join("other"));
    let public = keygen(&key);
    keygen(&other);
    let fp = fingerprint(&key.with_extension("pub"));
    let (mut alice, _) = server.register("alice", "secret12");
    alice.send("/key add not a key");
    alice.expect("! That is not an OpenSSH public key");
    alice.send(&format!("/key add {}", public.trim()));
    // With the real command: the listener's port, the --ssh-addr host (no --public-host).
    alice.expect(&format!(
        "* Key {fp} added: ssh -p {port} alice@127.0.0.1 logs you in with it.\r\n"
    ));
    alice.send("/key list");
    alice.expect(&format!("* {fp} ssh-ed25519 test key (added "));
    let (mut bob, _) = server.register("bob", "secret12");
    bob.send(&format!("/key add {}", public.trim()));
    bob.expect("! That key belongs to another account.");

    let login = |key: &Path| {
        format!(
            "ssh -tt -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
             -o IdentitiesOnly=yes -i {} -p {port} \
             alice@127.0.0.1",
            key.display()
        )
    };
    // The right key: in at once, no password asked.
    let mut s = format!("spawn {}\n", login(&key));
    s.push_str(&wait_for("* Hello, alice!", 10));
    s.push_str(&wait_for("* In #lobby (", 11));
    s.push_str(&send("\x03"));
    s.push_str("expect {\n    eof {}\n    timeout { exit 12 }\n}\nexit 0\n");
    let run = expect::run(dir.path(), &s);
    let report = succeeded(&run, &server);
    assert!(
        !run.transcript.contains("password: "),
        "no password asked; {report}"
    );
    server.expect_log("alice logged in (ssh key, ssh)");
    let _ = alice.drain(Duration::from_millis(200));
    alice.send("/key list");
    alice.expect(&format!("* {fp} ssh-ed25519 test key (added "));
    let rest = alice.expect(")\r\n");
    assert!(
        !rest.contains("last used never"),
        "the login is noted: {rest}"
    );

    // Another key falls back to the dialogue, at alice's password.
    let mut s = format!("spawn {}\n", login(&other));
    s.push_str(&wait_for("Logging in as alice", 20));
    s.push_str(&wait_for("Password: ", 20));
    s.push_str("exit 0\n");
    let run = expect::run(dir.path(), &s);
    assert!(run.status.is_some_and(|s| s.success()), "{}", run.report());

    // A removed key no longer logs in.
    alice.send(&format!("/key remove {fp}"));
    alice.expect(&format!("* Key {fp} removed."));
    let mut s = format!("spawn {}\n", login(&key));
    s.push_str(&wait_for("Password: ", 30));
    s.push_str("exit 0\n");
    let run = expect::run(dir.path(), &s);
    assert!(run.status.is_some_and(|s| s.success()), "{}", run.report());
}

#[test]
fn the_host_key_is_made_beside_the_database_not_where_serve_starts() {
    let (cwd, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut cmd = std::process::Command::new(common::bin());
    cmd.current_dir(cwd.path());
    let db = state.path().join("besedka.db");
    let server = Server::launch(cmd, &db, &["--ssh-addr", "127.0.0.1:0"]);
    assert!(server.ssh_addr.is_some());
    let key = state.path().join("besedka_ssh_host_ed25519_key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the host key is its owner's only");
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "nothing in the working directory"
    );
    // --state-dir puts it elsewhere.
    let other = tempfile::tempdir().unwrap();
    let db2 = state.path().join("second.db");
    let dir = other.path().to_str().unwrap();
    let _second = Server::launch(
        std::process::Command::new(common::bin()),
        &db2,
        &["--ssh-addr", "127.0.0.1:0", "--state-dir", dir],
    );
    assert!(other.path().join("besedka_ssh_host_ed25519_key").exists());
}
