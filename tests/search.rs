//! `/search` and `besedka search`: filters (from:, in:, before:, after:, "phrases"), lines
//! around each hit (-c N), what never leaks (others' private lines), errors in words, and
//! the bound on one user's searches while others chat. Each on SQLite and PostgreSQL.

mod common;
use std::time::{Duration, Instant};

use common::{Client, Server};

/// The lines found by `/search ARGS`: sent with an unknown command after it, whose error
/// marks the end of the answer (a session answers its lines in order).
fn found(c: &mut Client, args: &str) -> Vec<String> {
    c.send(&format!("/search {args}"));
    c.send("/end-of-search");
    let got = c.expect("! Unknown command /end-of-search. Type /help.\r\n");
    assert!(
        got.contains("* Found ") || got.contains("* Nothing found."),
        "/search {args}: {got}"
    );
    // Found lines carry a date, `[2026-11-10 12:00:00]` (after a `> ` or two spaces with
    // -c); live lines that came in meanwhile only a time.
    got.lines()
        .filter(|l| {
            let l = l.trim_start_matches(['>', ' ']);
            l.starts_with('[') && l.get(5..6) == Some("-") || l.starts_with("--")
        })
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// The answer to `/search ARGS` when it is an error line.
fn refused(c: &mut Client, args: &str) -> String {
    c.send(&format!("/search {args}"));
    let got = c.expect("\r\n");
    assert!(got.starts_with("! "), "/search {args}: {got}");
    got
}

/// The bodies of found lines (what follows `NAME: `).
fn bodies(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter_map(|l| l.split_once(": ").map(|(_, b)| b))
        .collect()
}

/// `besedka search ARGS… --db DB`.
fn cli(server: &Server, args: &[&str]) -> std::process::Output {
    std::process::Command::new(common::bin())
        .arg("search")
        .args(args)
        .arg("--db")
        .arg(&server.db)
        .output()
        .unwrap()
}

/// Stamps the line `body` with the time `at`, straight in the database (either backend).
fn date(server: &Server, body: &str, at: &str) {
    let n = match common::backend::client(&server.db) {
        Some(mut pg) => pg
            .execute(
                "UPDATE messages SET created_at = $1 WHERE body = $2",
                &[&at, &body],
            )
            .unwrap(),
        None => server
            .sql()
            .execute(
                "UPDATE messages SET created_at = ?1 WHERE body = ?2",
                [at, body],
            )
            .unwrap() as u64,
    };
    assert_eq!(n, 1, "{body}");
}

/// How many stored lines are `body`.
fn stored(server: &Server, body: &str) -> i64 {
    match common::backend::client(&server.db) {
        Some(mut pg) => pg
            .query_one("SELECT count(*) FROM messages WHERE body = $1", &[&body])
            .unwrap()
            .get(0),
        None => server
            .sql()
            .query_row(
                "SELECT count(*) FROM messages WHERE body = ?1",
                [body],
                |r| r.get(0),
            )
            .unwrap(),
    }
}

/// `who` says `body` in their room; returns once it is stored, so lines said one after
/// another are stored (and numbered) in that order.
fn said(server: &Server, who: &mut Client, body: &str) {
    who.send(body);
    let start = Instant::now();
    while stored(server, body) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{body:?} never stored"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn each_filter_and_their_combinations_find_only_what_the_user_may_see() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--max-rate", "1000"]);
        let (mut alice, _) = server.register("alice", "secret12");
        let (mut bob, _) = server.register("bob", "secret12");
        let (mut carol, _) = server.register("carol", "secret12");
        // One a day, oldest first: 2026-11-10 … 2026-11-16, at noon.
        said(&server, &mut alice, "whale one");
        said(&server, &mut bob, "whale two");
        alice.send("/msg bob secret whale for bob");
        alice.expect("alice -> bob: secret whale for bob\r\n");
        bob.send("/msg carol secret whale for carol");
        bob.expect("bob -> carol: secret whale for carol\r\n");
        carol.send("/join #dev");
        carol.expect("* You are in #dev.");
        said(&server, &mut carol, "whale three in dev");
        said(&server, &mut alice, "the blue whale sings");
        said(&server, &mut alice, "whale blue the other way");
        let lines = [
            "whale one",
            "whale two",
            "secret whale for bob",
            "secret whale for carol",
            "whale three in dev",
            "the blue whale sings",
            "whale blue the other way",
        ];
        for (i, body) in lines.iter().enumerate() {
            date(&server, body, &format!("2026-11-{}T12:00:00Z", 10 + i));
        }
        // SQLite's index is filled off the hub; the CLI fills the rest before it searches.
        assert!(cli(&server, &["whale"]).status.success());

        let all = found(&mut alice, "whale");
        assert_eq!(
            bodies(&all),
            [
                "whale one",
                "whale two",
                "secret whale for bob",
                "whale three in dev",
                "the blue whale sings",
                "whale blue the other way"
            ],
            "no one else's private line: {all:?}"
        );
        assert!(
            all[0].starts_with("[2026-11-10 12:00:00] #lobby alice: "),
            "{all:?}"
        );
        for (args, want) in [
            ("whale from:bob", vec!["whale two"]),
            ("whale from:BOB in:#lobby", vec!["whale two"]),
            ("from:carol", vec!["whale three in dev"]),
            ("whale in:#dev", vec!["whale three in dev"]),
            ("whale in:dev", vec!["whale three in dev"]),
            ("whale #dev", vec!["whale three in dev"]),
            ("whale before:2026-11-12", vec!["whale one", "whale two"]),
            (
                "whale after:2026-11-15",
                vec!["the blue whale sings", "whale blue the other way"],
            ),
            (
                "whale after:2026-11-11T12:00 before:2026-11-14T12:00:01",
                vec!["whale two", "secret whale for bob", "whale three in dev"],
            ),
            ("after:2026-11-16T12:00", vec!["whale blue the other way"]),
            ("\"blue whale\"", vec!["the blue whale sings"]),
            (
                "\"blue whale\" from:alice in:#lobby after:2026-11-01 before:2026-12-01",
                vec!["the blue whale sings"],
            ),
            ("\"blue whale\" from:bob", vec![]),
            (
                "whale from:alice before:2026-11-13",
                vec!["whale one", "secret whale for bob"],
            ),
            ("whale in:#dev before:2026-11-14", vec![]),
            ("secret", vec!["secret whale for bob"]),
            ("from:bob", vec!["whale two"]),
        ] {
            assert_eq!(bodies(&found(&mut alice, args)), want, "/search {args}");
        }
        // carol sees bob's line to her, and not alice's to bob.
        assert_eq!(
            bodies(&found(&mut carol, "secret")),
            ["secret whale for carol"]
        );
        assert_eq!(
            bodies(&found(&mut carol, "from:bob")),
            ["whale two", "secret whale for carol"]
        );
        // The operator's CLI sees everything, with the same filters.
        let out = cli(&server, &["whale", "from:bob", "before:2026-12-01"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(
            stdout.contains("bob: whale two")
                && stdout.contains("bob -> carol: secret whale for carol")
                && stdout.lines().count() == 2,
            "{stdout}"
        );
        let out = cli(&server, &["whale", "--room", "dev"]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("carol: whale three in dev"));
    });
}

#[test]
fn bad_filters_are_told_in_words_here_and_in_the_cli() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut alice, _) = server.register("alice", "secret12");
        for (args, want) in [
            (
                "whale from:nobody",
                "! Not a search query: there is no user \"nobody\".\r\n",
            ),
            (
                "whale in:#nowhere",
                "! Not a search query: there is no room \"#nowhere\".\r\n",
            ),
            (
                "whale before:2026-02-30",
                "! Not a search query: \"2026-02-30\" is not a date; use 2026-12-01 or \
                 2026-12-01T10:00 (UTC).\r\n",
            ),
            (
                "whale after:2026-12-01T10",
                "! Not a search query: \"2026-12-01T10\" is not a date; use 2026-12-01 or \
                 2026-12-01T10:00 (UTC).\r\n",
            ),
            (
                "whale colour:blue",
                "! Not a search query: there is no filter \"colour:\"; the filters are \
                 from:NAME, in:#ROOM, before:DATE and after:DATE (put words with \":\" in \
                 \"quotes\").\r\n",
            ),
            (
                "whale from:a from:b",
                "! Not a search query: from: is given twice; give it once.\r\n",
            ),
            (
                "whale after:2026-12-02 before:2026-12-01",
                "! Not a search query: after:2026-12-02 is not earlier than \
                 before:2026-12-01.\r\n",
            ),
            (
                "-c 6 whale",
                "! /search -c N wants N from 0 to 5: the lines shown around each hit.\r\n",
            ),
            (
                "-c x whale",
                "! /search -c N wants N from 0 to 5: the lines shown around each hit.\r\n",
            ),
        ] {
            assert_eq!(refused(&mut alice, args), want, "/search {args}");
        }
        let out = cli(&server, &["whale", "from:nobody"]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "besedka: not a search query: there is no user \"nobody\"\n"
        );
        alice.send("/who");
        alice.expect("* In #lobby (1): alice\r\n"); // still served
    });
}

#[test]
fn context_shows_the_lines_around_each_hit_where_it_was_said() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--max-rate", "1000"]);
        let (mut alice, _) = server.register("alice", "secret12");
        let (mut bob, _) = server.register("bob", "secret12");
        let (mut carol, _) = server.register("carol", "secret12");
        carol.send("/join #dev");
        carol.expect("* You are in #dev.");
        for body in ["l1", "l2", "needle one", "l3", "l4"] {
            said(&server, &mut alice, body);
        }
        said(&server, &mut carol, "dev line between"); // another room: never context in #lobby
        said(&server, &mut bob, "l5");
        said(&server, &mut bob, "needle two");
        alice.send("/msg bob p1");
        alice.expect("alice -> bob: p1\r\n");
        bob.send("/msg alice needle private");
        bob.expect("bob -> alice: needle private\r\n");
        bob.send("/msg carol not for alice");
        bob.expect("bob -> carol: not for alice\r\n");
        assert!(cli(&server, &["needle"]).status.success());

        let got = found(&mut alice, "-c 1 needle");
        let text = got.join("\n");
        let marked: Vec<&str> = got
            .iter()
            .filter(|l| l.starts_with("> "))
            .filter_map(|l| l.split_once(": ").map(|(_, b)| b))
            .collect();
        assert_eq!(
            marked,
            ["needle one", "needle two", "needle private"],
            "{text}"
        );
        // Around "needle one": l2 and l3 (#dev's line is another room's); around "needle
        // two": l5, and no later #lobby line; around the private one: alice and bob's p1,
        // and not bob's line to carol.
        assert_eq!(
            bodies(&got),
            [
                "l2",
                "needle one",
                "l3",
                "l5",
                "needle two",
                "p1",
                "needle private"
            ],
            "{text}"
        );
        assert_eq!(
            got.iter().filter(|l| l.starts_with("--")).count(),
            2,
            "{text}"
        );
        assert!(
            !text.contains("dev line") && !text.contains("not for alice"),
            "{text}"
        );
        // Two lines on each side: the groups of the two public hits meet and are one.
        let got = found(&mut alice, "-c 2 needle in:#lobby");
        assert_eq!(
            bodies(&got),
            ["l1", "l2", "needle one", "l3", "l4", "l5", "needle two"],
            "{got:?}"
        );
        assert!(!got.iter().any(|l| l.starts_with("--")), "{got:?}");
        // -c 0 is a plain search.
        assert_eq!(
            bodies(&found(&mut alice, "-c 0 needle from:bob")),
            ["needle two", "needle private"]
        );
        let out = cli(&server, &["-c", "1", "needle", "from:alice"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(
            stdout.contains("> [") && stdout.contains("alice: l2"),
            "{stdout}"
        );
    });
}

/// One user floods `/search` (50 at once) while another chats: the searches that ran are
/// held to what the user's rate pays for (each costs `SEARCH_COST` = 20 lines), and every
/// chat line arrives. Counted, not timed: the bound is worked out from the time that passed.
#[test]
fn one_users_search_flood_is_held_to_its_rate_while_others_chat() {
    common::backend::on_each_backend(|| {
        let rate = 10.0; // lines a second; bursts of 20
        let server = Server::start(&["--max-rate", "10"]);
        let (mut mallory, _) = server.register("mallory", "secret12");
        let (mut bob, _) = server.register("bob", "secret12");
        let (mut alice, _) = server.register("alice", "secret12");
        said(&server, &mut bob, "lorem ipsum");
        assert!(cli(&server, &["lorem"]).status.success());
        let start = Instant::now();
        mallory.send_raw("/search lorem\r\n".repeat(50).as_bytes());
        for i in 0..20 {
            bob.send(&format!("chat line {i}"));
        }
        for i in 0..20 {
            alice.expect(&format!("bob: chat line {i}\r\n"));
        }
        let got = mallory.drain(Duration::from_millis(300));
        let elapsed = start.elapsed().as_secs_f64();
        let ran = got.matches("* Found ").count() + got.matches("* Nothing found.").count();
        // The burst (2 × rate) and what the rate earned since, 20 lines a search, and one
        // more for a search started as the count was taken.
        let bound = ((2.0 * rate + elapsed * rate) / 20.0).floor() as usize + 2;
        assert!(ran >= 1, "no search ran: {got}");
        assert!(
            ran <= bound,
            "{ran} searches ran in {elapsed:.1} s, more than the rate pays for ({bound})"
        );
        assert!(!got.contains("! "), "{got}");
    });
}

#[test]
fn short_or_many_prefixes_are_refused_in_words() {
    // A prefix gathers every word it matches before the first line comes out: `a*` costs in
    // proportion to the whole history, so it needs 3 letters, and a search 3 prefixes at most.
    let server = Server::start(&[]);
    let (mut alice, _) = server.register("alice", "secret1");
    let got = refused(&mut alice, "a* NOT e*");
    assert!(
        got.contains("a* is too short a prefix; give at least 3 letters before the *"),
        "{got}"
    );
    let got = refused(&mut alice, "lor* OR ips* OR dol* OR sit*");
    assert!(
        got.contains("it has 4 prefixes (word*); 3 at most"),
        "{got}"
    );
    assert!(
        found(&mut alice, "lor* OR ips*").is_empty(),
        "allowed, nothing said yet"
    );
    // In a "phrase", a * is not a prefix: no such rule.
    assert!(found(&mut alice, "\"a*\" x").is_empty());
}
