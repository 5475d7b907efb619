//! What the command line says: the subcommands and their options (clap's definitions);
//! [`super::run`] carries them out.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use super::ServeArgs;

#[derive(Parser, Debug)]
#[command(
    name = "besedka",
    version,
    about = "A chat server for people who live in a terminal: telnet, nc, TLS, SSH and a web \
             page, kept in one SQLite file (or PostgreSQL for several nodes)."
)]
pub struct Cli {
    /// The database: SQLite file or postgres:// URL (`serve`, `useradd` and `ban` create a
    /// missing file, readable by its owner only).
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
    /// List users: name as typed, created, token count, and whether an operator.
    Users,
    /// Copy the SQLite database, while the server runs, to a new file: consistent (one
    /// commit's state), checked, mode 0600. For PostgreSQL use pg_dump.
    Backup {
        /// The new file (an existing one is refused).
        file: PathBuf,
    },
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
        rest: Vec<String>,
    },
    /// Let a muted user speak again.
    Unmute { name: String },
    /// Remove a user's lines of the last PERIOD from history, search and replay (tombstones
    /// keep ids and order); a running server tells its operators and open web pages within
    /// seconds. At most 10000 lines at a time: run it again for the rest.
    PurgeLines {
        name: String,
        /// How far back: 30m, 2h, 7d.
        period: String,
    },
    /// Make a user an operator.
    Op { name: String },
    /// Take a user's operator status away.
    Deop { name: String },
    /// Show the last messages, private ones included, oldest first.
    History {
        /// How many messages.
        #[arg(short, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        n: u32,
        /// Only this room's lines (#lobby; the '#' may be left out).
        #[arg(long)]
        room: Option<String>,
    },
    /// Search every message, private ones included (FTS5 query syntax), newest last.
    Search {
        /// Words, "a phrase", OR, NOT, pre*, and the filters from:NAME, in:#ROOM,
        /// before:DATE, after:DATE (dates 2026-12-01 or 2026-12-01T10:00, UTC).
        #[arg(required = true)]
        query: Vec<String>,
        /// How many messages at most.
        #[arg(short, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        n: u32,
        /// Only this room's lines (as in:#ROOM).
        #[arg(long)]
        room: Option<String>,
        /// Lines shown around each hit (as `/search -c N`), at most 5.
        #[arg(short, value_parser = clap::value_parser!(u32).range(0..=5))]
        c: Option<u32>,
    },
    /// Write a self-signed TLS certificate and key (cert.pem, key.pem) for trying --tls-addr.
    GenCert {
        /// The host name or address clients connect to: the certificate's name (CN) and the
        /// name clients check (SAN; an IP address SAN for an address).
        #[arg(long, value_parser = parse_host)]
        host: String,
        /// The directory to write them into (created if missing; existing files are kept).
        /// Default: tls/ in --state-dir.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The server's state directory, as `serve --state-dir` (default: the --db file's
        /// directory), never wherever gen-cert happens to run.
        #[arg(long)]
        state_dir: Option<PathBuf>,
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
    /// Check a config file (TOML, keys are serve's options) without starting the server.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print a shell completion script for besedka (bash, zsh, fish, elvish, powershell);
    /// docs/service.md says where to put it.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print besedka's man page (roff): `besedka man > besedka.1`, then `man ./besedka.1`;
    /// with --dir, write it and one page per subcommand (besedka-serve.1, …) there.
    Man {
        /// Write every page into this directory instead (created if missing).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Load-test a server: N clients log in, S of them send, all read; prints latency,
    /// throughput and (with --spawn or --pid) the server's CPU and memory.
    Bench(crate::bench::BenchArgs),
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Check every key and value of a config file, as `serve --config FILE` would read it;
    /// exit 0 if good, 2 with the file, line and key if not.
    Check {
        /// The file (default: $BESEDKA_CONFIG).
        #[arg(env = "BESEDKA_CONFIG")]
        path: PathBuf,
    },
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be more than 0".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write e.g. 30s, 10m, 2h)")),
    }
}

/// Whole seconds, as a bare number (`120`, as the option always took) or a duration
/// (`2m`, `90s`, as the other durations are written).
pub(crate) fn parse_seconds(s: &str) -> Result<u32, String> {
    let secs = match s.trim().parse::<u64>() {
        Ok(n) => n,
        Err(_) => {
            let d = parse_duration(s)?;
            if d.subsec_nanos() != 0 {
                return Err("whole seconds only (write e.g. 90s or 2m)".into());
            }
            d.as_secs()
        }
    };
    match u32::try_from(secs) {
        Ok(0) => Err("must be more than 0".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("too long".into()),
    }
}

/// A DNS name or an IP address, as a TLS client checks it (a certificate for anything else
/// would match no client).
fn parse_host(s: &str) -> Result<String, String> {
    match rustls_pki_types::ServerName::try_from(s) {
        Ok(_) => Ok(s.to_string()),
        Err(_) => Err(format!(
            "{s:?} is not a host name or an address (write e.g. chat.example.org or 203.0.113.7)"
        )),
    }
}
