//! Operators' IRC commands, mapped onto besedka's moderation: `KICK #room nick [reason]` is
//! `/kick`, `MODE #room +b nick` / `-b nick` are `/ban` (forever) and `/unban`, and
//! `MODE #room +b` lists the banned accounts. Each runs through the command table, so its
//! central checks and answers are the ones every client gets; what IRC has a numeric for is
//! answered with it first (`482` for a user who is not an operator, `442`, `401`, `441`).
//!
//! besedka's kicks and bans are server-wide, as its operators are: a `KICK` from one
//! channel disconnects every session of the user, and a ban keeps the account off the
//! whole server. The channel named is where the operator saw them.

use super::channels::{self, Channels};
use super::message::Message;
use crate::server::commands;
use crate::server::hub::Event;
use crate::server::session::{End, Flow, Session, Stage};
use crate::server::wire;
use crate::store::users::{self, name_key};

/// Nicks one `KICK` takes at most (`KICK #room a,b,c`).
const MAX_KICKS: usize = 5;

/// `KICK #room nick[,nick…] [reason]`.
pub fn kick(s: &mut Session, chans: &Channels, m: &Message) -> Result<Flow, End> {
    let (Some(ch), Some(list)) = (m.param(0), m.param(1)) else {
        return channels::need_more(s, m);
    };
    let Some(room) = on_channel(s, chans, ch) else {
        return Ok(Flow::Continue);
    };
    if !is_op(s, &room.name) {
        return Ok(Flow::Continue);
    }
    let reason = wire::strip_formatting(m.param(2).unwrap_or(""));
    for nick in list.split(',').filter(|n| !n.is_empty()).take(MAX_KICKS) {
        let where_is = s.shared.ask(|reply| Event::Where {
            key: name_key(nick),
            room: room.id,
            reply,
        });
        match where_is {
            Ok(Some(true)) => {
                commands::dispatch(s, &format!("/kick {nick} {reason}"), Stage::Chat)?;
            }
            Ok(Some(false)) => reply(
                s,
                441,
                &format!("{nick} {} :They aren't on that channel", room.name),
            ),
            Ok(None) => reply(s, 401, &format!("{nick} :No such nick")),
            Err(_) => return Err(End::Gone), // the hub is stopping
        }
    }
    Ok(Flow::Continue)
}

/// `MODE #room +b|-b [nick]`, or `b` alone (the list). `None`: not a ban mode, for
/// [`super::chat`]'s other answers.
pub fn ban_mode(s: &mut Session, chans: &Channels, m: &Message) -> Option<Result<Flow, End>> {
    let ch = m.param(0)?;
    let (add, mode) = match m.param(1)? {
        "b" | "+b" => (true, "+b"),
        "-b" => (false, "-b"),
        _ => return None,
    };
    let Some(mask) = m.param(2) else {
        ban_list(s, ch);
        return Some(Ok(Flow::Continue));
    };
    let Some(room) = on_channel(s, chans, ch) else {
        return Some(Ok(Flow::Continue)); // told: 442
    };
    if !is_op(s, &room.name) {
        return Some(Ok(Flow::Continue));
    }
    // `nick`, or the mask clients make of it: `nick!*@*`. Bans are by account, not host.
    let name = mask.strip_suffix("!*@*").unwrap_or(mask);
    if name.contains(['*', '?', '!', '@']) {
        let why = format!("! Bans here are by account name: MODE {} {mode} NAME", room.name);
        s.send(&why);
        return Some(Ok(Flow::Continue));
    }
    match s.db(|c| users::find(c, &users::normalize(name))) {
        Some(Some(_)) => {}
        Some(None) => {
            reply(s, 401, &format!("{name} :No such nick"));
            return Some(Ok(Flow::Continue));
        }
        None => return Some(Ok(Flow::Continue)),
    }
    let command = if add { "/ban" } else { "/unban" };
    Some(commands::dispatch(s, &format!("{command} {name}"), Stage::Chat))
}

/// `RPL_BANLIST` (367) for each banned account, to an operator, then `RPL_ENDOFBANLIST`
/// (368); the list is the whole server's. Others get the end alone: clients ask for it on
/// `JOIN`, and an error there would be noise.
fn ban_list(s: &mut Session, ch: &str) {
    let nick = s.nick();
    let mut out = String::new();
    if s.shared.moderation.is_op(&name_key(&nick)) {
        for ban in s.shared.moderation.name_bans() {
            let at = humantime::parse_rfc3339(&ban.created_at)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            let entry = format!("{ch} {}!*@* {} {at}", ban.value, ban.created_by);
            out.push_str(&wire::numeric(367, &nick, &entry));
        }
    }
    out.push_str(&wire::numeric(368, &nick, &format!("{ch} :End of channel ban list")));
    s.send_bytes(out.into_bytes());
}

/// The room `ch` names if the session is in it; else `442` and `None`.
fn on_channel(s: &mut Session, chans: &Channels, ch: &str) -> Option<crate::store::rooms::Room> {
    match chans.get(ch) {
        Some(room) => Some(room.clone()),
        None => {
            channels::not_on(s, ch);
            None
        }
    }
}

/// Whether the session's user is an operator; if not, `482` says so.
fn is_op(s: &mut Session, room: &str) -> bool {
    let nick = s.nick();
    if s.shared.moderation.is_op(&name_key(&nick)) {
        return true;
    }
    let why = format!("{room} :You're not channel operator (only besedka's operators kick and ban)");
    reply(s, 482, &why);
    false
}

fn reply(s: &mut Session, code: u16, params: &str) {
    let nick = s.nick();
    s.send_bytes(wire::numeric(code, &nick, params).into_bytes());
}
