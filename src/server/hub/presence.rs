//! Who is online: joining and leaving, the notices about them, the online line.
//!
//! Built for storms (a restart brings thousands of reconnects at once): a join costs the hub
//! O(log N) (the history is loaded by the session, off the hub); joins and leaves are
//! announced together at the next point of order (several in one batch become one line such
//! as `* 250 people joined`); the online line is built once per batch for every newcomer of
//! that batch, from a list kept sorted as people come and go.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::clients::Client;
use super::{Hub, OnlineUser};
use crate::server::moderation::banned_line;
use crate::server::outbox::Outbox;
use crate::server::socket::ConnId;
use crate::server::socket::{Socket, Via};
use crate::server::text;
use crate::server::wire::{self, Wire};
use crate::store::presence::Op;
use crate::store::rooms::Room;
use crate::store::users::{name_key, User};

#[derive(Default)]
pub(super) struct Presence {
    /// Users with at least one session, by id.
    pub(super) online: HashMap<i64, Online>,
    /// The same users by name key, kept sorted for the online line.
    pub(super) by_key: BTreeMap<String, i64>,
    /// Joins and leaves not yet announced, in order.
    pub pending: Vec<Change>,
    /// Sessions owed a room's online line (new, moved, or an IRC client that joined it).
    pub greet: Vec<(ConnId, i64)>,
}

impl Presence {
    /// Whether `user` has a session on this node.
    pub fn is_online(&self, user: i64) -> bool {
        self.online.contains_key(&user)
    }

    /// Users with a session on this node.
    pub fn count(&self) -> usize {
        self.online.len()
    }

    /// The user whose name key is `key`, if online on this node: id, state.
    pub fn by_key(&self, key: &str) -> Option<(i64, &Online)> {
        let id = *self.by_key.get(key)?;
        Some((id, self.online.get(&id)?))
    }

    /// Everyone online in name order: id, name key, state.
    pub fn names(&self) -> impl Iterator<Item = (i64, &str, &Online)> + '_ {
        self.by_key
            .iter()
            .filter_map(|(key, &id)| Some((id, &key[..], self.online.get(&id)?)))
    }
}

/// A user with at least one session.
pub(super) struct Online {
    pub name: String,
    pub conns: Vec<ConnId>,
    /// `/away TEXT`: kept while any session of the user is online.
    pub away: Option<String>,
    /// A mention rings the bell of this user's sessions.
    pub(super) bell: bool,
    /// The user's own lines come back to their terminals (`/echo`).
    pub echo: bool,
}

/// A user came into a room or went out of it, told to that room.
pub(super) struct Change {
    pub name: String,
    pub room: i64,
    pub what: What,
    /// The session that came, which is not told of its own arrival.
    pub conn: ConnId,
}

pub(super) enum What {
    /// Came online (their first session), into this room.
    Came,
    /// Went: offline (`true`: IRC says QUIT, with the client's quit message if it gave
    /// one), or their last session in this room ended.
    Went(bool, Option<String>),
    /// Already online, came into this room (`/join`, or a session that starts here).
    Entered(String),
    /// Moved to another room (`/join`).
    LeftFor(String),
}

impl What {
    pub(super) fn came(&self) -> bool {
        matches!(self, What::Came | What::Entered(_))
    }
}

impl Hub {
    pub(super) fn join(
        &mut self,
        conn: ConnId,
        user: User,
        (addr, via, wire, (bell, echo)): (SocketAddr, Via, Wire, (bool, bool)),
        room: Room,
        sock: Arc<Socket>,
        watermark: Sender<(i64, bool)>,
    ) {
        let mut out = Outbox::new(sock, self.settings.max_backlog);
        // A ban may have come while this session was logging in.
        let refusal = if self.closing {
            Some(text::shutting_down())
        } else {
            self.moderation
                .ban_on(&name_key(&user.name), addr.ip())
                .map(|ban| banned_line(&ban))
        };
        if let Some(text) = refusal {
            let text = match wire {
                Wire::Line => text,
                Wire::Irc(_) => wire::notices(&user.name, &text) + &wire::error(&text),
            };
            let _ = out.queue(&text.into_bytes().into());
            let _ = out.flush();
            out.close();
            return; // dropping `watermark` tells the session
        }
        let online = self.presence.online.contains_key(&user.id);
        if watermark.send((self.last_id, online)).is_err() {
            return; // the session is gone already
        }
        let p = &mut self.presence;
        let entry = p.online.entry(user.id).or_insert_with(|| Online {
            name: user.name.clone(),
            conns: Vec::new(),
            away: None,
            bell,
            echo,
        });
        entry.bell = bell;
        entry.echo = echo;
        let first_here = entry.conns.is_empty();
        if first_here {
            p.by_key.insert(name_key(&user.name), user.id);
        }
        // Came online: no session anywhere before (this node or another).
        let came = first_here && !self.others.online(user.id);
        if self.shared_db {
            self.presence_ops.push(Op::Add {
                conn: conn as i64,
                user: user.id,
                name: user.name.clone(),
                room: room.id,
            });
        }
        if self.rooms.enter(&room, (user.id, conn, wire)) && !self.others.in_room(user.id, room.id)
        {
            p.pending.push(Change {
                name: user.name.clone(),
                room: room.id,
                what: if came {
                    What::Came
                } else {
                    What::Entered(room.name.clone())
                },
                conn,
            });
        }
        entry.conns.push(conn);
        p.greet.push((conn, room.id));
        self.count_online();
        self.clients.insert(
            conn,
            Client {
                user,
                addr,
                via,
                wire,
                out,
                dirty: false,
                dead: false,
                removed: false,
                held: true,
                polled: false,
                rooms: vec![room.id],
                mark: None,
                signon: std::time::SystemTime::now(),
                said_at: std::time::Instant::now(),
            },
        );
    }

    /// The session's history arrived: it goes in front of what was queued since `Join`.
    pub(super) fn welcome(&mut self, conn: ConnId, bytes: Vec<u8>, keep: bool) {
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        c.held = false;
        match c.mark.take() {
            Some(mark) => c.out.insert_at(mark, bytes.into()),
            None => c.out.prepend(bytes.into()),
        }
        if !keep {
            // The account went while the session logged in: say so and cut it.
            let _ = c.out.flush();
            c.out.close();
            c.dead = true;
            c.removed = true;
            return;
        }
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(conn);
        }
    }

    /// A session ended; `why`: its IRC client's quit message.
    pub(super) fn leave(&mut self, conn: ConnId, why: Option<String>) {
        let Some(mut c) = self.clients.remove(&conn) else {
            return;
        };
        self.unpoll(&c);
        // Last words (a "Bye." queued just before) go out if the kernel takes them now.
        if !c.dead && !c.held {
            let _ = c.out.flush();
        }
        if self.shared_db {
            self.presence_ops.push(Op::Remove { conn: conn as i64 });
        }
        let p = &mut self.presence;
        let last = p.online.get(&c.user.id).is_none_or(|o| o.conns.len() <= 1);
        let offline = last && !self.others.online(c.user.id);
        for &room in &c.rooms {
            self.read.push((c.user.id, room, self.last_id));
            if self.rooms.exit(room, (c.user.id, conn, c.wire))
                && !self.others.in_room(c.user.id, room)
            {
                p.pending.push(Change {
                    name: c.user.name.clone(),
                    room,
                    what: What::Went(offline, why.clone()),
                    conn,
                });
            }
        }
        let Some(o) = p.online.get_mut(&c.user.id) else {
            return;
        };
        o.conns.retain(|&x| x != conn);
        if o.conns.is_empty() {
            self.seen.push((c.user.id, self.last_id));
            p.online.remove(&c.user.id);
            p.by_key.remove(&name_key(&c.user.name));
            self.count_online();
        }
    }

    pub(super) fn snapshot(&self) -> Vec<OnlineUser> {
        let p = &self.presence;
        p.by_key
            .values()
            .filter_map(|id| p.online.get(id))
            .map(|o| OnlineUser {
                name: o.name.clone(),
                addrs: o
                    .conns
                    .iter()
                    .filter_map(|c| {
                        let c = self.clients.get(c)?;
                        let rooms: Vec<&str> =
                            c.rooms.iter().map(|&r| self.rooms.name(r)).collect();
                        Some((c.addr, c.via, rooms.join(",")))
                    })
                    .collect(),
            })
            .collect()
    }
}

impl Hub {
    /// The sessions of a user (none if offline).
    pub(super) fn sessions_of(&self, user: i64) -> Vec<ConnId> {
        self.presence
            .online
            .get(&user)
            .map(|o| o.conns.clone())
            .unwrap_or_default()
    }
}
