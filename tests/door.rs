//! The door: connections that have not logged in have a budget of their own and one login
//! deadline from connect, on every way in, so that no one holding connections open can keep
//! others out. Many client addresses are stood for by 127.0.0.0/8.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tls::{all_ways, TlsClient};
use common::{closed_within, connect_from, Client, WAIT};

#[test]
fn an_ssh_connection_that_sends_only_its_banner_is_cut_at_the_login_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let server = all_ways(dir.path(), &["--login-timeout", "2"]);
    let ssh = server.ssh_addr.unwrap();
    let mut banner_only = TcpStream::connect(ssh).unwrap();
    banner_only.write_all(b"SSH-2.0-probe\r\n").unwrap();
    let mut and_two_bytes = TcpStream::connect(ssh).unwrap();
    and_two_bytes.write_all(b"SSH-2.0-probe\r\n\0\0").unwrap();
    let start = Instant::now();
    closed_within(banner_only, Duration::from_secs(5));
    closed_within(and_two_bytes, Duration::from_secs(5));
    assert!(
        start.elapsed() > Duration::from_millis(1500),
        "cut at the deadline, not before: {:?}",
        start.elapsed()
    );
}

#[test]
fn the_login_deadline_runs_from_connect_whatever_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = all_ways(dir.path(), &["--login-timeout", "3"]);
    let cert = dir.path().join("cert.pem");
    // TLS: the handshake comes 2 s after connect; the dialogue after it does not get 3 s
    // more.
    let tcp = TcpStream::connect(server.tls_addr.unwrap()).unwrap();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let mut tls = TlsClient::over(tcp, &cert);
    tls.expect("Name: ");
    let mut buf = [0u8; 256];
    loop {
        match tls.tls.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        assert!(start.elapsed() < WAIT, "TLS never cut");
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(4500),
        "cut {took:?} after connect, not 3 s after the handshake"
    );
    // Web: a request head that takes 2 s, then its WebSocket's dialogue: cut 3 s from
    // connect all the same.
    let web = server.web_addr.unwrap();
    let mut ws = TcpStream::connect(web).unwrap();
    let start = Instant::now();
    let head = format!(
        "GET /ws HTTP/1.1\r\nHost: {web}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    for chunk in head.as_bytes().chunks(head.len() / 4 + 1) {
        ws.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    // The upgrade, the dialogue's prompt in a frame, then nothing until the cut.
    ws.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match ws.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        assert!(start.elapsed() < WAIT, "WebSocket never cut");
    }
    let took = start.elapsed();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 101"), "{got:?}");
    assert!(
        got.contains("Name: "),
        "the session's dialogue began: {got:?}"
    );
    assert!(
        took > Duration::from_millis(2500) && took < Duration::from_millis(4500),
        "WebSocket cut {took:?} after connect, not at the 3 s deadline"
    );
}

/// What one stalling connection does.
#[derive(Clone, Copy)]
enum Stall {
    /// telnet: connects and says nothing.
    Silent,
    /// TLS: the first bytes of a ClientHello.
    HalfHello,
    /// SSH: its version line and nothing more.
    Banner,
    /// web: a request head, a byte every 400 ms.
    Drip,
}

const DRIP: &[u8] = b"GET / HTTP/1.1\r\nHost: example\r\nUser-Agent: slow\r\n";

struct Staller {
    kind: Stall,
    to: SocketAddr,
    sock: Option<TcpStream>,
    dripped: usize,
    last: Instant,
}

impl Staller {
    fn open(&mut self, from: &str) {
        self.sock = connect_from(from, self.to).ok().and_then(|mut s| {
            let first: &[u8] = match self.kind {
                Stall::Silent | Stall::Drip => b"",
                Stall::HalfHello => b"\x16\x03\x01\x02\x00\x01",
                Stall::Banner => b"SSH-2.0-probe\r\n",
            };
            s.write_all(first).ok()?;
            s.set_nonblocking(true).ok()?;
            Some(s)
        });
        self.dripped = 0;
        self.last = Instant::now();
    }

    /// Whether the server closed it (or it never opened).
    fn closed(&mut self) -> bool {
        let Some(s) = &mut self.sock else {
            return true;
        };
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue, // a greeting, a banner: read and ignored
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    }

    fn drip(&mut self) {
        if let (Stall::Drip, Some(s)) = (self.kind, &mut self.sock) {
            if self.last.elapsed() >= Duration::from_millis(400) && self.dripped < DRIP.len() {
                let _ = s.write_all(&DRIP[self.dripped..self.dripped + 1]);
                self.dripped += 1;
                self.last = Instant::now();
            }
        }
    }
}

/// One attacking address: keeps `per_way` stalling connections open on every listener,
/// reopening each the server closes, until `stop` (or 60 s at most).
fn attack(from: String, ways: Vec<(Stall, SocketAddr)>, per_way: usize, stop: Arc<AtomicBool>) {
    let mut all: Vec<Staller> = ways
        .iter()
        .flat_map(|&(kind, to)| {
            (0..per_way).map(move |_| Staller {
                kind,
                to,
                sock: None,
                dripped: 0,
                last: Instant::now(),
            })
        })
        .collect();
    let start = Instant::now();
    while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(60) {
        for s in &mut all {
            if s.closed() {
                s.open(&from);
            }
            s.drip();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn scrape(web: SocketAddr, from: &str) -> String {
    let mut s = connect_from(from, web).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {web}\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

#[test]
fn stalling_connections_from_64_addresses_keep_no_one_out() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tempfile::tempdir().unwrap();
    // The default limits: 1,024 users, 16 connections and 8 logging in per address.
    let server = all_ways(dir.path(), &[]);
    let web = server.web_addr.unwrap();
    let mut alice = Client::over(connect_from("127.0.0.200", server.addr).unwrap());
    alice.expect("Name: ");
    alice.send("/register alice secret12");
    alice.expect("* In #lobby");
    let ways = vec![
        (Stall::Silent, server.addr),
        (Stall::HalfHello, server.tls_addr.unwrap()),
        (Stall::Banner, server.ssh_addr.unwrap()),
        (Stall::Drip, web),
    ];
    // 64 addresses × 4 listeners × 4 = 1,024 connections wanted, as many as --max-clients:
    // enough to fill the server when connections logging in counted as users.
    let stop = Arc::new(AtomicBool::new(false));
    let attackers: Vec<_> = (1..=64)
        .map(|i| {
            let (ways, stop) = (ways.clone(), stop.clone());
            std::thread::spawn(move || attack(format!("127.1.0.{i}"), ways, 4, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(4));

    // A 65th address logs in within 10 s, and alice, logged in before, is still served.
    let start = Instant::now();
    let mut bob = Client::over(connect_from("127.2.0.1", server.addr).unwrap());
    bob.expect("Name: ");
    bob.send("/register bob secret12");
    bob.expect("* In #lobby");
    let took = start.elapsed();
    alice.expect("* bob joined");
    alice.send("still here");
    bob.expect("alice: still here");
    let metrics = scrape(web, "127.3.0.1");
    stop.store(true, Ordering::SeqCst);
    for a in attackers {
        a.join().unwrap();
    }
    assert!(took < Duration::from_secs(10), "bob got in after {took:?}");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        sample(&metrics, "besedka_dropped_pending_total") > 0.0,
        "the flood filled the pending budget: {metrics}"
    );
    assert_eq!(sample(&metrics, "besedka_users_online"), 2.0);
    // The flood holds the pending budget (256 at the defaults), and no more.
    let pending = sample(&metrics, "besedka_connections_pending");
    assert!((128.0..=256.0).contains(&pending), "{pending} logging in");
}

#[test]
fn the_pending_budget_refuses_per_address_and_drops_the_oldest_of_the_busiest() {
    let mut server = common::Server::start_strict(&[
        "--web-addr",
        "127.0.0.1:0",
        "--max-pending",
        "4",
        "--max-pending-per-ip",
        "2",
    ]);
    let at = |from: &str| {
        let mut c = Client::over(connect_from(from, server.addr).unwrap());
        c.expect("Name: ");
        c
    };
    // Two logging in from one address; a third is refused, saying why.
    let mut oldest = at("127.6.0.1");
    let _second = at("127.6.0.1");
    let mut third = Client::over(connect_from("127.6.0.1", server.addr).unwrap());
    let said = third.expect_closed();
    assert!(
        said.contains("! Too many connections from your address are logging in at once."),
        "{said:?}"
    );
    // Another address fills the budget (4); a person from a third address still gets in, and
    // the one dropped is the oldest of an address holding two, not anyone holding one.
    let _b1 = at("127.6.0.2");
    let _b2 = at("127.6.0.2");
    let mut person = at("127.6.0.3");
    oldest.expect_closed();
    person.send("/register pat secret12");
    person.expect("* In #lobby");
    let status = server.ask("status", "logging in");
    assert!(status.contains("of them logging in"), "{status}");
    let metrics = scrape(server.web_addr.unwrap(), "127.6.0.9");
    assert!(
        metrics.contains("besedka_refused_connections_total{reason=\"pending\"} 1"),
        "{metrics}"
    );
    assert!(sample(&metrics, "besedka_dropped_pending_total") >= 1.0);
}
