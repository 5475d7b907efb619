//! The results: a table for people, or one JSON object for scripts (`--json`).

use std::fmt::Write as _;

use serde::Serialize;

/// One run's numbers. The field names are the JSON keys; `server_*` are `null` unless the
/// server's process was measured (`--spawn` or `--pid`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub addr: String,
    pub spawned: bool,
    /// The server loaded: `besedka` or `ngircd` (`--server`).
    pub server: String,
    /// What the clients spoke: `line` or `irc` (`--proto`).
    pub proto: String,
    pub clients: u64,
    /// Rooms the clients were spread over (`--rooms`).
    pub rooms: u64,
    /// Clients in the senders' room: each line's fan-out is this minus one.
    pub busy_room_clients: u64,
    pub senders: u64,
    pub messages_per_sender: u64,
    /// Lines a second asked for across all senders; `null`: flat out.
    pub rate: Option<f64>,
    /// Bytes per line sent, without the line end.
    pub size: u64,
    /// From the first connect until every client had logged in.
    pub connect_seconds: f64,
    pub messages_sent: u64,
    pub deliveries_expected: u64,
    pub deliveries_received: u64,
    /// Received / expected.
    pub completeness: f64,
    /// From the first line sent to the last delivery.
    pub message_seconds: f64,
    pub deliveries_per_second: f64,
    /// Lines the server accepted, committed and delivered per second of the message phase.
    pub messages_per_second: f64,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub out_of_order: u64,
    /// Lines that reached a client in another room than the senders' (must be 0).
    pub misrouted: u64,
    /// Clients whose connection ended during the message phase.
    pub disconnected: u64,
    /// The phase ended because nothing moved for 10 s.
    pub stalled: bool,
    /// The bench's own CPU time in the message phase (is the bench the bottleneck?).
    pub bench_cpu_seconds: f64,
    pub server_pid: Option<u32>,
    /// The server's CPU time (user + system) during the message phase.
    pub server_cpu_seconds: Option<f64>,
    pub server_cpu_us_per_delivery: Option<f64>,
    /// Resident memory before any bench client connected (the idle server).
    pub server_rss_empty_bytes: Option<u64>,
    /// Resident memory once every client was logged in and the joins had settled.
    pub server_rss_idle_bytes: Option<u64>,
    /// (idle − empty) / clients: what one logged-in client costs.
    pub server_rss_per_client_bytes: Option<u64>,
    /// The most resident memory the server ever had (the kernel's high-water mark).
    pub server_rss_peak_bytes: Option<u64>,
    pub server_rss_end_bytes: Option<u64>,
    /// The most threads and open descriptors seen during the message phase.
    pub server_threads: Option<u64>,
    pub server_open_fds: Option<u64>,
    /// Resident memory, threads and descriptors after every client left (the bench waits
    /// [`super::LINGER`] for idle workers to end and freed memory to go back).
    pub server_rss_after_bytes: Option<u64>,
    pub server_threads_after: Option<u64>,
    pub server_open_fds_after: Option<u64>,
}

impl Report {
    pub fn json(&self) -> Result<String, String> {
        serde_json::to_string_pretty(self).map_err(|e| format!("cannot write JSON: {e}"))
    }

    pub fn table(&self) -> String {
        let mut rows: Vec<(&str, String)> = Vec::new();
        let pace = match self.rate {
            Some(r) => format!("{} lines/s", num(r)),
            None => "flat out".into(),
        };
        rows.push((
            "clients",
            format!(
                "{} ({} senders x {} lines, {pace}, {}-byte lines)",
                self.clients, self.senders, self.messages_per_sender, self.size
            ),
        ));
        if self.rooms > 1 {
            rows.push((
                "rooms",
                format!(
                    "{} ({} clients in the busy room, the rest in {} quiet rooms)",
                    self.rooms,
                    self.busy_room_clients,
                    self.rooms - 1
                ),
            ));
        }
        rows.push((
            "server",
            format!("{} ({}, {})", self.addr, self.server, self.proto),
        ));
        rows.push((
            "connect time",
            format!("{:.2} s (all logged in)", self.connect_seconds),
        ));
        rows.push(("messages sent", self.messages_sent.to_string()));
        rows.push(("deliveries expected", self.deliveries_expected.to_string()));
        rows.push(("deliveries received", self.deliveries_received.to_string()));
        rows.push(("completeness", format!("{:.4}", self.completeness)));
        rows.push(("message time", format!("{:.2} s", self.message_seconds)));
        rows.push(("deliveries/s", num(self.deliveries_per_second)));
        rows.push(("messages/s", num(self.messages_per_second)));
        rows.push(("latency p50", ms(self.latency_p50_ms)));
        rows.push(("latency p90", ms(self.latency_p90_ms)));
        rows.push(("latency p99", ms(self.latency_p99_ms)));
        rows.push(("latency max", ms(self.latency_max_ms)));
        rows.push(("out of order", self.out_of_order.to_string()));
        if self.rooms > 1 {
            rows.push(("misrouted", self.misrouted.to_string()));
        }
        rows.push(("disconnected", self.disconnected.to_string()));
        if let Some(pid) = self.server_pid {
            let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            rows.push(("server pid", pid.to_string()));
            rows.push((
                "server CPU",
                opt(self
                    .server_cpu_seconds
                    .map(|s| format!("{s:.2} s (message phase)"))),
            ));
            rows.push((
                "server CPU/delivery",
                opt(self
                    .server_cpu_us_per_delivery
                    .map(|u| format!("{u:.2} µs"))),
            ));
            rows.push((
                "server RSS empty",
                opt(self.server_rss_empty_bytes.map(mib)),
            ));
            rows.push(("server RSS idle", opt(self.server_rss_idle_bytes.map(mib))));
            rows.push((
                "RSS per client",
                opt(self
                    .server_rss_per_client_bytes
                    .map(|b| format!("{:.1} KiB", b as f64 / 1024.0))),
            ));
            rows.push(("server RSS peak", opt(self.server_rss_peak_bytes.map(mib))));
            rows.push(("server RSS at end", opt(self.server_rss_end_bytes.map(mib))));
            rows.push((
                "server threads",
                opt(self.server_threads.map(|t| t.to_string())),
            ));
            rows.push((
                "server open fds",
                opt(self.server_open_fds.map(|t| t.to_string())),
            ));
            rows.push((
                "after clients left",
                match (
                    self.server_rss_after_bytes,
                    self.server_threads_after,
                    self.server_open_fds_after,
                ) {
                    (Some(rss), Some(t), Some(f)) => {
                        format!("RSS {}, {t} threads, {f} fds", mib(rss))
                    }
                    _ => "-".into(),
                },
            ));
        }
        rows.push((
            "bench CPU",
            format!("{:.2} s (message phase)", self.bench_cpu_seconds),
        ));
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        out
    }
}

/// Milliseconds with sensible precision.
pub(super) fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.3} ms")
    } else {
        format!("{v:.1} ms")
    }
}

pub(super) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A count with thousands separators: 1,234,567.
pub(super) fn num(v: f64) -> String {
    let whole = v.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(1234567.4), "1,234,567");
        assert_eq!(num(999.0), "999");
        assert_eq!(ms(1.23456), "1.235 ms");
        assert_eq!(ms(123.456), "123.5 ms");
        assert_eq!(mib(3 * 1024 * 1024), "3.0 MiB");
    }
}
