//! `besedka serve`: its options, starting the server, and the control loop (console lines,
//! signals, a fatal error) on the main thread.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::{parse_duration, parse_net};
use besedka::console::{Console, Outcome};
use besedka::server::limits::Rules;
use besedka::server::{self, Config, Keepalive};
use besedka::store::retention::Policy;
use besedka::store::{self, Store};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The ways in: each one's options (`--addr`, `--tls-addr`, `--ssh-addr`, `--web-addr`,
    /// …), declared by the way itself.
    #[command(flatten)]
    pub ways: besedka::server::transport::Options,
    /// Most users logged in at once; more are told the server is full.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_clients: u32,
    /// Most connections not logged in yet, at once (default: a quarter of --max-clients, at
    /// least 16). When they are all taken, a newcomer still gets in: the oldest of the address
    /// holding the most is dropped.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_pending: Option<u32>,
    /// Most connections not logged in yet, at once, from one address (IPv6: one /64).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pending_per_ip: u32,
    /// A proxy or load balancer (address or CIDR range, repeatable) whose PROXY protocol
    /// header, and on the web listener X-Forwarded-For or Forwarded, says the client's real
    /// address. A PROXY header from anywhere else closes the connection.
    #[arg(long, value_parser = parse_net)]
    pub trusted_proxy: Vec<ipnet::IpNet>,
    /// Messages replayed to a user at login.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=500))]
    pub history: u32,
    /// Days a session token stays valid.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub token_ttl_days: u32,
    /// Longest input line, in bytes; longer lines are refused.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    pub max_line: u32,
    /// Unsent bytes a client may fall behind by before it is disconnected.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u32).range(4096..))]
    pub max_backlog: u32,
    /// A client with unsent lines that takes none of them for this long is disconnected.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub send_timeout: Duration,
    /// When a message is on the disk: full (before anyone sees it; survives power loss) or
    /// normal (survives a crash of the server, not of the machine; faster).
    #[arg(long, default_value = "full")]
    pub sync: besedka::store::Durability,
    /// How long an idle session thread waits for a new client before it ends.
    #[arg(long, default_value = "10s", value_parser = parse_duration, hide = true)]
    pub worker_idle: Duration,
    /// Seconds a new connection has to log in.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_timeout: u32,
    /// Lines per second one user may send, all their sessions together (bursts of twice
    /// that pass at once); also paces each connection before login.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rate: u32,
    /// Connections at once from one address (IPv6: one /64).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_per_ip: u32,
    /// New connections a minute from one address.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_rate: u32,
    /// An address or CIDR range exempt from the per-address limits (repeatable): a bouncer,
    /// a web gateway.
    #[arg(long, value_parser = parse_net)]
    pub allow_ip: Vec<ipnet::IpNet>,
    /// Failed logins for one account within --failed-login-window before it is locked.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_failed_logins: u32,
    /// Failed logins (wrong passwords, unknown names, bad tokens) from one address within
    /// --failed-login-window before it is locked.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_failed_logins_per_ip: u32,
    /// The window failed logins are counted in (and so the longest lock).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub failed_login_window: Duration,
    /// New accounts an hour from one address.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub register_rate: u32,
    /// Turn registration off: only `besedka useradd` creates accounts.
    #[arg(long)]
    pub no_register: bool,
    /// Sessions at once for one user.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions_per_user: u32,
    /// A logged-in connection silent this long is disconnected (e.g. 1h); off by default.
    #[arg(long, value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// TCP keepalive: silence before the first probe.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub keepalive_idle: Duration,
    /// TCP keepalive: time between probes.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub keepalive_interval: Duration,
    /// TCP keepalive: unanswered probes before the connection is dropped.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=127))]
    pub keepalive_probes: u32,
    /// Delete messages older than this many days (off by default: keep everything).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub retain_days: Option<u32>,
    /// Keep only the newest this many messages (off by default). The last --history public
    /// messages are always kept.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub retain_messages: Option<u64>,
    /// Don't offer telnet options at connect (for raw-socket deployments).
    #[arg(long)]
    pub no_telnet: bool,
    /// Also append log records to this file.
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Where the server keeps what it makes for itself between runs (the SSH host key).
    /// Default: the database file's directory (for a PostgreSQL URL, the working directory),
    /// never wherever `serve` happens to be started.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Don't read console commands from standard input.
    #[arg(long)]
    pub no_console: bool,
    /// Open the database even if other users of this machine can read or write it (its
    /// file, WAL or shared-memory file); without this, serve refuses to.
    #[arg(
        long,
        env = "BESEDKA_ALLOW_SHARED_DB",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub allow_shared_db: bool,
}

/// `30m`, `2h`, `10s`, `1h30m`.
/// What wakes the control thread (this one, the main thread).
enum Control {
    Line(String),
    /// Standard input ended: the server carries on without a console.
    Eof,
    Signal(i32),
    /// The server cannot go on (its hub panicked).
    Fatal(String),
}

pub fn serve(db: &Path, level: log::LevelFilter, args: ServeArgs) -> Result<(), String> {
    // Each client holds a socket; the default soft limit (often 1024) would cap the server
    // below --max-clients.
    let nofile = rlimit::increase_nofile_limit(u64::MAX);
    besedka::memory::return_large_blocks();
    if !args.allow_shared_db {
        besedka::private_files::refuse_shared_db(db)?;
    }
    let store = Store::open_with(db, args.sync)
        .map_err(|e| format!("cannot open database {}: {e}", store::shown(db)))?;
    let state = args.state_dir.clone().unwrap_or_else(|| {
        let dir = db.parent().filter(|d| !d.as_os_str().is_empty());
        match dir {
            Some(d) if !store::is_url(db) => d.to_path_buf(),
            _ => PathBuf::from("."),
        }
    });
    let listeners = args.ways.bind(&state)?;
    let sink = besedka::logging::init(level, args.log_file.as_deref(), Some(&store))?;
    if let Err(e) = nofile {
        log::warn!("cannot raise the open-files limit: {e}");
    }
    let config = Config {
        max_clients: args.max_clients as usize,
        max_pending: args
            .max_pending
            .map_or((args.max_clients as usize / 4).max(16), |n| n as usize),
        max_pending_per_ip: args.max_pending_per_ip as usize,
        trusted_proxies: args.trusted_proxy.clone(),
        history: args.history,
        token_ttl_days: args.token_ttl_days,
        max_line: args.max_line as usize,
        telnet: !args.no_telnet,
        max_backlog: args.max_backlog as usize,
        send_timeout: args.send_timeout,
        worker_idle: args.worker_idle,
        login_timeout: Duration::from_secs(args.login_timeout.into()),
        limits: Rules {
            max_per_ip: args.max_per_ip as usize,
            connect_rate: args.connect_rate,
            max_failures_per_user: args.max_failed_logins,
            max_failures_per_ip: args.max_failed_logins_per_ip,
            window: args.failed_login_window,
            register_rate: args.register_rate,
            max_sessions_per_user: args.max_sessions_per_user as usize,
            max_rate: args.max_rate,
            allow: args.allow_ip.clone(),
        },
        no_register: args.no_register,
        keepalive: Keepalive {
            idle: args.keepalive_idle,
            interval: args.keepalive_interval,
            probes: args.keepalive_probes,
        },
        idle_timeout: args.idle_timeout,
        retention: Policy {
            days: args.retain_days,
            messages: args.retain_messages,
            keep_public: args.history,
        },
        faults: std::env::var_os("BESEDKA_FAULTS").is_some_and(|v| v == "1"),
    };
    // Before the server takes its first connection: the handler needs a pipe, and a flood of
    // connections at start could otherwise take the last descriptors first and stop the
    // server (seen when the open-files limit was low).
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).map_err(|e| format!("cannot handle signals: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let on_fatal = {
        let tx = tx.clone();
        move |why| {
            let _ = tx.send(Control::Fatal(why));
        }
    };
    let server =
        Arc::new(server::start(listeners, store, config, on_fatal).map_err(|e| e.to_string())?);
    let on = server
        .listening()
        .iter()
        .map(|(name, addr)| format!("{addr} ({name})"))
        .collect::<Vec<_>>()
        .join(", ");
    // A PostgreSQL URL's password is a secret: shown nowhere.
    let shown = store::shown(db);
    println!("besedka listening on {on} (db: {shown})");
    let _ = io::stdout().flush();
    log::info!("listening on {on}, database {shown}");

    let signal_handle = signals.handle();
    let signal_thread = {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    let _ = tx.send(Control::Signal(sig));
                }
            })
            .map_err(|e| e.to_string())?
    };
    // On a terminal, a prompt: its thread waits for each command's answer (`done`) before
    // it shows the next prompt. Dropped at the end, `_terminal` gives the terminal back.
    let (done, answered) = mpsc::channel::<()>();
    let prompt = (!args.no_console)
        .then(|| besedka::console::prompt::open(server.clone(), &state))
        .flatten();
    let _terminal = match prompt {
        Some((prompt, terminal)) => {
            let tx = tx.clone();
            std::thread::Builder::new()
                .name("console".into())
                .spawn(move || {
                    prompt.run(|line| {
                        tx.send(Control::Line(line)).is_ok() && answered.recv().is_ok()
                    });
                    let _ = tx.send(Control::Eof);
                })
                .map_err(|e| e.to_string())?;
            Some(terminal)
        }
        None => None,
    };
    if !args.no_console && _terminal.is_none() {
        // A blocked read of standard input cannot be interrupted, so it happens on its own
        // thread, which is not joined: it ends with the process. Commands run here.
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                for line in io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if tx.send(Control::Line(line)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Control::Eof);
            })
            .map_err(|e| e.to_string())?;
    }

    let console = Console {
        server: &server,
        log_file: args.log_file.as_deref(),
        sink: sink.as_deref(),
    };
    let out = &mut io::stdout();
    let mut failure = None;
    while let Ok(control) = rx.recv() {
        match control {
            Control::Line(line) => {
                match console.execute(&line, out) {
                    Ok(Outcome::Shutdown) => break,
                    Ok(Outcome::Continue) => {}
                    Err(e) => log::warn!("console output failed: {e}"),
                }
                let _ = done.send(());
            }
            Control::Eof => log::info!("console input closed; serving on (stop with SIGTERM)"),
            Control::Signal(sig) => {
                log::info!("signal {sig} received: shutting down");
                break;
            }
            Control::Fatal(why) => {
                failure = Some(why);
                break;
            }
        }
    }
    server.shutdown();
    signal_handle.close();
    let _ = signal_thread.join();
    if let Some(sink) = sink {
        sink.close();
    }
    failure.map_or(Ok(()), Err)
}
