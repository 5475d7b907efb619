//! A user's state that lives as long as they are online, and what it changes: away
//! (`/away`, IRC's away-notify, the note to a private message's sender), `/echo` and
//! `/bell` (a line naming them rings their terminal).

use super::presence::Online;
use super::Hub;
use crate::server::outbox::Bytes;
use crate::server::socket::ConnId;
use crate::server::text;
use crate::server::wire::{self, Wire};
use crate::store::presence::Op;

impl Hub {
    /// `/away [TEXT]` (`Some`) or `/back` (`None`) from a session: for all of its user's
    /// sessions, answered to the one that asked.
    pub(super) fn set_away(&mut self, conn: ConnId, away: Option<String>) {
        let Some(user) = self.clients.get(&conn).map(|c| c.user.id) else {
            return;
        };
        let answer = match (&away, c_wire(self, conn)) {
            (Some(why), Wire::Line) => text::now_away(why),
            (None, Wire::Line) => text::now_back(),
            (Some(_), Wire::Irc(_)) => wire::numeric(
                306,
                &c_nick(self, conn),
                ":You have been marked as being away",
            ),
            (None, Wire::Irc(_)) => wire::numeric(
                305,
                &c_nick(self, conn),
                ":You are no longer marked as being away",
            ),
        };
        if self.shared_db {
            self.presence_ops.push(Op::Away {
                user,
                away: away.clone(),
            });
        }
        self.notify_away(user, away.as_deref());
        if let Some(o) = self.presence.online.get_mut(&user) {
            o.away = away;
        }
        let answer = answer.into_bytes().into();
        self.queue_as(conn, Some(&answer), Some(&answer));
    }

    /// `away-notify`: IRC clients that share a channel with `user` (and asked for it) are
    /// sent its `AWAY`, once each.
    fn notify_away(&mut self, user: i64, away: Option<&str>) {
        let Some(o) = self.presence.online.get(&user) else {
            return;
        };
        let mut rooms: Vec<i64> = o
            .conns
            .iter()
            .filter_map(|c| self.clients.get(c))
            .flat_map(|c| c.rooms.iter().copied())
            .collect();
        rooms.sort_unstable();
        rooms.dedup();
        let mut told: Vec<ConnId> = rooms
            .iter()
            .filter_map(|r| self.rooms.by_id.get(r))
            .flat_map(|r| r.members.iter().copied())
            .filter(|m| {
                self.clients.get(m).is_some_and(|c| {
                    c.user.id != user && c.wire.caps().has(wire::Caps::AWAY_NOTIFY)
                })
            })
            .collect();
        if told.is_empty() {
            return;
        }
        told.sort_unstable();
        told.dedup();
        let line: Bytes = wire::away(&o.name, away).into_bytes().into();
        for conn in told {
            self.queue_as(conn, None, Some(&line));
        }
    }

    /// After a private message to `to` from `conn`: tells the sender if `to` will not read
    /// it now (away, or offline: it waits for their next login). An IRC sender gets an
    /// away as `RPL_AWAY` (301), as IRC servers answer a message to someone away.
    pub(super) fn tell_if_absent(&mut self, conn: ConnId, to: i64, to_name: &str) {
        let away = match self.presence.online.get(&to) {
            // Online on another node: away there, or there to read it.
            None if self.others.online(to) => match self.others.away(to) {
                Some(why) => Some((to_name.to_string(), why.to_string())),
                None => return,
            },
            None => None,
            Some(Online {
                away: Some(why),
                name,
                ..
            }) => Some((name.clone(), why.clone())),
            Some(_) => return,
        };
        let Some((name, why)) = away else {
            self.queue(conn, &text::offline(to_name).into_bytes().into());
            return;
        };
        let Some(nick) = self.clients.get(&conn).map(|c| c.user.name.clone()) else {
            return;
        };
        let line: Bytes = text::is_away(&name, &why).into_bytes().into();
        let numeric = wire::numeric(
            301,
            &nick,
            &format!("{name} :{}", why.replace(['\r', '\n'], " ")),
        );
        self.queue_as(conn, Some(&line), Some(&numeric.into_bytes().into()));
    }
}

impl Hub {
    /// `/echo on|off`, for every session of the user.
    pub(super) fn set_echo(&mut self, conn: ConnId, on: bool) {
        let Some(user) = self.clients.get(&conn).map(|c| c.user.id) else {
            return;
        };
        if let Some(o) = self.presence.online.get_mut(&user) {
            o.echo = on;
        }
    }

    /// Whether `conn`'s own plain lines go back to it: its user has `/echo` on and it is a
    /// terminal (telnet, nc, TLS, SSH; the web page shows what it sends itself).
    pub(super) fn echoes(&self, conn: ConnId) -> bool {
        self.clients.get(&conn).is_some_and(|c| {
            c.via.telnet() && self.presence.online.get(&c.user.id).is_some_and(|o| o.echo)
        })
    }

    /// `/bell on|off`, for every session of the user.
    pub(super) fn set_bell(&mut self, conn: ConnId, on: bool) {
        let Some(user) = self.clients.get(&conn).map(|c| c.user.id) else {
            return;
        };
        if let Some(o) = self.presence.online.get_mut(&user) {
            o.bell = on;
        }
    }

    /// The sessions to ring for a public line by `author` in `room`: those of every other
    /// user in the room it names (a word, or `@name`) who has the bell on.
    pub(super) fn to_ring(&self, author: Option<i64>, room: i64, body: &str) -> Vec<ConnId> {
        let p = &self.presence;
        let Some(members) = self.rooms.by_id.get(&room) else {
            return Vec::new();
        };
        let mut ring = Vec::new();
        let mut named: Vec<i64> = Vec::new();
        for key in crate::server::protocol::mentioned_keys(body) {
            let Some(&id) = p.by_key.get(&key) else {
                continue;
            };
            if Some(id) == author || named.contains(&id) || !members.users.contains_key(&id) {
                continue;
            }
            named.push(id);
            if let Some(o) = p.online.get(&id).filter(|o| o.bell) {
                ring.extend(&o.conns);
            }
        }
        ring
    }
}

/// What the client `conn` reads.
fn c_wire(hub: &Hub, conn: ConnId) -> Wire {
    hub.clients.get(&conn).map_or(Wire::Line, |c| c.wire)
}

/// The client `conn`'s nick (its user's name).
fn c_nick(hub: &Hub, conn: ConnId) -> String {
    hub.clients
        .get(&conn)
        .map(|c| c.user.name.clone())
        .unwrap_or_default()
}
