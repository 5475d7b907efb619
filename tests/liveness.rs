//! Connections that hold resources without using them, and the server's own failures:
//! tricklers, silent clients, running out of file descriptors, shutdown after a flood, a
//! panicking hub, and what a removed session leaves behind.

mod common;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{bin, Client, Server};

#[test]
fn a_client_trickling_bytes_is_cut_at_the_login_deadline() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--login-timeout", "2"]);
        let mut c = server.connect();
        c.expect("Name: ");
        let start = Instant::now();
        // One byte every 300 ms, never a whole line: each read succeeds, the line never ends.
        let mut closed = String::new();
        for b in b"abcdefghijklmnopqrstuvwxyz".iter().cycle().take(30) {
            if std::io::Write::write_all(&mut c.stream, &[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
            let got = c.drain(Duration::from_millis(10));
            closed.push_str(&got);
            if closed.contains("! Login timed out.") {
                break;
            }
        }
        assert!(closed.contains("! Login timed out.\r\n"), "{closed:?}");
        let took = start.elapsed();
        assert!(took < Duration::from_secs(4), "cut after {took:?}");
    });
}

#[test]
fn a_silent_client_is_disconnected_after_the_idle_timeout() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&["--idle-timeout", "1s"]);
        let (mut quiet, _) = server.register("quiet", "secret1");
        let (mut busy, _) = server.register("busy", "secret1");
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(1800) {
            busy.send("/who");
            std::thread::sleep(Duration::from_millis(300));
        }
        let got = quiet.expect_closed();
        assert!(
            got.ends_with("* Disconnected after 1s of silence.\r\n"),
            "{got:?}"
        );
        busy.send("still here");
        busy.send("/who");
        busy.expect("* In #lobby (1): busy");
    });
}

#[test]
fn out_of_file_descriptors_the_server_backs_off_and_recovers() {
    common::backend::on_each_backend(|| {
        let mut cmd = Command::new(bin());
        // SAFETY: setrlimit in the child between fork and exec touches no shared state.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 64,
                    rlim_max: 64,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let server = Server::launch(
            cmd,
            &dir.path().join("b.db"),
            &["--allow-ip", "127.0.0.0/8"],
        );
        // More clients than descriptors (one each): accept starts failing with EMFILE.
        let clients: Vec<Client> = (0..80).map(|_| server.connect()).collect();
        server.expect_log("accept failed: Too many open files");
        std::thread::sleep(Duration::from_secs(3));
        let failures = server
            .stderr
            .lock()
            .unwrap()
            .matches("accept failed")
            .count();
        assert!(failures <= 5, "{failures} accept-failure lines in ~3 s");
        // Once clients leave, the server serves again.
        drop(clients);
        let start = Instant::now();
        loop {
            let mut c = server.connect();
            let got = c.drain(Duration::from_millis(1500));
            if got.contains("Name: ") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(8),
                "not served again: {got:?}"
            );
        }
    });
}

#[test]
fn sigterm_after_a_flood_at_the_default_rate_exits_within_2_seconds() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&[]);
        let (mut a, _) = server.register("alice", "secret1");
        // Far more than the default 20 lines a second can read in a while: it waits in the
        // kernel's buffers, and must not keep the server reading after the grace period.
        let flood: String = (0..20_000).map(|i| format!("flood {i}\r\n")).collect();
        a.send_raw(flood.as_bytes());
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        server.signal(libc::SIGTERM);
        assert_eq!(server.wait_exit(), Some(0));
        let took = start.elapsed();
        assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    });
}

#[test]
fn a_hub_panic_stops_the_server_with_exit_code_1() {
    common::backend::on_each_backend(|| {
        let mut cmd = Command::new(bin());
        cmd.env("BESEDKA_FAULTS", "1");
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::launch(cmd, &dir.path().join("b.db"), &[]);
        let (mut a, _) = server.register("alice", "secret1");
        server.ask("fault", "Fault injected: the hub will panic.");
        assert_eq!(server.wait_exit(), Some(1));
        server.expect_log("the hub thread panicked (fault injected: hub crash)");
        server.expect_log("besedka: the hub thread failed: fault injected: hub crash");
        a.expect_closed();
    });
}

#[test]
fn nothing_a_kicked_session_had_sent_is_stored_after_the_kick() {
    common::backend::on_each_backend(|| {
        let mut server = Server::start(&["--max-rate", "100000"]);
        let (mut carol, _) = server.register("carol", "secret1");
        let (mut bob, _) = server.register("bob", "secret1");
        carol.expect("* bob joined\r\n");
        // Many short lines at once: the session has hundreds buffered when the kick lands.
        let flood: String = (0..5000).map(|i| format!("b{i}\r\n")).collect();
        bob.send_raw(flood.as_bytes());
        server.ask("kick bob", "Kicked bob");
        bob.expect_closed();
        let seen = carol.drain(Duration::from_millis(800));
        let (before, after) = seen
            .split_once("* server kicked bob\r\n")
            .unwrap_or_else(|| panic!("no announcement in {seen:?}"));
        assert!(
            !after.contains("] bob: "),
            "bob's lines after his kick: {after:?}"
        );
        let shown = before.matches("] bob: ").count() as i64;
        assert_eq!(
            server.count("messages"),
            shown,
            "stored = what carol saw before the kick"
        );
    });
}

#[test]
fn retention_keeps_the_newest_messages() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    // A first run writes 12 messages.
    {
        let server = Server::start_on(&db, &[]);
        let (mut a, _) = server.register("alice", "secret1");
        let (mut b, _) = server.register("bob", "secret1");
        for i in 0..12 {
            a.send(&format!("m{i}"));
            b.expect(&format!("alice: m{i}\r\n"));
        }
        server.kill();
    }
    // The janitor's first pass, 2 s after start, keeps the newest 5.
    let mut server = Server::start_on(&db, &["--retain-messages", "5", "--history", "3"]);
    let start = Instant::now();
    while server.count("messages") > 5 && start.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        server.texts("SELECT body FROM messages ORDER BY id"),
        ["m7", "m8", "m9", "m10", "m11"]
    );
    let status = server.ask("status", "database:");
    assert!(
        status.contains("retention: keep any age, the newest 5 (and always the last 3 public); pruned since start: 7"),
        "{status}"
    );
    server.ask("prune", "Pruned 0 message(s).");
    let mut off = Server::start(&[]);
    off.ask(
        "prune",
        "Retention is off: start the server with --retain-days or --retain-messages.",
    );
    off.ask("status", "retention: off (every message is kept)");
}
