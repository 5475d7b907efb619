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
    /// Delivers what other nodes committed after the watermark and before `before` (all,
    /// if `None`), in id order.
    /// True when all of it was read.
    pub(super) fn catch_up(&mut self, before: Option<i64>) -> bool {
        if !self.shared_db {
            return true;
        }
        loop {
            let after = self.last_id;
            let rows = self
                .db
                .run(|c| messages::between(c, after, before.unwrap_or(i64::MAX), CATCH_UP));
            match rows {
                Ok(rows) => {
                    let n = rows.len();
                    // A line removed before this node read it is not shown; the watermark
                    // still moves past it.
                    let last = rows.last().map_or(after, |m| m.id);
                    let rows: Vec<_> = rows.into_iter().filter(|m| !m.removed).collect();
                    self.deliver(&rows, None);
                    self.last_id = self.last_id.max(last);
                    if n < CATCH_UP as usize {
                        return true;
                    }
                }
                Err(crate::error::Error::DbDown) => return false,
                Err(e) => {
                    log::error!("cannot read other nodes' messages: {e}");
                    return false;
                }
            }
        }
    }
}

impl Hub {
    /// Delivers a batch held back ([`Hub::commit_staged`]) once what precedes it is read;
    /// true when none is held any more.
    pub(super) fn release_held(&mut self) -> bool {
        let Some((msgs, from)) = self.held.take() else {
            return true;
        };
        let first = msgs.iter().map(|m| m.id).min().unwrap_or(i64::MAX);
        if !self.catch_up(Some(first)) {
            self.held = Some((msgs, from));
            return false;
        }
        self.deliver(&msgs, Some(&from));
        true
    }

    /// Delivers everything the other nodes committed, after any batch held back.
    pub(super) fn catch_up_all(&mut self) {
        if self.release_held() {
            self.catch_up(None);
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
        let node = &self.node;
        let now = match self.db.run(|c| presence::others(c, node)) {
            Ok(rows) => rows,
            Err(crate::error::Error::DbDown) => return,
            Err(e) => {
                log::warn!("cannot read the other nodes' sessions: {e}");
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
                Some(_) => What::Went(false, None),
                None => What::Went(!self.presence.is_online(user), None),
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
        let (node, addr) = (&self.node, &self.node_addr);
        match self.db.run(|c| presence::apply(c, node, addr, &ops)) {
            Ok(()) => {}
            // Kept, in order, for the next batch: the sessions table must not miss a change.
            Err(crate::error::Error::DbDown) => {
                let newer = std::mem::replace(&mut self.presence_ops, ops);
                self.presence_ops.extend(newer);
            }
            Err(e) => log::warn!("cannot write this node's sessions: {e}"),
        }
    }

    /// Once a second: this node is alive; nodes that are not are forgotten.
    pub(super) fn heartbeat(&mut self) {
        if !self.shared_db {
            return;
        }
        let (node, addr) = (&self.node, &self.node_addr);
        match self.db.run(|c| presence::heartbeat(c, node, addr)) {
            Ok(true) => self.refresh_others(),
            Ok(false) | Err(crate::error::Error::DbDown) => {}
            Err(e) => log::warn!("cannot write this node's heartbeat: {e}"),
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
