//! Rooms as the hub sees them: which sessions are in which room, moving a session between
//! rooms, topics, and the lines that concern one room (its online line, notices).
//!
//! A line-protocol session is in one room at a time; an IRC session in a set of channels
//! (`JOIN #a,#b`). A user is "in" a room while any of their sessions is. A room the hub
//! knows has someone in it: the last one out forgets it (the `rooms` table keeps it, with
//! its topic).

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::Sender;

use super::presence::{Change, What};
use super::Hub;
use crate::server::outbox::Bytes;
use crate::server::socket::ConnId;
use crate::server::text;
use crate::server::wire::{self, Wire};
use crate::store::rooms::Room;
use crate::store::users::name_key;

/// A room with someone in it.
pub(super) struct RoomState {
    pub name: String,
    /// Its topic, for `/rooms` (the `rooms` table has it too).
    pub topic: String,
    /// Sessions in the room per user: a user is in it while this is above zero.
    pub users: HashMap<i64, usize>,
    /// The sessions in the room: who a line said in it goes to.
    pub members: HashSet<ConnId>,
    /// How many of them read IRC: the room's lines are made in IRC too when there are any.
    pub irc: usize,
    /// How many members read each distinct IRC format ([`Wire::for_runs`]): a run of lines
    /// is made once per format present.
    pub formats: Vec<(Wire, usize)>,
}

impl RoomState {
    fn count(&mut self, wire: Wire, up: bool) {
        if !wire.is_irc() {
            return;
        }
        let wire = wire.for_runs();
        if up {
            self.irc += 1;
            match self.formats.iter_mut().find(|(w, _)| *w == wire) {
                Some((_, n)) => *n += 1,
                None => self.formats.push((wire, 1)),
            }
        } else {
            self.irc -= 1;
            if let Some(i) = self.formats.iter().position(|(w, _)| *w == wire) {
                self.formats[i].1 -= 1;
                if self.formats[i].1 == 0 {
                    self.formats.swap_remove(i);
                }
            }
        }
    }
}

/// A room as `/rooms` lists it.
#[derive(Debug, Clone)]
pub struct RoomCount {
    pub id: i64,
    pub name: String,
    pub topic: String,
    /// Users in it (a user with two sessions in it counts once).
    pub people: usize,
}

#[derive(Default)]
pub(super) struct Rooms {
    pub by_id: HashMap<i64, RoomState>,
}

impl Rooms {
    /// Puts `conn` (of `user`, reading `wire`) in `room`; true if the user was not in it
    /// before.
    pub fn enter(&mut self, room: &Room, (user, conn, wire): (i64, ConnId, Wire)) -> bool {
        let r = self.by_id.entry(room.id).or_insert_with(|| RoomState {
            name: room.name.clone(),
            topic: room.topic.clone(),
            users: HashMap::new(),
            members: HashSet::new(),
            irc: 0,
            formats: Vec::new(),
        });
        if !r.members.insert(conn) {
            return false; // in it already (an IRC client joining twice)
        }
        r.count(wire, true);
        let n = r.users.entry(user).or_insert(0);
        *n += 1;
        *n == 1
    }

    /// Takes `conn` (of `user`, reading `wire`) out of `room`; true if the user is in it
    /// no more.
    pub fn exit(&mut self, room: i64, (user, conn, wire): (i64, ConnId, Wire)) -> bool {
        let Some(r) = self.by_id.get_mut(&room) else {
            return false;
        };
        if !r.members.remove(&conn) {
            return false;
        }
        r.count(wire, false);
        let gone = match r.users.get_mut(&user) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                r.users.remove(&user);
                true
            }
            None => false,
        };
        if r.members.is_empty() {
            self.by_id.remove(&room);
        }
        gone
    }

    pub fn name(&self, room: i64) -> &str {
        self.by_id.get(&room).map(|r| &r.name[..]).unwrap_or("#?")
    }
}

impl Hub {
    /// `/join`: moves a session to `room` (the session stored the choice); with `keep` (an
    /// IRC `JOIN`), adds `room` to the session's channels instead. Like a login, the hub
    /// answers with its watermark and holds what it queues to the client from here on
    /// until the session hands in the room's history (`Welcome`), which goes out after what
    /// was queued before the move and before what comes after it.
    pub(super) fn move_to(&mut self, conn: ConnId, room: Room, keep: bool, watermark: Sender<i64>) {
        let Some(c) = self.clients.get_mut(&conn).filter(|c| !c.dead) else {
            return; // dropping `watermark` tells the session
        };
        c.mark = Some(c.out.mark());
        c.held = true;
        self.relocate(conn, &room, keep);
        let _ = watermark.send(self.last_id);
    }

    /// Puts `conn` in `room` (with `keep`, beside its other rooms; else instead of them):
    /// the unread markers of the rooms it leaves, the counts, the joins and leaves the
    /// rooms are told, the other nodes' view, and its online line (or `NAMES`) owed.
    pub(super) fn relocate(&mut self, conn: ConnId, room: &Room, keep: bool) {
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        let (user, name, wire) = (c.user.id, c.user.name.clone(), c.wire);
        let left = if keep {
            Vec::new()
        } else {
            std::mem::take(&mut c.rooms)
        };
        if !c.rooms.contains(&room.id) {
            c.rooms.push(room.id);
        }
        let to = room.name.clone();
        if self.shared_db {
            // Other nodes see a session in one room: its newest.
            self.presence_ops.push(crate::store::presence::Op::Move {
                conn: conn as i64,
                room: room.id,
            });
        }
        for from in left.into_iter().filter(|&r| r != room.id) {
            self.read_up_to_now(user, from);
            if self.rooms.exit(from, (user, conn, wire)) && !self.others.in_room(user, from) {
                self.presence.pending.push(Change {
                    name: name.clone(),
                    room: from,
                    what: What::LeftFor(to.clone()),
                    conn,
                });
            }
        }
        if self.rooms.enter(room, (user, conn, wire)) && !self.others.in_room(user, room.id) {
            self.presence.pending.push(Change {
                name,
                room: room.id,
                what: What::Entered(to),
                conn,
            });
        }
        self.presence.greet.push((conn, room.id));
    }

    /// IRC's `PART`: the session leaves `room` (it may be in none after). It is sent its
    /// own `PART`; the room hears it if the user has no other session there.
    pub(super) fn part(&mut self, conn: ConnId, room: i64) {
        let Some(c) = self.clients.get_mut(&conn).filter(|c| !c.dead) else {
            return;
        };
        if !c.rooms.contains(&room) {
            return;
        }
        c.rooms.retain(|&r| r != room);
        let (user, name, wire) = (c.user.id, c.user.name.clone(), c.wire);
        let own: Bytes = wire::part(&name, self.rooms.name(room), "left")
            .into_bytes()
            .into();
        if self.shared_db {
            if let Some(&now) = c.rooms.last() {
                self.presence_ops.push(crate::store::presence::Op::Move {
                    conn: conn as i64,
                    room: now,
                });
            }
        }
        self.read_up_to_now(user, room);
        if self.rooms.exit(room, (user, conn, wire)) && !self.others.in_room(user, room) {
            self.presence.pending.push(Change {
                name,
                room,
                what: What::Went(false, None),
                conn,
            });
        }
        self.queue_as(conn, None, Some(&own));
    }

    /// IRC's `CAP REQ` after login: the client reads `wire` from now on, in every room.
    pub(super) fn set_wire(&mut self, conn: ConnId, wire: Wire) {
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        let old = std::mem::replace(&mut c.wire, wire);
        for room in &c.rooms {
            if let Some(r) = self.rooms.by_id.get_mut(room) {
                r.count(old, false);
                r.count(wire, true);
            }
        }
    }

    /// `/topic TEXT` (already stored) in `room`: told to the room.
    pub(super) fn set_topic(&mut self, conn: ConnId, room: i64, topic: String) {
        let Some(c) = self.clients.get(&conn) else {
            return;
        };
        let line = text::topic_set(&c.user.name, &topic);
        let irc = wire::topic(&c.user.name, self.rooms.name(room), &topic);
        if let Some(r) = self.rooms.by_id.get_mut(&room) {
            r.topic = topic;
        }
        let (line, irc) = (line.into_bytes().into(), irc.into_bytes().into());
        self.send_to_room_as(room, Some(&line), Some(&irc), None);
    }

    /// The rooms with someone in them, busiest first.
    pub(super) fn room_counts(&self) -> Vec<RoomCount> {
        let mut out: Vec<RoomCount> = self
            .rooms
            .by_id
            .iter()
            .map(|(&id, r)| RoomCount {
                id,
                name: r.name.clone(),
                topic: r.topic.clone(),
                people: r.users.len(),
            })
            .collect();
        out.sort_by(|a, b| {
            b.people
                .cmp(&a.people)
                .then_with(|| name_key(&a.name).cmp(&name_key(&b.name)))
        });
        out
    }

    /// Queues `bytes` to every live session in `room` but `skip`.
    pub(super) fn send_to_room(&mut self, room: i64, bytes: &Bytes, skip: Option<ConnId>) {
        let members: Vec<ConnId> = match self.rooms.by_id.get(&room) {
            Some(r) => r.members.iter().copied().collect(),
            None => return,
        };
        for conn in members {
            if Some(conn) != skip {
                self.queue(conn, bytes);
            }
        }
    }

    /// Queues to every live session in `room` but `skip` what it reads: `line` to the line
    /// protocol's, `irc` to IRC's.
    pub(super) fn send_to_room_as(
        &mut self,
        room: i64,
        line: Option<&Bytes>,
        irc: Option<&Bytes>,
        skip: Option<ConnId>,
    ) {
        let members: Vec<ConnId> = match self.rooms.by_id.get(&room) {
            Some(r) => r.members.iter().copied().collect(),
            None => return,
        };
        for conn in members {
            if Some(conn) != skip {
                self.queue_as(conn, line, irc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire::Caps;

    const L: Wire = Wire::Line;
    const I: Wire = Wire::Irc(Caps::NONE);

    fn room(id: i64, name: &str) -> Room {
        Room {
            id,
            name: name.to_string(),
            topic: format!("about {name}"),
            private: false,
        }
    }

    #[test]
    fn a_user_is_in_a_room_while_any_of_their_sessions_is() {
        let (lobby, mut rooms) = (room(1, "#lobby"), Rooms::default());
        assert!(
            rooms.enter(&lobby, (10, 100, L)),
            "first session: the user came"
        );
        assert!(
            !rooms.enter(&lobby, (10, 101, L)),
            "second session: already in"
        );
        assert!(rooms.enter(&lobby, (20, 200, L)), "another user");
        let r = &rooms.by_id[&1];
        assert_eq!(
            (r.name.as_str(), r.topic.as_str()),
            ("#lobby", "about #lobby")
        );
        assert_eq!(r.members, HashSet::from([100, 101, 200]));
        assert_eq!(r.users, HashMap::from([(10, 2), (20, 1)]));
        assert!(
            !rooms.exit(1, (10, 100, L)),
            "one session of two left: still in"
        );
        assert!(rooms.exit(1, (10, 101, L)), "the last one: gone");
        assert_eq!(rooms.by_id[&1].members, HashSet::from([200]));
        assert!(!rooms.by_id[&1].users.contains_key(&10));
    }

    #[test]
    fn a_room_counts_its_irc_members_once_each() {
        let (lobby, mut rooms) = (room(1, "#lobby"), Rooms::default());
        rooms.enter(&lobby, (10, 100, I));
        rooms.enter(&lobby, (10, 100, I)); // the same session again: no change
        rooms.enter(&lobby, (20, 200, L));
        assert_eq!(rooms.by_id[&1].irc, 1);
        rooms.exit(1, (10, 999, I)); // not a member: no change
        assert_eq!(rooms.by_id[&1].irc, 1);
        rooms.exit(1, (10, 100, I));
        assert_eq!(rooms.by_id[&1].irc, 0);
    }

    #[test]
    fn the_last_one_out_forgets_the_room_and_unknown_exits_change_nothing() {
        let mut rooms = Rooms::default();
        rooms.enter(&room(1, "#lobby"), (10, 100, L));
        rooms.enter(&room(2, "#tea"), (10, 101, L));
        assert!(!rooms.exit(3, (10, 100, L)), "a room nobody is in");
        assert!(!rooms.exit(1, (99, 999, L)), "a session not in it");
        assert_eq!(rooms.by_id[&1].members, HashSet::from([100]));
        assert!(rooms.exit(2, (10, 101, L)));
        assert!(!rooms.by_id.contains_key(&2), "#tea is empty: forgotten");
        assert_eq!(rooms.name(2), "#?");
        assert_eq!(rooms.name(1), "#lobby");
        // Coming back makes it again, with the topic it is given.
        rooms.enter(&room(2, "#tea"), (20, 200, L));
        assert_eq!(rooms.by_id[&2].topic, "about #tea");
    }
}
