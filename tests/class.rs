//! A class on one machine: everyone on `telnet 127.0.0.1` is many people behind one address,
//! so loopback is exempt from the per-address limits by default; a reverse proxy on the same
//! machine that is not named with `--trusted-proxy` ends that exemption, loudly. And every
//! refusal says when to try again, and is logged once per reason, naming its flag.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::proxies::{free_port, nginx};
use common::{Client, Server, WAIT};

/// `GET /` with extra header lines to `127.0.0.1:port`: the whole response.
fn get(port: u16, headers: &str) -> String {
    let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let head =
        format!("GET / HTTP/1.1\r\nHost: chat.example\r\nConnection: close\r\n{headers}\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Registers `name` over telnet from 127.0.0.1: what the server answered, up to the lobby or
/// the refusal.
fn try_register(server: &Server, name: &str) -> String {
    let mut c = server.connect();
    c.expect("Name: ");
    c.send(&format!("/register {name} secret12"));
    let start = Instant::now();
    let mut got = String::new();
    while !got.contains("* In #lobby") && !got.contains("! ") {
        assert!(start.elapsed() < WAIT, "no answer: {got:?}");
        got.push_str(&c.drain(Duration::from_millis(100)));
    }
    got
}

#[test]
fn thirty_people_register_and_chat_from_127_0_0_1_with_the_defaults() {
    common::backend::on_each_backend(|| {
        let server = Server::start_default(&[]);
        server.expect_log("loopback clients (127.0.0.0/8, ::1) are exempt");
        // Everyone at the prompt at once (past --max-pending-per-ip and --max-per-ip), then
        // everyone registering at once (past --register-rate).
        let mut people: Vec<Client> = (0..30)
            .map(|_| {
                let mut c = server.connect();
                c.expect("Name: ");
                c
            })
            .collect();
        for (i, c) in people.iter_mut().enumerate() {
            c.send(&format!("/register student{i} secret12"));
        }
        for (i, c) in people.iter_mut().enumerate() {
            c.expect(&format!("* Hello, student{i}!"));
            c.expect("* In #lobby (");
        }
        assert_eq!(server.count("users"), 30);
        for (i, c) in people.iter_mut().enumerate() {
            c.send(&format!("good morning from student{i}"));
        }
        // Everyone hears everyone else, in whatever order the lines were committed.
        for (i, c) in people.iter_mut().enumerate() {
            let start = Instant::now();
            let mut heard = String::new();
            let missing = |heard: &str| {
                (0..30).filter(|&j| j != i).find(|j| {
                    !heard.contains(&format!("student{j}: good morning from student{j}\r\n"))
                })
            };
            while let Some(j) = missing(&heard) {
                assert!(
                    start.elapsed() < WAIT,
                    "student{i} never heard student{j}: {heard:?}"
                );
                heard.push_str(&c.drain(Duration::from_millis(50)));
            }
        }
        let log = server.stderr.lock().unwrap().clone();
        assert!(!log.contains("refused "), "{log}");
    });
}

#[test]
fn with_limit_loopback_the_per_address_limits_hold_on_loopback() {
    let server = Server::start_default(&["--limit-loopback"]);
    for name in ["ann", "ben", "cat"] {
        let got = try_register(&server, name);
        assert!(got.contains("* In #lobby"), "{got:?}");
    }
    // The default --register-rate, 3 an hour: the oldest leaves the window in an hour.
    let got = try_register(&server, "dan");
    assert!(
        got.contains("! Too many new accounts from your address. Try again in 1 hour.\r\n"),
        "{got:?}"
    );
    server.expect_log(": too many new accounts from one address (--register-rate 3/hour)");
    let log = server.stderr.lock().unwrap().clone();
    assert!(!log.contains("are exempt"), "{log}");
}

#[test]
fn a_reverse_proxy_on_this_machine_not_named_is_reported_and_ends_the_exemption() {
    let server = Server::start_default(&["--web-addr", "127.0.0.1:0", "--register-rate", "1"]);
    // At startup: the web listener with no proxy named, loopback exempt.
    server.expect_log("the web listener is up with no --trusted-proxy");
    let http = free_port();
    let Some(_nginx) = nginx(&[], &[(http, server.web_addr.unwrap())]) else {
        return;
    };
    // Loopback is exempt: two accounts from 127.0.0.1 at --register-rate 1.
    for name in ["ann", "ben"] {
        let got = try_register(&server, name);
        assert!(got.contains("* In #lobby"), "{got:?}");
    }
    // The page through nginx, which adds X-Forwarded-For: served, and reported once, loudly.
    let page = get(http, "");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    server.expect_log(
        "sent the header X-Forwarded-For, but loopback is not a --trusted-proxy: a proxy on \
         this machine makes every client it brings look like 127.0.0.1. From now on loopback \
         clients are held to the per-address limits",
    );
    let page = get(http, "");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let log = server.stderr.lock().unwrap().clone();
    let warning = log.lines().find(|l| l.contains("X-Forwarded-For")).unwrap();
    assert!(
        warning.contains(" WARN ")
            && warning.contains("--trusted-proxy 127.0.0.1")
            && warning.contains("--limit-loopback"),
        "{warning}"
    );
    // From now on 127.0.0.1 is one address again: one account an hour.
    let got = try_register(&server, "cat");
    assert!(got.contains("* In #lobby"), "{got:?}");
    let got = try_register(&server, "dan");
    assert!(
        got.contains("! Too many new accounts from your address. Try again in 1 hour."),
        "{got:?}"
    );
    // Reported once, for both proxied requests (the refusal's line comes after them all).
    server.expect_log("(--register-rate 1/hour)");
    let log = server.stderr.lock().unwrap().clone();
    let reports = log.matches("loopback is not a --trusted-proxy").count();
    assert_eq!(reports, 1, "{log}");
}

#[test]
fn forwarding_headers_straight_from_this_machine_end_the_exemption_unless_it_is_trusted() {
    // A `Forwarded` header sent from this machine, no proxy in between: the same report.
    let server = Server::start_default(&["--web-addr", "127.0.0.1:0", "--max-per-ip", "1"]);
    let web = server.web_addr.unwrap().port();
    let page = get(web, "Forwarded: for=198.51.100.7\r\n");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    server.expect_log("sent the header Forwarded, but loopback is not a --trusted-proxy");
    // --max-per-ip 1 holds on 127.0.0.1 now (once the page's own connection is let go).
    let _one = server.connect_when_room();
    let said = server.connect().expect_closed();
    assert_eq!(
        said,
        "! Too many connections from your address (1 at once). Close one, then try again.\r\n"
    );

    // Loopback named as the proxy: no startup warning, no report, and the client it names
    // is the one limited.
    let server =
        Server::start_default(&["--web-addr", "127.0.0.1:0", "--trusted-proxy", "127.0.0.1"]);
    let web = server.web_addr.unwrap().port();
    let page = get(web, "X-Forwarded-For: 198.51.100.7\r\n");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    server.expect_log("198.51.100.7:0: connected (web, through 127.0.0.1:");
    let log = server.stderr.lock().unwrap().clone();
    assert!(!log.contains("--trusted-proxy"), "{log}");
}

#[test]
fn many_refusals_make_one_log_line_naming_the_flag() {
    let server = Server::start_strict(&["--register-rate", "1", "--max-rate", "1000"]);
    assert!(try_register(&server, "ann").contains("* In #lobby"));
    let mut c = server.connect();
    c.expect("Name: ");
    for i in 0..50 {
        c.send(&format!("/register bot{i} secret12"));
    }
    for _ in 0..50 {
        c.expect("! Too many new accounts from your address. Try again in 1 hour.\r\n");
    }
    // The log is read as the server writes it: its line about the end of this connection
    // comes after every line about its refusals.
    c.send("/quit");
    server.expect_log("disconnected before login (telnet, quit)");
    let log = server.stderr.lock().unwrap().clone();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("too many new accounts"))
        .collect();
    // One line per 10 s: the 50 refusals take well under that, but a slow machine may
    // straddle one boundary.
    assert!(!lines.is_empty() && lines.len() <= 2, "{log}");
    assert!(
        lines[0].contains(" INFO ")
            && lines[0].contains("refused 127.0.0.1:")
            && lines[0]
                .ends_with(": too many new accounts from one address (--register-rate 1/hour)"),
        "{}",
        lines[0]
    );
}

#[test]
fn a_proxy_header_from_this_machine_not_named_is_refused_and_reported() {
    let server = Server::start_default(&[]);
    let mut c = server.connect();
    c.expect("Name: ");
    c.send("PROXY TCP4 198.51.100.7 127.0.0.1 4711 7777");
    let said = c.expect_closed();
    assert!(
        said.contains("! A PROXY header is taken only from a trusted proxy (--trusted-proxy)"),
        "{said:?}"
    );
    server.expect_log(
        "sent a PROXY header, but loopback is not a --trusted-proxy: a proxy on this machine",
    );
}
