//! The login stage: registration, passwords, tokens, and what the database keeps of them.

mod common;
use common::Server;

#[test]
fn interactive_registration_then_password_login() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let mut c = server.connect();
        let greeting = c.expect("Name: ");
        assert!(
            greeting.contains("* Welcome to besedka! 0 users online."),
            "{greeting}"
        );
        assert!(greeting.contains("/token TOKEN"), "{greeting}");
        c.send("alice");
        c.expect("* New user alice. Choose a password (at least 6 characters)");
        c.expect("Password: ");
        c.send("short");
        c.expect("! Password too short: at least 6 characters.");
        c.expect("Password: ");
        c.send("secret1");
        c.expect("Repeat password: ");
        c.send("secret2");
        c.expect("! Passwords do not match.");
        c.expect("Password: ");
        c.send("secret1");
        c.expect("Repeat password: ");
        c.send("secret1");
        c.expect("* Hello, alice!");
        let token = c.token();
        assert_eq!(token.len(), 36, "a UUID: {token}");
        c.expect(&format!("next time type /token {token} to log in"));
        c.expect("* In #lobby (1): alice\r\n");
        c.send("/quit");
        c.expect("* Bye.");
        c.expect_closed();

        let mut c = server.connect();
        c.expect("Name: ");
        c.send("ALICE"); // names are case-insensitive
        c.expect("Password: ");
        c.send("wrong-password");
        c.expect("! Wrong password.");
        c.expect("Password: ");
        c.send("secret1");
        c.expect("* Hello, alice!"); // shown as registered
        c.token();
        c.expect("* In #lobby (1): alice");
    });
}

#[test]
fn three_wrong_passwords_close_the_connection() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        server.register("bob", "secret1");
        let mut c = server.connect();
        c.expect("Name: ");
        c.send("bob");
        for _ in 0..2 {
            c.expect("Password: ");
            c.send("nope-nope");
            c.expect("! Wrong password.");
        }
        c.expect("Password: ");
        c.send("nope-nope");
        let rest = c.expect_closed();
        assert!(
            rest.contains("! Too many failed attempts. Connect again to try again."),
            "{rest:?}"
        );
        server.expect_log(&format!(
            "{}: failed login for bob",
            c.stream.local_addr().unwrap()
        ));
    });
}

#[test]
fn failures_count_across_one_line_and_interactive_tries() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        server.register("bob", "secret1");
        let mut c = server.connect();
        c.expect("Name: ");
        c.send("/login bob bad-one");
        c.expect("! Wrong password.");
        c.send("/login bob bad-two");
        c.expect("! Wrong password.");
        c.send("/login bob bad-three");
        assert!(c
            .expect_closed()
            .contains("! Too many failed attempts. Connect again to try again."));
    });
}

#[test]
fn one_line_forms() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let mut c = server.connect();
        c.expect("Name: ");
        c.send("/register carol my pass phrase");
        c.expect("* Hello, carol!");
        c.token();
        c.send("/quit");
        c.expect_closed();

        let mut c = server.connect();
        c.expect("Name: ");
        c.send("/register CAROL whatever1");
        c.expect("! The name CAROL is taken.");
        c.send("/register bad:name secret1");
        c.expect("! Invalid name: bad:name. Names are 1-32 characters");
        c.send("/register dave short");
        c.expect("! Password too short");
        c.send("/login nobody secret1");
        c.expect("! No such user: nobody");
        c.send("/login carol");
        c.expect("! Usage: /login NAME PASSWORD");
        c.send("/login carol my pass phrase"); // the password is the rest of the line
        c.expect("* Hello, carol!");
        c.token();
        c.expect("* In #lobby (1): carol");
    });
}

#[test]
fn token_login_logout_and_bad_tokens() {
    let server = Server::start(&[]);
    let (mut first, token) = server.register("erin", "secret1");
    first.send("/quit");
    first.expect_closed();

    let mut c = server.connect();
    c.expect("Name: ");
    c.send("/token 00000000-0000-4000-8000-000000000000");
    c.expect("! Unknown or expired token.");
    c.expect("Name: ");
    c.send(&format!("/token {token}"));
    let hello = c.expect("* In #lobby (1): erin");
    assert!(hello.contains("* Hello, erin!"), "{hello}");
    assert!(
        !hello.contains("Your session token"),
        "no new token on token login"
    );
    c.send("/logout");
    c.expect("* Logged out");
    c.expect_closed();

    let mut c = server.connect();
    c.expect("Name: ");
    c.send(&format!("/token {token}"));
    c.expect("! Unknown or expired token.");

    // An expired token is refused too.
    let (_, token2) = server.register("frank", "secret1");
    server
        .sql()
        .execute(
            "UPDATE tokens SET expires_at = '2000-01-01T00:00:00Z' WHERE user_id = (SELECT id FROM users WHERE name = 'frank')",
            [],
        )
        .unwrap();
    c.send(&format!("/token {token2}"));
    c.expect("! Unknown or expired token.");
}

#[test]
fn names_follow_the_rule() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let mut c = server.connect();
        c.expect("Name: ");
        for bad in ["two words", "semi;colon", &"x".repeat(33)] {
            c.send(bad);
            c.expect("! Invalid name:");
            c.expect("letters (any script), digits, '_', '-' and '.'");
            c.expect("Name: ");
        }
        c.send("Ёжик_2.0-beta");
        c.expect("* New user Ёжик_2.0-beta.");
        c.expect("Password: ");
        c.send(""); // an empty password goes back to the name
        c.expect("Name: ");
    });
}

#[test]
fn chat_commands_need_login_and_login_commands_need_logout() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let mut c = server.connect();
        c.expect("Name: ");
        c.send("/who");
        c.expect("! Log in first to use /who");
        c.send("/frobnicate");
        c.expect("! Unknown command /frobnicate. Type /help.");
        c.send("/help");
        let help = c.expect("Or type your name");
        assert!(
            help.contains("/register NAME PASSWORD") && !help.contains("/msg"),
            "{help}"
        );
        let (mut a, _) = server.register("gina", "secret1");
        a.send("/login gina secret1");
        a.expect("! You are already logged in.");
    });
}

#[test]
fn database_keeps_no_plaintext_password_or_token() {
    let server = Server::start(&[]);
    let password = "correct-horse-battery";
    let (mut c, token) = server.register("heidi", password);
    c.send("hello");
    c.send("/quit");
    c.expect_closed();

    let db = server.sql();
    let hash: String = db
        .query_row(
            "SELECT password_hash FROM users WHERE name = 'heidi'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let token_hash: String = db
        .query_row("SELECT token_hash FROM tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(token_hash.len(), 64);
    assert!(token_hash.bytes().all(|b| b.is_ascii_hexdigit()));
    drop(db);
    // Neither secret appears anywhere in the database files or the log.
    for file in ["besedka.db", "besedka.db-wal"] {
        let path = server.db.with_file_name(file);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                common::find(&bytes, password.as_bytes()).is_none(),
                "password in {file}"
            );
            assert!(
                common::find(&bytes, token.as_bytes()).is_none(),
                "token in {file}"
            );
        }
    }
    let log = server.stderr.lock().unwrap().clone();
    assert!(log.contains("registered heidi"), "{log}");
    assert!(!log.contains(password) && !log.contains(&token), "{log}");
}

#[test]
fn startup_errors_are_one_line_and_exit_1() {
    let server = Server::start(&[]);
    let out = std::process::Command::new(common::bin())
        .args(["serve", "--addr", &server.addr.to_string(), "--db"])
        .arg(server.db.with_file_name("other.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("besedka: cannot listen on {}", server.addr)),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let out = std::process::Command::new(common::bin())
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--db",
            "/nonexistent-dir/x/besedka.db",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("besedka: cannot open database /nonexistent-dir/x/besedka.db"),
        "{err}"
    );
}

/// The server's resident memory, from /proc (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn logins_do_not_leave_argon2_memory_behind() {
    common::backend::on_each_backend(|| {
        // Each hash takes a 19 MiB block. Before the fix, 30 logins left 230-560 MB resident.
        let server = Server::start(&[]);
        let before = rss_kib(server.child.id());
        let clients: Vec<_> = (0..30)
            .map(|i| server.register(&format!("user{i}"), "secret1").0)
            .collect();
        let after = rss_kib(server.child.id());
        assert!(
            after < before + 60 * 1024,
            "resident memory grew from {before} KiB to {after} KiB over {} logins",
            clients.len()
        );
    });
}
