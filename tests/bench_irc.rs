//! `besedka bench --proto irc`: the bench's clients over IRC, to besedka's IRC listener and to
//! ngircd (Debian's `ngircd`, started by the bench from a temporary configuration), and
//! both in turn (`--server both`). ngircd missing: those tests skip (fail under CI).

mod common;

use common::bench::{assert_complete, bench, bench_json};
use common::Server;
use serde_json::Value;

/// Whether Debian's ngircd is installed (where the bench looks for it); else a skip.
fn ngircd(test: &str) -> bool {
    let found = [
        "/usr/sbin/ngircd",
        "/usr/bin/ngircd",
        "/usr/local/sbin/ngircd",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).is_file());
    if !found {
        common::skip(test, "ngircd is not installed (apt-get install ngircd)");
    }
    found
}

const SMALL: [&str; 6] = ["--clients", "20", "--senders", "4", "--messages", "25"];

#[test]
fn over_irc_to_besedka_every_line_arrives() {
    // 20 clients log in by SASL with their tokens, 4 send to #lobby: every PRIVMSG reaches
    // the 19 others, in order.
    let r = bench_json(&[&["--spawn", "--proto", "irc"], &SMALL[..]].concat());
    assert_complete(&r, 4, 25, 20);
    assert_eq!(
        (r["server"].as_str(), r["proto"].as_str()),
        (Some("besedka"), Some("irc"))
    );
    assert!(
        r["server_threads"].as_u64().unwrap() > 20,
        "a thread per client: {r}"
    );
}

#[test]
fn over_irc_to_ngircd_every_line_arrives() {
    if !ngircd("over_irc_to_ngircd_every_line_arrives") {
        return;
    }
    // Quiet rooms too: ngircd must route by channel as besedka does.
    let r = bench_json(
        &[
            &["--spawn", "--server", "ngircd", "--rooms", "2"],
            &SMALL[..],
        ]
        .concat(),
    );
    assert_eq!(r["busy_room_clients"], 12, "{r}");
    assert_complete(&r, 4, 25, 12);
    assert_eq!(r["misrouted"], 0, "{r}");
    assert_eq!(
        (r["server"].as_str(), r["proto"].as_str()),
        (Some("ngircd"), Some("irc"))
    );
    // ngircd is one thread: it is ngircd that was measured, not besedka.
    assert_eq!(r["server_threads"], 1, "{r}");
}

#[test]
fn both_servers_alternate_and_their_medians_are_reported() {
    if !ngircd("both_servers_alternate_and_their_medians_are_reported") {
        return;
    }
    let args = ["--spawn", "--server", "both", "--runs", "2", "--json"];
    let (code, out, err) = bench(&[&args[..], &SMALL[..]].concat());
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let order: Vec<&str> = r["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["server"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["besedka", "ngircd", "besedka", "ngircd"], "{r}");
    for run in r["runs"].as_array().unwrap() {
        assert_complete(run, 4, 25, 20);
    }
    for server in ["besedka", "ngircd"] {
        let m = &r["medians"][server];
        assert_eq!(m["runs"], 2, "{r}");
        assert_eq!(
            m["deliveries_received"].as_f64(),
            Some(4.0 * 25.0 * 19.0),
            "{r}"
        );
        assert!(m["server_cpu_us_per_delivery"].is_number(), "{r}");
    }
    assert_eq!(err.matches("run ").count(), 4, "a line per run: {err}");
}

#[test]
fn over_irc_to_a_running_server_the_accounts_are_registered_then_reused() {
    let server = Server::start(&["--max-rate", "100000", "--irc-addr", "127.0.0.1:0"]);
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    let addr = server.irc_addr.expect("an IRC listener").to_string();
    let args = [
        "--addr",
        &addr,
        "--proto",
        "irc",
        "--tokens",
        tokens.to_str().unwrap(),
        "--clients",
        "6",
        "--senders",
        "2",
        "--messages",
        "10",
    ];
    // First run: SASL fails (no such account), NickServ REGISTER makes each.
    let first = bench_json(&args);
    assert_complete(&first, 2, 10, 6);
    assert_eq!(server.count("users"), 6);
    let saved = std::fs::read_to_string(&tokens).unwrap();
    assert_eq!(
        saved.lines().filter(|l| !l.starts_with('#')).count(),
        6,
        "{saved}"
    );
    // Second run: SASL with the tokens; the server issues none.
    let second = bench_json(&args);
    assert_complete(&second, 2, 10, 6);
    assert_eq!(server.count("tokens"), 6, "tokens were reused");
}

#[test]
fn choices_that_do_not_go_together_are_refused() {
    for (args, says) in [
        (
            &["--spawn", "--server", "ngircd", "--proto", "line"][..],
            "IRC only",
        ),
        (
            &["--addr", "127.0.0.1:1", "--server", "both"][..],
            "--spawn",
        ),
        (
            &["--spawn", "--server", "ngircd", "--size", "450"][..],
            "512 bytes",
        ),
        (
            &["--spawn", "--server", "ngircd", "--serve-arg=--history=5"][..],
            "not ngircd",
        ),
    ] {
        let (code, _, err) = bench(args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
