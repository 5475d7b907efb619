//! Several runs (`--runs N`, `--server both`): a line per run on standard error as it ends,
//! then the median of each figure per server, side by side. Medians, because on a shared
//! machine one run in a few meets another program's burst.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::report::{mib, ms, num, Report};

/// One run in a line: what a person watching needs to see that it went well.
pub fn summary(r: &Report) -> String {
    let cpu = r
        .server_cpu_us_per_delivery
        .map_or_else(String::new, |u| format!(", {u:.3} µs server CPU/delivery"));
    format!(
        "{} ({}): {} deliveries/s, p50 {}, p99 {}{cpu}, completeness {:.4}",
        r.server,
        r.proto,
        num(r.deliveries_per_second),
        ms(r.latency_p50_ms),
        ms(r.latency_p99_ms),
        r.completeness
    )
}

/// The servers in the order they first ran.
fn servers(reports: &[Report]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in reports {
        if !out.contains(&r.server) {
            out.push(r.server.clone());
        }
    }
    out
}

/// The median of each numeric field over one server's runs (absent where no run has it).
fn medians(reports: &[Report], server: &str) -> Map<String, Value> {
    let values: Vec<Value> = reports
        .iter()
        .filter(|r| r.server == server)
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    let mut out = Map::new();
    out.insert("runs".into(), values.len().into());
    let Some(Value::Object(first)) = values.first() else {
        return out;
    };
    for key in first.keys() {
        let mut xs: Vec<f64> = values.iter().filter_map(|v| v[key].as_f64()).collect();
        if xs.is_empty() || key == "server_pid" {
            continue;
        }
        xs.sort_by(f64::total_cmp);
        let mid = xs.len() / 2;
        let median = if xs.len() % 2 == 1 {
            xs[mid]
        } else {
            (xs[mid - 1] + xs[mid]) / 2.0
        };
        if let Some(n) = serde_json::Number::from_f64(median) {
            out.insert(key.clone(), Value::Number(n));
        }
    }
    out
}

/// `{"runs": [each report], "medians": {"besedka": {…}, "ngircd": {…}}}`.
pub fn json(reports: &[Report]) -> Result<String, String> {
    let mut all = Map::new();
    for server in servers(reports) {
        let m = medians(reports, &server);
        all.insert(server, Value::Object(m));
    }
    let out = serde_json::json!({ "runs": reports, "medians": all });
    serde_json::to_string_pretty(&out).map_err(|e| format!("cannot write JSON: {e}"))
}

/// The medians as a table, a column per server.
pub fn table(reports: &[Report]) -> String {
    let names = servers(reports);
    let cols: Vec<Map<String, Value>> = names.iter().map(|s| medians(reports, s)).collect();
    type Shown = fn(f64) -> String;
    let rows: [(&str, &str, Shown); 12] = [
        ("runs", "runs", |v| format!("{v}")),
        ("connect time", "connect_seconds", |v| format!("{v:.2} s")),
        ("completeness", "completeness", |v| format!("{v:.4}")),
        ("deliveries/s", "deliveries_per_second", num),
        ("messages/s", "messages_per_second", num),
        ("latency p50", "latency_p50_ms", ms),
        ("latency p99", "latency_p99_ms", ms),
        ("server CPU/delivery", "server_cpu_us_per_delivery", |v| {
            format!("{v:.3} µs")
        }),
        ("server RSS empty", "server_rss_empty_bytes", |v| {
            mib(v as u64)
        }),
        ("RSS per client", "server_rss_per_client_bytes", |v| {
            format!("{:.1} KiB", v / 1024.0)
        }),
        (
            "server RSS peak",
            "server_rss_peak_bytes",
            |v| mib(v as u64),
        ),
        ("bench CPU", "bench_cpu_seconds", |v| format!("{v:.2} s")),
    ];
    let mut lines: Vec<Vec<String>> = Vec::new();
    let mut head = vec!["median of each".to_string()];
    head.extend(names.iter().cloned());
    lines.push(head);
    for (label, key, shown) in rows {
        let mut line = vec![label.to_string()];
        for c in &cols {
            line.push(c.get(key).and_then(Value::as_f64).map_or("-".into(), shown));
        }
        lines.push(line);
    }
    let mut width = vec![0; names.len() + 1];
    for line in &lines {
        for (w, cell) in width.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    if let Some(r) = reports.first() {
        let pace = r
            .rate
            .map_or("flat out".into(), |r| format!("{} lines/s", num(r)));
        let _ = writeln!(
            out,
            "{} clients ({} senders x {} lines, {pace}, {}-byte lines), over {}",
            r.clients, r.senders, r.messages_per_sender, r.size, r.proto
        );
    }
    for line in lines {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(&width).enumerate() {
            let pad = w - cell.chars().count();
            if i == 0 {
                let _ = write!(text, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(text, "  {}{cell}", " ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    }
    out
}
