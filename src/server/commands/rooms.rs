//! Rooms: `/join`, `/rooms`, `/topic`.

use crate::server::protocol::{clean, quote, room_name, ROOM_RULE};
use crate::server::session::{End, Flow, Session};
use crate::server::text;
use crate::store::rooms::{self, Opened, Room};

/// Rooms one user may make in an hour: a user cannot fill the table (or `/rooms`).
pub const ROOMS_PER_HOUR: u32 = 5;
/// Rooms the server holds at most.
pub const MAX_ROOMS: u32 = 10_000;
/// Longest topic, in characters.
pub const MAX_TOPIC: usize = 200;
/// Rooms `/rooms` lists at most.
pub const ROOMS_LISTED: usize = 50;

/// `/join #name`: moves this session to the room, making it if it does not exist.
pub fn join(s: &mut Session, args: &str) -> Result<Flow, End> {
    let room = match open(s, args) {
        Ok(room) if room.id == s.room.id => {
            s.send(&text::already_in(&s.room.name.clone()));
            return Ok(Flow::Continue);
        }
        Ok(room) => room,
        Err(_) => return Ok(Flow::Continue),
    };
    if !s.move_to(room, false) {
        return Err(End::Gone);
    }
    Ok(Flow::Continue)
}

/// Why [`open`] gave no room (the client was told in words already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    BadName,
    /// The user made their rooms for the hour, or the server holds its most.
    Limit,
    InviteOnly,
    /// The database did not answer.
    Unavailable,
}

/// The room `args` names, made if it does not exist (within the limits on making rooms)
/// and stored as the user's room, where their next login starts. `Err`: the client was
/// told why not.
pub fn open(s: &mut Session, args: &str) -> Result<Room, Refused> {
    let Some(name) = room_name(args) else {
        s.send(&text::invalid_room(&quote(args), ROOM_RULE));
        return Err(Refused::BadName);
    };
    let user = s
        .login
        .as_ref()
        .map(|l| l.user.id)
        .ok_or(Refused::Unavailable)?;
    let opened = s.db(|c| {
        let opened = rooms::open(c, &name, user, ROOMS_PER_HOUR, MAX_ROOMS)?;
        if let Opened::Found(room) | Opened::Created(room) = &opened {
            rooms::set_current(c, user, room.id)?;
        }
        Ok(opened)
    });
    match opened.ok_or(Refused::Unavailable)? {
        Opened::InviteOnly => {
            s.send(&text::invite_only(&name));
            Err(Refused::InviteOnly)
        }
        Opened::TooManyForUser => {
            s.send(&text::too_many_rooms_made(ROOMS_PER_HOUR));
            Err(Refused::Limit)
        }
        Opened::Full => {
            s.send(&text::rooms_full(MAX_ROOMS));
            Err(Refused::Limit)
        }
        Opened::Found(room) | Opened::Created(room) => Ok(room),
    }
}

/// `/rooms`: the rooms, busiest first, with their people and topics.
pub fn list(s: &mut Session, _: &str) -> Result<Flow, End> {
    let user = s.login.as_ref().map(|l| l.user.id);
    match s.shared.rooms(ROOMS_LISTED, user) {
        Ok((listed, total)) => {
            let mut out = text::rooms_header(total);
            for r in &listed {
                out.push_str(&text::room_entry(&r.name, r.people, &r.topic));
            }
            if total > listed.len() {
                out.push_str(&text::more_rooms(total - listed.len()));
            }
            s.send(&out);
        }
        Err(e) => {
            log::error!("{}: /rooms: {e}", s.addr);
            s.send(&text::database_unavailable());
        }
    }
    Ok(Flow::Continue)
}

/// `/topic` shows this room's topic; `/topic TEXT` sets it, `/topic -` clears it.
pub fn topic(s: &mut Session, args: &str) -> Result<Flow, End> {
    if !still_member(s) {
        return Ok(Flow::Continue);
    }
    if args.is_empty() {
        let id = s.room.id;
        if let Some(room) = s.db(|c| rooms::by_id(c, id)) {
            s.send(&text::topic_is(&room.name, &room.topic));
        }
        return Ok(Flow::Continue);
    }
    let topic = if args == "-" {
        String::new()
    } else {
        clean(args)
    };
    if topic.chars().count() > MAX_TOPIC {
        s.send(&text::topic_too_long(MAX_TOPIC));
        return Ok(Flow::Continue);
    }
    if s.muted() {
        return Ok(Flow::Continue);
    }
    let id = s.room.id;
    if s.db(|c| rooms::set_topic(c, id, &topic)).is_some() {
        s.room.topic = topic.clone();
        let _ = s.shared.hub.send(crate::server::hub::Event::Topic {
            room: s.room.id,
            conn: s.conn,
            topic,
        });
    }
    Ok(Flow::Continue)
}

/// Whether the session may still see its room. A member taken off an invite-only room's
/// list while in it is moved to `#lobby` by the hub: a line-protocol session learns it
/// here and goes on about `#lobby`; an IRC session's command about that channel is refused.
pub fn still_member(s: &mut Session) -> bool {
    let (room, name) = (s.room.id, s.room.name.clone());
    let Some(user) = s.login.as_ref().map(|l| l.user.id) else {
        return false;
    };
    match s.db(|c| crate::store::members::may_see(c, room, user)) {
        Some(true) => true,
        Some(false) if !s.wire.is_irc() => match s.db(|c| rooms::by_id(c, rooms::LOBBY)) {
            Some(lobby) => {
                s.room = lobby;
                true
            }
            None => false,
        },
        Some(false) => {
            s.send(&text::invite_only(&name));
            false
        }
        None => false,
    }
}
