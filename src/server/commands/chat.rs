//! Talking and looking around: `/who`, `/msg`, `/me`, `/history`, `/away`, `/bell`, `/echo`,
//! `/mentions` (`/search` has its own file).

use super::{name_and_rest, DEFAULT_HISTORY, MAX_HISTORY};
use crate::server::hub::Event;
use crate::server::protocol::{clean, found_lines, history_lines, quote};
use crate::server::session::{End, Flow, Session};
use crate::server::text;
use crate::store::messages::{self, Kind};
use crate::store::users;

pub fn who(s: &mut Session, args: &str) -> Result<Flow, End> {
    let all = match args {
        "" => false,
        "*" => true,
        _ => {
            s.send(&text::usage("/who [*]"));
            return Ok(Flow::Continue);
        }
    };
    let _ = s.shared.hub.send(Event::Who { conn: s.conn, all });
    Ok(Flow::Continue)
}

pub fn msg(s: &mut Session, args: &str) -> Result<Flow, End> {
    let (name, text) = name_and_rest(args);
    let body = clean(text);
    if body.trim().is_empty() {
        s.send(&text::usage("/msg NAME TEXT"));
        return Ok(Flow::Continue);
    }
    if s.muted() {
        return Ok(Flow::Continue);
    }
    match s.db(|c| users::find(c, name)) {
        Some(Some((to, _))) => {
            let _ = s.shared.hub.send(Event::Private {
                conn: s.conn,
                to,
                body,
            });
        }
        Some(None) => s.send(&text::no_such_user(&quote(name))),
        None => {}
    }
    Ok(Flow::Continue)
}

/// Longest away text; more is cut.
pub const MAX_AWAY: usize = 100;

pub fn away(s: &mut Session, args: &str) -> Result<Flow, End> {
    let why: String = clean(args).trim().chars().take(MAX_AWAY).collect();
    let _ = s.shared.hub.send(Event::Away {
        conn: s.conn,
        away: Some(why),
    });
    Ok(Flow::Continue)
}

pub fn back(s: &mut Session, _: &str) -> Result<Flow, End> {
    let _ = s.shared.hub.send(Event::Away {
        conn: s.conn,
        away: None,
    });
    Ok(Flow::Continue)
}

/// `/bell on|off`: whether a mention rings your terminal's bell (stored).
pub fn bell(s: &mut Session, args: &str) -> Result<Flow, End> {
    let on = match args {
        "on" => true,
        "off" => false,
        _ => {
            s.send(&text::usage("/bell on|off"));
            return Ok(Flow::Continue);
        }
    };
    let Some(user_id) = s.login.as_ref().map(|l| l.user.id) else {
        return Ok(Flow::Continue);
    };
    if s.db(|c| users::set_bell(c, user_id, on)).is_some() {
        let _ = s.shared.hub.send(Event::Bell { conn: s.conn, on });
        s.send(&text::bell(on));
    }
    Ok(Flow::Continue)
}

/// `/unread`: the other rooms with lines since you were last in them, busiest first.
pub fn unread(s: &mut Session, _: &str) -> Result<Flow, End> {
    let Some(user) = s.login.as_ref().map(|l| l.user.id) else {
        return Ok(Flow::Continue);
    };
    let here = s.room.id;
    let Some(rooms) = s.db(|c| crate::store::read_marks::unread(c, user, i64::MAX, &[here])) else {
        return Ok(Flow::Continue);
    };
    s.send(&text::unread(&rooms));
    Ok(Flow::Continue)
}

/// `/echo on|off`: whether your own lines come back to your terminal with time and name,
/// as everyone else's do (stored; on by default).
pub fn echo(s: &mut Session, args: &str) -> Result<Flow, End> {
    let on = match args {
        "on" => true,
        "off" => false,
        _ => {
            s.send(&text::usage("/echo on|off"));
            return Ok(Flow::Continue);
        }
    };
    let Some(user_id) = s.login.as_ref().map(|l| l.user.id) else {
        return Ok(Flow::Continue);
    };
    if s.db(|c| users::set_echo(c, user_id, on)).is_some() {
        let _ = s.shared.hub.send(Event::Echo { conn: s.conn, on });
        s.send(&text::echo(on));
    }
    Ok(Flow::Continue)
}

/// Public lines `/mentions` looks through, newest first.
const MENTIONS_SCAN: u32 = 5_000;
/// Largest `/mentions N`.
pub const MAX_MENTIONS: u32 = 50;

/// `/mentions [N]`: the last N public lines that named you.
pub fn mentions(s: &mut Session, args: &str) -> Result<Flow, End> {
    let n = match args {
        "" => 10,
        _ => match args.parse::<u32>() {
            Ok(n) if (1..=MAX_MENTIONS).contains(&n) => n,
            _ => {
                s.send(&text::usage(&format!(
                    "/mentions [N], N from 1 to {MAX_MENTIONS}"
                )));
                return Ok(Flow::Continue);
            }
        },
    };
    let Some(user) = s.login.as_ref().map(|l| l.user.clone()) else {
        return Ok(Flow::Continue);
    };
    // Lines of invite-only rooms the user is not a member of are not theirs to see.
    let Some((recent, hidden)) = s.db(|c| {
        Ok((
            messages::recent_public(c, MENTIONS_SCAN)?,
            crate::store::members::hidden_from(c, user.id)?,
        ))
    }) else {
        return Ok(Flow::Continue);
    };
    let key = users::name_key(&user.name);
    let mut found: Vec<_> = recent
        .into_iter()
        .filter(|m| m.author_id != Some(user.id))
        .filter(|m| !m.room.as_ref().is_some_and(|r| hidden.contains(&r.0)))
        .filter(|m| crate::server::protocol::mentioned_keys(&m.body).any(|k| k == key))
        .take(n as usize)
        .collect();
    found.reverse();
    let mut out = text::mentions_header(found.len());
    out.push_str(&found_lines(
        &found,
        s.shared.config.get().max_backlog / 2,
        super::line_ids(s),
    ));
    s.send(&out);
    Ok(Flow::Continue)
}

pub fn me(s: &mut Session, args: &str) -> Result<Flow, End> {
    s.say(Kind::Me, args);
    Ok(Flow::Continue)
}

pub fn history(s: &mut Session, args: &str) -> Result<Flow, End> {
    let n = if args.is_empty() {
        DEFAULT_HISTORY
    } else {
        match args.parse::<u32>() {
            Ok(n) if (1..=MAX_HISTORY).contains(&n) => n,
            _ => {
                s.send(&text::history_usage(MAX_HISTORY));
                return Ok(Flow::Continue);
            }
        }
    };
    let Some(user_id) = s.login.as_ref().map(|l| l.user.id) else {
        return Ok(Flow::Continue);
    };
    if !super::still_member(s) {
        return Ok(Flow::Continue);
    }
    let room = s.room.id;
    if let Some(msgs) = s.db(|c| messages::visible(c, room, Some(user_id), n, None)) {
        let mut out = text::history_header(msgs.len());
        out.push_str(&history_lines(
            &msgs,
            s.shared.config.get().max_backlog / 2,
            super::line_ids(s),
        ));
        s.send(&out);
    }
    Ok(Flow::Continue)
}
