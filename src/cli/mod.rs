//! The command line: the arguments, and one function per subcommand; `serve` (the server and
//! its control loop) is in [`serve`].
//!
//! Exit codes: 0 done, 1 runtime error (a one-line message on standard error), 2 usage
//! error (clap's, and a search query the engine cannot read).

use std::io::{self, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use besedka::console;
use besedka::server;
use besedka::store::{self, logs, messages, search, users, Store};

mod args;
pub(crate) use args::{parse_duration, parse_seconds};
pub use args::{Cli, Command, ConfigAction};
mod config_file;
pub use config_file::{parse_command_line as parse, Parsed};
mod reload;
mod serve;
mod serve_args;
mod service;
pub use serve_args::ServeArgs;

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
