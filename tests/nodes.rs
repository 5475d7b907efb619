//! Several besedka nodes on one PostgreSQL database (a throwaway cluster of the test's own):
//! a line said on one node reaches the clients of the others, and every client, on every
//! node, sees a room's lines in one order, equal to `messages.id` order. Skipped, said on
//! stderr, when PostgreSQL is not installed outside CI; under CI that fails.

mod common;

use std::path::Path;

use besedka::store::Store;
use common::{Client, Server};
use r2d2_postgres::postgres::{Client as Pg, NoTls};

/// Two nodes on one new database, or why not (skip).
fn two_nodes() -> Option<(common::pg::Cluster, String, Server, Server)> {
    let (cluster, url) = common::pg::database_or_skip("besedka")?;
    // The schema first, so the two nodes do not both wait on the migration lock at start.
    Store::open_postgres(&url).unwrap();
    let a = Server::start_on(Path::new(&url), &[]);
    let b = Server::start_on(Path::new(&url), &[]);
    Some((cluster, url, a, b))
}

/// Chat bodies starting with `prefix`, until `n` arrived.
fn bodies(c: &mut Client, prefix: &str, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let line = c.expect("\r\n");
        if let Some(pos) = line.find(&format!(": {prefix}")) {
            seen.push(line[pos + 2..].trim_end().to_string());
        }
    }
    seen
}

#[test]
fn a_line_said_on_one_node_reaches_the_other_in_one_order() {
    let Some((_cluster, url, a, b)) = two_nodes() else {
        return;
    };
    let (mut alice, _) = a.register("alice", "secret12");
    let (mut bob, _) = b.register("bob", "secret12");
    alice.send("hello from node A");
    bob.expect("] alice: hello from node A\r\n");
    bob.send("and back from node B");
    alice.expect("] bob: and back from node B\r\n");
    // Private messages cross too.
    alice.send("/msg bob just for you");
    bob.expect("] alice -> bob: just for you\r\n");

    // Two senders on each node, a watcher on each, everyone talking at once.
    let mut senders: Vec<Client> = Vec::new();
    for (i, node) in [&a, &a, &b, &b].into_iter().enumerate() {
        senders.push(node.register(&format!("s{i}"), "secret12").0);
    }
    let per = 25;
    std::thread::scope(|s| {
        for (i, c) in senders.iter_mut().enumerate() {
            s.spawn(move || {
                for n in 0..per {
                    c.send(&format!("m {i} {n}"));
                }
            });
        }
    });
    let on_a = bodies(&mut alice, "m ", 4 * per);
    let on_b = bodies(&mut bob, "m ", 4 * per);
    let mut pg = Pg::connect(&url, NoTls).unwrap();
    let stored: Vec<String> = pg
        .query(
            "SELECT body FROM messages WHERE body LIKE 'm %' ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(on_a, stored, "node A's watcher");
    assert_eq!(on_b, stored, "node B's watcher");
}

#[test]
fn a_node_killed_loses_nothing_and_its_clients_come_back_on_another() {
    let Some((_cluster, _url, a, b)) = two_nodes() else {
        return;
    };
    let (mut alice, token) = a.register("alice", "secret12");
    let (mut bob, _) = b.register("bob", "secret12");
    for i in 0..5 {
        alice.send(&format!("said before the crash {i}"));
    }
    bob.expect("] alice: said before the crash 4\r\n");
    a.signal(libc::SIGKILL);
    alice.expect_closed();
    // alice comes back on node B with her token and sees everything anyone saw.
    let mut again = b.connect();
    again.expect("Name: ");
    again.send(&format!("/token {token}"));
    let seen = again.expect("* In #lobby (");
    for i in 0..5 {
        assert!(
            seen.contains(&format!("alice: said before the crash {i}")),
            "{seen}"
        );
    }
    again.send("back on B");
    bob.expect("] alice: back on B\r\n");
}

#[test]
fn postgres_restarting_under_a_node_is_survived() {
    let Some((cluster, _url, a, b)) = two_nodes() else {
        return;
    };
    let (mut alice, _) = a.register("alice", "secret12");
    let (mut bob, _) = b.register("bob", "secret12");
    alice.send("before");
    bob.expect("] alice: before\r\n");
    cluster.stop_server();
    // Nothing is shown that is not stored: the line is refused, clearly.
    alice.send("while the database is down");
    alice.expect("! Your message was not sent: the server could not store it.\r\n");
    cluster.start_server();
    // The nodes recover by themselves: a line gets through again within seconds.
    let start = std::time::Instant::now();
    loop {
        alice.send("after");
        let got = alice.drain(std::time::Duration::from_millis(500));
        if !got.contains("not sent") {
            break;
        }
        assert!(start.elapsed() < common::WAIT, "never recovered: {got}");
    }
    let got = bob.expect("] alice: after\r\n");
    assert!(!got.contains("while the database is down"), "{got}");
    // Said once, and once when it is back, not once per refused batch.
    a.expect_log("the hub cannot reach the database");
    a.expect_log("the hub: database reachable again after");
    let log = a.stderr.lock().unwrap().clone();
    assert_eq!(log.matches("the hub cannot reach").count(), 1, "{log}");
    assert!(!log.contains("could not store"), "{log}");
}

#[test]
fn a_ban_on_one_node_disconnects_the_user_on_the_other() {
    let Some((_cluster, _url, mut a, b)) = two_nodes() else {
        return;
    };
    let (_alice, _) = a.register("alice", "secret12");
    let (mut bob, _) = b.register("bob", "secret12");
    // bob is not on node A: the ban is stored, and node B finds it when it rereads the bans.
    a.ask("ban bob 1h spam", "Banned bob");
    let last = bob.expect_closed();
    assert!(last.contains("banned"), "{last}");
    let mut again = b.connect();
    again.expect("Name: ");
    again.send("/login bob secret12");
    again.expect("banned");
}

#[test]
fn who_is_online_covers_every_node_and_a_dead_node_is_dropped() {
    let Some((_cluster, _url, a, b)) = two_nodes() else {
        return;
    };
    let (mut alice, _) = a.register("alice", "secret12");
    let (mut bob, _) = b.register("bob", "secret12");
    // Node A hears of bob's login on node B.
    alice.expect("* bob joined\r\n");
    alice.send("/who");
    alice.expect("* In #lobby (2): alice, bob\r\n");
    bob.send("/who");
    bob.expect("* In #lobby (2): alice, bob\r\n");
    // Away on one node answers a /msg from the other; online elsewhere is not "offline".
    bob.send("/away lunch");
    bob.expect("* You are away: lunch.");
    let start = std::time::Instant::now();
    loop {
        alice.send("/who");
        alice.expect("* In #lobby (2)");
        if alice.expect("\r\n").contains(": alice, bob (away: lunch)") {
            break;
        }
        assert!(
            start.elapsed() < common::WAIT,
            "bob's away never reached node A"
        );
    }
    alice.send("/msg bob are you there?");
    alice.expect("* bob is away: lunch\r\n");
    bob.expect("] alice -> bob: are you there?\r\n");
    // Rooms across nodes.
    bob.send("/join #rust");
    alice.expect("* bob left for #rust\r\n");
    alice.send("/who *");
    alice.expect("* Online (2): alice (#lobby), bob (#rust, away: lunch)\r\n");
    // A node killed: its sessions are dropped within seconds.
    let (mut carol, _) = b.register("carol", "secret12");
    alice.expect("* carol joined\r\n");
    carol.send("/who");
    carol.expect("* In #lobby (2): alice, carol\r\n");
    b.signal(libc::SIGKILL);
    alice.expect("* carol left\r\n");
    alice.send("/who *");
    alice.expect("* Online (1): alice (#lobby)\r\n");
}

#[test]
fn the_console_acts_on_every_node_and_shows_them() {
    let Some((_cluster, _url, mut a, mut b)) = two_nodes() else {
        return;
    };
    let (mut alice, _) = a.register("alice", "secret12");
    let (mut bob, _) = b.register("bob", "secret12");
    alice.expect("* bob joined\r\n");
    // say, from node A's console, reaches node B's users.
    a.ask("say maintenance at noon", "Sent to everyone online.");
    bob.expect("* [server] maintenance at noon\r\n");
    alice.expect("* [server] maintenance at noon\r\n");
    // status and who show both nodes.
    a.ask("status", "session threads:");
    // One line per node, this one marked, each with its sessions.
    let first = a.expect_out("session(s)\n");
    let second = a.expect_out("session(s)\n");
    let lines: Vec<&str> = [first.as_str(), second.as_str()]
        .iter()
        .filter_map(|out| out.lines().rev().find(|l| l.starts_with("node 127.0.0.1:")))
        .collect();
    assert_eq!(lines.len(), 2, "{first}{second}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("(this one): 1 session(s)"))
            .count(),
        1,
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| !l.contains("(this one)") && l.ends_with(": 1 session(s)")),
        "{lines:?}"
    );
    a.ask("who", "bob (#lobby) on node 127.0.0.1:");
    // kick from node A disconnects bob on node B.
    a.ask("kick bob flooding", "Kicked bob (1 session)");
    let last = bob.expect_closed();
    assert!(
        last.contains("disconnected by the server operator"),
        "{last}"
    );
    // pause from node A pauses node B too: a new client there gets nothing until resume.
    a.ask("pause", "Paused");
    // Node B pauses when it hears of it (a notification): its status says so.
    let start = std::time::Instant::now();
    while !b.ask("status", "database:").contains("paused on") {
        assert!(start.elapsed() < common::WAIT, "node B never paused");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut waiting = b.connect();
    waiting.expect_silence(std::time::Duration::from_millis(700));
    a.ask("resume", "Resumed");
    waiting.expect("Name: ");
    let _ = b.ask("status", "session threads:");
}

#[test]
fn clear_auth_on_one_node_disconnects_everyone_on_every_node() {
    let Some((_cluster, _url, mut a, b)) = two_nodes() else {
        return;
    };
    let (mut alice, _) = a.register("alice", "secret12");
    let (mut bob, _) = b.register("bob", "secret12");
    alice.expect("* bob joined\r\n");
    a.ask("clear-auth", "Removed 2 users");
    assert!(alice.expect_closed().contains("Your account was removed"));
    assert!(bob.expect_closed().contains("Your account was removed"));
}
