//! What the admin CLI does to the database directly, beside a running server or without one:
//! accounts (`useradd`), moderation (`ban`, `unban`, `mute`, `unmute`, `op`, `deop`) and
//! removing lines (`purge-lines`).
//!
//! These call the same store functions as the console. A running server rereads bans and
//! operators every few seconds (its janitor), so a ban made here disconnects a banned user
//! within seconds, without an announcement (the console's `ban` announces).

use std::io::{self, BufRead, IsTerminal, Write};

use crate::store::Conn;

use crate::auth::{Hasher, MIN_PASSWORD_CHARS};
use crate::server::moderation::{self, for_how_long, parse_net, parse_request, CONSOLE};
use crate::server::protocol::{valid_name, NAME_RULE};
use crate::server::{cleanup, text};
use crate::store::bans::{self, Kind};
use crate::store::removals;
use crate::store::{roles, users};

type Result<T> = std::result::Result<T, String>;

fn user(db: &Conn, name: &str) -> Result<users::User> {
    users::find(db, name)
        .map_err(|e| e.to_string())?
        .map(|(u, _)| u)
        .ok_or_else(|| format!("no such user: {name}"))
}

/// Reads one line: from a terminal without echo (after `prompt` on standard error), otherwise
/// as it comes (a pipe, a file).
fn read_secret(prompt: &str) -> Result<String> {
    let stdin = io::stdin();
    let tty = stdin.is_terminal();
    let mut line = String::new();
    if tty {
        eprint!("{prompt}");
        let _ = io::stderr().flush();
        let _echo = EchoOff::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        eprintln!();
    } else {
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
    }
    Ok(line.trim().to_string())
}

/// Turns the terminal's echo off until dropped.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr on standard input with a zeroed termios they fill in.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return EchoOff(None);
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            EchoOff(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
}

/// The new password for `useradd`: asked twice on a terminal, one line from a pipe.
pub fn read_new_password() -> Result<String> {
    let password = read_secret("Password: ")?;
    if io::stdin().is_terminal() && read_secret("Repeat password: ")? != password {
        return Err("passwords do not match".into());
    }
    Ok(password)
}

/// Creates an account with the same rules as registration.
pub fn useradd(db: &Conn, name: &str, password: &str) -> Result<users::User> {
    if !valid_name(name) {
        return Err(format!("invalid name {name:?}: names are {NAME_RULE}"));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "password too short: at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    match users::clash(db, name).map_err(|e| e.to_string())? {
        Some(users::Clash::Taken) => return Err(format!("the name {name} is taken")),
        Some(users::Clash::TooClose(other)) => {
            return Err(format!(
                "the name {name} is too close to an existing one: {other}"
            ))
        }
        None => {}
    }
    let hasher = Hasher::new(1);
    let hash = hasher.hash(password).map_err(|e| e.to_string());
    hasher.stop();
    users::create(db, name, &hash?)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the name {name} was taken meanwhile"))
}

/// `ban NAME|ADDRESS|CIDR [DURATION] [REASON]`.
pub fn ban(db: &Conn, target: &str, rest: &str) -> Result<String> {
    let args = format!("{target} {rest}");
    let req = parse_request(&args)?;
    let how_long = for_how_long(req.duration);
    if let Some(net) = parse_net(req.target) {
        bans::add(
            db,
            Kind::Ip,
            &net.to_string(),
            &req.reason,
            req.duration,
            CONSOLE,
        )
        .map_err(|e| e.to_string())?;
        return Ok(format!("Banned {net}{how_long}."));
    }
    let u = user(db, req.target)?;
    bans::ban_user(
        db,
        u.id,
        &users::name_key(&u.name),
        &req.reason,
        req.duration,
        CONSOLE,
    )
    .map_err(|e| e.to_string())?;
    Ok(format!("Banned {}{how_long}.", u.name))
}

/// `unban NAME|ADDRESS|CIDR`.
pub fn unban(db: &Conn, target: &str) -> Result<String> {
    let (kind, value) = match parse_net(target) {
        Some(net) => (Kind::Ip, net.to_string()),
        None => (Kind::Name, users::name_key(&user(db, target)?.name)),
    };
    if !bans::remove(db, kind, &value).map_err(|e| e.to_string())? {
        return Err(format!("{target} is not banned"));
    }
    Ok(format!("Unbanned {target}."))
}

/// `mute NAME [DURATION] [REASON]`.
pub fn mute(db: &Conn, name: &str, rest: &str) -> Result<String> {
    let args = format!("{name} {rest}");
    let req = parse_request(&args)?;
    let u = user(db, req.target)?;
    bans::add(
        db,
        Kind::Mute,
        &users::name_key(&u.name),
        &req.reason,
        req.duration,
        CONSOLE,
    )
    .map_err(|e| e.to_string())?;
    Ok(format!("Muted {}.", u.name))
}

/// `unmute NAME`.
pub fn unmute(db: &Conn, name: &str) -> Result<String> {
    let u = user(db, name)?;
    if !bans::remove(db, Kind::Mute, &users::name_key(&u.name)).map_err(|e| e.to_string())? {
        return Err(format!("{} is not muted", u.name));
    }
    Ok(format!("Unmuted {}.", u.name))
}

/// `purge-lines NAME PERIOD`: removes NAME's lines of the last PERIOD (at most
/// [`MAX_PURGE`]); answers what was removed and, if lines are left, what to do. Written as a
/// removal of the console's, which a running server reads within seconds and announces.
pub fn purge_lines(db: &Conn, name: &str, period: &str) -> Result<(String, Option<String>)> {
    let shown = moderation::short(cleanup::parse_period(period)?);
    let args = format!("{name} {period}");
    let who = (cleanup::CONSOLE, cleanup::CLI_NODE, true);
    let (removal, answer) =
        cleanup::purge_lines(db, &args, who, |_| false).map_err(|e| e.to_string())??;
    let author = removal
        .lines
        .first()
        .map(|m| m.author_name.clone())
        .unwrap_or_default();
    let more = answer.contains(text::MORE_LEFT).then(|| {
        format!(
            "{} lines at most go at once: run it again to remove the rest.",
            removals::MAX_PURGE
        )
    });
    Ok((
        text::purged(removal.lines.len(), &author, &shown, None),
        more,
    ))
}

/// `op NAME` / `deop NAME`.
pub fn set_op(db: &Conn, name: &str, op: bool) -> Result<String> {
    let shown = roles::set(db, name, op)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no such user: {name}"))?;
    Ok(if op {
        format!("{shown} is now an operator.")
    } else {
        format!("{shown} is no longer an operator.")
    })
}
