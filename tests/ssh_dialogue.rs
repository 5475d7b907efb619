//! SSH's own parts of the dialogue, with the real OpenSSH client under `expect`: the user name
//! given to `ssh` (an account's goes to its password, a free one to registering it), the
//! command `/key add` and `/help` give (the real port and `--public-host`, reloadable), and
//! Up/Down in the line editor.
//!
//! Needs `ssh` and `expect` on PATH; without them the tests that drive them are skipped (said
//! on stderr), except under CI, where they fail: `.ci/run` installs openssh-client and expect.

mod common;

use std::time::Duration;

use common::expect::{self, send, wait_for};
use common::ssh::{have_clients, run_async, ssh_command, ssh_server, succeeded};
use common::Server;

/// The end of every script: Ctrl-C, and ssh exits.
const QUIT: &str =
    "send \"\\003\"\nexpect {\n    eof {}\n    timeout { puts stderr {ssh did not exit}; exit 99 }\n}\nexit 0\n";

/// Runs `steps` after spawning `ssh NAME@127.0.0.1` (no keys) and checks the run passed;
/// returns the transcript and its report.
fn ssh_as(server: &Server, dir: &std::path::Path, name: &str, steps: &str) -> (String, String) {
    let port = server.ssh_addr.unwrap().port();
    let script = format!("spawn {}\n{steps}", ssh_command(port, name, ""));
    let run = expect::run(dir, &script);
    let report = succeeded(&run, server);
    (run.transcript, report)
}

#[test]
fn an_account_named_to_ssh_goes_to_its_password_with_the_dialogues_checks() {
    if !have_clients("ssh account name") {
        return;
    }
    let (server, dir) = ssh_server(false, &["--max-failed-logins", "2"]);
    drop(server.register("carol", "secret12"));

    // Straight to carol's password; a wrong one counts and asks again; Enter gives another
    // name (the dialogue as usual).
    let mut s = wait_for(
        "* Logging in as carol: your password, or press Enter to give another name.\r\n",
        10,
    );
    s += &wait_for("Password: ", 11);
    s += &send("wrong-one\r");
    s += &wait_for("! Wrong password.", 12);
    s += &wait_for("Password: ", 13);
    s += &send("\r");
    s += &wait_for("* Type your name to log in or register", 14);
    s += &wait_for("Name: ", 15);
    s += &send("carol\r");
    s += &wait_for("Password: ", 16);
    s += &send("secret12\r");
    s += &wait_for("* Hello, carol!", 17);
    s += QUIT;
    let (transcript, report) = ssh_as(&server, dir.path(), "carol", &s);
    let (password, name) = (transcript.find("Password: "), transcript.find("Name: "));
    assert!(password < name, "the password came first; {report}");
    assert!(!transcript.contains("wrong-one"), "not echoed; {report}");
    // The session's password check, not SSH's: its log line, its lock.
    server.expect_log("failed login for carol");
    assert!(!server.stderr.lock().unwrap().contains("failed SSH login"));
    server.expect_log("carol logged in (password, ssh)");

    // The second failure in a row locks the account (--max-failed-logins 2), as at Name:.
    let mut s = wait_for("Password: ", 20);
    s += &send("wrong-two\r");
    s += &wait_for("Password: ", 21);
    s += &send("wrong-three\r");
    s += &wait_for("! Too many failed logins. Try again in ", 22);
    s += &wait_for("Name: ", 23);
    s += QUIT;
    ssh_as(&server, dir.path(), "carol", &s);
    // Locked: refused before any password is asked.
    let mut s = wait_for("! Too many failed logins. Try again in ", 30);
    s += &wait_for("Name: ", 31);
    s += QUIT;
    let (transcript, report) = ssh_as(&server, dir.path(), "carol", &s);
    assert!(!transcript.contains("Password: "), "{report}");
}

#[test]
fn a_free_name_named_to_ssh_is_offered_and_a_bad_one_goes_to_the_dialogue() {
    if !have_clients("ssh free name") {
        return;
    }
    let (server, dir) = ssh_server(false, &[]);
    let mut s = wait_for(
        "* dora is free: choose a password (at least 6 characters) to make the account, or \
         press Enter to give another name.\r\n",
        10,
    );
    s += &wait_for("Password: ", 11);
    s += &send("dora-secret\r");
    s += &wait_for("Repeat password: ", 12);
    s += &send("dora-secret\r");
    s += &wait_for("* Hello, dora!", 13);
    s += &wait_for("* In #lobby (1): dora", 14);
    s += QUIT;
    let (transcript, report) = ssh_as(&server, dir.path(), "dora", &s);
    assert!(!transcript.contains("Name: "), "{report}");
    server.expect_log("dora logged in (registration, ssh)");

    // A name against the rule (it may be the local login `ssh HOST` sends): the dialogue,
    // without an error about a name the user may never have chosen.
    let mut s = wait_for("* Type your name to log in or register", 20);
    s += &wait_for("Name: ", 21);
    s += QUIT;
    let (transcript, report) = ssh_as(&server, dir.path(), "john+smith", &s);
    for said in ["Invalid name", "is free", "Password: "] {
        assert!(!transcript.contains(said), "{said}; {report}");
    }

    // Registration closed: said as at Name:, then the dialogue.
    let (closed, dir) = ssh_server(false, &["--no-register"]);
    let mut s = wait_for("! Registration is closed on this server.", 30);
    s += &wait_for("Name: ", 31);
    s += QUIT;
    let (transcript, report) = ssh_as(&closed, dir.path(), "erin", &s);
    assert!(!transcript.contains("is free"), "{report}");
}

/// Two OpenSSH public keys (`ssh-keygen -t ed25519`) and their fingerprints.
const LAPTOP: (&str, &str) = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIO74vOo8aFFwLlUwmfMEVTiIWL2yZPM/WtVpSaBrvPv laptop",
    "SHA256:ZGYg+7EEXYlM/fT6KyU+ErK2nBUUmfMt7lERuCmi3xM",
);
const PHONE: (&str, &str) = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKORj6SbYim26Ctf/Ehs5R8YMsLj4OB6qbNhjMf9j3fC phone",
    "SHA256:x1R9weXpMEl1WPkDEF34kBGr2gZk62pIYGSr7Q4YFMg",
);

#[test]
fn key_add_and_help_give_the_real_ssh_command_and_a_reload_changes_the_host() {
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("besedka.toml");
    std::fs::write(&conf, "public-host = \"chat.example.org\"\n").unwrap();
    let (mut server, _dir) = ssh_server(false, &["--config", conf.to_str().unwrap()]);
    let port = server.ssh_addr.unwrap().port();
    let (mut alice, _) = server.register("alice", "secret12");
    alice.send(&format!("/key add {}", LAPTOP.0));
    alice.expect(&format!(
        "* Key {} added: ssh -p {port} alice@chat.example.org logs you in with it.\r\n",
        LAPTOP.1
    ));
    alice.send("/help");
    let help = alice.expect("Any other line");
    assert!(
        help.contains(&format!(
            "SSH keys that log you in: ssh -p {port} alice@chat.example.org\r\n"
        )),
        "{help}"
    );

    // A reload puts a new host in force at once; with a port (a port forward to the
    // listener), that port (22: ssh's own, no -p).
    std::fs::write(&conf, "public-host = \"talk.example.net:22\"\n").unwrap();
    server.command("reload");
    server.expect_log("changed public-host");
    assert!(!server.stderr.lock().unwrap().contains("need(s) a restart"));
    alice.send(&format!("/key add {}", PHONE.0));
    alice.expect(&format!(
        "* Key {} added: ssh alice@talk.example.net logs you in with it.\r\n",
        PHONE.1
    ));

    // No SSH listener: no command to give.
    let plain = Server::start(&["--public-host", "chat.example.org"]);
    let (mut dave, _) = plain.register("dave", "secret12");
    dave.send(&format!("/key add {}", PHONE.0));
    dave.expect(&format!(
        "* Key {} added (this server does not listen for SSH now).\r\n",
        PHONE.1
    ));

    // A host no one could type after ssh NAME@ is refused in words.
    let bad = conf_dir.path().join("bad.toml");
    std::fs::write(&bad, "public-host = \"alice@chat\"\n").unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("\"alice@chat\" is not a host name or an address"),
        "{err}"
    );
}

#[test]
fn up_and_down_recall_the_sessions_lines_over_ssh_and_never_a_password() {
    if !have_clients("ssh history") {
        return;
    }
    let (server, dir) = ssh_server(false, &[]);
    let (mut watcher, _) = server.register("watcher", "secret12");
    let port = server.ssh_addr.unwrap().port();
    let (up, down) = ("\x1b[A", "\x1b[B");
    let mut s = format!("spawn {}\n", ssh_command(port, "vera", ""));
    s += &wait_for("Password: ", 10);
    s += &send("tajnaja-parola\r");
    s += &wait_for("Repeat password: ", 11);
    s += &send("tajnaja-parola\r");
    s += &wait_for("* In #lobby (2): ", 12);
    s += &send("one\r");
    s += &send("two\r");
    // Up twice from an unfinished line, Down twice back to it, finished and sent.
    s += &send(&format!("dra{up}{up}{down}{down}ft\r"));
    // Up four times past three lines: the oldest, "one"; a kept password would be older.
    s += &send(&format!("{up}{up}{up}{up}\r"));
    s += QUIT;
    let run = run_async(dir.path(), s);
    for line in ["one", "two", "draft", "one"] {
        watcher.expect(&format!("vera: {line}\r\n"));
    }
    watcher.expect("* vera left");
    let run = run.join().unwrap();
    let report = succeeded(&run, &server);
    assert!(!run.transcript.contains("tajnaja"), "{report}");
    let all = watcher.drain(Duration::from_millis(200));
    assert!(!all.contains("tajnaja"), "{all}");
}
