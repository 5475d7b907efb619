//! Limits that hold across connections: per address, per account, per user. These servers
//! run with `start_strict`, so the limits apply to the test's own loopback clients.

mod common;
use std::time::{Duration, Instant};

use common::{Client, Server};

fn at_prompt(server: &Server) -> Client {
    let mut c = server.connect();
    c.expect("Name: ");
    c
}

#[test]
fn connections_at_once_from_one_address_are_bounded() {
    common::backend::on_each_backend(|| {
        let server = Server::start_strict(&["--max-per-ip", "3"]);
        let mut open: Vec<Client> = (0..3).map(|_| at_prompt(&server)).collect();
        let mut fourth = server.connect();
        let got = fourth.expect_closed();
        assert_eq!(
            got,
            "! Too many connections from your address (3 at once). Close one, then try again.\r\n"
        );
        server.expect_log(": too many connections at once from one address (--max-per-ip 3)");
        // One leaves: there is room again, once the server has counted its end.
        let mut leaving = open.pop().unwrap();
        leaving.send("/quit");
        leaving.expect_closed();
        server.expect_log("disconnected before login (telnet, quit)");
        server.connect_when_room();
    });
}

#[test]
fn new_connections_a_minute_from_one_address_are_bounded() {
    common::backend::on_each_backend(|| {
        let server = Server::start_strict(&["--connect-rate", "4"]);
        for _ in 0..4 {
            at_prompt(&server).send("/quit");
        }
        let got = server.connect().expect_closed();
        // When the oldest of the four is a minute old: within the minute, rounded up.
        let wait = got
            .strip_prefix("! Too many new connections from your address. Try again in ")
            .and_then(|rest| rest.strip_suffix(".\r\n"))
            .unwrap_or_else(|| panic!("{got:?}"));
        let secs: u32 = match wait.strip_suffix(" seconds") {
            Some(n) => n.parse().unwrap(),
            None => {
                assert_eq!(wait, "1 minute");
                60
            }
        };
        assert!((50..=60).contains(&secs), "{got:?}");
        server.expect_log(": too many new connections from one address (--connect-rate 4/minute)");
    });
}

#[test]
fn the_password_lock_holds_across_connections_then_lifts() {
    common::backend::on_each_backend(|| {
        let server =
            Server::start_strict(&["--max-failed-logins", "3", "--failed-login-window", "3s"]);
        drop(server.register("alice", "secret1"));
        // Three connections, one wrong password each: no single connection reaches its own limit.
        for _ in 0..3 {
            let mut c = at_prompt(&server);
            c.send("/login alice wrong-one");
            c.expect("! Wrong password.\r\n");
        }
        // The window runs from the last failure, counted before it was answered.
        let last_failure = Instant::now();
        // Now even the right password is refused, on a new connection, at the prompt too.
        let mut c = at_prompt(&server);
        c.send("/login alice secret1");
        let refused = c.expect(" seconds.\r\n");
        assert!(
            refused.contains("! Too many failed logins. Try again in "),
            "{refused}"
        );
        c.send("alice");
        c.expect("! Too many failed logins. Try again in ");
        // After the window the right password works. (Waiting the window out is what is
        // tested: not a stand-in for an event.)
        std::thread::sleep(
            Duration::from_secs(3).saturating_sub(last_failure.elapsed())
                + Duration::from_millis(100),
        );
        c.send("/login alice secret1");
        c.expect("* Hello, alice!");
    });
}

#[test]
fn the_password_lock_sends_the_dialogue_back_to_the_name_with_the_wait_in_words() {
    common::backend::on_each_backend(|| {
        let server = Server::start_strict(&["--max-failed-logins", "2"]);
        drop(server.register("alice", "secret1"));
        let mut c = at_prompt(&server);
        c.send("alice");
        c.expect("Password: ");
        c.send("wrong-one");
        // Not locked yet: asked again.
        assert_eq!(c.expect("Password: "), "! Wrong password.\r\nPassword: ");
        c.send("wrong-two");
        // That failure locked the account: no password can work now, so none is asked for.
        assert_eq!(
            c.expect("Name: "),
            "! Wrong password.\r\n! Too many failed logins. Try again in 10 minutes.\r\nName: "
        );
        c.send("alice");
        assert_eq!(
            c.expect("Name: "),
            "! Too many failed logins. Try again in 10 minutes.\r\nName: "
        );
        c.send("/login alice secret1");
        assert_eq!(
            c.expect("Name: "),
            "! Too many failed logins. Try again in 10 minutes.\r\nName: "
        );

        // A lock of under a minute is told in seconds.
        let server =
            Server::start_strict(&["--max-failed-logins", "1", "--failed-login-window", "45s"]);
        drop(server.register("bob", "secret1"));
        let mut c = at_prompt(&server);
        c.send("bob");
        c.expect("Password: ");
        c.send("wrong-one");
        assert_eq!(
            c.expect("Name: "),
            "! Wrong password.\r\n! Too many failed logins. Try again in 45 seconds.\r\nName: "
        );
    });
}

#[test]
fn unknown_names_and_bad_tokens_lock_the_address_and_do_not_flood_the_log() {
    common::backend::on_each_backend(|| {
        let server =
            Server::start_strict(&["--max-failed-logins-per-ip", "5", "--max-rate", "1000"]);
        drop(server.register("alice", "secret1"));
        let mut c = at_prompt(&server);
        for i in 0..3 {
            c.send(&format!("/token not-a-token-{i}"));
            c.expect("! Unknown or expired token.\r\n");
        }
        for _ in 0..2 {
            c.send("/login nobody secret1");
            c.expect("! No such user: nobody. Use /register to create it.\r\n");
        }
        // The address is locked: tokens, unknown names and the right password alike.
        c.send("/token another");
        c.expect("! Too many failed logins. Try again in ");
        let mut d = at_prompt(&server);
        d.send("/login alice secret1");
        d.expect("! Too many failed logins. Try again in ");
        // A guessing loop gets answers, but the log gets one line about it (one per reason
        // every 10 s), naming the flag behind the refusal.
        for i in 0..300 {
            c.send(&format!("/token guess-{i}"));
        }
        c.drain(Duration::from_millis(500));
        let log = server.stderr.lock().unwrap().clone();
        assert_eq!(log.matches("unknown or expired token").count(), 3, "{log}");
        let refusals = log
            .matches(
                ": too many failed logins from one address (--max-failed-logins-per-ip 5 in \
                 --failed-login-window 10 minutes)",
            )
            .count();
        assert_eq!(refusals, 1, "{log}");
    });
}

#[test]
fn registrations_per_address_are_bounded() {
    common::backend::on_each_backend(|| {
        let server = Server::start_strict(&["--register-rate", "2"]);
        drop(server.register("one", "secret1"));
        drop(server.register("two", "secret1"));
        let mut c = at_prompt(&server);
        c.send("/register three secret1");
        // The oldest of the two is an hour from leaving the window.
        c.expect("! Too many new accounts from your address. Try again in 1 hour.\r\n");
        // The interactive path is refused before any password is asked for.
        c.send("four");
        c.expect("! Too many new accounts from your address. Try again in 1 hour.\r\n");
        c.expect("Name: ");
        assert_eq!(server.count("users"), 2);
    });
}

#[test]
fn registrations_at_the_same_moment_cannot_all_pass_the_limit() {
    common::backend::on_each_backend(|| {
        let server = Server::start_strict(&["--register-rate", "3", "--max-pending-per-ip", "10"]);
        let mut clients: Vec<_> = (0..10).map(|_| at_prompt(&server)).collect();
        // All ten are checked before the first hash ends: the check must also count.
        for (i, c) in clients.iter_mut().enumerate() {
            c.send(&format!("/register racer{i} secret1"));
        }
        let mut refused = 0;
        for c in &mut clients {
            let start = std::time::Instant::now();
            let mut got = String::new();
            while !got.contains("Too many new accounts") && !got.contains("* Hello, racer") {
                assert!(start.elapsed() < common::WAIT, "no answer: {got:?}");
                got.push_str(&c.drain(std::time::Duration::from_millis(100)));
            }
            if got.contains("Too many new accounts") {
                refused += 1;
            }
        }
        assert_eq!(server.count("users"), 3);
        assert_eq!(refused, 7);
    });
}

#[test]
fn sessions_per_user_are_bounded() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--max-sessions-per-user", "2"]);
        let (_one, token) = server.register("alice", "secret1");
        let mut two = at_prompt(&server);
        two.send(&format!("/token {token}"));
        two.expect("* In #lobby (1): alice");
        let mut three = at_prompt(&server);
        three.send(&format!("/token {token}"));
        assert!(three
            .expect_closed()
            .ends_with("! Too many sessions for alice (2). Close one, then try again.\r\n"));
        server.expect_log(": too many sessions for one user (--max-sessions-per-user 2)");
        two.send("/quit");
        two.expect_closed();
        let mut again = at_prompt(&server);
        again.send(&format!("/token {token}"));
        again.expect("* In #lobby (1): alice");
    });
}

#[test]
fn the_rate_limit_is_per_user_not_per_connection() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--max-rate", "10"]);
        let (first, token) = server.register("alice", "secret1");
        let mut sessions = vec![first];
        for _ in 0..3 {
            let mut c = at_prompt(&server);
            c.send(&format!("/token {token}"));
            c.expect("* In #lobby (1): alice");
            sessions.push(c);
        }
        let started = Instant::now();
        // 4 sessions × 25 lines at once. Per connection that would pass 4 × 20 at once; per
        // user it is a burst of 20, then 10 a second.
        for c in &mut sessions {
            let lines: String = (0..25).map(|i| format!("line {i}\r\n")).collect();
            c.send_raw(lines.as_bytes());
        }
        // 1.5 s of the limit at work: the time is what is tested, not a stand-in for an event.
        std::thread::sleep(Duration::from_millis(1500).saturating_sub(started.elapsed()));
        let stored = server.count("messages");
        assert!(
            (20..=45).contains(&stored),
            "{stored} stored after 1.5 s at 10/s with a burst of 20"
        );
    });
}
