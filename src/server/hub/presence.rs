//! Who is online: joining and leaving, the notices about them, the online line.
//!
//! Built for storms (a restart brings thousands of reconnects at once): a join costs the hub
//! O(log N) (the history is loaded by the session, off the hub); joins and leaves are
//! announced together at the next point of order (several in one batch become one line such
//! as `* 250 people joined`); the online line is built once per batch for every newcomer of
//! that batch, from a list kept sorted as people come and go.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::clients::Client;
use super::{ConnId, Hub, OnlineUser};
use crate::server::moderation::banned_line;
use crate::server::outbox::{Bytes, Outbox};
use crate::server::protocol::online_line;
use crate::server::text;
use crate::server::transport::{Socket, Via};
use crate::store::users::{name_key, User};

/// More joins and leaves than this in one batch are announced as one line.
const COALESCE_OVER: usize = 3;

/// Names in the online line a newcomer gets (`/who` lists everyone).
const NAMES_AT_LOGIN: usize = 100;

#[derive(Default)]
pub(super) struct Presence {
    /// Users with at least one session, by id.
    online: HashMap<i64, Online>,
    /// The same users by name key, kept sorted for the online line.
    by_key: BTreeMap<String, i64>,
    /// Joins and leaves not yet announced, in order.
    pending: Vec<Change>,
    /// New sessions owed the online line.
    greet: Vec<ConnId>,
}

/// A user with at least one session.
struct Online {
    name: String,
    conns: Vec<ConnId>,
    /// `/away TEXT`: kept while any session of the user is online.
    away: Option<String>,
    /// A mention rings the bell of this user's sessions.
    bell: bool,
}

/// A user came (their first session) or went (their last).
struct Change {
    name: String,
    joined: bool,
    /// The session that came, which is not told of its own arrival.
    conn: ConnId,
}

impl Hub {
    pub(super) fn join(
        &mut self,
        conn: ConnId,
        user: User,
        (addr, via, bell): (SocketAddr, Via, bool),
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
        });
        entry.bell = bell;
        if entry.conns.is_empty() {
            p.by_key.insert(name_key(&user.name), user.id);
            p.pending.push(Change {
                name: user.name.clone(),
                joined: true,
                conn,
            });
        }
        entry.conns.push(conn);
        p.greet.push(conn);
        self.stats
            .users_online
            .store(p.online.len(), Ordering::Relaxed);
        self.clients.insert(
            conn,
            Client {
                user,
                addr,
                via,
                out,
                dirty: false,
                dead: false,
                removed: false,
                held: true,
                polled: false,
            },
        );
    }

    /// The session's history arrived: it goes in front of what was queued since `Join`.
    pub(super) fn welcome(&mut self, conn: ConnId, bytes: Vec<u8>, keep: bool) {
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        c.held = false;
        c.out.prepend(bytes.into());
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

    pub(super) fn leave(&mut self, conn: ConnId) {
        let Some(mut c) = self.clients.remove(&conn) else {
            return;
        };
        self.unpoll(&c);
        // Last words (a "Bye." queued just before) go out if the kernel takes them now.
        if !c.dead && !c.held {
            let _ = c.out.flush();
        }
        let p = &mut self.presence;
        let Some(o) = p.online.get_mut(&c.user.id) else {
            return;
        };
        o.conns.retain(|&x| x != conn);
        if o.conns.is_empty() {
            self.seen.push((c.user.id, self.last_id));
            p.online.remove(&c.user.id);
            p.by_key.remove(&name_key(&c.user.name));
            p.pending.push(Change {
                name: c.user.name,
                joined: false,
                conn,
            });
            self.stats
                .users_online
                .store(p.online.len(), Ordering::Relaxed);
        }
    }

    /// Announces the joins and leaves since the last point of order, and sends the online
    /// line to this batch's newcomers.
    pub(super) fn announce_presence(&mut self) {
        let changes = std::mem::take(&mut self.presence.pending);
        if changes.len() > COALESCE_OVER {
            let came = changes.iter().filter(|c| c.joined).count();
            let went = changes.len() - came;
            self.send_to_all(&text::crowd(came, went).into_bytes().into(), None);
        } else {
            for c in changes {
                let (line, skip) = if c.joined {
                    (text::joined(&c.name), Some(c.conn))
                } else {
                    (text::left(&c.name), None)
                };
                self.send_to_all(&line.into_bytes().into(), skip);
            }
        }
        let greet = std::mem::take(&mut self.presence.greet);
        if !greet.is_empty() {
            let line = self.online_line(Some(NAMES_AT_LOGIN));
            for conn in greet {
                self.queue(conn, &line);
            }
        }
    }

    /// `* Online (N): @alice, bob` (`@` marks operators), at most `limit` names.
    pub(super) fn online_line(&self, limit: Option<usize>) -> Bytes {
        let p = &self.presence;
        let names: Vec<String> = p
            .by_key
            .iter()
            .take(limit.unwrap_or(usize::MAX))
            .filter_map(|(key, id)| {
                let o = p.online.get(id)?;
                let name = if self.moderation.is_op(key) {
                    format!("@{}", o.name)
                } else {
                    o.name.clone()
                };
                Some(match &o.away {
                    Some(why) => text::away_mark(&name, why),
                    None => name,
                })
            })
            .collect();
        online_line(p.by_key.len(), &names).into_bytes().into()
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
                    .filter_map(|c| self.clients.get(c).map(|c| (c.addr, c.via)))
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

impl Hub {
    /// `/away [TEXT]` (`Some`) or `/back` (`None`) from a session: for all of its user's
    /// sessions, answered to the one that asked.
    pub(super) fn set_away(&mut self, conn: ConnId, away: Option<String>) {
        let Some(user) = self.clients.get(&conn).map(|c| c.user.id) else {
            return;
        };
        let answer = match &away {
            Some(why) => text::now_away(why),
            None => text::now_back(),
        };
        if let Some(o) = self.presence.online.get_mut(&user) {
            o.away = away;
        }
        self.queue(conn, &answer.into_bytes().into());
    }

    /// After a private message to `to` from `conn`: tells the sender if `to` will not read
    /// it now (away, or offline: it waits for their next login).
    pub(super) fn tell_if_absent(&mut self, conn: ConnId, to: i64, to_name: &str) {
        let note = match self.presence.online.get(&to) {
            None => text::offline(to_name),
            Some(Online {
                away: Some(why),
                name,
                ..
            }) => text::is_away(name, why),
            Some(_) => return,
        };
        self.queue(conn, &note.into_bytes().into());
    }
}

impl Hub {
    /// `/bell on|off`, for every session of the user.
    pub(super) fn set_bell(&mut self, conn: ConnId, on: bool) {
        let Some(user) = self.clients.get(&conn).map(|c| c.user.id) else {
            return;
        };
        if let Some(o) = self.presence.online.get_mut(&user) {
            o.bell = on;
        }
    }

    /// The sessions to ring for a public line by `author`: those of every other online user
    /// it names (a word, or `@name`) who has the bell on.
    pub(super) fn to_ring(&self, author: Option<i64>, body: &str) -> Vec<ConnId> {
        let p = &self.presence;
        let mut ring = Vec::new();
        let mut named: Vec<i64> = Vec::new();
        for key in crate::server::protocol::mentioned_keys(body) {
            let Some(&id) = p.by_key.get(&key) else {
                continue;
            };
            if Some(id) == author || named.contains(&id) {
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
