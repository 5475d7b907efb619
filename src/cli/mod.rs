//! The command line: the arguments, and one function per subcommand; `serve` (the server and
//! its control loop) is in [`serve`].
//!
//! Exit codes: 0 done, 1 runtime error (a one-line message on standard error), 2 usage
//! error (clap's, and a search query the engine cannot read).

use std::io::{self, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};

use besedka::console;
use besedka::server;
use besedka::store::{self, logs, messages, search, users, Store};

mod config_file;
pub use config_file::{parse_command_line as parse, Parsed};
mod reload;
mod serve;
mod serve_args;
mod service;
pub use serve_args::ServeArgs;

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

pub(crate) fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    server::moderation::parse_net(s)
        .ok_or_else(|| format!("{s:?} is not an address or a CIDR range"))
}

/// Where the server keeps what it makes for itself between runs (`--state-dir`; the SSH host
/// key, `gen-cert`'s tls/): `dir` if given, else the database file's directory (for a
/// PostgreSQL URL, or a bare file name, the working directory).
pub(crate) fn state_dir(db: &Path, dir: Option<&Path>) -> PathBuf {
    if let Some(dir) = dir {
        return dir.to_path_buf();
    }
    match db.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) if !store::is_url(db) => d.to_path_buf(),
        _ => PathBuf::from("."),
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

/// Why a command failed: the one-line message for standard error and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// 1: something went wrong; 2: what was typed cannot work (as clap's usage errors).
    pub code: u8,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure { message, code: 1 }
    }
}

/// The command line's definition, as parsed and as `--help`, the completions and the man
/// page show it: the global `--db` and `--log-level` are hidden from the subcommands that
/// use neither (still accepted there, so a shell alias that always passes `--db` works).
pub fn command() -> clap::Command {
    const NO_DB: &[&str] = &["echo", "completions", "man", "bench", "config"];
    const NO_LOG: &[&str] = &[
        "completions",
        "man",
        "bench",
        "config",
        "gen-cert",
        "backup",
    ];
    let cmd = <Cli as clap::CommandFactory>::command();
    // A subcommand that has an option of the global's id is left out when the globals are
    // handed down: give those a hidden copy, with the same default.
    let hidden_copy = |cmd: &clap::Command, id: &'static str| -> clap::Arg {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_id() == id)
            .cloned()
            .unwrap_or_else(|| clap::Arg::new(id));
        arg.hide(true)
    };
    let (db, log) = (hidden_copy(&cmd, "db"), hidden_copy(&cmd, "log_level"));
    let mut cmd = cmd;
    for name in NO_DB {
        let db = db.clone();
        cmd = cmd.mut_subcommand(name, |s| s.arg(db));
    }
    for name in NO_LOG {
        let log = log.clone();
        cmd = cmd.mut_subcommand(name, |s| s.arg(log));
    }
    cmd
}

/// `cmd`'s page and its subcommands' (recursively), named as the main page lists them
/// (`besedka-serve.1`); clap's own `help` subcommand gets none.
fn write_man_pages(cmd: &clap::Command, dir: &std::path::Path) -> io::Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    let mut file = std::fs::File::create(dir.join(format!("{name}.1")))?;
    clap_mangen::Man::new(cmd.clone()).render(&mut file)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_man_pages(sub, dir)?;
    }
    Ok(())
}

/// Runs the parsed command line.
pub fn run(parsed: Parsed, argv: Vec<std::ffi::OsString>) -> Result<(), Failure> {
    let Parsed { cli, serve, file } = parsed;
    if let Command::Serve(args) = cli.command {
        let origin = reload::Origin::new(argv, serve, file);
        return Ok(serve::serve(&cli.db, cli.log_level, *args, origin)?);
    }
    if let Command::Config {
        action: ConfigAction::Check { path },
    } = &cli.command
    {
        let keys = config_file::check(path)?;
        println!("{}: {keys} setting(s), all valid.", path.display());
        return Ok(());
    }
    if let Command::Completions { shell } = &cli.command {
        let mut cmd = command();
        clap_complete::generate(*shell, &mut cmd, "besedka", &mut io::stdout());
        return Ok(());
    }
    if let Command::Man { dir: Some(dir) } = &cli.command {
        let cannot =
            |e: io::Error| format!("cannot write the man pages into {}: {e}", dir.display());
        std::fs::create_dir_all(dir).map_err(cannot)?;
        // The main page lists besedka-serve(1) and the others: these are they.
        let mut cmd = command();
        cmd.build();
        write_man_pages(&cmd, dir).map_err(cannot)?;
        println!("Wrote the man pages into {}.", dir.display());
        return Ok(());
    }
    if let Command::Man { dir: None } = &cli.command {
        let cmd = command();
        return match clap_mangen::Man::new(cmd).render(&mut io::stdout()) {
            // `besedka man | head`: the reader has seen enough.
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                Err(format!("cannot write the man page: {e}").into())
            }
            _ => Ok(()),
        };
    }
    if let Command::Bench(args) = cli.command {
        return Ok(crate::bench::run(args)?);
    }
    if let Command::GenCert {
        host,
        out,
        state_dir,
    } = &cli.command
    {
        let out = out
            .clone()
            .unwrap_or_else(|| self::state_dir(&cli.db, state_dir.as_deref()).join("tls"));
        let (cert, key) = besedka::server::transport::tls::generate(host, &out)?;
        println!(
            "Wrote {} and {} (self-signed, for {host}).",
            cert.display(),
            key.display()
        );
        return Ok(());
    }
    if let Command::Backup { file } = &cli.command {
        return backup(&cli.db, file);
    }
    besedka::logging::init(cli.log_level, None, None)?;
    if let Command::Echo { addr, max_clients } = &cli.command {
        return Ok(echo(addr, *max_clients)?);
    }
    let place = Place::of(&cli.db);
    // Only a command that adds what a new database can use (an account, an address ban)
    // may create one; any other on a mistyped path would show an empty database as if the
    // real one had lost its data.
    let may_create = match &cli.command {
        Command::Useradd { .. } => true,
        // A name ban needs the account, which a new database cannot have.
        Command::Ban { target, .. } => besedka::server::moderation::parse_net(target).is_some(),
        _ => false,
    };
    if place.new && !may_create {
        return Err(format!("no database at {} (serve creates it)", cli.db.display()).into());
    }
    let store = Store::open(&cli.db)
        .map_err(|e| format!("cannot open database {}: {e}", store::shown(&cli.db)))?;
    let db = store.conn().map_err(|e| e.to_string())?;
    let out = &mut io::stdout().lock();
    let done = match cli.command {
        Command::Serve(_)
        | Command::Echo { .. }
        | Command::Bench(_)
        | Command::GenCert { .. }
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Config { .. }
        | Command::Backup { .. } => {
            unreachable!("handled above")
        }
        Command::Useradd { name } => {
            let password = besedka::admin::read_new_password()?;
            let user = besedka::admin::useradd(&db, &name, &password)?;
            writeln!(out, "Created user {}{}.", user.name, place.at("in"))
        }
        Command::Ban { target, rest } => {
            let text = besedka::admin::ban(&db, &target, &rest.join(" "))?;
            writeln!(out, "{}", place.told(&text))
        }
        Command::Unban { target } => {
            let text = besedka::admin::unban(&db, &target)?;
            writeln!(out, "{}", place.told(&text))
        }
        Command::Bans => {
            let list = besedka::store::bans::active(&db).map_err(|e| e.to_string())?;
            console::print_bans(&list, out)
        }
        Command::Mute { name, rest } => {
            let text = besedka::admin::mute(&db, &name, &rest.join(" "))?;
            writeln!(out, "{}", place.told(&text))
        }
        Command::Unmute { name } => {
            let text = besedka::admin::unmute(&db, &name)?;
            writeln!(out, "{}", place.told(&text))
        }
        Command::PurgeLines { name, period } => {
            let (text, more) = besedka::admin::purge_lines(&db, &name, &period)?;
            let more = more.map(|m| format!("\n{m}")).unwrap_or_default();
            writeln!(out, "{}{more}", place.told(&text))
        }
        Command::Op { name } => {
            let text = besedka::admin::set_op(&db, &name, true)?;
            writeln!(out, "{}", place.told(&text))
        }
        Command::Deop { name } => {
            let text = besedka::admin::set_op(&db, &name, false)?;
            writeln!(out, "{}", place.told(&text))
        }
        Command::PurgeAuth => {
            let p = users::purge_all(&db).map_err(|e| e.to_string())?;
            let from = place.at("from");
            writeln!(
                out,
                "Removed {} users and {} tokens{from}.",
                p.users, p.tokens
            )
        }
        Command::ClearLogs => {
            let n = logs::clear(&db).map_err(|e| e.to_string())?;
            writeln!(out, "Removed {n} log records{}.", place.at("from"))
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
                let role = if u.op { "  operator" } else { "" };
                writeln!(
                    out,
                    "{:<32} {}  {} token(s){role}",
                    u.name, u.created_at, u.tokens
                )
            })
        }
        Command::History { n, room: None } => {
            let msgs = messages::recent(&db, n).map_err(|e| e.to_string())?;
            console::print_history(&msgs, out)
        }
        Command::History {
            n,
            room: Some(room),
        } => {
            let room = find_room(&db, &room)?;
            let msgs = messages::visible(&db, room, None, n, None).map_err(|e| e.to_string())?;
            console::print_history(&msgs, out)
        }
        Command::Search { query, n, room, c } => {
            // What was typed cannot work: a usage error, as clap's are.
            let usage = |e: besedka::Error| match e {
                besedka::Error::NotAQuery(_) => Failure {
                    message: e.to_string(),
                    code: 2,
                },
                e => e.to_string().into(),
            };
            let mut q = search::Query::parse(&query.join(" "))
                .map_err(|why| usage(besedka::Error::NotAQuery(why)))?;
            if let Some(room) = room {
                find_room(&db, &room)?;
                if q.room.is_some() {
                    let why = "in: and --room both name a room; give one".to_string();
                    return Err(usage(besedka::Error::NotAQuery(why)));
                }
                q.room = Some(if room.starts_with('#') {
                    room
                } else {
                    format!("#{room}")
                });
            }
            // What a running server's janitor has not indexed yet, first.
            while search::index_batch(&db, 10_000).map_err(|e| e.to_string())? > 0 {}
            let mut msgs = search::search(&db, None, &q, n).map_err(usage)?;
            msgs.reverse();
            match c.filter(|&c| c > 0 && !msgs.is_empty()) {
                None => console::print_history(&msgs, out),
                Some(c) => {
                    let groups = msgs
                        .iter()
                        .map(|hit| search::context(&db, hit, c))
                        .collect::<besedka::Result<Vec<_>>>()
                        .map_err(|e| e.to_string())?;
                    let ids: Vec<i64> = msgs.iter().map(|m| m.id).collect();
                    let text = besedka::server::protocol::found_in_context(
                        &groups,
                        &ids,
                        usize::MAX,
                        Default::default(),
                    );
                    out.write_all(text.replace("\r\n", "\n").as_bytes())
                }
            }
        }
    };
    Ok(done.map_err(|e| format!("cannot write output: {e}"))?)
}

/// The database file a command works on, for the line that reports a change: the operator
/// sees which file changed (a mistyped `--db`, or the default `besedka.db` in another
/// directory, shows at once). PostgreSQL URLs are not files and are not named.
/// `besedka backup FILE`.
fn backup(db: &std::path::Path, file: &std::path::Path) -> Result<(), Failure> {
    if store::is_url(db) {
        return Err(String::from(
            "backup copies a SQLite file; for PostgreSQL use pg_dump (see docs/operating.md)",
        )
        .into());
    }
    if !db.exists() {
        return Err(format!("no database at {} (serve creates it)", db.display()).into());
    }
    let copied = store::backup::backup(db, file)?;
    println!(
        "Backed up {} to {}: {} user(s), {} message(s); the integrity check passed.",
        db.display(),
        file.display(),
        copied.users,
        copied.messages
    );
    Ok(())
}

struct Place<'a> {
    file: Option<&'a std::path::Path>,
    /// The file does not exist yet: this command creates it.
    new: bool,
}

impl<'a> Place<'a> {
    fn of(db: &'a std::path::Path) -> Place<'a> {
        let file = (!besedka::store::is_url(db)).then_some(db);
        // An error (a directory we may not read) is left for the open to report.
        let new = file.is_some_and(|f| matches!(f.try_exists(), Ok(false)));
        Place { file, new }
    }

    /// ` in FILE` (`, a new database` if this command created it); nothing for PostgreSQL.
    fn at(&self, preposition: &str) -> String {
        match self.file {
            Some(f) if self.new => format!(" {preposition} {}, a new database", f.display()),
            Some(f) => format!(" {preposition} {}", f.display()),
            None => String::new(),
        }
    }

    /// A sentence that reports a change (`Banned bob for 1d.`), with the file before its
    /// full stop.
    fn told(&self, sentence: &str) -> String {
        let bare = sentence.strip_suffix('.').unwrap_or(sentence);
        format!("{bare}{}.", self.at("in"))
    }
}

/// The id of the room `name` (`#lobby` or `lobby`), or why there is none.
fn find_room(db: &besedka::store::Conn, name: &str) -> Result<i64, String> {
    let typed = if name.starts_with('#') {
        name.to_string()
    } else {
        format!("#{name}")
    };
    let Some(valid) = besedka::server::protocol::room_name(&typed) else {
        return Err(format!(
            "not a room name: {name} (a room name is '#' and {})",
            besedka::server::protocol::ROOM_RULE
        ));
    };
    match besedka::store::rooms::find(db, &valid) {
        Ok(Some(room)) => Ok(room.id),
        Ok(None) => Err(format!("no such room: {valid}")),
        Err(e) => Err(e.to_string()),
    }
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
