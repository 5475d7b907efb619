//! Removing lines: `/delete ID` and `/purge NAME PERIOD` (operators), `delete` and
//! `purge-lines` (the console), `besedka purge-lines` (the admin CLI). The lines become
//! tombstones ([`crate::store::removals`]) in one transaction per call, at most
//! [`MAX_PURGE`] of them, so a purge cannot stall anything; the hub then tells the
//! operators online and the clients that can take a line back (`Event::Removed`).
//!
//! The CLI has no hub: its removal is a row of `removals` that a running server's janitor
//! reads within seconds and hands to its hub the same way.

use std::time::{Duration, SystemTime};

use super::hub::Event;
use super::moderation::{short, MAX_DURATION};
use super::moderator::{Moderator, Outcome};
use super::text;
use crate::store::removals::{self, Refused, Removal, MAX_PURGE};
use crate::store::{history, users, Conn};

/// `removed_by` for the console and the admin CLI.
pub const CONSOLE: &str = "console";

/// The node name the admin CLI writes its removals under (no server has it).
pub const CLI_NODE: &str = "cli";

type Done = std::result::Result<(Removal, String), String>;

/// A period as typed after `/purge NAME` (`30m`, `2h`, `7d`).
pub fn parse_period(typed: &str) -> std::result::Result<Duration, String> {
    match humantime::parse_duration(typed) {
        Ok(d) if !d.is_zero() && d <= MAX_DURATION => Ok(d),
        _ => Err(text::not_a_period(typed)),
    }
}

/// A line's id as typed: `1234` or `#1234`.
pub fn parse_id(typed: &str) -> std::result::Result<i64, String> {
    typed
        .strip_prefix('#')
        .unwrap_or(typed)
        .parse::<i64>()
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| text::not_a_line_id(typed))
}

/// Removes the line `typed` (its id) by `by` on `node`; `console`: the console may remove an
/// operator's line, an operator may not (`is_op` says who is one).
pub fn delete_line(
    c: &Conn,
    typed: &str,
    (by, node, console): (&str, &str, bool),
    is_op: impl Fn(&str) -> bool,
) -> crate::error::Result<Done> {
    let id = match parse_id(typed) {
        Ok(id) => id,
        Err(e) => return Ok(Err(e)),
    };
    if let Some(line) = removals::line(c, id)? {
        if !console && !line.removed && is_op(&users::name_key(&line.author_name)) {
            return Ok(Err(text::operators_line(&line.author_name)));
        }
    }
    Ok(match removals::delete(c, id, by, node)? {
        Ok(removal) => {
            let author = removal
                .lines
                .first()
                .map(|m| m.author_name.clone())
                .unwrap_or_default();
            Ok((removal, text::deleted(id, &author)))
        }
        Err(Refused::NoSuchLine) => Err(text::no_such_line(id)),
        Err(Refused::AlreadyRemoved(who)) => Err(text::already_removed(id, &who)),
    })
}

/// `NAME PERIOD`: removes NAME's lines of the last PERIOD (the newest [`MAX_PURGE`]).
pub fn purge_lines(
    c: &Conn,
    args: &str,
    (by, node, console): (&str, &str, bool),
    is_op: impl Fn(&str) -> bool,
) -> crate::error::Result<Done> {
    let mut words = args.split_whitespace();
    let (Some(name), Some(period), None) = (words.next(), words.next(), words.next()) else {
        return Ok(Err("Usage: purge NAME PERIOD (e.g. alice 1h)".to_string()));
    };
    let period = match parse_period(period) {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    let Some((user, _)) = users::find(c, name)? else {
        return Ok(Err(format!(
            "No such user: {}",
            super::protocol::quote(name)
        )));
    };
    if !console && is_op(&users::name_key(&user.name)) {
        return Ok(Err(text::operators_line(&user.name)));
    }
    let since = SystemTime::now()
        .checked_sub(period)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let since = humantime::format_rfc3339_seconds(since).to_string();
    let first = history::first_at(c, &since, false)?;
    let shown = short(period);
    let what = format!("purge, {shown}");
    let (removal, more) = removals::purge(c, user.id, first, (by, &what, node))?;
    if removal.lines.is_empty() {
        return Ok(Err(text::nothing_to_purge(&user.name, &shown)));
    }
    let answer = text::purged(
        removal.lines.len(),
        &user.name,
        &shown,
        more.then_some(MAX_PURGE),
    );
    Ok(Ok((removal, answer)))
}

impl Moderator<'_> {
    /// Who a removal is stored under: the operator, or `console`.
    fn remover(&self) -> &str {
        if self.console {
            CONSOLE
        } else {
            self.by
        }
    }

    /// Runs a removal on the database, then has the hub tell everyone concerned.
    fn removal(
        &self,
        run: impl FnOnce(&Conn, (&str, &str, bool)) -> crate::error::Result<Done>,
    ) -> Outcome {
        let who = (self.remover(), self.shared.node.as_str(), self.console);
        let (removal, answer) = self
            .shared
            .store
            .conn()
            .and_then(|c| run(&c, who))
            .map_err(|e| {
                log::error!("removing lines for {}: {e}", self.by);
                "the database is unavailable; nothing was removed".to_string()
            })??;
        let _ = self.shared.hub.send(Event::Removed {
            removal: Box::new(removal),
        });
        Ok(answer)
    }

    /// `/delete ID`, the console's `delete ID`.
    pub fn delete(&self, typed: &str) -> Outcome {
        let moderation = &self.shared.moderation;
        self.removal(|c, who| delete_line(c, typed, who, |key| moderation.is_op(key)))
    }

    /// `/purge NAME PERIOD`, the console's `purge-lines NAME PERIOD`.
    pub fn purge(&self, args: &str) -> Outcome {
        let moderation = &self.shared.moderation;
        self.removal(|c, who| purge_lines(c, args, who, |key| moderation.is_op(key)))
    }
}
