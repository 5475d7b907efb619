//! Moderation: bans by name, address and range, with and without expiry, across restarts
//! and from the shell; mutes; operators; invite-only servers.

mod common;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, Client, Server};

const QUIET: Duration = Duration::from_millis(300);

/// Runs the admin CLI on the server's database.
fn cli(server: &Server, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(bin())
        .arg("--db")
        .arg(&server.db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// How the CLI names the database it changed: ` in FILE`; a PostgreSQL URL is not named.
fn in_file(server: &Server) -> String {
    if server.db.to_string_lossy().starts_with("postgres://") {
        return String::new();
    }
    format!(" in {}", server.db.display())
}

fn at_prompt(server: &Server) -> Client {
    let mut c = server.connect();
    c.expect("Name: ");
    c
}

/// Waits (bounded) until a login as `name` is refused with a ban line, or not.
fn login_banned(server: &Server, name: &str) -> bool {
    let mut c = at_prompt(server);
    c.send(&format!("/login {name} secret1"));
    let got = c.drain(QUIET);
    assert!(
        got.contains("! You are banned") || got.contains("* Hello"),
        "{got:?}"
    );
    got.contains("! You are banned")
}

#[test]
fn a_ban_cuts_every_session_revokes_tokens_and_refuses_logins() {
    let mut server = Server::start(&[]);
    let (mut carol, _) = server.register("carol", "secret1");
    let (mut bob1, token) = server.register("bob", "secret1");
    let mut bob2 = at_prompt(&server);
    bob2.send(&format!("/token {token}"));
    bob2.expect("* In #lobby (2)");
    server.ask(
        "ban bob 1h spam",
        "Banned bob for 1h (2 session(s) disconnected).",
    );
    for bob in [&mut bob1, &mut bob2] {
        let got = bob.expect_closed();
        assert!(got.contains("! You are banned until 20"), "{got:?}");
        assert!(got.ends_with(" UTC: spam.\r\n"), "{got:?}");
    }
    carol.expect("* server banned bob for 1h: spam\r\n");
    let row: (String, String, String, String, Option<String>) = server
        .sql()
        .query_row(
            "SELECT kind, value, reason, created_by, expires_at FROM bans",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        (&*row.0, &*row.1, &*row.2, &*row.3),
        ("name", "bob", "spam", "server")
    );
    assert!(row.4.is_some());
    let tokens: i64 = server
        .sql()
        .query_row(
            "SELECT count(*) FROM tokens t JOIN users u ON u.id = t.user_id WHERE u.name = 'bob'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tokens, 0, "a ban revokes the user's tokens");
    assert!(login_banned(&server, "bob"));
    let mut c = at_prompt(&server);
    c.send(&format!("/token {token}"));
    c.expect("! Unknown or expired token.");
    let list = server.ask("bans", "by server: spam");
    assert!(
        list.contains("ban    bob") && list.contains("left (until 20"),
        "{list}"
    );
    server.ask("unban bob", "Unbanned bob.");
    assert!(!login_banned(&server, "bob"));
    server.ask("unban bob", "Error: bob is not banned.");
}

#[test]
fn a_short_ban_expires_by_itself() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        drop(server.register("bob", "secret1"));
        server.ask("ban bob 2s", "Banned bob for 2s");
        assert!(login_banned(&server, "bob"));
        let start = Instant::now();
        while login_banned(&server, "bob") {
            assert!(
                start.elapsed() < Duration::from_secs(6),
                "the ban did not expire"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    });
}

#[test]
fn address_and_range_bans_refuse_at_connect() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        let (mut a, _) = server.register("alice", "secret1");
        server.ask(
            "ban 127.0.0.1 abuse",
            "Banned 127.0.0.1/32 (1 session(s) disconnected).",
        );
        assert!(a.expect_closed().ends_with("! You are banned: abuse.\r\n"));
        // Refused at connect, before any prompt.
        assert_eq!(
            server.connect().expect_closed(),
            "! You are banned: abuse.\r\n"
        );
        server.ask("unban 127.0.0.1", "Unbanned 127.0.0.1.");
        at_prompt(&server);
        server.ask("ban 127.0.0.0/8 2h", "Banned 127.0.0.0/8 for 2h");
        let got = server.connect().expect_closed();
        assert!(got.starts_with("! You are banned until "), "{got:?}");
    });
}

#[test]
fn a_ban_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let mut server = Server::start_on(&db, &[]);
    drop(server.register("bob", "secret1"));
    server.ask("ban bob", "Banned bob (");
    server.kill();
    let server = Server::start_on(&db, &[]);
    assert!(login_banned(&server, "bob"));
}

#[test]
fn the_cli_bans_and_makes_ops_on_a_running_server() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut alice, _) = server.register("alice", "secret1");
        let (mut bob, _) = server.register("bob", "secret1");
        let o = cli(&server, &["ban", "bob", "1d", "from", "the", "shell"], "");
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(
            text(&o),
            format!("Banned bob for 1d{}.\n", in_file(&server))
        );
        // The server rereads bans every 2 s and cuts bob with the ban line.
        let got = bob.expect_closed();
        assert!(got.contains(" UTC: from the shell.\r\n"), "{got:?}");
        assert!(text(&cli(&server, &["bans"], "")).contains("from the shell"));
        let o = cli(&server, &["ban", "nobody"], "");
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(text(&o), "besedka: no such user: nobody\n");
        assert_eq!(
            text(&cli(&server, &["unban", "bob"], "")),
            format!("Unbanned bob{}.\n", in_file(&server))
        );
        assert_eq!(
            text(&cli(&server, &["op", "alice"], "")),
            format!("alice is now an operator{}.\n", in_file(&server))
        );
        let start = Instant::now();
        loop {
            alice.send("/who");
            if alice.drain(QUIET).contains("* In #lobby (1): @alice") {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(6), "op not seen");
        }
        assert_eq!(
            text(&cli(&server, &["deop", "alice"], "")),
            format!("alice is no longer an operator{}.\n", in_file(&server))
        );
    });
}

#[test]
fn a_muted_user_reads_but_cannot_speak() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        let (mut alice, _) = server.register("alice", "secret1");
        let (mut bob, _) = server.register("bob", "secret1");
        alice.send("before");
        bob.expect("alice: before\r\n");
        server.ask("mute bob 1h", "Muted bob for 1h.");
        alice.expect("* server muted bob for 1h\r\n");
        let stored = server.count("messages");
        for line in ["hello?", "/me waves", "/msg alice psst"] {
            bob.send(line);
            let got = bob.expect(" UTC.\r\n");
            assert!(got.contains("! You are muted until "), "{got:?}");
        }
        assert_eq!(server.count("messages"), stored);
        alice.expect_silence(QUIET);
        bob.drain(QUIET);
        bob.send("/who");
        bob.expect("* In #lobby (2): alice, bob");
        bob.send("/history 1");
        bob.expect("alice: before\r\n");
        server.ask("unmute bob", "Unmuted bob.");
        bob.send("free again");
        alice.expect("bob: free again\r\n");
    });
}

#[test]
fn operators_moderate_from_chat_but_not_each_other() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        let (mut alice, _) = server.register("alice", "secret1");
        let (mut bob, _) = server.register("bob", "secret1");
        let (mut carol, _) = server.register("carol", "secret1");
        drop(server.register("dave", "secret1"));
        server.ask("op alice", "alice is now an operator.");
        server.ask("op dave", "dave is now an operator.");
        alice.drain(QUIET);
        alice.send("/who");
        alice.expect("* In #lobby (3): @alice, bob, carol\r\n");
        for cmd in ["/kick alice", "/ban alice", "/mute alice", "/unban alice"] {
            bob.send(cmd);
            bob.expect("! Only operators can do that.\r\n");
        }
        bob.send("/help");
        assert!(!bob
            .expect("sent to everyone in your room.")
            .contains("/ban"));
        alice.send("/help");
        assert!(alice
            .expect("sent to everyone in your room.")
            .contains("/ban NAME [DURATION] [REASON]"));

        alice.send("/kick bob flooding");
        assert!(bob
            .expect_closed()
            .ends_with("* You were disconnected by alice: flooding.\r\n"));
        carol.expect("* alice kicked bob: flooding\r\n");
        server.expect_log("moderation: alice kicked bob: flooding");

        alice.send("/ban bob 1h spam");
        carol.expect("* alice banned bob for 1h: spam\r\n");
        server.expect_log("moderation: alice banned bob for 1h: spam");
        assert_eq!(server.texts("SELECT created_by FROM bans"), ["alice"]);
        assert!(login_banned(&server, "bob"));

        alice.send("/mute carol 10m");
        carol.expect("* alice muted carol for 10m\r\n");
        carol.send("hi");
        carol.expect("! You are muted until ");

        for cmd in ["/ban dave", "/mute dave", "/kick dave"] {
            alice.send(cmd);
            alice.expect("! dave is an operator: only the server console can do that.\r\n");
        }
        alice.send("/ban 127.0.0.1");
        alice.expect("! No such user: 127.0.0.1");
    });
}

#[test]
fn an_invite_only_server_takes_accounts_from_useradd() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--no-register"]);
        let mut c = at_prompt(&server);
        c.send("/register zoe secret1");
        c.expect("! Registration is closed on this server. Ask the operator for an account.\r\n");
        c.send("zoe");
        c.expect("! Registration is closed on this server. Ask the operator for an account.\r\n");
        let o = cli(&server, &["useradd", "zoe"], "secret1\n");
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(text(&o), format!("Created user zoe{}.\n", in_file(&server)));
        c.send("/login zoe secret1");
        c.expect("* Hello, zoe!");
        let again = cli(&server, &["useradd", "ZOE"], "secret1\n");
        assert_eq!(again.status.code(), Some(1));
        assert_eq!(text(&again), "besedka: the name ZOE is taken\n");
        let short = cli(&server, &["useradd", "yan"], "abc\n");
        assert_eq!(short.status.code(), Some(1));
        assert!(text(&short).contains("password too short"));
        assert_eq!(server.count("users"), 1);
    });
}
