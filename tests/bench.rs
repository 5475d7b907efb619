//! `besedka bench`, run as the real binary: against a server it starts itself (`--spawn`) and
//! against one started here (`--addr`, with a tokens file reused by a second run). Over IRC
//! and against ngircd: tests/bench_irc.rs.

mod common;

use common::bench::{assert_complete, bench, bench_json};
use common::Server;

#[test]
fn spawned_server_delivers_everything_and_is_measured() {
    let r = bench_json(&[
        "--spawn",
        "--clients",
        "20",
        "--senders",
        "4",
        "--messages",
        "50",
    ]);
    assert_complete(&r, 4, 50, 20);
    assert_eq!(r["deliveries_received"], 4 * 50 * 19);
    assert_eq!(r["spawned"], true);
    for key in [
        "server_pid",
        "server_cpu_seconds",
        "server_rss_idle_bytes",
        "server_rss_peak_bytes",
        "server_rss_end_bytes",
        "server_threads",
        "server_open_fds",
    ] {
        assert!(r[key].is_number(), "{key}: {r}");
    }
    assert!(r["server_open_fds"].as_u64().unwrap() >= 20, "{r}");
    let pid = r["server_pid"].as_u64().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/status")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/status"))
                .is_ok_and(|s| s.contains("State:\tZ")),
        "the spawned server is still running"
    );
}

#[test]
fn with_rooms_only_the_busy_room_hears_the_senders() {
    // 40 clients in 4 rooms: the 2 senders and every 4th other client (4, 8, .., 36) in
    // #lobby, 11 in all; the other 29 in three quiet rooms, which must hear nothing.
    let r = bench_json(&[
        "--spawn",
        "--clients",
        "40",
        "--senders",
        "2",
        "--messages",
        "30",
        "--rooms",
        "4",
        // A window smaller than the lines sent: the window counts the busy room only.
        "--window",
        "20",
    ]);
    assert_eq!(r["busy_room_clients"], 11, "{r}");
    assert_complete(&r, 2, 30, 11);
    assert_eq!(r["misrouted"], 0, "{r}");
}

#[test]
fn the_table_has_the_key_rows_with_their_values() {
    let (code, out, err) = bench(&[
        "--spawn",
        "--clients",
        "10",
        "--senders",
        "2",
        "--messages",
        "10",
        "--rate",
        "200",
        "--size",
        "100",
        "--serve-arg=--no-telnet",
    ]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    // Each row's value, after its label.
    let row = |name: &str| {
        out.lines()
            .find(|l| l.strip_prefix(name).is_some_and(|v| v.starts_with("  ")))
            .map(|l| l[name.len()..].trim().to_string())
            .unwrap_or_else(|| panic!("no {name:?} row in:\n{out}"))
    };
    // The number a row starts with (thousands separated by commas), and its unit.
    let number = |name: &str| -> (f64, String) {
        let value = row(name);
        let (n, unit) = value.split_once(' ').unwrap_or((&value, ""));
        let n = n
            .replace(',', "")
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {value:?} is not a number ({e}):\n{out}"));
        (n, unit.to_string())
    };
    // What was asked for, and what every line reaching every other client means.
    assert_eq!(
        row("clients"),
        "10 (2 senders x 10 lines, 200 lines/s, 100-byte lines)",
        "{out}"
    );
    assert_eq!(row("messages sent"), "20", "{out}");
    assert_eq!(row("deliveries expected"), "180", "{out}");
    assert_eq!(row("deliveries received"), "180", "{out}");
    assert_eq!(row("completeness"), "1.0000", "{out}");
    assert_eq!(row("out of order"), "0", "{out}");
    assert_eq!(row("disconnected"), "0", "{out}");
    // Measurements: numbers in their units, positive where something was measured.
    assert_eq!(number("connect time").1, "s (all logged in)", "{out}");
    assert!(number("connect time").0 >= 0.0, "{out}");
    let (time, unit) = number("message time");
    assert!(time > 0.0 && unit == "s", "{out}");
    assert!(number("deliveries/s").0 > 0.0, "{out}");
    assert!(number("messages/s").0 > 0.0, "{out}");
    let latency: Vec<f64> = ["latency p50", "latency p90", "latency p99", "latency max"]
        .iter()
        .map(|name| {
            let (ms, unit) = number(name);
            assert_eq!(unit, "ms", "{name}: {out}");
            ms
        })
        .collect();
    assert!(latency[0] > 0.0, "{out}");
    assert!(latency.windows(2).all(|w| w[0] <= w[1]), "{out}");
    assert!(number("server CPU").0 >= 0.0, "{out}");
    assert!(number("server CPU/delivery").0 >= 0.0, "{out}");
    let mib = |name: &str| {
        let (n, unit) = number(name);
        assert_eq!(unit, "MiB", "{name}: {out}");
        n
    };
    let (idle, peak) = (mib("server RSS idle"), mib("server RSS peak"));
    assert!(idle > 0.0 && peak >= idle, "{out}");
    assert!(number("server threads").0 >= 1.0, "{out}");
    assert!(number("server open fds").0 >= 10.0, "one per client: {out}");
}

#[test]
fn a_running_server_with_a_tokens_file() {
    // History on: the second run is replayed the first run's lines, which it must not count.
    let server = Server::start(&["--max-rate", "100000"]);
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    let addr = server.addr.to_string();
    let args = [
        "--addr",
        &addr,
        "--tokens",
        tokens.to_str().unwrap(),
        "--clients",
        "6",
        "--senders",
        "2",
        "--messages",
        "20",
    ];

    // First run: the accounts are registered through the protocol.
    let first = bench_json(&args);
    assert_complete(&first, 2, 20, 6);
    assert!(first["server_pid"].is_null(), "{first}");
    let saved = std::fs::read_to_string(&tokens).unwrap();
    let names: Vec<&str> = saved
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names.len(), 6, "{saved}");
    assert!(
        names.contains(&"bench1") && names.contains(&"bench6"),
        "{saved}"
    );
    assert_eq!(server.count("users"), 6);
    assert_eq!(server.count("tokens"), 6);

    // Second run: every client logs in with its token, so the server issues none.
    let pid = server.child.id().to_string();
    let second = bench_json(&[&args[..], &["--pid", &pid]].concat());
    assert_complete(&second, 2, 20, 6);
    assert_eq!(
        second["server_pid"].as_u64(),
        Some(u64::from(server.child.id()))
    );
    assert!(
        second["server_rss_idle_bytes"].as_u64().unwrap() > 0,
        "{second}"
    );
    assert_eq!(server.count("tokens"), 6, "tokens were reused");
    assert_eq!(std::fs::read_to_string(&tokens).unwrap(), saved);
}

#[test]
fn bad_arguments_are_refused() {
    let (code, _, err) = bench(&["--clients", "5"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = bench(&["--spawn", "--clients", "3", "--senders", "4"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--senders"), "{err}");
    // Nothing listens there: a clear error, not a hang.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = unused.local_addr().unwrap().to_string();
    drop(unused);
    let (code, _, err) = bench(&["--addr", &addr, "--clients", "2"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
}
