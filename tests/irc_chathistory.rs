//! IRCv3 `draft/chathistory` over the real binary with a raw IRC client, on SQLite and on
//! PostgreSQL: every subcommand, msgid and timestamp references, a channel only while in
//! it, a nick as the private lines between the two users and nobody else's, and the
//! errors as standard replies.

mod common;

use std::time::{Duration, Instant};

use common::irc::{login_with_caps, login_with_caps_burst, server};
use common::{Client, Server};

/// Waits (bounded) until `messages` holds `n` rows: every line said so far is committed.
fn wait_for_messages(server: &Server, n: i64) {
    let start = Instant::now();
    while server.count("messages") < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "messages never reached {n}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a statement on the test's database, whichever backend it is.
fn execute(server: &Server, sql: &str) {
    match common::backend::client(&server.db) {
        Some(mut pg) => drop(pg.execute(sql, &[]).unwrap()),
        None => drop(server.sql().execute(sql, []).unwrap()),
    }
}

/// The id of the message with `body`.
fn id_of(server: &Server, body: &str) -> i64 {
    let sql = format!("SELECT CAST(id AS TEXT) FROM messages WHERE body = '{body}'");
    server.texts(&sql)[0].parse().unwrap()
}

/// Sends `CHATHISTORY args` and returns the bodies of the batch's lines, each as
/// `msgid:body`, after checking the batch is `chathistory` for `target`.
fn history(c: &mut Client, args: &str, target: &str) -> Vec<String> {
    c.send(&format!("CHATHISTORY {args}"));
    let open = c.expect(&format!(" chathistory {target}\r\n"));
    assert!(open.contains(":besedka BATCH +"), "{open}");
    let got = c.expect(":besedka BATCH -");
    c.expect("\r\n");
    got.lines()
        .filter(|l| l.contains(" PRIVMSG "))
        .map(|l| {
            let id = l
                .split(';')
                .find_map(|t| t.strip_prefix("msgid="))
                .unwrap_or("?");
            let id = id.split(' ').next().unwrap_or("?");
            let body = l.split_once(" :").map_or("", |(_, b)| b);
            let body = body.rsplit_once(" :").map_or(body, |(_, b)| b).trim_end();
            format!("{id}:{body}")
        })
        .collect()
}

/// `msgid:body` for each body, as [`history`] gives them.
fn lines(server: &Server, bodies: &[&str]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| format!("{}:{b}", id_of(server, b)))
        .collect()
}

#[test]
fn chathistory_pages_a_channel_and_a_private_conversation_on_each_backend() {
    common::backend::on_each_backend(|| {
        let server = server(&[]);
        let (mut alice, _) = server.register("alice", "secret1");
        let (mut carol, _) = server.register("carol", "secret3");
        drop(server.register("bob", "secret2"));
        drop(server.register("dave", "secret4"));
        for i in 1..=5 {
            alice.send(&format!("m{i}"));
        }
        wait_for_messages(&server, 5);
        // Public lines a second apart, long ago: times that tests can name.
        for i in 1..=5 {
            let at = format!("2000-01-01T00:00:0{i}Z");
            execute(
                &server,
                &format!("UPDATE messages SET created_at = '{at}' WHERE body = 'm{i}'"),
            );
        }
        alice.send("/msg bob a to bob");
        wait_for_messages(&server, 6); // in this order, from two connections
        carol.send("/msg bob carol to bob");
        carol.send("/msg alice carol to alice");
        wait_for_messages(&server, 8);
        alice.send("/join #tea");
        alice.expect("* You are in #tea.");
        alice.send("steeping");
        wait_for_messages(&server, 9);

        let caps = "server-time batch message-tags draft/chathistory";
        let (mut bob, burst) = login_with_caps_burst(&server, "bob", "secret2", caps);
        assert!(
            burst.contains(" CHATHISTORY=100 MSGREFTYPES=msgid,timestamp "),
            "{burst}"
        );
        // Asking for draft/chathistory: no history played back at JOIN, the client asks.
        assert!(!burst.contains("PRIVMSG #lobby :m5"), "{burst}");

        let lobby = |b: &[&str]| lines(&server, b);
        assert_eq!(
            history(&mut bob, "LATEST #lobby * 3", "#lobby"),
            lobby(&["m3", "m4", "m5"])
        );
        let m3 = id_of(&server, "m3");
        let m1 = id_of(&server, "m1");
        let m5 = id_of(&server, "m5");
        assert_eq!(
            history(&mut bob, &format!("BEFORE #lobby msgid={m3} 10"), "#lobby"),
            lobby(&["m1", "m2"])
        );
        assert_eq!(
            history(&mut bob, &format!("AFTER #lobby msgid={m3} 1"), "#lobby"),
            lobby(&["m4"])
        );
        assert_eq!(
            history(&mut bob, &format!("AROUND #lobby msgid={m3} 3"), "#lobby"),
            lobby(&["m2", "m3", "m4"])
        );
        assert_eq!(
            history(
                &mut bob,
                &format!("BETWEEN #lobby msgid={m1} msgid={m5} 10"),
                "#lobby"
            ),
            lobby(&["m2", "m3", "m4"])
        );
        assert_eq!(
            history(
                &mut bob,
                &format!("BETWEEN #lobby msgid={m5} msgid={m1} 2"),
                "#lobby"
            ),
            lobby(&["m3", "m4"]),
            "backwards: the newest two before m5"
        );
        // Times: a stored time is its second's start; references exclude themselves.
        let t = |s: &str| format!("timestamp=2000-01-01T00:00:{s}Z");
        assert_eq!(
            history(
                &mut bob,
                &format!("AFTER #lobby {} 10", t("02.500")),
                "#lobby"
            ),
            lobby(&["m3", "m4", "m5"])
        );
        assert_eq!(
            history(
                &mut bob,
                &format!("BEFORE #lobby {} 10", t("03.000")),
                "#lobby"
            ),
            lobby(&["m1", "m2"])
        );
        assert_eq!(
            history(
                &mut bob,
                &format!("BEFORE #lobby {} 10", t("03.001")),
                "#lobby"
            ),
            lobby(&["m1", "m2", "m3"])
        );
        assert_eq!(
            history(
                &mut bob,
                &format!("LATEST #lobby {} 10", t("04.000")),
                "#lobby"
            ),
            lobby(&["m5"])
        );
        assert_eq!(
            history(
                &mut bob,
                &format!("BETWEEN #lobby {} msgid={m5} 10", t("01.500")),
                "#lobby"
            ),
            lobby(&["m2", "m3", "m4"])
        );

        // A nick: the private lines between bob and that account, nobody else's.
        assert_eq!(
            history(&mut bob, "LATEST alice * 10", "alice"),
            lines(&server, &["a to bob"])
        );
        assert_eq!(
            history(&mut bob, "LATEST carol * 10", "carol"),
            lines(&server, &["carol to bob"])
        );
        let mut dave = login_with_caps(&server, "dave", "secret4", caps);
        assert_eq!(
            history(&mut dave, "LATEST bob * 10", "bob"),
            Vec::<String>::new()
        );
        assert_eq!(
            history(&mut dave, "LATEST alice * 10", "alice"),
            Vec::<String>::new()
        );

        // TARGETS: bob's channels and correspondents, by their latest line.
        let wide = "timestamp=1999-01-01T00:00:00.000Z timestamp=2999-01-01T00:00:00.000Z";
        bob.send(&format!("CHATHISTORY TARGETS {wide} 10"));
        bob.expect(" BATCH +");
        let got = bob.expect(":besedka BATCH -");
        let names: Vec<&str> = got
            .lines()
            .filter_map(|l| l.split(" CHATHISTORY TARGETS ").nth(1))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(names, ["#lobby", "alice", "carol"], "{got}");

        // Errors, as standard replies.
        for (args, reply) in [
            (
                "LATEST #tea * 10",
                "FAIL CHATHISTORY INVALID_TARGET LATEST #tea :",
            ),
            (
                "LATEST nobody * 10",
                "FAIL CHATHISTORY INVALID_TARGET LATEST nobody :",
            ),
            (
                "SIDEWAYS #lobby * 10",
                "FAIL CHATHISTORY INVALID_PARAMS SIDEWAYS :Unknown command",
            ),
            (
                "LATEST #lobby *",
                "FAIL CHATHISTORY INVALID_PARAMS LATEST :Insufficient parameters",
            ),
            (
                "LATEST #lobby * 0",
                "FAIL CHATHISTORY INVALID_PARAMS LATEST 0 :",
            ),
            (
                "BEFORE #lobby yesterday 10",
                "FAIL CHATHISTORY INVALID_PARAMS BEFORE yesterday :",
            ),
        ] {
            bob.send(&format!("CHATHISTORY {args}"));
            bob.expect(reply);
        }
        // A line just said is in the answer to a CHATHISTORY sent right behind it.
        bob.send("PRIVMSG #lobby :just now");
        let got = history(&mut bob, "LATEST #lobby * 1", "#lobby");
        assert!(got.len() == 1 && got[0].ends_with(":just now"), "{got:?}");
        // A limit past the maximum (100) is taken as the maximum: with 120 more lines in
        // the room, 5000 asked gives 100.
        for i in 0..120 {
            execute(
                &server,
                &format!(
                    "INSERT INTO messages (created_at, author_name, kind, body, room_id) \
                     VALUES ('2026-01-01T00:00:00Z', 'filler', 'say', 'filler {i}', 1)"
                ),
            );
        }
        assert_eq!(
            history(&mut bob, "LATEST #lobby * 5000", "#lobby").len(),
            100
        );
    });
}
