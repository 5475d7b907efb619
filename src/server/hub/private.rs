//! Invite-only rooms as the hub sees them: which rooms are private (their names are not
//! shown to those who are not in them: `/who *`, `WHOIS`), who is in a room now (its first
//! members), and taking an uninvited user's sessions out of one.

use super::Hub;
use crate::server::outbox::Bytes;
use crate::server::socket::ConnId;
use crate::server::text;
use crate::server::wire::Wire;
use crate::store::rooms::LOBBY;

impl Hub {
    /// The users in `room` now, on this node and the others, each once.
    pub(super) fn users_in(&self, room: i64) -> Vec<i64> {
        let mut users: Vec<i64> = self
            .rooms
            .by_id
            .get(&room)
            .map(|r| r.users.keys().copied().collect())
            .unwrap_or_default();
        users.extend(
            self.others
                .sessions
                .values()
                .filter(|r| r.room == room)
                .map(|r| r.user),
        );
        users.sort_unstable();
        users.dedup();
        users
    }

    /// `/private on|off` was stored: the room's name is hidden (or shown) from now on, and
    /// the room is told.
    pub(super) fn set_privacy(&mut self, room: i64, private: bool, announce: String) {
        if private {
            self.private.insert(room);
        } else {
            self.private.remove(&room);
        }
        let line: Bytes = announce.into_bytes().into();
        self.send_to_room(room, &line, None);
    }

    /// Whether the name of `room` may be shown to `user`: it is not private, or they are in
    /// it (on this node).
    pub(super) fn room_shown_to(&self, room: i64, user: Option<i64>) -> bool {
        !self.private.contains(&room)
            || user.is_some_and(|u| {
                self.rooms
                    .by_id
                    .get(&room)
                    .is_some_and(|r| r.users.contains_key(&u))
            })
    }

    /// The line protocol's `text` to every session of `user` here.
    pub(super) fn tell(&mut self, user: i64, text: &str) {
        let bytes: Bytes = text.as_bytes().to_vec().into();
        for conn in self.sessions_of(user) {
            self.queue(conn, &bytes);
        }
    }

    /// `/uninvite`: `user`'s sessions in invite-only `room` leave it, told `text`. A
    /// line-protocol session goes to `#lobby` (the hub is its room's truth: its next lines
    /// are said there); an IRC session is parted.
    pub(super) fn evict(&mut self, room: i64, user: i64, text: &str) {
        let conns: Vec<ConnId> = self
            .sessions_of(user)
            .into_iter()
            .filter(|c| self.clients.get(c).is_some_and(|c| c.rooms.contains(&room)))
            .collect();
        let told: Bytes = text.as_bytes().to_vec().into();
        for conn in conns {
            let Some(c) = self.clients.get(&conn) else {
                continue;
            };
            match c.wire {
                Wire::Irc(_) => {
                    self.queue(conn, &told);
                    self.part(conn, room);
                }
                Wire::Line => self.move_out(conn, room, &told),
            }
        }
    }

    /// Takes a line-protocol session from `room` to `#lobby`, telling it `told` (no history:
    /// it was in the chat already; `/history` gives it).
    fn move_out(&mut self, conn: ConnId, room: i64, told: &Bytes) {
        if !self
            .clients
            .get(&conn)
            .is_some_and(|c| c.rooms.contains(&room))
        {
            return;
        }
        let lobby = crate::store::rooms::Room {
            id: LOBBY,
            name: "#lobby".into(),
            topic: self
                .rooms
                .by_id
                .get(&LOBBY)
                .map(|r| r.topic.clone())
                .unwrap_or_default(),
            private: false,
        };
        self.relocate(conn, &lobby, false);
        self.queue(conn, told);
        let here = text::you_are_in("#lobby", &lobby.topic);
        self.queue(conn, &here.into_bytes().into());
    }
}
