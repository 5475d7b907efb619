//! The channels an IRC session is in: `JOIN #a,#b` adds rooms to the session (it stays in
//! the others), `PART` takes one out, and what is said, asked or set about a channel goes
//! to that room. (A line-protocol session is in one room at a time; this is IRC's view.)

use super::message::Message;
use crate::server::commands;
use crate::server::hub::Event;
use crate::server::protocol::room_name;
use crate::server::session::{End, Flow, Session, Stage};
use crate::server::wire;
use crate::store::rooms::Room;
use crate::store::users::name_key;

/// Channels one IRC session may be in at once (`CHANLIMIT`): each costs the hub a member
/// entry and the session a history load at `JOIN`.
pub const MAX_CHANNELS: usize = 20;

/// The session's channels, in the order joined.
#[derive(Default)]
pub struct Channels {
    list: Vec<Room>,
}

impl Channels {
    /// The session's first room (where it started at login).
    pub fn starting_in(room: Room) -> Channels {
        Channels { list: vec![room] }
    }

    /// The rooms the session is in.
    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.list.iter()
    }

    /// The channel `ch` names, if the session is in it.
    pub fn get(&self, ch: &str) -> Option<&Room> {
        let key = name_key(ch);
        self.list.iter().find(|r| name_key(&r.name) == key)
    }
}

/// `JOIN #a,#b` (`JOIN 0`: leave them all).
pub fn join_all(s: &mut Session, chans: &mut Channels, m: &Message) -> Result<Flow, End> {
    let Some(list) = m.param(0) else {
        return need_more(s, m);
    };
    if list == "0" {
        let names: Vec<String> = chans.list.iter().map(|r| r.name.clone()).collect();
        for ch in names {
            part(s, chans, &ch);
        }
        return Ok(Flow::Continue);
    }
    for ch in list.split(',').filter(|c| !c.is_empty()) {
        join(s, chans, ch)?;
    }
    Ok(Flow::Continue)
}

/// `JOIN #room`: the session comes into it and stays in its other channels; the room's
/// history follows the `JOIN`.
fn join(s: &mut Session, chans: &mut Channels, ch: &str) -> Result<(), End> {
    let nick = s.nick();
    if room_name(ch).is_none() {
        let why = format!("{ch} :Illegal channel name ({})", crate::server::protocol::ROOM_RULE);
        reply(s, wire::numeric(479, &nick, &why));
        return Ok(());
    }
    if chans.get(ch).is_some() {
        return Ok(()); // in it already: IRC says nothing
    }
    if chans.list.len() >= MAX_CHANNELS {
        let why = format!("{ch} :You have joined too many channels (at most {MAX_CHANNELS})");
        reply(s, wire::numeric(405, &nick, &why));
        return Ok(());
    }
    // Told why in a notice; the numeric tells the client the JOIN failed.
    let room = match commands::open_room(s, ch) {
        Ok(room) => room,
        Err(why) => {
            let (code, what) = match why {
                commands::Refused::InviteOnly => (473, "Cannot join channel (+i): invite-only"),
                commands::Refused::Limit => (403, "Cannot make the room now (see the notice)"),
                commands::Refused::BadName => (479, "Illegal channel name"),
                commands::Refused::Unavailable => (403, "Cannot join channel now; try again"),
            };
            reply(s, wire::numeric(code, &nick, &format!("{ch} :{what}")));
            return Ok(());
        }
    };
    if !s.move_to(room.clone(), true) {
        return Err(End::Gone);
    }
    chans.list.push(room);
    Ok(())
}

/// `PART #a,#b`.
pub fn part_all(s: &mut Session, chans: &mut Channels, m: &Message) -> Result<Flow, End> {
    let Some(list) = m.param(0) else {
        return need_more(s, m);
    };
    for ch in list.split(',').filter(|c| !c.is_empty()) {
        part(s, chans, ch);
    }
    Ok(Flow::Continue)
}

/// `PART #room`: the session leaves it (the hub sends the `PART` back, in order).
fn part(s: &mut Session, chans: &mut Channels, ch: &str) {
    let Some(room) = chans.get(ch).cloned() else {
        not_on(s, ch);
        return;
    };
    chans.list.retain(|r| r.id != room.id);
    let _ = s.shared.hub.send(Event::Part {
        conn: s.conn,
        room: room.id,
    });
}

/// `TOPIC #room [text]`: shows or sets (`""` clears) the topic of a channel the session is
/// in, through besedka's `/topic` (its checks and its announcement).
pub fn topic(s: &mut Session, chans: &Channels, m: &Message) -> Result<Flow, End> {
    let Some(ch) = m.param(0) else {
        return need_more(s, m);
    };
    let Some(room) = chans.get(ch).cloned() else {
        not_on(s, ch);
        return Ok(Flow::Continue);
    };
    let nick = s.nick();
    match m.param(1) {
        None => {
            let current = s
                .db(|c| crate::store::rooms::by_id(c, room.id))
                .map_or(room.topic.clone(), |r| r.topic);
            reply(s, wire::topic_reply(&nick, &room.name, &current));
            Ok(Flow::Continue)
        }
        Some(text) => {
            s.room = room; // `/topic` is about the session's room
            let text = wire::strip_formatting(text);
            let text = if text.is_empty() { "-".to_string() } else { text };
            commands::dispatch(s, &format!("/topic {text}"), Stage::Chat)
        }
    }
}

/// `NAMES [#a,#b]` or `WHO [#room]` (`who`): each channel asked about that the session is
/// in (all of them when none is named); one it is not in gets just the end of the list.
pub fn names(s: &mut Session, chans: &Channels, m: &Message, who: bool) {
    let asked: Vec<String> = match m.param(0) {
        Some(list) => list.split(',').map(str::to_string).collect(),
        None => chans.list.iter().map(|r| r.name.clone()).collect(),
    };
    for ch in asked.iter().take(MAX_CHANNELS) {
        match chans.get(ch) {
            Some(room) => {
                let _ = s.shared.hub.send(Event::Names {
                    conn: s.conn,
                    room: room.id,
                    who,
                });
            }
            None => {
                let (code, what) = if who { (315, "WHO") } else { (366, "NAMES") };
                let end = format!("{ch} :End of /{what} list");
                let nick = s.nick();
                reply(s, wire::numeric(code, &nick, &end));
            }
        }
    }
}

/// `461`: a command without a parameter it needs.
pub fn need_more(s: &mut Session, m: &Message) -> Result<Flow, End> {
    let nick = s.nick();
    let why = format!("{} :Not enough parameters", m.command);
    reply(s, wire::numeric(461, &nick, &why));
    Ok(Flow::Continue)
}

pub fn not_on(s: &mut Session, ch: &str) {
    let nick = s.nick();
    reply(s, wire::numeric(442, &nick, &format!("{ch} :You're not on that channel")));
}

fn reply(s: &mut Session, bytes: String) {
    s.send_bytes(bytes.into_bytes());
}
