//! Limits, bans, mutes and the password lock over IRC (`--irc-addr`), proved as for telnet:
//! a raw IRC client next to telnet clients on the same server.

mod common;

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use common::irc::{irc, sasl, sasl_login, server};
use common::{Client, Server};

#[test]
fn the_password_lock_holds_over_irc_as_over_telnet() {
    let server = Server::start_strict(&["--irc-addr", "127.0.0.1:0", "--max-failed-logins", "2"]);
    drop(server.register("alice", "secret1"));
    for _ in 0..2 {
        let (_, answer) = sasl(&server, "alice", "wrong-one");
        assert!(answer.contains(" 904 "), "{answer}");
    }
    // Locked now: the right password is refused, with the wait in words, over IRC...
    let (_, answer) = sasl(&server, "alice", "secret1");
    assert!(
        answer.contains("NOTICE * :! Too many failed logins. Try again in 10 minutes."),
        "{answer}"
    );
    assert!(answer.contains(" 904 "), "{answer}");
    // ... and over telnet: the lock is the account's, whichever way the failures came.
    let mut t = server.connect();
    t.expect("Name: ");
    t.send("/login alice secret1");
    t.expect("! Too many failed logins.");
}

#[test]
fn a_ban_keeps_an_irc_client_out() {
    let mut server = server(&[]);
    drop(server.register("bob", "secret1"));
    server.ask("ban bob 1h spam", "Banned bob");
    let (mut c, answer) = sasl(&server, "bob", "secret1");
    assert!(answer.contains("NOTICE * :! You are banned"), "{answer}");
    assert!(answer.contains(": spam."), "{answer}");
    c.expect("ERROR :");
    c.expect_closed();
}

#[test]
fn a_muted_irc_user_is_told_so_and_nothing_reaches_the_room_until_unmuted() {
    let mut server = server(&[]);
    let (mut alice, _) = server.register("alice", "secret1");
    drop(server.register("bob", "secret2"));
    let mut bob = sasl_login(&server, "bob", "secret2");
    alice.expect("* bob joined\r\n");
    server.ask("mute bob 1h", "Muted bob for 1h.");
    alice.expect("* server muted bob for 1h\r\n");
    bob.expect(":besedka NOTICE bob :server muted bob for 1h\r\n");
    let stored = server.count("messages");
    // A line, a /me and a private message: each refused with the mute's end, in a NOTICE.
    for line in [
        "PRIVMSG #lobby :hello?",
        "PRIVMSG #lobby :\u{1}ACTION waves\u{1}",
        "PRIVMSG alice :psst",
    ] {
        bob.send(line);
        let got = bob.expect(" UTC.\r\n");
        assert!(
            got.contains(":besedka NOTICE bob :! You are muted until "),
            "{got:?}"
        );
    }
    assert_eq!(server.count("messages"), stored);
    alice.expect_silence(Duration::from_millis(300));
    server.ask("unmute bob", "Unmuted bob.");
    bob.send("PRIVMSG #lobby :free again");
    alice.expect("] bob: free again\r\n");
}

#[test]
fn an_irc_flood_reaches_the_room_paced_by_max_rate_and_all_of_it() {
    // 5 lines a second, bursts of 10: 20 lines at once are 10 at once, then 5 a second.
    let server = server(&["--max-rate", "5"]);
    let (mut alice, _) = server.register("alice", "secret1");
    drop(server.register("bob", "secret2"));
    let mut bob = sasl_login(&server, "bob", "secret2");
    alice.expect("* bob joined\r\n");
    alice.drain(Duration::from_millis(300));
    let lines: String = (0..20)
        .map(|i| format!("PRIVMSG #lobby :flood {i}\r\n"))
        .collect();
    let sent = Instant::now();
    bob.send_raw(lines.as_bytes());
    // When each line reached the telnet user, read off the socket as it comes.
    let mut seen = String::new();
    let mut early = None;
    let mut chunk = [0u8; 8192];
    while seen.matches("] bob: flood ").count() < 20 {
        assert!(sent.elapsed() < common::WAIT, "not all arrived: {seen:?}");
        if early.is_none() && sent.elapsed() >= Duration::from_millis(300) {
            early = Some(seen.matches("] bob: flood ").count());
        }
        match alice.stream.read(&mut chunk) {
            Ok(0) => panic!("closed; got {seen:?}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&chunk[..n])),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}; got {seen:?}"),
        }
    }
    // In the first 300 ms: the burst and a line or two of refill, not all 20. (The time is
    // what is tested: a slow machine sees fewer, never more.)
    let early = early.unwrap_or(20);
    assert!(
        early <= 13,
        "{early} of 20 within 300 ms at 5/s with a burst of 10"
    );
    for i in 0..20 {
        assert!(seen.contains(&format!("] bob: flood {i}\r\n")), "{seen:?}");
    }
}

#[test]
fn connections_at_once_from_one_address_are_bounded_over_irc() {
    let server = Server::start_strict(&["--irc-addr", "127.0.0.1:0", "--max-per-ip", "2"]);
    let mut open: Vec<Client> = (0..2)
        .map(|i| {
            let mut c = irc(&server);
            c.send(&format!("NICK guest{i}"));
            c.send("USER u 0 * :u");
            c.expect("You are not logged in.");
            c
        })
        .collect();
    let got = irc(&server).expect_closed();
    assert_eq!(
        got,
        "ERROR :Too many connections from your address (2 at once). Close one, then try again.\r\n"
    );
    server.expect_log(": too many connections at once from one address (--max-per-ip 2)");
    // One leaves: there is room again, once the server has counted its end.
    let mut leaving = open.pop().expect("two open");
    leaving.send("QUIT :bye");
    leaving.expect_closed();
    let start = Instant::now();
    loop {
        let mut c = irc(&server);
        c.send("NICK guest9");
        c.send("USER u 0 * :u");
        let got = c.drain(Duration::from_millis(300));
        if got.contains("You are not logged in.") {
            break;
        }
        assert!(start.elapsed() < common::WAIT, "still refused: {got:?}");
    }
}
