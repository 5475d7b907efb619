//! The operator console on `besedka serve`'s standard input, checked over TCP and in the DB.

mod common;
use std::time::{Duration, Instant};

use common::{Client, Server};

const QUIET: Duration = Duration::from_millis(400);

#[test]
fn help_and_unknown_commands() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        let help = server.ask("help", "shutdown, quit, exit");
        for cmd in [
            "status",
            "who",
            "pause",
            "resume",
            "logs [N]",
            "clear-logs",
            "clear-auth",
            "kick NAME",
            "say [#ROOM] TEXT",
            "rooms",
        ] {
            assert!(help.contains(cmd), "{cmd} missing: {help}");
        }
        server.ask(
            "frobnicate now",
            "Unknown command 'frobnicate'. Type 'help' for the list.\n",
        );
        // The server carries on.
        let (_c, _) = server.register("alice", "secret1");
        // An empty line prints nothing: the next output is the next command's answer.
        server.command("");
        let out = server.ask("logs 0", "Usage: logs [N], N from 1 to 10000.\n");
        assert_eq!(out, "Usage: logs [N], N from 1 to 10000.\n");
    });
}

#[test]
fn unknown_input_is_echoed_without_control_characters() {
    let mut server = Server::start(&[]);
    // The Up arrow typed at a terminal with no line editor: nothing to show but controls.
    let out = server.ask("\x1b[A", "Type 'help' for the list.\n");
    assert_eq!(
        out,
        "Unknown input: only control characters or escape sequences (an arrow key?). Type 'help' for the list.\n"
    );
    let out = server.ask("\x1b[31mfrob\x07nicate now", "Type 'help' for the list.\n");
    assert_eq!(
        out,
        "Unknown command 'frobnicate' (control characters left out). Type 'help' for the list.\n"
    );
}

#[test]
fn console_commands_log_at_debug() {
    let mut server = Server::start(&[]);
    server.ask("who", "Nobody is online.");
    // A record logged after the command's would have been: the command's is not there.
    let (_a, _) = server.register("alice", "secret1");
    server.expect_log("registered alice");
    let log = server.stderr.lock().unwrap().clone();
    assert!(!log.contains("console: who"), "{log}");

    let mut server = Server::start(&["--log-level", "debug"]);
    server.ask("who", "Nobody is online.");
    server.expect_log("DEBUG besedka::console: console: who");
}

#[test]
fn status_and_who() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        let (mut a, token) = server.register("alice", "secret1");
        let mut a2 = server.connect();
        a2.expect("Name: ");
        a2.send(&format!("/token {token}"));
        a2.expect("* In #lobby (1): alice");
        let (_b, _) = server.register("bob", "secret1");
        a.send("hi");
        let status = server.ask("status", "database: ");
        assert!(
            status.contains(&format!("listening on {}", server.addr)),
            "{status}"
        );
        assert!(status.contains("uptime 0h 00m"), "{status}");
        assert!(status.contains("sessions online: 3 (2 users)"), "{status}");
        server.expect_out(&server.db.display().to_string());
        let who = server.ask("who", "bob (1 session): 127.0.0.1:");
        assert!(who.contains("alice (2 sessions): 127.0.0.1:"), "{who}");
        server.expect_out("\n");
        let counts = server.ask("status", "log records:");
        assert!(counts.contains("users: 2, messages: 1,"), "{counts}");
    });
}

#[test]
fn pause_holds_new_clients_silent_until_resume() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        a.drain(QUIET);
        server.ask(
            "pause",
            "Paused: new connections wait, unanswered, until 'resume'.",
        );
        server.ask("pause", "Already paused.");
        // One after the other: `connect` returns once the kernel has queued the connection,
        // so the first is ahead of the second in the listener's queue.
        let mut first = server.connect();
        let mut second = server.connect();
        // Logged-in clients keep chatting.
        a.send("while paused");
        b.expect("alice: while paused\r\n");
        // Not a byte for the newcomers, not even the telnet offer.
        first.expect_silence(QUIET);
        second.expect_silence(QUIET);
        let status = server.ask("status", "database:");
        assert!(status.contains("paused on"), "{status}");
        server.ask("resume", "Resumed: serving new connections.");
        server.ask("resume", "Not paused: already serving new connections.");
        first.expect("* Welcome to besedka! 2 users online.");
        second.expect("Name: ");
        // Greeted in arrival order: the log shows their connections in that order.
        let port = |c: &Client| c.stream.local_addr().unwrap().port();
        let (p1, p2) = (port(&first), port(&second));
        server.expect_log(&format!("127.0.0.1:{p2}: connected"));
        let log = server.stderr.lock().unwrap().clone();
        let at = |p: u16| log.find(&format!("127.0.0.1:{p}: connected")).unwrap();
        assert!(at(p1) < at(p2), "{log}");
    });
}

#[test]
fn logs_are_kept_in_sqlite_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("besedka.log");
    let mut server = Server::start(&["--log-file", log_file.to_str().unwrap()]);
    let password = "hunter2-secret";
    let (mut a, token) = server.register("alice", password);
    let mut bad = server.connect();
    bad.expect("Name: ");
    bad.send("/login alice wrong-one");
    bad.expect("! Wrong password.");
    a.send("a chat body that stays out of the logs");
    a.send("/quit");
    a.expect_closed();
    server.expect_log("alice disconnected");

    // The last record: the console's own command is logged at debug only.
    let logs = server.ask("logs 50", "alice disconnected");
    for want in [
        "listening on",
        "connected",
        "registered alice",
        "alice logged in (registration, telnet)",
        "failed login for alice",
    ] {
        assert!(logs.contains(want), "{want} missing: {logs}");
    }
    assert!(logs.contains(" INFO "), "{logs}");
    let rows: Vec<(String, String, String)> = server
        .sql()
        .prepare("SELECT level, target, message FROM logs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(rows.iter().any(|(l, t, m)| l == "INFO"
        && t.starts_with("besedka")
        && m.contains("registered alice")));
    let everything: String = rows
        .iter()
        .map(|r| format!("{} {} {}\n", r.0, r.1, r.2))
        .collect();
    for secret in [password, &token, "wrong-one", "a chat body"] {
        assert!(!everything.contains(secret), "{secret} leaked into logs");
    }
    // Records of the DB machinery stay on stderr only.
    assert!(!rows
        .iter()
        .any(|(_, t, _)| t.starts_with("rusqlite_migration") || t.starts_with("r2d2")));
    assert!(std::fs::read_to_string(&log_file)
        .unwrap()
        .contains("registered alice"));

    let cleared = server.ask("clear-logs", " log records.");
    let n: usize = cleared
        .trim()
        .rsplit("Removed ")
        .next()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n >= rows.len(), "{cleared}");
    let left: i64 = server.count("logs");
    assert_eq!(left, 0);
    assert_eq!(std::fs::metadata(&log_file).unwrap().len(), 0);
}

#[test]
fn clear_auth_removes_accounts_and_disconnects_but_keeps_history() {
    let mut server = Server::start(&[]);
    let (mut a, token) = server.register("alice", "secret1");
    let (mut b, _) = server.register("bob", "secret1");
    a.send("for the record");
    b.expect("alice: for the record\r\n");
    b.send("/msg alice private words");
    a.expect("bob -> alice: private words");

    server.ask("clear-auth", "Removed 2 users and 2 tokens.");
    for c in [&mut a, &mut b] {
        let rest = c.expect_closed();
        assert!(
            rest.contains("* Your account was removed by the server operator."),
            "{rest:?}"
        );
    }
    let db = server.sql();
    let users: i64 = server.count("users");
    let tokens: i64 = server.count("tokens");
    assert_eq!((users, tokens), (0, 0));
    let kept: Vec<(Option<i64>, String, String)> = db
        .prepare("SELECT author_id, author_name, body FROM messages")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Public history stays with the author's name; the private message went with its recipient.
    assert_eq!(
        kept,
        [(None, "alice".to_string(), "for the record".to_string())]
    );

    let mut c = server.connect();
    c.expect("Name: ");
    c.send(&format!("/token {token}"));
    c.expect("! Unknown or expired token.");
    c.send("alice");
    c.expect("* New user alice.");
    // Whoever registers the name again sees none of the old private messages.
    c.expect("Password: ");
    c.send("new-password");
    c.expect("Repeat password: ");
    c.send("new-password");
    let replay = c.expect("* In #lobby (1): alice\r\n");
    assert!(
        replay.contains("alice: for the record") && !replay.contains("private words"),
        "{replay}"
    );
    c.send("/history 500");
    assert!(!c.expect("for the record\r\n").contains("private words"));
}

#[test]
fn kick_and_say() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        a.drain(QUIET);
        server.ask("say Maintenance at 18:00 UTC", "Sent to everyone online.");
        a.expect("* [server] Maintenance at 18:00 UTC\r\n");
        b.expect("* [server] Maintenance at 18:00 UTC\r\n");
        server.ask("kick BOB", "Kicked bob (1 session).");
        assert!(b
            .expect_closed()
            .contains("* You were disconnected by the server operator."));
        // Every moderation action is announced to the others.
        a.expect("* server kicked bob\r\n");
        a.expect("* bob left\r\n");
        server.ask("kick bob", "Error: bob is not online.");
        server.ask("kick nobody", "Error: No such user: nobody");
        server.ask("kick", "Usage: kick NAME [REASON]");
        server.expect_log("moderation: server kicked bob");
    });
}

/// A logged-in client that stops reading, with a screenful of chat waiting for it.
fn stalled_client(server: &Server, talker: &mut Client) -> Client {
    let (sleeper, _) = server.register("sleeper", "secret1");
    let line = "z".repeat(1000);
    for i in 0..300 {
        talker.send(&format!("{i} {line}"));
    }
    sleeper
}

#[test]
fn shutdown_says_goodbye_commits_and_exits_0() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&["--max-rate", "1000000"]);
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        let _sleeper = stalled_client(&server, &mut a);
        let mut pending = server.connect(); // still at the login prompt
        pending.expect("Name: ");
        for i in 0..20 {
            a.send(&format!("last words {i}"));
        }
        let started = Instant::now();
        server.ask("shutdown", "Shutting down.");
        assert_eq!(server.wait_exit(), Some(0));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
        let seen = b.expect_closed();
        assert!(
            seen.contains("* Server is shutting down. Bye.\r\n"),
            "{}",
            &seen[seen.len().saturating_sub(200)..]
        );
        assert!(pending
            .expect_closed()
            .contains("* Server is shutting down. Bye."));
        // Everything bob was shown is stored, and every line alice sent was committed.
        let stored: i64 = server.count("messages");
        assert_eq!(stored, 320);
        let shown = seen.lines().filter(|l| l.contains("] alice: ")).count() as i64;
        assert!(shown <= stored && shown > 0, "{shown} shown");
        assert!(
            seen.ends_with("* Server is shutting down. Bye.\r\n"),
            "the goodbye comes last"
        );
        server.expect_log("server stopped");
        // The DB was closed cleanly: the WAL was checkpointed and removed.
        assert!(!server.db.with_file_name("besedka.db-wal").exists());
    });
}

#[test]
fn shutdown_does_not_wait_for_queued_password_hashes() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        let mut waiting: Vec<Client> = (0..40).map(|_| server.connect()).collect();
        for (i, c) in waiting.iter_mut().enumerate() {
            c.expect("Name: ");
            c.send(&format!("/register user{i} secret-password"));
        }
        let started = Instant::now();
        server.ask("shutdown", "Shutting down.");
        assert_eq!(server.wait_exit(), Some(0));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
        for c in &mut waiting {
            c.expect_closed();
        }
        let users: i64 = server.count("users");
        assert!(users < 40, "every queued registration ran: {users}");
    });
}

#[test]
fn sigterm_and_sigint_shut_down_like_the_command() {
    common::backend::on_each_backend(|| {
        for sig in [libc::SIGTERM, libc::SIGINT] {
            let mut server = Server::start(&[]);
            let (mut a, _) = server.register("alice", "secret1");
            server.signal(sig);
            assert_eq!(server.wait_exit(), Some(0));
            assert!(a
                .expect_closed()
                .contains("* Server is shutting down. Bye."));
            server.expect_log(&format!("signal {sig} received"));
        }
    });
}

#[test]
fn closed_stdin_does_not_stop_the_server() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        drop(server.stdin.take());
        server.expect_log("console input closed");
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        a.send("still serving");
        b.expect("alice: still serving");
        server.signal(libc::SIGTERM);
        assert_eq!(server.wait_exit(), Some(0));

        let mut server = Server::start(&["--no-console"]);
        server.command("shutdown"); // not read
        let (_c, _) = server.register("carol", "secret1");
        assert!(server.child.try_wait().unwrap().is_none());
        assert!(server.stdout.lock().unwrap().is_empty());
        server.signal(libc::SIGTERM);
        assert_eq!(server.wait_exit(), Some(0));
    });
}
