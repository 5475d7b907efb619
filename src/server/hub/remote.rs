//! Several nodes on one PostgreSQL database: lines committed by other nodes reach this
//! node's clients, in the one order of `messages.id`.
//!
//! Commits are serialized across nodes (a transaction lock, taken first), so ids are handed
//! out in commit order and a row with a smaller id than one already read never appears later.
//! The hub reads what others committed after its watermark, by id, when told (`NOTIFY`,
//! through the listener thread), once a second in case a notification was lost, and before
//! delivering each of its own batches (all that precedes the batch is committed by then). On
//! SQLite there is one node, and nothing to read.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use crate::store::messages;
use crate::store::presence::{self, Remote};

use super::presence::{Change, What};
use super::Hub;

/// Rows read at a time.
const CATCH_UP: u32 = 1000;

impl Hub {
    /// Replaces the hub's database connection after a failure that may have been the
    /// connection's own (the database restarted); keeps the old one if no new one can be had.
    pub(super) fn reconnect(&mut self) {
        match self.store.dedicated() {
            Ok(db) => self.db = db,
            Err(e) => log::warn!("cannot reconnect to the database: {e}"),
        }
    }

    /// Delivers what other nodes committed after the watermark and before `before` (all,
    /// if `None`), in id order.
    pub(super) fn catch_up(&mut self, before: Option<i64>) {
        if !self.shared_db {
            return;
        }
        loop {
            let rows =
                messages::between(&self.db, self.last_id, before.unwrap_or(i64::MAX), CATCH_UP);
            match rows {
                Ok(rows) => {
                    let n = rows.len();
                    self.deliver(&rows, None);
                    if n < CATCH_UP as usize {
                        return;
                    }
                }
                Err(e) => {
                    log::error!("cannot read other nodes' messages: {e}");
                    self.reconnect();
                    return;
                }
            }
        }
    }
}

/// Who is online on the other nodes, as last read, with the lookups a login or a line needs
/// kept as maps (a join asks "is this user on another node?" with thousands online there).
#[derive(Default)]
pub(super) struct Others {
    /// By (node, connection).
    pub sessions: HashMap<(String, i64), Remote>,
    /// Sessions per user, and per (user, room).
    users: HashMap<i64, usize>,
    user_rooms: HashMap<(i64, i64), usize>,
    /// Users away on another node, with their text.
    away: HashMap<i64, String>,
}

impl Others {
    fn new(sessions: HashMap<(String, i64), Remote>) -> Others {
        let mut o = Others {
            sessions,
            ..Others::default()
        };
        for r in o.sessions.values() {
            *o.users.entry(r.user).or_default() += 1;
            *o.user_rooms.entry((r.user, r.room)).or_default() += 1;
            if let Some(why) = &r.away {
                o.away.insert(r.user, why.clone());
            }
        }
        o
    }

    /// Whether `user` has a session on another node.
    pub fn online(&self, user: i64) -> bool {
        self.users.contains_key(&user)
    }

    /// Whether `user` has a session in `room` on another node.
    pub fn in_room(&self, user: i64, room: i64) -> bool {
        self.user_rooms.contains_key(&(user, room))
    }

    /// `user`'s away text, if a session of theirs on another node is away.
    pub fn away(&self, user: i64) -> Option<&str> {
        self.away.get(&user).map(String::as_str)
    }
}

impl Hub {
    /// Rereads the other nodes' sessions and tells this node's rooms who came and went.
    pub(super) fn refresh_others(&mut self) {
        if !self.shared_db {
            return;
        }
        let now = match presence::others(&self.db, &self.node) {
            Ok(rows) => rows,
            Err(e) => {
                log::warn!("cannot read the other nodes' sessions: {e}");
                self.reconnect();
                return;
            }
        };
        let after: HashMap<(String, i64), Remote> = now
            .into_iter()
            .map(|r| ((r.node.clone(), r.conn), r))
            .collect();
        let before = std::mem::replace(&mut self.others, Others::new(after)).sessions;
        // Who is in which room, elsewhere, before and after: (user, room) → (name, room name).
        let pairs = |m: &HashMap<(String, i64), Remote>| -> HashMap<(i64, i64), (String, String)> {
            m.values()
                .map(|r| ((r.user, r.room), (r.name.clone(), r.room_name.clone())))
                .collect()
        };
        let (was, is) = (pairs(&before), pairs(&self.others.sessions));
        let was_online: std::collections::HashSet<i64> = before.values().map(|r| r.user).collect();
        for (&(user, room), (name, room_name)) in &is {
            if was.contains_key(&(user, room)) || self.locally_in_room(user, room) {
                continue;
            }
            let what = if was_online.contains(&user) || self.presence.is_online(user) {
                What::Entered(room_name.clone())
            } else {
                What::Came
            };
            self.presence.pending.push(Change {
                name: name.clone(),
                room,
                what,
                conn: 0,
            });
        }
        for (&(user, room), (name, _)) in &was {
            if is.contains_key(&(user, room)) || self.locally_in_room(user, room) {
                continue;
            }
            // Still online elsewhere, in another room: moved there.
            let moved = self
                .others
                .sessions
                .values()
                .find(|r| r.user == user)
                .map(|r| r.room_name.clone());
            let what = match moved {
                Some(to) if !self.presence.is_online(user) => What::LeftFor(to),
                Some(_) => What::Went(false),
                None => What::Went(!self.presence.is_online(user)),
            };
            self.presence.pending.push(Change {
                name: name.clone(),
                room,
                what,
                conn: 0,
            });
        }
        self.count_online();
    }

    /// Writes this batch's changes to this node's sessions, and the heartbeat.
    pub(super) fn store_presence(&mut self) {
        if !self.shared_db || self.presence_ops.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.presence_ops);
        if let Err(e) = presence::apply(&self.db, &self.node, &self.node_addr, &ops) {
            log::warn!("cannot write this node's sessions: {e}");
            self.reconnect();
        }
    }

    /// Once a second: this node is alive; nodes that are not are forgotten.
    pub(super) fn heartbeat(&mut self) {
        if !self.shared_db {
            return;
        }
        match presence::heartbeat(&self.db, &self.node, &self.node_addr) {
            Ok(true) => self.refresh_others(),
            Ok(false) => {}
            Err(e) => {
                log::warn!("cannot write this node's heartbeat: {e}");
                self.reconnect();
            }
        }
    }

    /// Whether `user` has a session of this node in `room`.
    fn locally_in_room(&self, user: i64, room: i64) -> bool {
        self.rooms
            .by_id
            .get(&room)
            .is_some_and(|r| r.users.contains_key(&user))
    }

    /// Users online on any node, for the greeting and `/metrics`.
    pub(super) fn count_online(&self) {
        let elsewhere = self
            .others
            .users
            .keys()
            .filter(|&&u| !self.presence.is_online(u))
            .count();
        self.stats
            .users_online
            .store(self.presence.count() + elsewhere, Ordering::Relaxed);
    }
}
