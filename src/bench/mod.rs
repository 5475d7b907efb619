//! `besedka bench`: a load generator that measures a server from the outside.
//!
//! N clients log in as `bench1..benchN`; the first S of them each send M lines; everyone reads
//! everything. They speak besedka's line protocol, or IRC (`--proto irc`) to besedka's IRC
//! listener or to ngircd (`--server`), which the same code measures. Each line carries its sender, a sequence number and its send time on the
//! bench's own clock, so each receiver can tell latency, loss and order without any help from
//! the server. With `--spawn` (or `--pid`) the server's process is measured too.
//!
//! - [`driver`] — all sockets on one thread with `polling`: connect, log in, send, read;
//! - [`client`] — one connection: its bytes, its lines, the counting of bench lines;
//! - [`telnet`] — the line protocol: the login dialogue, bench lines in chat lines;
//! - [`irc`] — the same over IRC: registration, `JOIN`, bench lines in `PRIVMSG`s;
//! - [`messages`] — the message phase: pacing, the window, the end;
//! - [`line`] — the bench line's format;
//! - [`target`] — the server of a run: where, who logs in how, which process;
//! - [`spawn`] — the temporary server of `--spawn`; [`ngircd`] — a temporary ngircd;
//! - [`accounts`] — the accounts and the `--tokens` file on a server started elsewhere;
//! - [`procfs`] — CPU and memory from `/proc`;
//! - [`stats`] — counts and the latency histogram;
//! - [`report`] — the table and the JSON; [`runs`] — several runs, their medians side by side.

mod accounts;
mod args;
mod client;
mod driver;
mod irc;
mod line;
mod messages;
mod ngircd;
mod procfs;
mod report;
mod runs;
mod spawn;
mod stats;
mod target;
mod telnet;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use signal_hook::consts::{SIGINT, SIGTERM};

pub use args::BenchArgs;
use args::{Proto, Server};
use driver::Driver;
use messages::Load;
use report::Report;
use target::{target, Target};

/// The busy room: where everyone is with `--rooms 1`, and the senders always.
const LOBBY: &str = "#lobby";

/// Raises this process's open-files limit as far as allowed; each client is a socket.
fn raise_nofile(clients: u32) -> Result<(), String> {
    let need = u64::from(clients) + 64;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit >= need => Ok(()),
        Ok(limit) => Err(format!(
            "{clients} clients need about {need} open files, but the limit is {limit} (raise the hard limit: ulimit -Hn)"
        )),
        Err(e) => Err(format!("cannot raise the open-files limit: {e}")),
    }
}

fn bar(len: u64, prefix: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:>10} [{wide_bar}] {human_pos}/{human_len} {msg} {elapsed}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.with_prefix(prefix)
}

/// The most the server's process was seen with during the message phase.
#[derive(Default)]
struct Peak {
    threads: u64,
    fds: u64,
}

fn sample(pid: Option<u32>) -> Result<Option<procfs::Sample>, String> {
    pid.map(|pid| {
        procfs::sample(pid)
            .map_err(|e| format!("cannot read /proc/{pid} (the server's process): {e}"))
    })
    .transpose()
}

/// Runs the bench and prints its report: one run's, or with `--runs` or `--server both` each
/// run's line and the medians.
pub fn run(args: BenchArgs) -> Result<(), String> {
    let proto = args.check()?;
    raise_nofile(args.clients)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register(sig, interrupted.clone())
            .map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    let servers = match args.server {
        Server::Both => vec![Server::Besedka, Server::Ngircd],
        one => vec![one],
    };
    if servers.len() == 1 && args.runs == 1 {
        let (report, stopped) = once(&args, servers[0], proto, &interrupted)?;
        let out = if args.json {
            report.json()?
        } else {
            report.table()
        };
        println!("{}", out.trim_end());
        return stopped;
    }
    // Alternating, so both servers meet the same spells of a busy machine.
    let mut reports = Vec::new();
    for i in 1..=args.runs {
        for &server in &servers {
            let (report, stopped) = once(&args, server, proto, &interrupted)?;
            stopped?;
            eprintln!("run {i}/{}: {}", args.runs, runs::summary(&report));
            reports.push(report);
        }
    }
    let out = if args.json {
        runs::json(&reports)?
    } else {
        runs::table(&reports)
    };
    println!("{}", out.trim_end());
    Ok(())
}

/// One run against `server`: start it if asked, measure, stop it. A server that would not
/// stop is an error beside the report.
fn once(
    args: &BenchArgs,
    server: Server,
    proto: Proto,
    interrupted: &Arc<AtomicBool>,
) -> Result<(Report, Result<(), String>), String> {
    let clock = Instant::now();
    let run_id = uuid::Uuid::new_v4().as_u128() as u32;
    let mut target = target(args, server, proto)?;
    let result = measure(args, &mut target, clock, run_id, proto, interrupted.clone());
    // A server that died explains the failure better than a client's closed connection.
    let result = match (result, target.spawned.as_mut()) {
        (Err(e), Some(server)) => Err(server.explain(e)),
        (r, _) => r,
    };
    let stopped = target.spawned.as_mut().map_or(Ok(()), |s| s.stop());
    let mut report = result.map_err(|e| {
        if args.spawn || !e.contains("the server said") {
            return e;
        }
        format!(
            "{e}\n(a server under a load test needs --allow-ip for this address and --max-rate \
             and --max-clients high enough: see `besedka serve --help`)"
        )
    })?;
    report.server = match server {
        Server::Ngircd => "ngircd",
        _ => "besedka",
    }
    .into();
    report.proto = match proto {
        Proto::Line => "line",
        Proto::Irc => "irc",
    }
    .into();
    Ok((report, stopped))
}

fn measure(
    args: &BenchArgs,
    target: &mut Target,
    clock: Instant,
    run_id: u32,
    proto: Proto,
    interrupted: Arc<AtomicBool>,
) -> Result<Report, String> {
    let n = u64::from(args.clients);
    let empty = sample(target.pid)?;
    let mut driver = Driver::new(
        target.addrs.clone(),
        clock,
        args.password.clone(),
        run_id,
        interrupted,
    )
    .map_err(|e| format!("cannot set up the poller: {e}"))?;

    // The room plan: the senders and every Kth client in the busy room.
    let rooms = args.rooms as usize;
    let mut audience = 0;
    for (i, plan) in target.plans.iter_mut().enumerate() {
        plan.room = if rooms <= 1 || i < args.senders as usize || i % rooms == 0 {
            audience += 1;
            LOBBY.to_string()
        } else {
            format!("#{}room{}", args.prefix, i % rooms + 1)
        };
    }
    let connecting = bar(n, "login");
    let started = Instant::now();
    driver.connect(
        std::mem::take(&mut target.plans),
        args.connect_batch(),
        &connecting,
    )?;
    let connect_seconds = started.elapsed().as_secs_f64();
    connecting.finish_and_clear();
    if let Some((path, known)) = target.tokens.take() {
        accounts::save(&path, known, &driver.clients)?;
    }
    driver.settle(Duration::from_millis(300), Duration::from_secs(5))?;
    let idle = sample(target.pid)?;

    let load = Load {
        senders: args.senders as usize,
        messages: args.messages,
        rate: args.rate,
        size: args.size as usize,
        prefix: match proto {
            Proto::Line => Vec::new(),
            Proto::Irc => irc::privmsg_prefix(LOBBY),
        },
        window: args.window,
        audience,
    };
    let expected =
        u64::from(args.senders) * u64::from(args.messages) * (audience as u64).saturating_sub(1);
    let sending = bar(expected, "deliveries");
    let bench_before = procfs::sample(std::process::id()).unwrap_or_default();
    let mut peak = Peak::default();
    let mut watch = |s: &procfs::Sample| {
        peak.threads = peak.threads.max(s.threads);
        peak.fds = peak.fds.max(s.open_fds);
    };
    if let Some(s) = &idle {
        watch(s);
    }
    let pid = target.pid;
    let mut tick = || {
        if let Some(s) = pid.and_then(|pid| procfs::sample(pid).ok()) {
            watch(&s);
        }
    };
    let outcome = driver.run(&load, &sending, &mut tick)?;
    let end = sample(target.pid)?;
    let bench_after = procfs::sample(std::process::id()).unwrap_or_default();
    sending.finish_and_clear();
    if let Some(s) = &end {
        watch(&s.clone());
    }

    let t = &driver.tally;
    let last_ns = if t.last_ns > outcome.start_ns {
        t.last_ns
    } else {
        driver_now(clock)
    };
    let message_seconds = (last_ns.saturating_sub(outcome.start_ns)) as f64 / 1e9;
    let ms = |ns: u64| round(ns as f64 / 1e6, 3);
    if outcome.stalled {
        eprintln!(
            "besedka bench: nothing was delivered for {} s; stopped with {} of {expected} deliveries",
            messages::STALL.as_secs(),
            t.received
        );
    }
    if let Some(why) = &outcome.first_disconnect {
        eprintln!(
            "besedka bench: {} client(s) disconnected; first: {why}",
            outcome.disconnected
        );
    }
    if let Some(e) = &t.first_error {
        eprintln!(
            "besedka bench: the server answered {} line(s) with an error; first: {e}",
            t.errors
        );
    }
    if t.own_lines > 0 {
        eprintln!(
            "besedka bench: senders received {} of their own lines back",
            t.own_lines
        );
    }
    let per_client = match (&empty, &idle) {
        (Some(e), Some(i)) if n > 0 => Some(i.rss.saturating_sub(e.rss) / n),
        _ => None,
    };
    let cpu = match (&idle, &end) {
        (Some(a), Some(b)) => Some(b.cpu_seconds - a.cpu_seconds),
        _ => None,
    };
    let mut report = Report {
        addr: target
            .addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(","),
        spawned: target.spawned.is_some(),
        server: String::new(),
        proto: String::new(),
        clients: n,
        rooms: u64::from(args.rooms),
        busy_room_clients: audience as u64,
        senders: u64::from(args.senders),
        messages_per_sender: u64::from(args.messages),
        rate: args.rate,
        size: u64::from(args.size),
        connect_seconds: round(connect_seconds, 3),
        messages_sent: outcome.sent,
        deliveries_expected: expected,
        deliveries_received: t.received,
        completeness: if expected == 0 {
            1.0
        } else {
            t.received as f64 / expected as f64
        },
        message_seconds: round(message_seconds, 3),
        messages_per_second: if message_seconds > 0.0 {
            round(outcome.sent as f64 / message_seconds, 1)
        } else {
            0.0
        },
        deliveries_per_second: if message_seconds > 0.0 {
            round(t.received as f64 / message_seconds, 1)
        } else {
            0.0
        },
        latency_p50_ms: ms(t.latency.quantile(0.50)),
        latency_p90_ms: ms(t.latency.quantile(0.90)),
        latency_p99_ms: ms(t.latency.quantile(0.99)),
        latency_max_ms: ms(t.latency.max()),
        out_of_order: t.out_of_order,
        misrouted: t.misrouted,
        disconnected: outcome.disconnected,
        stalled: outcome.stalled,
        bench_cpu_seconds: round(bench_after.cpu_seconds - bench_before.cpu_seconds, 2),
        server_pid: target.pid,
        server_cpu_seconds: cpu.map(|c| round(c, 2)),
        server_cpu_us_per_delivery: cpu
            .filter(|_| t.received > 0)
            .map(|c| round(c * 1e6 / t.received as f64, 3)),
        server_rss_empty_bytes: empty.map(|s| s.rss),
        server_rss_idle_bytes: idle.map(|s| s.rss),
        server_rss_per_client_bytes: per_client,
        server_rss_peak_bytes: end.map(|s| s.rss_peak),
        server_rss_end_bytes: end.map(|s| s.rss),
        server_threads: target.pid.map(|_| peak.threads),
        server_open_fds: target.pid.map(|_| peak.fds),
        server_rss_after_bytes: None,
        server_threads_after: None,
        server_open_fds_after: None,
    };
    // Every client leaves; does the server give back what they cost?
    drop(driver);
    if target.pid.is_some() {
        std::thread::sleep(LINGER);
        if let Some(s) = sample(target.pid)? {
            report.server_rss_after_bytes = Some(s.rss);
            report.server_threads_after = Some(s.threads);
            report.server_open_fds_after = Some(s.open_fds);
        }
    }
    Ok(report)
}

/// How long after the clients left the server is measured again: a spawned server's idle
/// workers end after 2 s (`--worker-idle`), and its janitor gives freed memory back every 2 s.
pub const LINGER: Duration = Duration::from_secs(5);

/// `v` to `digits` decimals, so the JSON shows 0.23, not 0.22999999999999998.
fn round(v: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

fn driver_now(clock: Instant) -> u64 {
    clock.elapsed().as_nanos() as u64
}
