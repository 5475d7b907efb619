//! The operator console: one command per line on `besedka serve`'s standard input, answers on
//! standard output (log records go to standard error, so the two never mix). On a terminal,
//! [`prompt`] reads the lines with a line editor; from a pipe they are read as they come.
//!
//! Every command maps to an operation on the server or an SQL operation in [`crate::store`],
//! the same one the admin CLI uses.

mod complete;
mod moderation;
pub mod prompt;
mod rooms;

pub use moderation::print_bans;

use std::io::{self, Write};
use std::path::Path;

use crate::logging::DbSink;
use crate::server::protocol::{clean, found_line, quote};
use crate::server::Server;
use crate::store::{logs, messages, users};

/// What the caller does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    Shutdown,
    /// Reread the config file (`reload`): the caller has it.
    Reload,
}

/// Most records `logs N` prints.
pub const MAX_LOGS: u32 = 10_000;

/// What the console acts on.
pub struct Console<'a> {
    pub server: &'a Server,
    /// `--log-file`, truncated by `clear-logs`.
    pub log_file: Option<&'a Path>,
    /// The database log sink, flushed before the `logs` table is read or cleared.
    pub sink: Option<&'a DbSink>,
    /// Where the settings came from, for `status`: the config file and when it was read.
    pub config: String,
}

type Handler = fn(&Console, &str, &mut dyn Write) -> io::Result<Outcome>;

struct Command {
    names: &'static [&'static str],
    args: &'static str,
    help: &'static str,
    run: Handler,
}

const COMMANDS: &[Command] = &[
    Command {
        names: &["help"],
        args: "",
        help: "this list",
        run: help,
    },
    Command {
        names: &["reload"],
        args: "",
        help: "reread the config file (as SIGHUP does); says what changed",
        run: |_, _, _| Ok(Outcome::Reload),
    },
    Command {
        names: &["status"],
        args: "",
        help: "listening or paused, uptime, sessions, users, messages, log records, database",
        run: status,
    },
    Command {
        names: &["who"],
        args: "",
        help: "online users with each session's address and room",
        run: who,
    },
    Command {
        names: &["rooms"],
        args: "",
        help: "rooms, busiest first: people in each, topic",
        run: rooms::rooms,
    },
    Command {
        names: &["pause"],
        args: "",
        help: "stop serving new connections (they wait, unanswered, until resume)",
        run: pause,
    },
    Command {
        names: &["resume"],
        args: "",
        help: "serve new connections again",
        run: resume,
    },
    Command {
        names: &["logs"],
        args: "[N]",
        help: "the last N log records (default 20)",
        run: show_logs,
    },
    Command {
        names: &["clear-logs"],
        args: "",
        help: "delete every log record (and empty --log-file)",
        run: clear_logs,
    },
    Command {
        names: &["clear-auth"],
        args: "",
        help: "delete every user and token, disconnect everyone (history stays)",
        run: moderation::clear_auth,
    },
    Command {
        names: &["kick"],
        args: "NAME [REASON]",
        help: "disconnect every session of NAME (announced)",
        run: moderation::kick,
    },
    Command {
        names: &["ban"],
        args: "NAME|ADDRESS|CIDR [DURATION] [REASON]",
        help: "ban (30m, 2h, 7d; forever without); a name's sessions go at once",
        run: moderation::ban,
    },
    Command {
        names: &["unban"],
        args: "NAME|ADDRESS|CIDR",
        help: "lift a ban",
        run: moderation::unban,
    },
    Command {
        names: &["bans"],
        args: "",
        help: "bans and mutes in force, with time left",
        run: moderation::bans,
    },
    Command {
        names: &["mute"],
        args: "NAME [DURATION] [REASON]",
        help: "NAME may read but not speak",
        run: moderation::mute,
    },
    Command {
        names: &["unmute"],
        args: "NAME",
        help: "let NAME speak again",
        run: moderation::unmute,
    },
    Command {
        names: &["op"],
        args: "NAME",
        help: "make NAME an operator (/kick, /ban, /mute from chat)",
        run: moderation::op,
    },
    Command {
        names: &["deop"],
        args: "NAME",
        help: "NAME is no longer an operator",
        run: moderation::deop,
    },
    Command {
        names: &["delete"],
        args: "ID",
        help:
            "remove the line #ID from history, search and open web pages (announced to operators)",
        run: moderation::delete,
    },
    Command {
        names: &["purge-lines"],
        args: "NAME PERIOD",
        help: "remove NAME's lines of the last PERIOD (30m, 2h, 7d), up to 10000 at a time",
        run: moderation::purge_lines,
    },
    Command {
        names: &["prune"],
        args: "",
        help: "delete old messages by --retain-days / --retain-messages now",
        run: prune,
    },
    Command {
        names: &["say"],
        args: "[#ROOM] TEXT",
        help: "send '* [server] TEXT' to everyone, or to one room",
        run: rooms::say,
    },
    Command {
        names: &["shutdown", "quit", "exit"],
        args: "",
        help: "say goodbye to everyone and stop the server",
        run: shutdown,
    },
];

fn find(word: &str) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.names.iter().any(|n| n.eq_ignore_ascii_case(word)))
}

impl Console<'_> {
    /// Runs one command line, writing its answer to `out`.
    pub fn execute(&self, line: &str, out: &mut dyn Write) -> io::Result<Outcome> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(Outcome::Continue);
        }
        let (word, args) = match line.split_once(char::is_whitespace) {
            Some((w, a)) => (w, a.trim()),
            None => (line, ""),
        };
        if word == "fault" && self.server.crash_hub() {
            writeln!(out, "Fault injected: the hub will panic.")?;
            return Ok(Outcome::Continue);
        }
        let Some(cmd) = find(word) else {
            unknown(word, out)?;
            return Ok(Outcome::Continue);
        };
        // The operator typed it and sees the answer: the log has it only when asked for
        // (--log-level debug), so a busy console does not crowd the log.
        log::debug!("console: {line}");
        let outcome = (cmd.run)(self, args, out)?;
        out.flush()?;
        Ok(outcome)
    }

    fn flush_logs(&self) {
        if let Some(sink) = self.sink {
            sink.flush();
        }
    }

    /// Runs a store call; a failure is printed, not fatal.
    fn db<T>(
        &self,
        out: &mut dyn Write,
        f: impl FnOnce(&crate::store::Conn) -> crate::Result<T>,
    ) -> io::Result<Option<T>> {
        match self.server.store().conn().and_then(|c| f(&c)) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                writeln!(out, "Error: {e}")?;
                Ok(None)
            }
        }
    }
}

/// `Unknown command 'WORD'`, the word cleaned of control characters and escape sequences:
/// an arrow key typed where there is no line editor arrives as `ESC [ A`, and echoing it raw
/// would move the operator's cursor.
fn unknown(word: &str, out: &mut dyn Write) -> io::Result<()> {
    let shown = quote(word);
    if shown.is_empty() {
        writeln!(
            out,
            "Unknown input: only control characters or escape sequences (an arrow key?). Type 'help' for the list."
        )
    } else if clean(word) != word {
        writeln!(
            out,
            "Unknown command '{shown}' (control characters left out). Type 'help' for the list."
        )
    } else {
        writeln!(out, "Unknown command '{shown}'. Type 'help' for the list.")
    }
}

fn help(_: &Console, _: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    for c in COMMANDS {
        let usage = if c.args.is_empty() {
            c.names.join(", ")
        } else {
            format!("{} {}", c.names[0], c.args)
        };
        writeln!(out, "  {usage:<46} {}", c.help)?;
    }
    Ok(Outcome::Continue)
}

fn status(c: &Console, _: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    let s = c.server.status();
    let counts = c.db(out, |conn| {
        Ok((
            users::count(conn)?,
            messages::count(conn)?,
            logs::count(conn)?,
        ))
    })?;
    let state = if s.paused { "paused" } else { "listening" };
    let secs = s.uptime.as_secs();
    writeln!(out, "{state} on {}", s.addr)?;
    writeln!(
        out,
        "uptime {}h {:02}m {:02}s",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )?;
    match &s.online {
        Ok(online) => {
            let sessions: usize = online.iter().map(|u| u.addrs.len()).sum();
            writeln!(
                out,
                "sessions online: {sessions} ({} users); connections: {}, {} of them logging in (at most {})",
                online.len(),
                s.connections,
                s.pending.0,
                s.pending.1
            )?;
        }
        Err(e) => writeln!(
            out,
            "sessions online: unknown ({e}); connections: {}",
            s.connections
        )?,
    }
    if let Some((users, messages, logs)) = counts {
        writeln!(
            out,
            "users: {users}, messages: {messages}, log records: {logs}"
        )?;
    }
    let r = s.retention;
    if r.is_on() {
        let days = r.days.map_or("any age".into(), |d| format!("{d} days"));
        let msgs = r
            .messages
            .map_or("any number".into(), |n| format!("the newest {n}"));
        writeln!(
            out,
            "retention: keep {days}, {msgs} (and always the last {} public); pruned since start: {}",
            r.keep_public, s.pruned
        )?;
    } else {
        writeln!(out, "retention: off (every message is kept)")?;
    }
    writeln!(
        out,
        "database: {} (sync: {})",
        c.server.store().path().display(),
        s.sync
    )?;
    writeln!(out, "session threads: {}", s.workers)?;
    writeln!(out, "config: {}", c.config)?;
    // Several nodes on one database: each, with its sessions.
    if let Some(nodes) = c.db(out, crate::store::presence::nodes)? {
        for (id, addr, sessions) in nodes {
            let me = if id == c.server.node() {
                " (this one)"
            } else {
                ""
            };
            writeln!(out, "node {addr}{me}: {sessions} session(s)")?;
        }
    }
    Ok(Outcome::Continue)
}

fn who(c: &Console, _: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    let online = match c.server.status().online {
        Ok(online) => online,
        Err(e) => {
            writeln!(out, "Error: {e}")?;
            return Ok(Outcome::Continue);
        }
    };
    let elsewhere = c
        .server
        .store()
        .conn()
        .and_then(|conn| crate::store::presence::others(&conn, c.server.node()))
        .unwrap_or_default();
    if online.is_empty() && elsewhere.is_empty() {
        writeln!(out, "Nobody is online.")?;
    }
    for r in &elsewhere {
        writeln!(out, "{} ({}) on node {}", r.name, r.room_name, r.node_addr)?;
    }
    for u in online {
        let addrs: Vec<String> = u
            .addrs
            .iter()
            .map(|(addr, via, room)| format!("{addr} ({via}, {room})"))
            .collect();
        let n = addrs.len();
        let s = if n == 1 { "session" } else { "sessions" };
        writeln!(out, "{} ({n} {s}): {}", u.name, addrs.join(", "))?;
    }
    Ok(Outcome::Continue)
}

fn pause(c: &Console, _: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    if c.server.pause() {
        writeln!(
            out,
            "Paused: new connections wait, unanswered, until 'resume'."
        )?;
    } else {
        writeln!(out, "Already paused.")?;
    }
    Ok(Outcome::Continue)
}

fn resume(c: &Console, _: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    if c.server.resume() {
        writeln!(out, "Resumed: serving new connections.")?;
    } else {
        writeln!(out, "Not paused: already serving new connections.")?;
    }
    Ok(Outcome::Continue)
}

fn show_logs(c: &Console, args: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    let n = if args.is_empty() {
        20
    } else {
        match args.parse::<u32>() {
            Ok(n) if (1..=MAX_LOGS).contains(&n) => n,
            _ => {
                writeln!(out, "Usage: logs [N], N from 1 to {MAX_LOGS}.")?;
                return Ok(Outcome::Continue);
            }
        }
    };
    c.flush_logs();
    if let Some(records) = c.db(out, |conn| logs::recent(conn, n, None))? {
        print_logs(&records, out)?;
    }
    Ok(Outcome::Continue)
}

/// One record per line: time, level, message.
pub fn print_logs(records: &[logs::Record], out: &mut dyn Write) -> io::Result<()> {
    if records.is_empty() {
        writeln!(out, "No log records.")?;
    }
    for r in records {
        writeln!(out, "{} {:<5} {}", r.created_at, r.level, r.message)?;
    }
    Ok(())
}

/// One message per line, with its date and room; private ones as `a -> b`.
pub fn print_history(msgs: &[messages::Message], out: &mut dyn Write) -> io::Result<()> {
    if msgs.is_empty() {
        writeln!(out, "No messages.")?;
    }
    // Each with its id: the operator's `delete ID` (console) needs it.
    for m in msgs {
        write!(out, "#{} ", m.id)?;
        out.write_all(found_line(m).trim_end().as_bytes())?;
        writeln!(out)?;
    }
    Ok(())
}

fn clear_logs(c: &Console, _: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    c.flush_logs();
    if let Some(n) = c.db(out, logs::clear)? {
        if let Some(path) = c.log_file {
            if let Err(e) = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(0))
            {
                writeln!(out, "Error: cannot empty {}: {e}", path.display())?;
            }
        }
        writeln!(out, "Removed {n} log records.")?;
    }
    Ok(Outcome::Continue)
}

fn prune(c: &Console, _: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    match c.server.prune() {
        Ok(Some(n)) => writeln!(out, "Pruned {n} message(s).")?,
        Ok(None) => writeln!(
            out,
            "Retention is off: start the server with --retain-days or --retain-messages."
        )?,
        Err(e) => writeln!(out, "Error: {e}")?,
    }
    Ok(Outcome::Continue)
}

fn shutdown(_: &Console, _: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    writeln!(out, "Shutting down.")?;
    Ok(Outcome::Shutdown)
}
