//! The real inetutils `telnet` client, driven by `expect` on a pty: a Cyrillic name is
//! registered interactively, the password is never echoed, and Cyrillic chat goes both ways.
//!
//! Needs `telnet` and `expect` on PATH. Without them the test is skipped (said on stderr),
//! except under CI (`CI=true`), where it fails: CI installs them (see `.ci/run`).

mod common;

use common::expect::{self, tcl, wait_for};
use common::Server;

const NAME: &str = "Борис";
const PASSWORD: &str = "tajnaja-parola";
/// "К" is D0 9A in UTF-8, and 0x9A is ^Z with the high bit set: unless the server has
/// negotiated BINARY, inetutils telnet sends it as `IAC SUSP IAC DO TIMING-MARK`, so this
/// line also checks the BINARY offer.
const CHAT: &str = "Привет, мир! Как дела?";
fn script(port: u16) -> String {
    let mut s = String::new();
    s.push_str(&format!("spawn telnet 127.0.0.1 {port}\n"));
    // inetutils telnet first prints Trying…/Connected to…/Escape character is '^]'.
    s.push_str(&wait_for("Escape character is", 10));
    s.push_str(&wait_for("Name: ", 11));
    s.push_str(&format!("send {}\n", tcl(&format!("{NAME}\r"))));
    s.push_str(&wait_for("Password: ", 12));
    s.push_str(&format!("send {}\n", tcl(&format!("{PASSWORD}\r"))));
    s.push_str(&wait_for("Repeat password: ", 13));
    s.push_str(&format!("send {}\n", tcl(&format!("{PASSWORD}\r"))));
    s.push_str(&wait_for(&format!("Hello, {NAME}!"), 14));
    // The login ends with the list of who is online; the watcher makes it two.
    s.push_str(&wait_for("* In #lobby (2): ", 15));
    s.push_str(&format!("send {}\n", tcl(&format!("{CHAT}\r"))));
    s.push_str("send \"/quit\\r\"\n");
    s.push_str(&wait_for("* Bye.", 16));
    s.push_str(
        "expect {\n    eof {}\n    timeout { puts stderr {telnet did not exit}; exit 17 }\n}\nexit 0\n",
    );
    s
}

#[test]
fn real_telnet_client_registers_a_cyrillic_name_without_echoing_the_password() {
    if !expect::have(
        "real_telnet_client",
        &["telnet", "expect"],
        "inetutils-telnet and expect",
    ) {
        return;
    }

    let server = Server::start(&[]);
    let (mut watcher, _) = server.register("watcher", "secret1");

    let dir = tempfile::tempdir().unwrap();
    let run = expect::run(dir.path(), &script(server.addr.port()));
    let (transcript, stdout) = (&run.transcript, &run.stdout);
    let report = format!(
        "{}\nserver log:\n{}",
        run.report(),
        server.stderr.lock().unwrap()
    );
    let status = run
        .status
        .unwrap_or_else(|| panic!("expect ran over {:?}; {report}", expect::HARD_LIMIT));
    assert!(status.success(), "expect failed ({status}); {report}");
    assert!(
        transcript.contains(&format!("Hello, {NAME}!")),
        "no greeting in the transcript; {report}"
    );
    // Local echo is on outside passwords (the name and the chat line show as typed; the
    // server does not send a chat line back to its author), so the password's absence
    // below means telnet obeyed IAC WILL ECHO, not that nothing is echoed at all.
    assert!(
        transcript.contains(&format!("Name: {NAME}")),
        "name not echoed; {report}"
    );
    assert!(transcript.contains(CHAT), "chat line not echoed; {report}");
    for (what, text) in [("transcript", transcript), ("expect stdout", stdout)] {
        assert!(
            !text.contains(PASSWORD),
            "the password was echoed in the {what}; {report}"
        );
    }

    // The other direction: a plain client receives the Cyrillic line.
    watcher.expect(&format!("* {NAME} joined\r\n"));
    watcher.expect(&format!("] {NAME}: {CHAT}\r\n"));
    watcher.expect(&format!("* {NAME} left\r\n"));

    let db = server.sql();
    let users: Vec<String> = db
        .prepare("SELECT name FROM users WHERE name = ?1")
        .unwrap()
        .query_map([NAME], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(users, [NAME]);
    let bodies: Vec<String> = db
        .prepare("SELECT body FROM messages WHERE author_name = ?1")
        .unwrap()
        .query_map([NAME], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(bodies, [CHAT]);
}
