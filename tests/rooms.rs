//! Rooms: joining, making, leaving by joining another, lines staying in their room, notices,
//! per-room history, `/rooms`, `/topic`, the last room remembered, the migration from a
//! database made before rooms, mentions and search per room, and order within a room.

mod common;

use std::time::Duration;

use common::{Client, Server};

const QUIET: Duration = Duration::from_millis(300);

/// Reads chat lines until `n` bodies starting with `prefix` arrived; panics on any line from
/// the other room (`foreign`).
fn bodies(c: &mut Client, prefix: &str, foreign: &str, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let line = c.expect("\r\n");
        assert!(!line.contains(foreign), "a line from another room: {line}");
        if let Some(pos) = line.find(&format!(": {prefix}")) {
            seen.push(line[pos + 2..].trim_end().to_string());
        }
    }
    seen
}

#[test]
fn joining_makes_moves_and_keeps_each_line_in_its_room() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut alice, _) = server.register("alice", "secret12");
        let (mut bob, _) = server.register("bob", "secret12");
        let (mut carol, _) = server.register("carol", "secret12");
        alice.expect("* carol joined\r\n");
        bob.expect("* carol joined\r\n");

        alice.send("/join rust");
        alice.expect("! Not a room name: rust. Room names are '#' and 1-32 letters");
        alice.send("/join #Rust");
        let moved = alice.expect("* In #Rust (1): alice\r\n");
        assert!(moved.contains("* You are in #Rust.\r\n"), "{moved}");
        bob.expect("* alice left for #Rust\r\n");
        carol.expect("* alice left for #Rust\r\n");
        // Names are case-insensitive: #rust is #Rust, shown as first typed.
        bob.send("/join #rust");
        bob.expect("* In #Rust (2): alice, bob\r\n");
        alice.expect("* bob joined #Rust\r\n");
        carol.expect("* bob left for #Rust\r\n");
        bob.send("/join #RUST");
        bob.expect("! You are in #Rust already.\r\n");

        // A line stays in its room.
        bob.send("borrowck is my friend");
        alice.expect("] bob: borrowck is my friend\r\n");
        carol.send("anyone in the lobby?");
        bob.send("marker");
        let got = alice.expect("] bob: marker\r\n");
        assert!(!got.contains("anyone in the lobby"), "{got}");
        let got = carol.drain(QUIET);
        assert!(
            !got.contains("borrowck") && !got.contains("marker"),
            "{got}"
        );

        // /who is this room; /who * is everyone, with their rooms.
        alice.send("/who");
        alice.expect("* In #Rust (2): alice, bob\r\n");
        carol.send("/who");
        carol.expect("* In #lobby (1): carol\r\n");
        carol.send("/who *");
        carol.expect("* Online (3): alice (#Rust), bob (#Rust), carol (#lobby)\r\n");
        carol.send("/rooms");
        carol.expect("* Rooms (2), busiest first:\r\n*   #Rust (2)\r\n*   #lobby (1)\r\n");

        // Leaving the server is told to one's room only.
        drop(bob);
        alice.expect("* bob left\r\n");
        carol.send("/who *");
        let got = carol.expect("* Online (2)");
        assert!(!got.contains("bob left"), "{got}");
        // Back to the lobby.
        alice.send("/join #lobby");
        carol.expect("* alice joined #lobby\r\n");
        alice.expect("* In #lobby (2): alice, carol\r\n");
        // The console sees rooms and sessions' rooms, and can speak to one room.
        let mut server = server;
        server.ask("rooms", "#lobby");
        server.expect_out("2");
        server.ask("who", "alice (1 session): 127.0.0.1:");
        server.expect_out("(telnet, #lobby)");
        alice.send("/join #Rust");
        alice.expect("* In #Rust (1): alice\r\n");
        server.ask("say #rust tea time", "Sent to #Rust.");
        alice.expect("* [server] tea time\r\n");
        server.ask("say #nowhere hi", "No such room: #nowhere");
        carol.send("/who");
        let got = carol.expect("* In #lobby (1): carol\r\n");
        assert!(!got.contains("tea time"), "{got}");
    });
}

#[test]
fn history_is_per_room_at_login_on_join_and_by_command_and_the_last_room_is_remembered() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--history", "5"]);
        let (mut alice, _) = server.register("alice", "secret12");
        let (mut bob, bob_token) = server.register("bob", "secret12");
        alice.send("lobby one");
        bob.expect("] alice: lobby one\r\n");
        alice.send("/join #dev");
        alice.expect("* In #dev (1): alice\r\n");
        alice.send("dev one");
        alice.send("dev two");
        alice.send("/msg bob psst");
        bob.expect("] alice -> bob: psst\r\n");
        // On /join: the room's lines, not the lobby's, and no private ones.
        bob.send("/join #dev");
        let joined = bob.expect("* In #dev (2): alice, bob\r\n");
        let you = joined.find("* You are in #dev.").expect(&joined);
        let one = joined.find("] alice: dev one").expect(&joined);
        let two = joined.find("] alice: dev two").expect(&joined);
        assert!(you < one && one < two, "{joined}");
        assert!(
            !joined.contains("lobby one") && !joined.contains("psst"),
            "{joined}"
        );
        // /history: this room's lines and one's private ones.
        bob.send("/history");
        let h = bob.expect("] alice -> bob: psst\r\n");
        assert!(h.contains("dev one") && !h.contains("lobby one"), "{h}");
        // A new login starts in the room the user was last in, with its history.
        bob.send("/quit");
        bob.expect_closed();
        alice.expect("* bob left\r\n");
        let mut bob = server.connect();
        bob.expect("Name: ");
        bob.send(&format!("/token {bob_token}"));
        let back = bob.expect("* In #dev (2): alice, bob\r\n");
        assert!(back.contains("* You are in #dev.\r\n"), "{back}");
        assert!(back.contains("] alice: dev two"), "{back}");
        assert!(back.contains("] alice -> bob: psst"), "{back}");
        assert!(!back.contains("lobby one"), "{back}");
        alice.expect("* bob joined\r\n");
        bob.send("/join #lobby");
        let lobby = bob.expect("* In #lobby (1): bob\r\n");
        assert!(lobby.contains("] alice: lobby one"), "{lobby}");
        assert!(!lobby.contains("dev one"), "{lobby}");
    });
}

#[test]
fn a_topic_is_stored_shown_on_joining_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = Server::start_on(&db, &[]);
    let (mut alice, token) = server.register("alice", "secret12");
    let (mut bob, _) = server.register("bob", "secret12");
    alice.send("/join #tea");
    alice.expect("* In #tea (1)");
    bob.send("/join #tea");
    bob.expect("* In #tea (2)");
    alice.send("/topic");
    alice.expect("* #tea has no topic. /topic TEXT sets one.\r\n");
    alice.send(&format!("/topic {}", "x".repeat(201)));
    alice.expect("! A topic is 200 characters at most.\r\n");
    alice.send("/topic Green or black?");
    bob.expect("* alice set the topic: Green or black?\r\n");
    alice.expect("* alice set the topic: Green or black?\r\n");
    bob.send("/rooms");
    bob.expect("*   #tea (2): Green or black?\r\n");
    drop((alice, bob));
    server.kill();

    let server = Server::start_on(&db, &[]);
    let mut alice = server.connect();
    alice.expect("Name: ");
    alice.send(&format!("/token {token}"));
    alice.expect("* You are in #tea. Topic: Green or black?\r\n");
    alice.expect("* In #tea (1): alice\r\n");
    alice.send("/topic");
    alice.expect("* Topic of #tea: Green or black?\r\n");
    alice.send("/rooms");
    alice.expect(
        "* Rooms (2), busiest first:\r\n*   #tea (1): Green or black?\r\n*   #lobby (0)\r\n",
    );
    alice.send("/topic -");
    alice.expect("* alice cleared the topic\r\n");
    let topic: String = server
        .sql()
        .query_row("SELECT topic FROM rooms WHERE name = '#tea'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(topic, "");
}

#[test]
fn a_user_makes_a_bounded_number_of_rooms_an_hour() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut alice, _) = server.register("alice", "secret12");
        for i in 1..=5 {
            alice.send(&format!("/join #r{i}"));
            alice.expect(&format!("* In #r{i} (1): alice\r\n"));
        }
        alice.send("/join #r6");
        alice.expect("! You have made 5 rooms in the last hour;");
        // Joining rooms that exist is not bounded.
        alice.send("/join #r1");
        alice.expect("* In #r1 (1): alice\r\n");
        alice.send("/join #lobby");
        alice.expect("* In #lobby (1): alice\r\n");
        assert_eq!(server.count("rooms"), 6);
    });
}

#[test]
fn mentions_ring_only_in_the_room_and_list_the_room() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut alice, _) = server.register("alice", "secret12");
        let (mut bob, _) = server.register("bob", "secret12");
        let (mut carol, _) = server.register("carol", "secret12");
        alice.send("/join #dev");
        alice.expect("* In #dev (1)");
        carol.send("bob and @alice, tea?");
        let line = bob.expect("] carol: bob and @alice, tea?\r\n");
        assert!(line.contains("\x07["), "bob is in the room: {line:?}");
        // alice is in another room: no line, no bell.
        alice.send("/who");
        let got = alice.expect("* In #dev (1): alice\r\n");
        assert!(!got.contains('\x07') && !got.contains("tea?"), "{got:?}");
        alice.send("/mentions");
        alice.expect("* The last 1 line(s) that named you:\r\n");
        alice.expect("] #lobby carol: bob and @alice, tea?\r\n");
    });
}

#[test]
fn search_can_be_limited_to_a_room() {
    let server = Server::start(&[]);
    let (mut alice, _) = server.register("alice", "secret12");
    alice.send("a whale in the lobby");
    alice.send("/join #sea");
    alice.expect("* In #sea (1)");
    alice.send("a whale at sea");
    alice.send("/me watches the whale");
    alice.expect("* alice watches the whale\r\n");
    // Indexed by the janitor within a few seconds.
    let start = std::time::Instant::now();
    loop {
        // A search costs 20 lines of the rate: the answer may wait for the last one's debt.
        // The unknown command's error marks its end.
        alice.send("/search whale #SEA");
        alice.send("/end-of-search");
        let got = alice.expect("! Unknown command /end-of-search. Type /help.\r\n");
        if got.contains("Found 2") {
            assert!(got.contains("] #sea alice: a whale at sea\r\n"), "{got}");
            assert!(
                got.contains("] #sea * alice watches the whale\r\n"),
                "{got}"
            );
            assert!(!got.contains("lobby"), "{got}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "never indexed: {got}"
        );
    }
    alice.send("/search whale");
    alice.expect("* Found 3 line(s), oldest first:\r\n");
    alice.expect("] #lobby alice: a whale in the lobby\r\n");
    alice.send("/search whale #nowhere");
    alice.expect("! Not a search query: there is no room \"#nowhere\".\r\n");
    alice.send("/search whale in:#not.a.room");
    alice.expect("! Not a search query: there is no room \"#not.a.room\".\r\n");
    // The operator's CLI takes a room too.
    let out = std::process::Command::new(common::bin())
        .args(["search", "whale", "--room", "sea", "--db"])
        .arg(&server.db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
}

#[test]
fn order_within_each_room_equals_the_database_under_concurrent_senders() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let per = 20;
        // Two rooms, each with two senders and a watcher, all talking at once.
        let mut rooms: Vec<(Vec<Client>, Client)> = Vec::new();
        for room in ["#red", "#blue"] {
            let join = |name: String| {
                let (mut c, _) = server.register(&name, "secret12");
                c.send(&format!("/join {room}"));
                c.expect(&format!("* In {room} ("));
                c.expect("\r\n");
                c
            };
            let senders = (0..2).map(|i| join(format!("{}{i}", &room[1..]))).collect();
            let watcher = join(format!("{}watch", &room[1..]));
            rooms.push((senders, watcher));
        }
        std::thread::scope(|s| {
            for (r, (senders, _)) in rooms.iter_mut().enumerate() {
                for (i, c) in senders.iter_mut().enumerate() {
                    s.spawn(move || {
                        for n in 0..per {
                            c.send(&format!("m{r} {i} {n}"));
                        }
                    });
                }
            }
        });
        for (r, (_, watcher)) in rooms.iter_mut().enumerate() {
            let other = format!(": m{} ", 1 - r);
            let seen = bodies(watcher, &format!("m{r} "), &other, 2 * per);
            let stored = server.texts(&format!(
                "SELECT m.body FROM messages m JOIN rooms r ON r.id = m.room_id
                 WHERE r.name = '{}' ORDER BY m.id",
                ["#red", "#blue"][r]
            ));
            assert_eq!(seen, stored, "room {r}");
        }
    });
}

#[test]
fn a_database_made_before_rooms_is_migrated_into_the_lobby() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    // The database as `main` left it before rooms: its `sqlite3 .dump` (schema version 6).
    let old = rusqlite::Connection::open(&db).unwrap();
    old.execute_batch(include_str!("fixtures/pre-rooms.sql"))
        .unwrap();
    drop(old);
    // SQLite made it 0644; serve opens only a database no one else can read.
    std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let server = Server::start_on(&db, &[]);
    let mut alice = server.connect();
    alice.expect("Name: ");
    alice.send("/login alice secret-pass-1");
    let seen = alice.expect("* In #lobby (1): alice\r\n");
    let missed = seen
        .find("* You have 1 private message since your last visit:")
        .expect(&seen);
    let word = seen.find("] bob -> alice: a private word").expect(&seen);
    let room = seen.find("* You are in #lobby.").expect(&seen);
    let hello = seen.rfind("] alice: hello from before rooms").expect(&seen);
    let bob = seen.rfind("] bob: bob says hi").expect(&seen);
    assert!(
        missed < word && word < room && room < hello && hello < bob,
        "{seen}"
    );
    assert!(seen.contains("] * alice waves"), "{seen}");
    // Every public line is in #lobby, the private one in none.
    let rows = server.texts(
        "SELECT body || ':' || COALESCE((SELECT name FROM rooms WHERE id = room_id), '-')
         FROM messages ORDER BY id",
    );
    assert_eq!(
        rows,
        [
            "hello from before rooms:#lobby",
            "waves:#lobby",
            "bob says hi:#lobby",
            "a private word:-"
        ]
    );
    alice.send("new line in the lobby");
    alice.send("/history 10");
    let h = alice.expect("] bob -> alice: a private word\r\n");
    assert!(h.contains("hello from before rooms"), "{h}");
}
