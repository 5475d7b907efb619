//! The command line: one function per subcommand.
//!
//! Exit codes: 0 done, 1 runtime error (a one-line message on standard error), 2 usage
//! error (clap's).

use std::io::{self, BufRead, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::console::{self, Console, Outcome};
use crate::server::limits::Rules;
use crate::server::{self, Config, Keepalive};
use crate::store::retention::Policy;
use crate::store::{logs, messages, users, Store};

#[derive(Parser, Debug)]
#[command(
    name = "besedka",
    version,
    about = "A chat server for telnet and nc clients, kept in one SQLite file."
)]
pub struct Cli {
    /// The SQLite database file (created if missing).
    #[arg(long, global = true, env = "BESEDKA_DB", default_value = "besedka.db")]
    pub db: PathBuf,
    /// Log level on standard error: error, warn, info, debug, trace or off.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: log::LevelFilter,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the chat server; its standard input is the operator console.
    Serve(Box<ServeArgs>),
    /// Delete every user and token (history stays); prints the counts.
    PurgeAuth,
    /// Delete every log record; prints the count.
    ClearLogs,
    /// Show the last log records, oldest first.
    Logs {
        /// How many records.
        #[arg(short, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        n: u32,
        /// Only records at this level or more severe (error, warn, info, debug, trace).
        #[arg(long)]
        level: Option<log::Level>,
    },
    /// List users: name, created, token count.
    Users,
    /// Create an account (for --no-register servers); the password is read from standard
    /// input, or asked for without echo on a terminal.
    Useradd {
        /// The new user's name.
        name: String,
    },
    /// Ban a user, an address or a CIDR range (a running server applies it within seconds).
    Ban {
        /// A name, an address (203.0.113.7) or a range (203.0.113.0/24).
        target: String,
        /// How long (30m, 2h, 7d) and why: `ban bob 1h spam`. Forever without a duration.
        #[arg(trailing_var_arg = true)]
        rest: Vec<String>,
    },
    /// Lift a ban.
    Unban { target: String },
    /// List bans and mutes in force, with the time left.
    Bans,
    /// Mute a user: they may read but not speak.
    Mute {
        name: String,
        /// How long (30m, 2h, 7d) and why. Forever without a duration.
        #[arg(trailing_var_arg = true)]
        rest: Vec<String>,
    },
    /// Let a muted user speak again.
    Unmute { name: String },
    /// Make a user an operator.
    Op { name: String },
    /// Take a user's operator status away.
    Deop { name: String },
    /// Show the last messages, private ones included, oldest first.
    History {
        /// How many messages.
        #[arg(short, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        n: u32,
    },
    /// Write a self-signed TLS certificate and key (cert.pem, key.pem) for trying --tls-addr.
    GenCert {
        /// The host name clients connect to (the certificate's subject).
        #[arg(long)]
        host: String,
        /// The directory to write them into (created if missing; existing files are kept).
        #[arg(long)]
        out: PathBuf,
    },
    /// The lab's echo server: one thread per client.
    Echo {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:7778")]
        addr: String,
        /// Most clients served at once.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
        max_clients: u32,
    },
    /// Load-test a server: N clients log in, S of them send, all read; prints latency,
    /// throughput and (with --spawn or --pid) the server's CPU and memory.
    Bench(crate::bench::BenchArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7777")]
    pub addr: String,
    /// Most clients served at once; more are told the server is full.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_clients: u32,
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
    pub sync: crate::store::Durability,
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
    /// Also listen for TLS connections here (the telnet/nc protocol inside TLS), e.g.
    /// 0.0.0.0:7443; needs --tls-cert and --tls-key.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    pub tls_addr: Option<String>,
    /// The TLS certificate chain (PEM); `besedka gen-cert` makes a self-signed one.
    #[arg(long, requires = "tls_addr")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM).
    #[arg(long, requires = "tls_addr")]
    pub tls_key: Option<PathBuf>,
    /// Also listen for SSH connections here, e.g. 0.0.0.0:2222.
    #[arg(long)]
    pub ssh_addr: Option<String>,
    /// The SSH host key (OpenSSH format); made (ed25519) and stored there if missing.
    #[arg(long, default_value = "besedka_ssh_host_ed25519_key")]
    pub ssh_host_key: PathBuf,
    /// Don't read console commands from standard input.
    #[arg(long)]
    pub no_console: bool,
}

/// `30m`, `2h`, `10s`, `1h30m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be more than 0".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write e.g. 30s, 10m, 2h)")),
    }
}

fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    server::moderation::parse_net(s)
        .ok_or_else(|| format!("{s:?} is not an address or a CIDR range"))
}

/// Runs the parsed command line; the error is the one-line message for exit code 1.
pub fn run(cli: Cli) -> Result<(), String> {
    if let Command::Serve(args) = cli.command {
        return serve(&cli.db, cli.log_level, *args);
    }
    if let Command::Bench(args) = cli.command {
        return crate::bench::run(args);
    }
    if let Command::GenCert { host, out } = &cli.command {
        let (cert, key) = crate::server::transport::tls::generate(host, out)?;
        println!(
            "Wrote {} and {} (self-signed, for {host}).",
            cert.display(),
            key.display()
        );
        return Ok(());
    }
    crate::logging::init(cli.log_level, None, None)?;
    if let Command::Echo { addr, max_clients } = &cli.command {
        return echo(addr, *max_clients);
    }
    let store = Store::open(&cli.db)
        .map_err(|e| format!("cannot open database {}: {e}", cli.db.display()))?;
    let db = store.conn().map_err(|e| e.to_string())?;
    let out = &mut io::stdout().lock();
    let done = match cli.command {
        Command::Serve(_) | Command::Echo { .. } | Command::Bench(_) | Command::GenCert { .. } => {
            unreachable!("handled above")
        }
        Command::Useradd { name } => {
            let password = crate::admin::read_new_password()?;
            let user = crate::admin::useradd(&db, &name, &password)?;
            writeln!(out, "Created user {}.", user.name)
        }
        Command::Ban { target, rest } => {
            let text = crate::admin::ban(&db, &target, &rest.join(" "))?;
            writeln!(out, "{text}")
        }
        Command::Unban { target } => {
            let text = crate::admin::unban(&db, &target)?;
            writeln!(out, "{text}")
        }
        Command::Bans => {
            let list = crate::store::bans::active(&db).map_err(|e| e.to_string())?;
            console::print_bans(&list, out)
        }
        Command::Mute { name, rest } => {
            let text = crate::admin::mute(&db, &name, &rest.join(" "))?;
            writeln!(out, "{text}")
        }
        Command::Unmute { name } => {
            let text = crate::admin::unmute(&db, &name)?;
            writeln!(out, "{text}")
        }
        Command::Op { name } => {
            let text = crate::admin::set_op(&db, &name, true)?;
            writeln!(out, "{text}")
        }
        Command::Deop { name } => {
            let text = crate::admin::set_op(&db, &name, false)?;
            writeln!(out, "{text}")
        }
        Command::PurgeAuth => {
            let p = users::purge_all(&db).map_err(|e| e.to_string())?;
            writeln!(out, "Removed {} users and {} tokens.", p.users, p.tokens)
        }
        Command::ClearLogs => {
            let n = logs::clear(&db).map_err(|e| e.to_string())?;
            writeln!(out, "Removed {n} log records.")
        }
        Command::Logs { n, level } => {
            // --level warn means warn and error: this level or more severe.
            let names: Option<Vec<&str>> = level.map(|max| {
                log::Level::iter()
                    .filter(|l| *l <= max)
                    .map(|l| l.as_str())
                    .collect()
            });
            let records = logs::recent(&db, n, names.as_deref()).map_err(|e| e.to_string())?;
            console::print_logs(&records, out)
        }
        Command::Users => {
            let list = users::list(&db).map_err(|e| e.to_string())?;
            if list.is_empty() {
                writeln!(out, "No users.").map_err(|e| e.to_string())?;
            }
            list.iter().try_for_each(|u| {
                writeln!(
                    out,
                    "{:<32} {}  {} token(s)",
                    u.name, u.created_at, u.tokens
                )
            })
        }
        Command::History { n } => {
            let msgs = messages::recent(&db, n).map_err(|e| e.to_string())?;
            console::print_history(&msgs, out)
        }
    };
    done.map_err(|e| format!("cannot write output: {e}"))
}

fn echo(addr: &str, max_clients: u32) -> Result<(), String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("besedka echo listening on {local}");
    let _ = io::stdout().flush();
    log::info!("echo server listening on {local}");
    crate::echo::run(listener, max_clients as usize);
    Ok(())
}

/// Makes glibc hand every allocation of 1 MiB or more back to the OS when it is freed.
/// Each argon2 hash takes a 19 MiB block; by default glibc raises its mmap threshold after
/// the first one is freed, and later blocks stay resident in its per-thread arenas: 30
/// logins grew the server from 17 MB to 370 MB. Fixing the threshold turns that off.
fn return_large_blocks_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before the server's threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        // Thousands of session threads would otherwise spread over 8 arenas per core, each
        // holding its own free pages; a few arenas keep the footprint near what is in use.
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

/// What wakes the control thread (this one, the main thread).
enum Control {
    Line(String),
    /// Standard input ended: the server carries on without a console.
    Eof,
    Signal(i32),
    /// The server cannot go on (its hub panicked).
    Fatal(String),
}

fn serve(db: &Path, level: log::LevelFilter, args: ServeArgs) -> Result<(), String> {
    // Each client holds a socket; the default soft limit (often 1024) would cap the server
    // below --max-clients.
    let nofile = rlimit::increase_nofile_limit(u64::MAX);
    return_large_blocks_to_the_os();
    let store = Store::open_with(db, args.sync)
        .map_err(|e| format!("cannot open database {}: {e}", db.display()))?;
    let listener =
        server::listen(&args.addr).map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let tls = match (&args.tls_addr, &args.tls_cert, &args.tls_key) {
        (Some(addr), Some(cert), Some(key)) => {
            let config = crate::server::transport::tls::load(cert, key)?;
            let l = server::listen(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            Some((l, config))
        }
        _ => None,
    };
    let ssh = match &args.ssh_addr {
        Some(addr) => {
            let key = crate::server::transport::ssh::host_key(&args.ssh_host_key)?;
            let l = server::listen(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let ssh = crate::server::transport::ssh::Ssh::start(key)
                .map_err(|e| format!("cannot start SSH: {e}"))?;
            Some((l, Arc::new(ssh)))
        }
        None => None,
    };
    let sink = crate::logging::init(level, args.log_file.as_deref(), Some(&store))?;
    if let Err(e) = nofile {
        log::warn!("cannot raise the open-files limit: {e}");
    }
    let config = Config {
        max_clients: args.max_clients as usize,
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
    let listeners = server::Listeners {
        plain: listener,
        tls,
        ssh,
    };
    let server =
        Arc::new(server::start(listeners, store, config, on_fatal).map_err(|e| e.to_string())?);
    let mut on = format!("{} (telnet)", server.local_addr());
    if let Some(tls) = server.tls_addr() {
        on.push_str(&format!(", {tls} (tls)"));
    }
    if let Some(ssh) = server.ssh_addr() {
        on.push_str(&format!(", {ssh} (ssh)"));
    }
    println!("besedka listening on {on} (db: {})", db.display());
    let _ = io::stdout().flush();
    log::info!("listening on {on}, database {}", db.display());

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
    if !args.no_console {
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
            Control::Line(line) => match console.execute(&line, out) {
                Ok(Outcome::Shutdown) => break,
                Ok(Outcome::Continue) => {}
                Err(e) => log::warn!("console output failed: {e}"),
            },
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
