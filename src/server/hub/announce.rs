//! Telling rooms who came and went: the joins and leaves of a batch, announced together at
//! the next point of order, each in the reader's wire (a line for the line protocol; `JOIN`,
//! `PART` or `QUIT` for IRC), and each newcomer its room's online line (IRC: `NAMES`).

use std::collections::{HashMap, HashSet};

use super::presence::{Change, What};
use super::Hub;
use crate::server::outbox::Bytes;
use crate::server::socket::ConnId;
use crate::server::text;
use crate::server::wire::{self, Caps, Wire};
use crate::store::users::name_key;

/// More joins and leaves than this in one batch are announced as one line (to the line
/// protocol; IRC clients keep each channel's list of people and get every change).
const COALESCE_OVER: usize = 3;

/// Names in the online line a newcomer gets (`/who` lists everyone).
const NAMES_AT_LOGIN: usize = 100;

impl Hub {
    /// Announces the joins and leaves since the last point of order, each to its room, and
    /// sends this batch's newcomers their room's online line.
    pub(super) fn announce_presence(&mut self) {
        let changes = std::mem::take(&mut self.presence.pending);
        // Rooms in the order they first appear; each room's changes in order.
        let mut by_room: Vec<(i64, Vec<Change>)> = Vec::new();
        for c in changes {
            match by_room.iter_mut().find(|(room, _)| *room == c.room) {
                Some((_, list)) => list.push(c),
                None => by_room.push((c.room, vec![c])),
            }
        }
        // An IRC reader hears a user's QUIT once, however many channels they shared.
        let mut quits: HashSet<(ConnId, String)> = HashSet::new();
        for (room, changes) in by_room {
            let irc = self.rooms.by_id.get(&room).is_some_and(|r| r.irc > 0);
            let crowd = changes.len() > COALESCE_OVER;
            if crowd {
                let came = changes.iter().filter(|c| c.what.came()).count();
                let went = changes.len() - came;
                let line = text::crowd(came, went).into_bytes().into();
                self.send_to_room_as(room, Some(&line), None, None);
                if !irc {
                    continue;
                }
            }
            for c in changes {
                let line = (!crowd).then(|| line_for(&c).into_bytes().into());
                self.tell_room(room, &c, line.as_ref(), &mut quits);
            }
        }
        self.greet();
    }

    /// One change to `room`'s sessions but the one that made it (when it came): `line` to
    /// the line protocol's, the IRC message to IRC's.
    fn tell_room(
        &mut self,
        room: i64,
        c: &Change,
        line: Option<&Bytes>,
        quits: &mut HashSet<(ConnId, String)>,
    ) {
        let Some(r) = self.rooms.by_id.get(&room) else {
            return;
        };
        let name = r.name.clone();
        let members: Vec<ConnId> = r.members.iter().copied().collect();
        let skip = c.what.came().then_some(c.conn);
        // Made once per kind of reader, when one needs it. An operator coming in is given
        // `@` by a MODE after the JOIN: an IRC client builds its list of the channel's
        // people from JOINs and MODEs, not from a NAMES it is not sent again.
        let op = c.what.came() && self.moderation.is_op(&name_key(&c.name));
        let op_mode = if op {
            format!(":{} MODE {name} +o {}\r\n", wire::SERVER, c.name)
        } else {
            String::new()
        };
        let mut plain: Option<Bytes> = None;
        let mut extended: Option<Bytes> = None;
        for conn in members.into_iter().filter(|&m| Some(m) != skip) {
            let Some(wire) = self.clients.get(&conn).map(|c| c.wire) else {
                continue;
            };
            let caps = match wire {
                Wire::Line => {
                    if let Some(line) = line {
                        self.queue_as(conn, Some(line), None);
                    }
                    continue;
                }
                Wire::Irc(caps) => caps,
            };
            if matches!(c.what, What::Went(true, _)) && !quits.insert((conn, c.name.clone())) {
                continue;
            }
            let bytes = if caps.has(Caps::EXTENDED_JOIN) && c.what.came() {
                extended.get_or_insert_with(|| {
                    (wire::extended_join(&c.name, &name) + &op_mode)
                        .into_bytes()
                        .into()
                })
            } else {
                plain.get_or_insert_with(|| (irc_for(c, &name) + &op_mode).into_bytes().into())
            };
            let bytes = bytes.clone();
            self.queue_as(conn, None, Some(&bytes));
        }
    }

    /// This batch's newcomers to a room get its online line, or on IRC its `NAMES`.
    fn greet(&mut self) {
        let greet = std::mem::take(&mut self.presence.greet);
        let mut lines: HashMap<i64, Bytes> = HashMap::new();
        for (conn, room) in greet {
            let Some((wire, nick)) = self
                .clients
                .get(&conn)
                .filter(|c| c.rooms.contains(&room))
                .map(|c| (c.wire, c.user.name.clone()))
            else {
                continue;
            };
            if wire.is_irc() {
                // The channel's NAMES, as an IRC client expects after its JOIN.
                let names = self.room_irc(room, &nick, false);
                self.queue_as(conn, None, Some(&names));
                continue;
            }
            let line = lines
                .entry(room)
                .or_insert_with(|| self.room_line(room, Some(NAMES_AT_LOGIN)))
                .clone();
            self.queue(conn, &line);
        }
    }
}

/// A change as the line protocol tells it.
fn line_for(c: &Change) -> String {
    match &c.what {
        What::Came => text::joined(&c.name),
        What::Entered(room) => text::entered(&c.name, room),
        What::Went(..) => text::left(&c.name),
        What::LeftFor(room) => text::left_for(&c.name, room),
    }
}

/// A change as IRC tells it, in channel `room`: every change, by name, however many (an
/// IRC client shows a storm of joins folded itself).
fn irc_for(c: &Change, room: &str) -> String {
    match &c.what {
        What::Came | What::Entered(_) => wire::join(&c.name, room),
        What::Went(true, why) => wire::quit(&c.name, why.as_deref().unwrap_or("left")),
        What::Went(false, _) => wire::part(&c.name, room, "left"),
        What::LeftFor(to) => wire::part(&c.name, room, &format!("left for {to}")),
    }
}
