//! Invite-only rooms: `/private on|off`, `/invite NAME`, `/uninvite NAME`, `/members`, in
//! the room the session is in. The room's creator and operators decide; the room's members
//! are stored (`store::members`), so they hold on every node and across restarts.

use crate::server::hub::Event;
use crate::server::protocol::quote;
use crate::server::session::{End, Flow, Session};
use crate::server::text;
use crate::store::users::{self, name_key};
use crate::store::{members, rooms};

/// Members `/members` names at most.
const MEMBERS_LISTED: u32 = 100;

/// May the session's user run the room's invite-only commands: its creator or an operator.
/// Told why not.
fn may_decide(s: &mut Session) -> Option<(i64, String)> {
    // (Moved out of an invite-only room by the hub: the session is in #lobby now.)
    if !super::still_member(s) {
        return None;
    }
    let user = s.login.as_ref().map(|l| l.user.clone())?;
    let room = s.room.clone();
    if room.id == rooms::LOBBY {
        s.send(&text::lobby_is_open());
        return None;
    }
    let op = s.shared.moderation.is_op(&name_key(&user.name));
    let creator = s.db(|c| rooms::creator(c, room.id))?;
    if !op && creator != Some(user.id) {
        s.send(&text::not_your_room(&room.name));
        return None;
    }
    Some((user.id, user.name))
}

/// The account `args` names; the client is told if there is none (or the database failed).
fn account(s: &mut Session, args: &str) -> Option<users::User> {
    match s.db(|c| users::find(c, &users::normalize(args)))? {
        Some((who, _)) => Some(who),
        None => {
            s.send(&text::no_such_user(&quote(args)));
            None
        }
    }
}

/// `/private on|off`: makes the session's room invite-only, with everyone in it now as its
/// members, or open to all again.
pub fn private(s: &mut Session, args: &str) -> Result<Flow, End> {
    let on = match args {
        "on" => true,
        "off" => false,
        _ => {
            s.send(&text::usage("/private on|off"));
            return Ok(Flow::Continue);
        }
    };
    let Some((_, by)) = may_decide(s) else {
        return Ok(Flow::Continue);
    };
    let room = s.room.clone();
    // Who is in it now (every node), to become its members: nobody in the room loses it.
    let present = match s.shared.ask(|reply| Event::InRoom {
        room: room.id,
        reply,
    }) {
        Ok(present) => present,
        Err(_) => return Err(End::Gone),
    };
    if s.db(|c| members::set_private(c, room.id, on, &by, &present))
        .is_none()
    {
        return Ok(Flow::Continue);
    }
    s.room.private = on;
    log::info!(
        "{by} made {} {}",
        room.name,
        if on { "invite-only" } else { "open" }
    );
    let _ = s.shared.hub.send(Event::Privacy {
        room: room.id,
        private: on,
        announce: text::privacy_set(&by, &room.name, on, present.len()),
    });
    Ok(Flow::Continue)
}

/// `/invite NAME`: NAME may join the session's room (stored); told so if online.
pub fn invite(s: &mut Session, args: &str) -> Result<Flow, End> {
    let Some((_, by)) = may_decide(s) else {
        return Ok(Flow::Continue);
    };
    let room = s.room.clone();
    let Some(who) = account(s, args) else {
        return Ok(Flow::Continue);
    };
    let Some(new) = s.db(|c| members::invite(c, room.id, who.id, &by)) else {
        return Ok(Flow::Continue);
    };
    if !new {
        s.send(&text::already_member(&who.name, &room.name));
        return Ok(Flow::Continue);
    }
    log::info!("{by} invited {} to {}", who.name, room.name);
    s.send(&text::invited(&who.name, &room.name, room.private));
    let _ = s.shared.hub.send(Event::Tell {
        user: who.id,
        text: text::you_are_invited(&by, &room.name),
    });
    Ok(Flow::Continue)
}

/// `/uninvite NAME`: NAME is no longer a member; if the room is invite-only and they are in
/// it, they are moved out (to `#lobby`; an IRC client is parted).
pub fn uninvite(s: &mut Session, args: &str) -> Result<Flow, End> {
    let Some((_, by)) = may_decide(s) else {
        return Ok(Flow::Continue);
    };
    let room = s.room.clone();
    let Some(who) = account(s, args) else {
        return Ok(Flow::Continue);
    };
    let Some(removed) = s.db(|c| {
        let removed = members::uninvite(c, room.id, who.id)?;
        Ok((removed, members::is_private(c, room.id)?))
    }) else {
        return Ok(Flow::Continue);
    };
    if !removed.0 {
        s.send(&text::not_a_member(&who.name, &room.name));
        return Ok(Flow::Continue);
    }
    log::info!("{by} uninvited {} from {}", who.name, room.name);
    s.send(&text::uninvited(&who.name, &room.name));
    if removed.1 {
        let _ = s.shared.hub.send(Event::Evict {
            room: room.id,
            user: who.id,
            text: text::you_are_uninvited(&by, &room.name),
        });
    }
    Ok(Flow::Continue)
}

/// `/members`: who may join the session's invite-only room.
pub fn members(s: &mut Session, _: &str) -> Result<Flow, End> {
    if !super::still_member(s) {
        return Ok(Flow::Continue);
    }
    let room = s.room.clone();
    if room.id == rooms::LOBBY {
        s.send(&text::lobby_is_open());
        return Ok(Flow::Continue);
    }
    let Some((private, listed)) = s.db(|c| {
        Ok((
            members::is_private(c, room.id)?,
            members::members(c, room.id, MEMBERS_LISTED)?,
        ))
    }) else {
        return Ok(Flow::Continue);
    };
    if !private {
        s.send(&text::room_is_open(&room.name));
        return Ok(Flow::Continue);
    }
    let (names, total) = listed;
    s.send(&text::members_line(&room.name, total as usize, &names));
    Ok(Flow::Continue)
}
