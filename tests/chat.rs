//! The chat stage: broadcast, presence, history, private messages, order, and limits.

mod common;
use std::time::Duration;

use common::{Client, Server};

const QUIET: Duration = Duration::from_millis(300);

#[test]
fn broadcast_reaches_everyone_and_the_sender_with_time_and_name_unless_echo_is_off() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        let (mut c, _) = server.register("carol", "secret1");
        a.expect("* bob joined\r\n");
        a.expect("* carol joined\r\n");
        b.expect("* carol joined\r\n");

        a.send("hello, everyone");
        let line = b.expect("alice: hello, everyone\r\n");
        // [HH:MM:SS] NAME: TEXT
        let line = line.lines().last().unwrap();
        assert!(
            line.starts_with('[') && line.as_bytes()[9] == b']',
            "{line}"
        );
        c.expect("] alice: hello, everyone\r\n");
        // The sender's own line comes back as everyone's does, so its log reads right.
        let own = a.expect("alice: hello, everyone\r\n");
        let own = own.lines().last().unwrap();
        assert!(own.starts_with('[') && own.as_bytes()[9] == b']', "{own}");
        // /echo off: not any more, for this session and the next (stored).
        a.send("/echo off");
        a.expect("* Your lines will not come back to you.\r\n");
        a.send("quietly");
        b.expect("alice: quietly\r\n");
        // An unknown command after it marks where its echo would have been.
        a.send("/end-of-test");
        let got = a.expect("! Unknown command /end-of-test");
        assert!(!got.contains("quietly"), "{got}");
        drop(a);
        b.expect("* alice left\r\n");
        let mut a = server.login("alice", "secret1");
        a.send("still quiet");
        c.expect("alice: still quiet\r\n");
        a.send("/end-of-test");
        let got = a.expect("! Unknown command /end-of-test");
        assert!(!got.contains("still quiet"), "{got}");
        a.send("/echo on");
        a.expect("* Your lines will come back to you with time and name, as everyone's do.\r\n");
        a.send("loud again");
        a.expect("] alice: loud again\r\n");
    });
}

#[test]
fn join_and_leave_follow_the_first_and_last_session() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut watcher, _) = server.register("watcher", "secret1");
        let (mut one, token) = server.register("dana", "secret1");
        watcher.expect("* dana joined");

        // A second session of the same user: no second "joined".
        let mut two = server.connect();
        two.expect("Name: ");
        two.send(&format!("/token {token}"));
        two.expect("* In #lobby (2): dana, watcher");
        one.send("from one");
        two.expect("dana: from one"); // the user's other session sees it
        one.send("/quit");
        one.expect_closed();
        watcher.expect("dana: from one\r\n");
        watcher.expect_silence(QUIET); // dana is still online
        two.send("/quit");
        two.expect_closed();
        watcher.expect("* dana left\r\n");
    });
}

#[test]
fn greeting_counts_users_online() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let _a = server.register("alice", "secret1");
        let _b = server.register("bob", "secret1");
        let mut c = server.connect();
        c.expect("* Welcome to besedka! 2 users online.");
    });
}

#[test]
fn history_is_replayed_after_reconnect_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = Server::start_on(&db, &["--history", "3"]);
    let (mut a, token) = server.register("alice", "secret1");
    let (mut b, _) = server.register("bob", "secret1");
    for i in 1..=4 {
        a.send(&format!("message {i}"));
        b.expect(&format!("alice: message {i}"));
    }
    b.send("/quit");
    b.expect_closed();
    // Reconnect: the last 3 messages, oldest first, before the online list.
    let mut b = server.connect();
    b.expect("Name: ");
    b.send("/login bob secret1");
    let replay = b.expect("* In #lobby (2): alice, bob");
    let bodies: Vec<&str> = replay
        .lines()
        .filter_map(|l| l.split("alice: ").nth(1))
        .collect();
    assert_eq!(bodies, ["message 2", "message 3", "message 4"], "{replay}");
    b.send("/quit");
    b.expect_closed();
    a.send("/quit");
    a.expect_closed();
    server.kill();

    let server = Server::start_on(&db, &["--history", "3"]);
    let mut c = server.connect();
    c.expect("Name: ");
    c.send(&format!("/token {token}"));
    let replay = c.expect("* In #lobby (1): alice");
    let lines: Vec<&str> = replay.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 3, "{replay}");
    for (line, i) in lines.iter().zip(2..) {
        // [YYYY-MM-DD HH:MM:SS] NAME: TEXT
        assert!(line.ends_with(&format!("] alice: message {i}")), "{line}");
        assert_eq!(&line[5..6], "-", "full date: {line}");
        assert_eq!(&line[20..21], "]", "{line}");
    }
    c.send("/history 2");
    let h = c.expect("alice: message 4\r\n");
    assert!(
        h.contains("alice: message 3") && !h.contains("message 2"),
        "{h}"
    );
    c.send("/history 501");
    c.expect("! Usage: /history [N], N from 1 to 500.");
    c.send("/history");
    let all = c.expect("message 4\r\n");
    assert!(all.contains("* Last 4 message(s):"), "{all}");
}

#[test]
fn who_lists_online_users() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut a, _) = server.register("Zed", "secret1");
        let (_b, _) = server.register("amy", "secret1");
        a.send("/who");
        a.expect("* In #lobby (2): amy, Zed\r\n");
    });
}

#[test]
fn private_messages_reach_only_their_two_users() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        let (mut c, _) = server.register("carol", "secret1");
        a.drain(QUIET);
        b.drain(QUIET);
        a.send("/msg BOB meet at noon");
        b.expect("] alice -> bob: meet at noon\r\n");
        a.expect("] alice -> bob: meet at noon\r\n");
        a.send("/msg nobody hi");
        a.expect("! No such user: nobody");
        a.send("/msg bob");
        a.expect("! Usage: /msg NAME TEXT");
        a.send("public now");
        // Everything carol received, up to and after the public line: no private one among it.
        let mut seen = c.expect("alice: public now");
        seen.push_str(&c.drain(QUIET));
        assert!(!seen.contains("noon"), "{seen}");

        // Not in carol's history either, but in bob's.
        c.send("/history 50");
        let h = c.expect("public now\r\n");
        assert!(!h.contains("noon"), "{h}");
        b.expect("alice: public now\r\n"); // the live line
        b.send("/history 50");
        let h = b.expect("public now\r\n");
        assert!(h.contains("alice -> bob: meet at noon"), "{h}");
        let mut c2 = server.login("carol", "secret1");
        c2.send("/history");
        assert!(!c2.expect("public now").contains("noon"));
    });
}

#[test]
fn me_is_an_action_seen_by_everyone() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        a.send("/me waves");
        b.expect("] * alice waves\r\n");
        a.expect("] * alice waves\r\n");
        a.send("/me");
        a.expect("! Usage: /me TEXT");
    });
}

#[test]
fn every_client_sees_one_order_equal_to_the_database() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let mut clients: Vec<Client> = (0..4)
            .map(|i| server.register(&format!("user{i}"), "secret1").0)
            .collect();
        let mut watcher = server.register("watcher", "secret1").0;
        // Everyone talks at once.
        let per = 25;
        std::thread::scope(|s| {
            for (i, c) in clients.iter_mut().enumerate() {
                s.spawn(move || {
                    for n in 0..per {
                        c.send(&format!("m {i} {n}"));
                    }
                });
            }
        });
        // Every client saw the stored order, all of it: a sender's own lines come back to it
        // in their place (/echo is on by default).
        let chat = |c: &mut Client, n: usize| -> Vec<String> {
            let mut seen = Vec::new();
            while seen.len() < n {
                let line = c.expect("\r\n");
                if let Some(pos) = line.find(": m ") {
                    seen.push(line[pos + 2..].trim_end().to_string());
                }
            }
            seen
        };
        let watched = chat(&mut watcher, 4 * per);
        let stored: Vec<String> = server.texts("SELECT body FROM messages ORDER BY id");
        assert_eq!(watched, stored, "the watcher");
        for (i, c) in clients.iter_mut().enumerate() {
            assert_eq!(chat(c, 4 * per), stored, "sender {i}");
        }
        // Each sender's own lines stay in the order sent.
        for i in 0..4 {
            let mine: Vec<_> = stored
                .iter()
                .filter(|m| m.starts_with(&format!("m {i} ")))
                .collect();
            let want: Vec<String> = (0..per).map(|n| format!("m {i} {n}")).collect();
            assert_eq!(mine, want.iter().collect::<Vec<_>>());
        }
    });
}

#[test]
fn a_client_that_does_not_read_is_cut_off_without_stalling_others() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--max-backlog", "65536", "--max-rate", "1000000"]);
        let (mut sender, _) = server.register("talker", "secret1");
        sender.echo_off(); // the sender reads nothing either
        let (mut reader, _) = server.register("reader", "secret1");
        let (mut sleeper, _) = server.register("sleeper", "secret1"); // never reads again
        reader.drain(QUIET);
        let line = "x".repeat(1500);
        let mut cut = false;
        // Kernel buffers absorb a few MB first; then the backlog overflows. Bounded loop.
        for i in 0..20_000 {
            sender.send(&format!("{i} {line}"));
            reader.expect(&format!("talker: {i} "));
            if i % 100 == 0
                && server
                    .stderr
                    .lock()
                    .unwrap()
                    .contains("disconnecting sleeper")
            {
                cut = true;
                break;
            }
        }
        assert!(cut, "the sleeper was never cut off");
        server.expect_log("not reading, backlog over 65536 bytes");
        sender.send("still here");
        reader.expect("talker: still here");
        // The sleeper's connection ends after what was already sent to it.
        sleeper
            .stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut total = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        let start = std::time::Instant::now();
        use std::io::Read;
        loop {
            match sleeper.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) if start.elapsed() > common::WAIT => panic!("sleeper not closed: {e}"),
                Err(_) => {}
            }
        }
        assert!(total > 0);
    });
}

#[test]
fn a_flood_is_slowed_down_not_lost() {
    common::backend::on_each_backend(|| {
        // 20 lines a second, bursts of 40: 100 lines take at least (100 - 40) / 20 = 3 s.
        let server = Server::start(&["--max-rate", "20"]);
        let (mut a, _) = server.register("flooder", "secret1");
        let (mut b, _) = server.register("reader", "secret1");
        a.drain(QUIET);
        let start = std::time::Instant::now();
        let all: String = (0..100).map(|i| format!("flood {i}\r\n")).collect();
        a.send_raw(all.as_bytes());
        for i in 0..100 {
            b.expect(&format!("flooder: flood {i}\r\n"));
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(2500),
            "not throttled: {took:?}"
        );
    });
}

#[test]
fn long_history_is_trimmed_to_fit_instead_of_cutting_the_client_off() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[
            "--max-line",
            "4096",
            "--max-backlog",
            "65536",
            "--history",
            "100",
            "--max-rate",
            "1000000",
        ]);
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        let big = "h".repeat(4000);
        for i in 0..60 {
            a.send(&format!("{i} {big}"));
            b.expect(&format!("alice: {i} "));
        }
        // 60 x 4 KB of history is more than half the 64 KiB backlog: the oldest are left out.
        let mut c = server.connect();
        c.expect("Name: ");
        c.send("/login bob secret1");
        let replay = c.expect("* In #lobby (2): alice, bob\r\n");
        assert!(
            replay.contains("older message(s) left out"),
            "{}",
            &replay[..200]
        );
        assert!(replay.contains(&format!("alice: 59 {big}")));
        c.send("/history 500");
        c.expect("older message(s) left out");
        c.expect(&format!("alice: 59 {big}\r\n"));
        c.send("/who");
        c.expect("* In #lobby (2)"); // still connected
    });
}

#[test]
fn a_full_server_says_so() {
    common::backend::on_each_backend(|| {
        // --max-clients counts users logged in; connections still logging in have a budget
        // of their own (tests/door.rs).
        let server = Server::start(&["--max-clients", "2"]);
        let (mut a, _) = server.register("alice", "secret1");
        // Logging in while the last place is taken: told so at login, not at the door.
        let mut late = server.connect();
        late.expect("Name: ");
        let (_b, _) = server.register("bob", "secret1");
        late.send("/register carol secret1");
        let said = late.expect_closed();
        assert!(
            said.contains("! Server is full (2 clients). Try again in a few minutes."),
            "{said:?}"
        );
        // Full: a new connection is told at once.
        let mut c = server.connect();
        let said = c.expect_closed();
        assert!(
            said.contains("! Server is full (2 clients). Try again in a few minutes."),
            "{said:?}"
        );
        a.send("/quit");
        a.expect_closed();
        // A place is free again (the count drops when the session ends).
        let start = std::time::Instant::now();
        loop {
            let mut d = server.connect();
            let got = d.drain(QUIET);
            if got.contains("Name: ") {
                d.send("/login alice secret1");
                d.expect("* In #lobby");
                break;
            }
            assert!(start.elapsed() < common::WAIT, "slot never freed: {got:?}");
        }
    });
}

#[test]
fn away_shows_in_who_and_answers_private_messages_and_offline_users_are_named() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut alice, _) = server.register("alice", "secret12");
        let (mut bob, _) = server.register("bob", "secret12");
        drop(server.register("carol", "secret12"));
        bob.expect("* carol left\r\n");
        alice.send("/away lunch");
        alice.expect("* You are away: lunch.\r\n");
        bob.send("/who");
        bob.expect("* In #lobby (2): alice (away: lunch), bob\r\n");
        bob.send("/msg alice back soon?");
        bob.expect("bob -> alice: back soon?\r\n");
        bob.expect("* alice is away: lunch\r\n");
        alice.expect("bob -> alice: back soon?\r\n");
        alice.send("/back");
        alice.expect("* You are back.\r\n");
        bob.send("/who");
        bob.expect("* In #lobby (2): alice, bob\r\n");
        bob.send("/msg carol see you");
        bob.expect("* carol is offline; they will see it when they log in.\r\n");
        // Away lasts while a session is online: a new login starts present.
        alice.send("/away");
        alice.expect("* You are away.\r\n");
        drop(alice);
        bob.expect("* alice left\r\n");
        let _alice = server.login("alice", "secret12");
        bob.send("/who");
        bob.expect("* In #lobby (2): alice, bob\r\n");
    });
}

#[test]
fn private_messages_sent_while_offline_are_shown_once_at_the_next_login() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut alice, _) = server.register("alice", "secret12");
        let (bob, bob_token) = server.register("bob", "secret12");
        drop(bob);
        alice.expect("* bob left\r\n");
        alice.send("/msg bob are you there?");
        alice.expect("* bob is offline; they will see it when they log in.\r\n");
        alice.send("/msg bob call me");
        alice.expect("* bob is offline");
        alice.send("a public line");
        // Stored (its echo comes after the commit) before bob logs in.
        alice.expect("] alice: a public line\r\n");
        let mut bob = server.connect();
        bob.expect("Name: ");
        bob.send(&format!("/token {bob_token}"));
        let seen = bob.expect("* In #lobby (");
        let summary = seen
            .find("* You have 2 private messages since your last visit:\r\n")
            .unwrap_or_else(|| panic!("no summary in {seen:?}"));
        let first = seen.find("alice -> bob: are you there?").unwrap();
        let second = seen.find("alice -> bob: call me").unwrap();
        let public = seen.find("alice: a public line").unwrap();
        assert!(
            summary < first && first < second && second < public,
            "{seen}"
        );
        assert_eq!(
            seen.matches("are you there?").count(),
            1,
            "shown once: {seen}"
        );
        // A second session while the first is online: they were seen there.
        let mut second = server.connect();
        second.expect("Name: ");
        second.send(&format!("/token {bob_token}"));
        let seen2 = second.expect("* In #lobby (");
        assert!(!seen2.contains("since your last visit"), "{seen2}");
        drop(second);
        // Seen now: the next login has nothing missed.
        drop(bob);
        alice.expect("* bob left\r\n");
        let mut again = server.connect();
        again.expect("Name: ");
        again.send(&format!("/token {bob_token}"));
        let seen = again.expect("* In #lobby (");
        assert!(!seen.contains("since your last visit"), "{seen}");
    });
}

#[test]
fn a_line_naming_an_online_user_rings_their_bell_unless_they_turned_it_off() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut alice, _) = server.register("alice", "secret12");
        let (mut bob, _) = server.register("bob", "secret12");
        let (mut carol, _) = server.register("carol", "secret12");
        bob.expect("* carol joined\r\n");
        alice.expect("* carol joined\r\n");
        alice.send("hi Bob, and @carol too");
        // The bell comes right in front of the line, only for those named.
        bob.expect("\x07[");
        bob.expect("] alice: hi Bob, and @carol too\r\n");
        carol.expect("\x07[");
        carol.expect("] alice: hi Bob, and @carol too\r\n");
        bob.send("alice: no bell for a name that is not a word, like alicex");
        let line = alice.expect("alicex\r\n");
        assert!(line.contains('\x07'), "'alice:' names alice: {line:?}");
        bob.send("and alicex alone rings nothing");
        let line = alice.expect("rings nothing\r\n");
        assert!(!line.contains('\x07'), "{line:?}");
        bob.send("/bell off");
        bob.expect("* Lines naming you will not ring your bell.\r\n");
        alice.send("bob again");
        let line = bob.expect("] alice: bob again\r\n");
        assert!(!line.contains('\x07'), "bell off: {line:?}");
        // Stored: a new session keeps it off.
        drop(bob);
        alice.expect("* bob left\r\n");
        let mut bob = server.login("bob", "secret12");
        alice.send("bob once more");
        let line = bob.expect("] alice: bob once more\r\n");
        assert!(!line.contains('\x07'), "{line:?}");
        bob.send("/mentions 2");
        bob.expect("* The last 2 line(s) that named you:\r\n");
        bob.expect("alice: bob again\r\n");
        bob.expect("alice: bob once more\r\n");
        bob.send("/mentions 99");
        bob.expect("! Usage: /mentions [N], N from 1 to 50");
    });
}

#[test]
fn search_finds_what_a_user_may_see_and_reports_bad_queries() {
    let server = Server::start(&[]);
    let (mut alice, _) = server.register("alice", "secret12");
    let (mut bob, _) = server.register("bob", "secret12");
    let (mut carol, _) = server.register("carol", "secret12");
    alice.send("the blue whale sings");
    alice.send("/msg bob a secret whale for bob");
    alice.expect("alice -> bob: a secret whale for bob\r\n");
    carol.expect("alice: the blue whale sings\r\n");
    carol.send("Пойдём в кино");
    // Indexed by the janitor within a few seconds.
    let start = std::time::Instant::now();
    loop {
        // A search costs 20 lines of the rate: the answer may wait for the last one's debt.
        // The unknown command's error marks its end.
        carol.send("/search whale");
        carol.send("/end-of-search");
        let got = carol.expect("! Unknown command /end-of-search. Type /help.\r\n");
        if got.contains("Found") {
            // carol does not see alice and bob's private message.
            assert!(got.contains("* Found 1 line(s)"), "{got}");
            assert!(got.contains("alice: the blue whale sings"), "{got}");
            break;
        }
        assert!(got.contains("Nothing found."), "{got}");
        assert!(start.elapsed() < Duration::from_secs(8), "never indexed");
    }
    bob.send("/search whale");
    bob.expect("* Found 2 line(s), oldest first:\r\n");
    bob.expect("alice: the blue whale sings\r\n");
    bob.expect("alice -> bob: a secret whale for bob\r\n");
    bob.send("/search кино");
    bob.expect("carol: Пойдём в кино\r\n");
    bob.send("/search whale AND");
    bob.expect("! Not a search query: AND needs a word on each side.\r\n");
    bob.send("/who");
    bob.expect("* In #lobby (3)"); // still served

    // The operator's CLI sees everything.
    let out = std::process::Command::new(common::bin())
        .args(["search", "whale", "--db"])
        .arg(&server.db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("the blue whale sings") && stdout.contains("a secret whale"),
        "{stdout}"
    );
}

/// `besedka search QUERY… --db DB`.
fn cli_search(db: &std::path::Path, query: &[&str]) -> std::process::Output {
    std::process::Command::new(common::bin())
        .arg("search")
        .args(query)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap()
}

#[test]
fn a_query_the_engine_cannot_read_is_the_users_mistake_not_the_servers() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut alice, _) = server.register("alice", "secret12");
        let refused = |o: &std::process::Output, why: &str| {
            assert_eq!(o.status.code(), Some(2), "{o:?}");
            assert_eq!(
                String::from_utf8_lossy(&o.stderr),
                format!("besedka: not a search query: {why}\n")
            );
            assert!(o.stdout.is_empty(), "{o:?}");
        };
        if common::backend::client(&server.db).is_some() {
            // PostgreSQL's web-search syntax reads any text; only its limits refuse a query.
            for query in ["/search \"unclosed", "/search lab AND"] {
                alice.send(query);
                alice.expect("* Nothing found.\r\n");
            }
            alice.send_raw(b"/search a\x00b\r\n");
            alice.expect(
                "! Not a search query: it contains a character that cannot be searched for.\r\n",
            );
            refused(&cli_search(&server.db, &["x"; 100_000]), "it is too long");
        } else {
            alice.send("/search \"unclosed");
            alice.expect("! Not a search query: a quote (\") is not closed.\r\n");
            alice.send("/search lab AND");
            alice.expect("! Not a search query: AND needs a word on each side.\r\n");
            refused(
                &cli_search(&server.db, &["\"x"]),
                "a quote (\") is not closed",
            );
        }
        alice.send("/who");
        alice.expect("* In #lobby (1): alice\r\n");
        let log = server.stderr.lock().unwrap().clone();
        assert!(!log.contains("ERROR"), "{log}");
    });
}

#[test]
fn a_search_the_database_fails_is_a_server_error() {
    let server = Server::start(&[]);
    let (mut alice, _) = server.register("alice", "secret12");
    server
        .sql()
        .execute_batch("DROP TABLE messages_fts")
        .unwrap();
    alice.send("/search whale");
    alice.expect("! Server error: the database is unavailable. Try again.\r\n");
    server.expect_log("search failed: database error: no such table: messages_fts");
    let o = cli_search(&server.db, &["whale"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("besedka: database error: "), "{err}");
}
