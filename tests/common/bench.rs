//! Running `besedka bench` from a test (tests/bench.rs, tests/bench_irc.rs): bounded, its
//! output kept, its report read.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::bin;

/// A bench run may take this long at most, here.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Runs `besedka bench ARGS` (bounded); returns its exit code, stdout and stderr.
pub fn bench(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(bin())
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn besedka bench");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bench {args:?} ran over {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), out.join().unwrap(), err.join().unwrap())
}

/// Runs a bench with `--json` and checks it succeeded; returns the report.
pub fn bench_json(args: &[&str]) -> Value {
    let (code, out, err) = bench(&[args, &["--json"]].concat());
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Every line arrived, once, in order.
pub fn assert_complete(r: &Value, senders: u64, messages: u64, clients: u64) {
    let expected = senders * messages * (clients - 1);
    assert_eq!(r["deliveries_expected"], expected, "{r}");
    assert_eq!(r["deliveries_received"], expected, "{r}");
    assert_eq!(r["completeness"].as_f64(), Some(1.0), "{r}");
    assert_eq!(r["out_of_order"], 0, "{r}");
    assert_eq!(r["disconnected"], 0, "{r}");
    assert_eq!(r["messages_sent"], senders * messages, "{r}");
    let p50 = r["latency_p50_ms"].as_f64().unwrap();
    let max = r["latency_max_ms"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= max, "{r}");
}
