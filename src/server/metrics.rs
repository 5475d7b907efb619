//! Counters for `GET /metrics` (Prometheus text format, version 0.0.4).
//!
//! One process-wide set of atomics ([`METRICS`]), bumped where things happen (the accept
//! threads, the sessions, the hub) with a relaxed add: no lock, no allocation, nothing the hub
//! waits on. A scrape reads them and adds what is read on demand (users online, bans in force,
//! the database's size). Hand-written rather than a metrics crate: a few dozen lines of text,
//! and the crates in reach bring a registry, macros and a second copy of every name.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The counters. Field names say what they count; see [`render`] for the exported names.
pub struct Metrics {
    /// Connections admitted, by way in (index: its [`slot`]).
    pub connections: [AtomicU64; VIAS],
    /// Connections open now, by transport.
    pub open: [AtomicU64; VIAS],
    /// Logins by method: password, registered, token, key.
    pub logins: [AtomicU64; 4],
    /// Failed logins: a wrong password for an account, and an unknown name or a bad token.
    pub failures: [AtomicU64; 2],
    /// Refused at accept: banned address, too many at once from it, too fast, server full,
    /// too many from it logging in at once.
    pub refused: [AtomicU64; 5],
    /// Pending connections dropped to make room for a newcomer (the pending budget was full).
    pub dropped_pending: AtomicU64,
    pub messages: AtomicU64,
    pub deliveries: AtomicU64,
    /// Clients cut off for not reading: over `--max-backlog`, stuck for `--send-timeout`.
    pub cut: [AtomicU64; 2],
    /// Messages per hub commit.
    pub batch: Histogram<{ BATCH_BOUNDS.len() }>,
    /// Seconds per hub commit, in microseconds.
    pub commit_us: Histogram<{ COMMIT_BOUNDS_US.len() }>,
    /// HTTP responses, by status class: 1xx (a WebSocket upgrade), 2xx, 4xx, 5xx.
    pub http: [AtomicU64; 4],
}

/// Ways in a server may have at most (telnet, TLS, SSH, the web and room for more).
pub const VIAS: usize = 8;

/// The ways in's names, in the order of their slots.
static WAYS: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

/// The slot of the way in called `name` in the per-way counters, given on first use. Past
/// [`VIAS`] ways, the last slot is shared.
pub fn slot(name: &'static str) -> usize {
    let mut ways = WAYS.lock().unwrap_or_else(|p| p.into_inner());
    match ways.iter().position(|w| *w == name) {
        Some(i) => i,
        None if ways.len() < VIAS => {
            ways.push(name);
            ways.len() - 1
        }
        None => VIAS - 1,
    }
}

fn way_names() -> Vec<&'static str> {
    WAYS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}
const METHODS: [&str; 4] = ["password", "registered", "token", "key"];

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy)]
pub enum Refused {
    Banned = 0,
    PerAddress = 1,
    TooFast = 2,
    Full = 3,
    Pending = 4,
}
const REFUSED_NAMES: [&str; 5] = ["banned", "per_address", "too_fast", "full", "pending"];

const BATCH_BOUNDS: [u64; 9] = [1, 2, 5, 10, 20, 50, 100, 200, 512];
const COMMIT_BOUNDS_US: [u64; 10] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 1_000_000,
];

pub static METRICS: Metrics = Metrics {
    connections: [const { AtomicU64::new(0) }; VIAS],
    open: [const { AtomicU64::new(0) }; VIAS],
    logins: [const { AtomicU64::new(0) }; 4],
    failures: [const { AtomicU64::new(0) }; 2],
    refused: [const { AtomicU64::new(0) }; 5],
    dropped_pending: AtomicU64::new(0),
    messages: AtomicU64::new(0),
    deliveries: AtomicU64::new(0),
    cut: [const { AtomicU64::new(0) }; 2],
    batch: Histogram::new(&BATCH_BOUNDS),
    commit_us: Histogram::new(&COMMIT_BOUNDS_US),
    http: [const { AtomicU64::new(0) }; 4],
};

/// Adds one.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// A histogram with fixed upper bounds (`le`), each bucket counting its own range; the
/// cumulative counts Prometheus wants are summed when rendered.
pub struct Histogram<const N: usize> {
    bounds: &'static [u64; N],
    /// `buckets[i]`: observations ≤ `bounds[i]` and > `bounds[i - 1]`; `buckets[N]`: above all.
    buckets: [AtomicU64; 11],
    sum: AtomicU64,
    count: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    const fn new(bounds: &'static [u64; N]) -> Self {
        assert!(N < 11, "a histogram has at most 10 bounds");
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; 11],
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: u64) {
        let i = self.bounds.partition_point(|&b| b < v);
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum.fetch_add(v, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Writes the `_bucket`, `_sum` and `_count` series; values are divided by `scale` (a
    /// histogram kept in microseconds is exported in seconds).
    fn render(&self, out: &mut String, name: &str, help: &str, scale: f64) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut total = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            total += self.buckets[i].load(Relaxed);
            let le = *bound as f64 / scale;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {total}");
        }
        total += self.buckets[N].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let sum = self.sum.load(Relaxed) as f64 / scale;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
    }
}

/// What a scrape reads from the server besides the counters.
pub struct Gauges {
    pub users_online: usize,
    /// Connections not logged in yet.
    pub pending: usize,
    /// Bans in force by kind: names, addresses, mutes.
    pub bans: [usize; 3],
    pub uptime_seconds: f64,
    /// The database file and its WAL, in bytes.
    pub database_bytes: u64,
}

fn series(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn labelled(out: &mut String, name: &str, label: &str, names: &[&str], values: &[AtomicU64]) {
    for (n, v) in names.iter().zip(values) {
        let _ = writeln!(out, "{name}{{{label}=\"{n}\"}} {}", v.load(Relaxed));
    }
}

/// The whole exposition.
pub fn render(g: &Gauges) -> String {
    let m = &METRICS;
    let ways = way_names();
    let mut out = String::with_capacity(4096);
    let o = &mut out;
    series(
        o,
        "besedka_connections_total",
        "counter",
        "Connections admitted, by transport.",
    );
    labelled(
        o,
        "besedka_connections_total",
        "transport",
        &ways,
        &m.connections,
    );
    series(
        o,
        "besedka_connections_open",
        "gauge",
        "Connections open now, by transport.",
    );
    labelled(o, "besedka_connections_open", "transport", &ways, &m.open);
    series(
        o,
        "besedka_users_online",
        "gauge",
        "Distinct users logged in now.",
    );
    let _ = writeln!(o, "besedka_users_online {}", g.users_online);
    series(
        o,
        "besedka_connections_pending",
        "gauge",
        "Connections not logged in yet (bounded by --max-pending).",
    );
    let _ = writeln!(o, "besedka_connections_pending {}", g.pending);
    series(
        o,
        "besedka_logins_total",
        "counter",
        "Successful logins, by method.",
    );
    labelled(o, "besedka_logins_total", "method", &METHODS, &m.logins);
    series(
        o,
        "besedka_login_failures_total",
        "counter",
        "Failed logins: a wrong password, or an unknown name or bad token.",
    );
    labelled(
        o,
        "besedka_login_failures_total",
        "reason",
        &["password", "name_or_token"],
        &m.failures,
    );
    series(
        o,
        "besedka_refused_connections_total",
        "counter",
        "Connections refused at accept, by reason.",
    );
    labelled(
        o,
        "besedka_refused_connections_total",
        "reason",
        &REFUSED_NAMES,
        &m.refused,
    );
    series(
        o,
        "besedka_dropped_pending_total",
        "counter",
        "Connections not logged in yet dropped to make room for a newcomer (--max-pending).",
    );
    let _ = writeln!(
        o,
        "besedka_dropped_pending_total {}",
        m.dropped_pending.load(Relaxed)
    );
    series(
        o,
        "besedka_messages_committed_total",
        "counter",
        "Chat messages committed to the database.",
    );
    let _ = writeln!(
        o,
        "besedka_messages_committed_total {}",
        m.messages.load(Relaxed)
    );
    m.batch.render(
        o,
        "besedka_commit_batch_messages",
        "Messages per hub commit (group commit).",
        1.0,
    );
    m.commit_us
        .render(o, "besedka_commit_seconds", "Time of one hub commit.", 1e6);
    series(
        o,
        "besedka_deliveries_total",
        "counter",
        "Chat lines queued to clients (a line to N clients is N).",
    );
    let _ = writeln!(o, "besedka_deliveries_total {}", m.deliveries.load(Relaxed));
    series(
        o,
        "besedka_clients_cut_total",
        "counter",
        "Clients disconnected for not reading.",
    );
    labelled(
        o,
        "besedka_clients_cut_total",
        "reason",
        &["backlog", "send_timeout"],
        &m.cut,
    );
    series(
        o,
        "besedka_bans",
        "gauge",
        "Bans and mutes in force, by kind.",
    );
    for (kind, n) in ["name", "ip", "mute"].iter().zip(g.bans) {
        let _ = writeln!(o, "besedka_bans{{kind=\"{kind}\"}} {n}");
    }
    series(
        o,
        "besedka_http_responses_total",
        "counter",
        "HTTP responses on --web-addr, by status class.",
    );
    labelled(
        o,
        "besedka_http_responses_total",
        "code",
        &["1xx", "2xx", "4xx", "5xx"],
        &m.http,
    );
    series(
        o,
        "besedka_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(o, "besedka_uptime_seconds {:.3}", g.uptime_seconds);
    series(
        o,
        "besedka_database_bytes",
        "gauge",
        "Size of the SQLite file and its WAL.",
    );
    let _ = writeln!(o, "besedka_database_bytes {}", g.database_bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_in_their_unit() {
        static BOUNDS: [u64; 3] = [10, 100, 1000];
        let h = Histogram::new(&BOUNDS);
        for v in [5, 10, 50, 5000] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "help", 1000.0);
        assert!(out.contains("x_bucket{le=\"0.01\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.1\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"1\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_sum 5.065\nx_count 4\n"), "{out}");
    }
}
