//! SSH's own parts of the dialogue, with the real OpenSSH client under `expect`: Up/Down in
//! the line editor.
//!
//! Needs `ssh` and `expect` on PATH; without them the tests that drive them are skipped (said
//! on stderr), except under CI, where they fail: `.ci/run` installs openssh-client and expect.

mod common;

use std::time::Duration;

use common::expect::{send, wait_for};
use common::ssh::{have_clients, run_async, ssh_command, ssh_server, succeeded};

/// The end of every script: Ctrl-C, and ssh exits.
const QUIT: &str =
    "send \"\\003\"\nexpect {\n    eof {}\n    timeout { puts stderr {ssh did not exit}; exit 99 }\n}\nexit 0\n";

#[test]
fn up_and_down_recall_the_sessions_lines_over_ssh_and_never_a_password() {
    if !have_clients("ssh history") {
        return;
    }
    let (server, dir) = ssh_server(false, &[]);
    let (mut watcher, _) = server.register("watcher", "secret12");
    let port = server.ssh_addr.unwrap().port();
    let (up, down) = ("\x1b[A", "\x1b[B");
    let mut s = format!("spawn {}\n", ssh_command(port, "nobody", ""));
    s += &wait_for("Name: ", 10);
    s += &send("vera\r");
    s += &wait_for("Password: ", 10);
    s += &send("tajnaja-parola\r");
    s += &wait_for("Repeat password: ", 11);
    s += &send("tajnaja-parola\r");
    s += &wait_for("* In #lobby (2): ", 12);
    s += &send("one\r");
    s += &send("two\r");
    // Up twice from an unfinished line, Down twice back to it, finished and sent.
    s += &send(&format!("dra{up}{up}{down}{down}ft\r"));
    // Up five times past four lines (the name typed at Name: is one): the oldest, "vera"; a
    // kept password would be newer than it, older than "one".
    s += &send(&format!("{up}{up}{up}{up}{up}\r"));
    s += QUIT;
    let run = run_async(dir.path(), s);
    for line in ["one", "two", "draft", "vera"] {
        watcher.expect(&format!("vera: {line}\r\n"));
    }
    watcher.expect("* vera left");
    let run = run.join().unwrap();
    let report = succeeded(&run, &server);
    assert!(!run.transcript.contains("tajnaja"), "{report}");
    let all = watcher.drain(Duration::from_millis(200));
    assert!(!all.contains("tajnaja"), "{all}");
}
