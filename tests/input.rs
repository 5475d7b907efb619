//! Input rules: line length, UTF-8, control characters, line ends and telnet bytes.

mod common;
use std::time::Duration;

use common::Server;

const QUIET: Duration = Duration::from_millis(300);
const IAC: u8 = 255;

#[test]
fn bad_lines_are_refused_and_nothing_is_stored() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--max-line", "100"]);
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        a.drain(QUIET);

        a.send(&"y".repeat(5000));
        a.expect("! Line too long (over 100 bytes); it was ignored.\r\n");
        a.send_raw(b"caf\xe9 latin-1\r\n");
        a.expect("! That line is not valid UTF-8; it was ignored.\r\n");
        a.send(""); // empty: nothing at all
        a.send("\x1b[2J\x07"); // only controls: nothing at all
        a.send(&"z".repeat(100)); // exactly the limit is fine
        b.expect(&format!("alice: {}\r\n", "z".repeat(100)));
        // Its own line comes back (/echo), and nothing else: no refused line was stored.
        a.expect(&format!("alice: {}\r\n", "z".repeat(100)));
        a.expect_silence(QUIET);
        b.expect_silence(QUIET);
        let bodies: Vec<String> = server.texts("SELECT body FROM messages");
        assert_eq!(bodies, ["z".repeat(100)]);
    });
}

#[test]
fn control_characters_are_stripped_from_messages() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        a.send("\x1b[31mred\x1b[0m \x1b]0;pwned\x07title\ttab\x7f\u{9b}2Jend");
        let got = b.expect("end\r\n");
        assert!(got.ends_with("alice: red title\ttabend\r\n"), "{got:?}");
        assert!(!got.contains('\x1b') && !got.contains('\x07'));
    });
}

#[test]
fn slash_commands_and_escapes() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        a.drain(QUIET);
        a.send("//not a command");
        b.expect("alice: /not a command\r\n");
        a.send("/nosuch thing");
        a.expect("! Unknown command /nosuch. Type /help.\r\n");
        a.send("/who extra");
        a.expect("! Usage: /who [*]\r\n");
        a.send("/help");
        let help = a.expect("Any other line is sent to everyone in your room.");
        for cmd in [
            "/who [*]",
            "/join #ROOM",
            "/rooms",
            "/topic [TEXT | -]",
            "/away [TEXT]",
            "/back",
            "/bell on|off",
            "/search [-c N] WORDS [from:NAME] [in:#ROOM] [before:DATE] [after:DATE]",
            "/mentions [N]",
            "/key add KEY",
            "/msg NAME TEXT",
            "/me TEXT",
            "/history [N]",
            "/logout",
            "/quit",
            "//TEXT",
        ] {
            assert!(help.contains(cmd), "{cmd} missing from {help}");
        }
        b.expect_silence(QUIET);
    });
}

#[test]
fn every_line_end_is_accepted() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut b, _) = server.register("bob", "secret1");
        let mut a = server.connect();
        a.expect("Name: ");
        a.send_raw(b"/register alice secret1\n");
        a.expect("* In #lobby (2)");
        a.send_raw(b"lf\nCRLF\r\nCRNUL\r\0bare CR\r");
        for text in ["lf", "CRLF", "CRNUL", "bare CR"] {
            b.expect(&format!("alice: {text}\r\n"));
        }
        b.expect_silence(QUIET); // no empty messages from the two-byte line ends
    });
}

#[test]
fn telnet_commands_never_reach_names_passwords_or_chat() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut b, _) = server.register("bob", "secret1");
        let mut a = server.connect();
        // The offer of binary mode comes first.
        a.expect_bytes(&[IAC, 251, 0, IAC, 253, 0]);
        a.expect("Name: ");
        // A telnet client's answers, a window-size subnegotiation and a NOP inside the name.
        let mut name = vec![IAC, 253, 0, IAC, 251, 0, b'c', b'a'];
        name.extend_from_slice(&[
            IAC, 250, 31, 0, 80, 0, 24, IAC, 240, b'r', IAC, 241, b'l', b'\r', b'\n',
        ]);
        a.send_raw(&name);
        a.expect("* New user carl.");
        // A telnet client gets echo turned off around each password prompt, and back on after.
        a.expect_bytes(&[IAC, 251, 1]);
        a.expect("Password: ");
        a.send_raw(b"pass\xff\xf1word\r\n"); // NOP inside the password
        a.expect_bytes(&[IAC, 252, 1]);
        a.expect_bytes(&[IAC, 251, 1]);
        a.expect("Repeat password: ");
        a.send_raw(b"password\r\n");
        a.expect("* Hello, carl!");
        a.send_raw(&[b'h', b'i', IAC, 251, 24, b'!', b'\r', b'\n']); // WILL TTYPE mid-line
        b.expect("carl: hi!\r\n");
        a.expect_bytes(&[IAC, 254, 24]); // refused: DONT TTYPE
                                         // inetutils telnet in binary mode ends lines with a bare LF, and its echo leaves the
                                         // cursor mid-row: the server answers with a lone CR. A CRLF line gets nothing back.
        a.drain(QUIET);
        a.send_raw(b"bare\n");
        b.expect("carl: bare\r\n");
        // The lone CR, then the line itself coming back (/echo).
        let got = a.drain(QUIET);
        assert!(
            got.starts_with("\r[") && got.ends_with("] carl: bare\r\n"),
            "{got:?}"
        );
        a.send_raw(b"crlf\r\n");
        b.expect("carl: crlf\r\n");
        let got = a.expect("carl: crlf\r\n");
        assert!(got.starts_with('['), "no CR before it: {got:?}");
        a.expect_silence(QUIET);
        // The password was "password" without the NOP.
        let mut again = server.connect();
        again.expect("Name: ");
        again.send("/login carl password");
        again.expect("* Hello, carl!");
    });
}

#[test]
fn a_plain_client_gets_no_telnet_bytes_after_the_offer() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let mut a = server.connect();
        a.expect_bytes(&[IAC, 251, 0, IAC, 253, 0]);
        a.expect("Name: ");
        a.send("dora");
        a.expect("Password: ");
        a.send("secret1");
        a.expect("Repeat password: ");
        a.send("secret1");
        let rest = a.expect("* In #lobby (1): dora\r\n");
        assert!(!rest.as_bytes().contains(&IAC), "{rest:?}");
        let mut raw = Vec::new();
        a.send("/who");
        raw.extend(a.expect_bytes(b"dora\r\n"));
        assert!(!raw.contains(&IAC));
    });
}

#[test]
fn no_telnet_sends_no_offer() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--no-telnet"]);
        let mut a = server.connect();
        let greeting = a.expect_bytes(b"Name: ");
        assert!(greeting.starts_with(b"* Welcome"), "{greeting:?}");
    });
}

#[test]
fn cyrillic_names_and_text() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut a, _) = server.register("Алиса", "пароль123");
        let (mut b, _) = server.register("Борис", "секрет42");
        a.expect("* Борис joined\r\n");
        a.send("Привет, Борис! Как дела?");
        b.expect("Алиса: Привет, Борис! Как дела?\r\n");
        b.send("/msg алиса всё хорошо");
        a.expect("] Борис -> Алиса: всё хорошо\r\n");
        // Case-insensitive in Cyrillic too.
        let mut again = server.connect();
        again.expect("Name: ");
        again.send("/login АЛИСА пароль123");
        again.expect("* Hello, Алиса!");
        let mut dup = server.connect();
        dup.expect("Name: ");
        dup.send("/register бОРИС whatever1");
        dup.expect("! The name бОРИС is taken.");
    });
}

#[test]
fn a_control_key_or_arrow_typed_before_a_command_leaves_it_a_command() {
    let server = Server::start(&[]);
    let (mut a, _) = server.register("alice", "secret1");
    let (mut b, _) = server.register("bob", "secret1");
    a.send("\x0c/who"); // Ctrl-L, then /who
    a.expect("* In #lobby (2): alice, bob\r\n");
    a.send("\x1b[A\x1bOB/echo off"); // an arrow key in each of its forms
    a.expect("* Your lines will not come back to you.\r\n");
    a.send("\x1b/who"); // a lone Escape
    a.expect("* In #lobby (2): alice, bob\r\n");
    a.send("x\x08/who"); // a Backspace typed over a mistake, sent raw by nc
    a.expect("* In #lobby (2): alice, bob\r\n");
    a.send("\x0c//not a command");
    b.expect("alice: /not a command\r\n");
    let bodies: Vec<String> = server.texts("SELECT body FROM messages");
    assert_eq!(bodies, ["/not a command"], "no command reached the room");
}
