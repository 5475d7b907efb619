//! The console's moderation commands. Each is one call to the [`Moderator`] that operators in
//! chat use too, with the console's rights (it may act on operators).
//!
//! [`Moderator`]: crate::server::moderator::Moderator

use std::io::{self, Write};
use std::time::SystemTime;

use super::{Console, Outcome};
use crate::server::moderator::Outcome as Done;
use crate::store::bans::{self, Ban, Kind};

/// Prints what a moderation action answered.
fn answer(done: Done, out: &mut dyn Write) -> io::Result<Outcome> {
    match done {
        Ok(text) => writeln!(out, "{text}")?,
        Err(e) => writeln!(out, "Error: {e}")?,
    }
    Ok(Outcome::Continue)
}

/// Prints a usage line when `args` is empty; true if it did.
fn missing(args: &str, usage: &str, out: &mut dyn Write) -> io::Result<bool> {
    if args.is_empty() {
        writeln!(out, "Usage: {usage}")?;
        return Ok(true);
    }
    Ok(false)
}

/// Prints a usage line unless `args` is exactly one word; true if it did.
fn not_one_word(args: &str, usage: &str, out: &mut dyn Write) -> io::Result<bool> {
    if args.is_empty() || args.contains(char::is_whitespace) {
        writeln!(out, "Usage: {usage}")?;
        return Ok(true);
    }
    Ok(false)
}

pub fn kick(c: &Console, args: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    if missing(args, "kick NAME [REASON]", out)? {
        return Ok(Outcome::Continue);
    }
    answer(c.server.moderator().kick(args), out)
}

pub fn ban(c: &Console, args: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    if missing(args, "ban NAME|ADDRESS|CIDR [DURATION] [REASON]", out)? {
        return Ok(Outcome::Continue);
    }
    answer(c.server.moderator().ban(args), out)
}

pub fn unban(c: &Console, args: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    if not_one_word(args, "unban NAME|ADDRESS|CIDR", out)? {
        return Ok(Outcome::Continue);
    }
    answer(c.server.moderator().unban(args), out)
}

pub fn mute(c: &Console, args: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    if missing(args, "mute NAME [DURATION] [REASON]", out)? {
        return Ok(Outcome::Continue);
    }
    answer(c.server.moderator().mute(args), out)
}

pub fn unmute(c: &Console, args: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    if not_one_word(args, "unmute NAME", out)? {
        return Ok(Outcome::Continue);
    }
    answer(c.server.moderator().unmute(args), out)
}

pub fn delete(c: &Console, args: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    if not_one_word(args, "delete ID", out)? {
        return Ok(Outcome::Continue);
    }
    answer(c.server.moderator().delete(args), out)
}

pub fn purge_lines(c: &Console, args: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    if args.split_whitespace().count() != 2 {
        writeln!(
            out,
            "Usage: purge-lines NAME PERIOD (e.g. purge-lines alice 1h)"
        )?;
        return Ok(Outcome::Continue);
    }
    answer(c.server.moderator().purge(args), out)
}

pub fn op(c: &Console, args: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    if not_one_word(args, "op NAME", out)? {
        return Ok(Outcome::Continue);
    }
    answer(c.server.moderator().set_op(args, true), out)
}

pub fn deop(c: &Console, args: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    if not_one_word(args, "deop NAME", out)? {
        return Ok(Outcome::Continue);
    }
    answer(c.server.moderator().set_op(args, false), out)
}

pub fn bans(c: &Console, _: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    if let Some(list) = c.db(out, bans::active)? {
        print_bans(&list, out)?;
    }
    Ok(Outcome::Continue)
}

pub fn clear_auth(c: &Console, _: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    match c.server.purge_auth() {
        Ok((p, _)) => writeln!(out, "Removed {} users and {} tokens.", p.users, p.tokens)?,
        Err(e) => writeln!(out, "Error: {e}")?,
    }
    Ok(Outcome::Continue)
}

/// How long until `expires_at`, rounded to the second; `forever` without one.
fn time_left(expires_at: Option<&str>) -> String {
    let Some(at) = expires_at else {
        return "forever".into();
    };
    match humantime::parse_rfc3339(at) {
        Ok(t) => {
            let left = t.duration_since(SystemTime::now()).unwrap_or_default();
            let secs = std::time::Duration::from_secs(left.as_secs().max(1));
            format!(
                "{} left (until {at})",
                crate::server::moderation::short(secs)
            )
        }
        Err(_) => format!("until {at}"),
    }
}

/// One line per ban or mute: kind, value, time left, who, why (console `bans`, CLI `bans`).
pub fn print_bans(list: &[Ban], out: &mut dyn Write) -> io::Result<()> {
    if list.is_empty() {
        writeln!(out, "No bans or mutes.")?;
    }
    for b in list {
        let kind = match b.kind {
            Kind::Name => "ban",
            Kind::Ip => "ip ban",
            Kind::Mute => "mute",
        };
        let reason = if b.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", b.reason)
        };
        writeln!(
            out,
            "{kind:<6} {:<24} {}, by {}{reason}",
            b.value,
            time_left(b.expires_at.as_deref()),
            b.created_by
        )?;
    }
    Ok(())
}
