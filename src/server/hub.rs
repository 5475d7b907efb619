//! The hub: one thread that owns delivery order.
//!
//! Sessions send it [`Event`]s. It takes them in batches, commits the batch's chat messages in
//! one transaction, and only then queues each line to its recipients, so every client sees
//! the same order, equal to `messages.id` order, and nothing is shown that is not stored.
//! At the end of a batch each client's share goes out with one non-blocking send
//! ([`Outbox`]); a client that stops reading builds a backlog and is cut off when it
//! overflows. The hub never blocks on a client.
//!
//! After login a session writes to its socket only through the hub (`Event::Reply`), so a
//! client's lines never interleave.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use super::moderation::{banned_line, Moderation};
use super::outbox::{Flushed, Outbox};
use super::protocol::{chat_line, error, history_lines, notice, online_line};
use crate::store::messages::{self, Kind, Message};
use crate::store::users::{self, name_key, User};

/// Identifies one connection for its whole life.
pub type ConnId = u64;

/// Events a batch may hold at most; bounds the work between two sends.
const MAX_BATCH: usize = 512;

/// How soon a client with a backlog is tried again.
const RETRY: Duration = Duration::from_millis(20);

/// What sessions (and the server) ask of the hub.
pub enum Event {
    /// A session logged in: register it, replay its history, tell the others.
    Join {
        conn: ConnId,
        user: User,
        addr: SocketAddr,
        /// A clone of the client's socket, for sending only.
        sock: TcpStream,
    },
    /// A session ended (quit, EOF, error, kicked).
    Leave { conn: ConnId },
    /// A public line or a `/me` action.
    Chat {
        conn: ConnId,
        kind: Kind,
        body: String,
    },
    /// A private message to `to` (an existing user, online or not).
    Private {
        conn: ConnId,
        to: User,
        body: String,
    },
    /// A session's answer to its own client (text or telnet bytes), kept in order with the chat.
    Reply { conn: ConnId, bytes: Vec<u8> },
    /// `/who` from a session.
    Who { conn: ConnId },
    /// Moderation: disconnect every session of a user (by name key) with `text`; if there
    /// were any, `announce` to everyone left. Answers how many sessions.
    Kick {
        key: String,
        text: String,
        announce: String,
        reply: Sender<usize>,
    },
    /// Moderation state changed: disconnect every session that a ban now keeps out (each
    /// with its ban line), then `announce` to everyone left. Answers how many sessions.
    Enforce {
        announce: Option<String>,
        reply: Option<Sender<usize>>,
    },
    /// Operator: `* [server] TEXT` to everyone.
    Announce { text: String },
    /// Operator: every account was deleted (`clear-auth`); disconnect every session with
    /// `text`. A login whose account went meanwhile is refused at `Join`.
    DisconnectAll { text: String, reply: Sender<usize> },
    /// Fault injection for tests (`BESEDKA_FAULTS=1`): the hub panics, as a bug would make it.
    Crash,
    /// Operator: who is online, with addresses.
    Snapshot { reply: Sender<Vec<OnlineUser>> },
    /// Say goodbye to everyone and close every socket, then answer. The hub keeps running
    /// to commit what sessions still hand it, until `Stop`.
    Shutdown { done: Sender<()> },
    /// Commit what is pending and end the hub thread.
    Stop,
}

/// A user online, as the operator console shows it.
#[derive(Debug, Clone)]
pub struct OnlineUser {
    pub name: String,
    pub addrs: Vec<SocketAddr>,
}

/// Counters the hub keeps for others to read without asking it.
#[derive(Default)]
pub struct Stats {
    /// Distinct users online, for the greeting.
    pub users_online: AtomicUsize,
}

struct Client {
    user: User,
    addr: SocketAddr,
    out: Outbox,
    /// Queued to this batch already (listed in `Hub::dirty`).
    dirty: bool,
    /// Cut off; its session will send `Leave` soon. Nothing more is queued to it.
    dead: bool,
    /// Removed by moderation or for not reading: lines it had read but not yet handed in
    /// are not stored either. (At shutdown clients are `dead` but not `removed`: what they
    /// sent before the goodbye is still committed.)
    removed: bool,
}

impl Client {
    /// Adds bytes to this batch's send, listing the client in `dirty` the first time.
    fn queue(&mut self, id: ConnId, bytes: &[u8], dirty: &mut Vec<ConnId>) {
        if self.dead {
            return;
        }
        self.out.queue(bytes);
        if !self.dirty {
            self.dirty = true;
            dirty.push(id);
        }
    }
}

/// A user with at least one session.
struct Online {
    name: String,
    conns: Vec<ConnId>,
}

pub struct Hub {
    db: Connection,
    /// Bans and operators in force, to refuse a banned login at `Join` and mark `@ops`.
    moderation: Arc<Moderation>,
    rx: Receiver<Event>,
    stats: Arc<Stats>,
    /// Messages replayed at login.
    history: u32,
    /// Most unsent bytes per client before it is cut off.
    max_backlog: usize,
    clients: HashMap<ConnId, Client>,
    online: HashMap<i64, Online>,
    /// Messages of this batch not yet committed, with the connection each came from.
    staged: Vec<Message>,
    staged_from: Vec<ConnId>,
    /// Clients with bytes queued in this batch.
    dirty: Vec<ConnId>,
    /// Clients whose kernel buffer was full at the last flush.
    stalled: Vec<ConnId>,
    /// Shutdown has begun: sockets are closed, logins are refused, messages still commit.
    closing: bool,
}

/// A handle to send events to the hub. Bounded ([`QUEUE`]): when the hub falls behind, a
/// session blocks here, stops reading its socket, and TCP slows its client down; memory
/// stays bounded whatever clients send.
pub type HubSender = SyncSender<Event>;

/// Events waiting for the hub at most.
pub const QUEUE: usize = 4096;

impl Hub {
    pub fn new(
        db: Connection,
        rx: Receiver<Event>,
        stats: Arc<Stats>,
        moderation: Arc<Moderation>,
        history: u32,
        max_backlog: usize,
    ) -> Hub {
        Hub {
            db,
            moderation,
            rx,
            stats,
            history,
            max_backlog,
            clients: HashMap::new(),
            online: HashMap::new(),
            staged: Vec::new(),
            staged_from: Vec::new(),
            dirty: Vec::new(),
            stalled: Vec::new(),
            closing: false,
        }
    }

    /// Runs until `Event::Shutdown` or until every sender is gone.
    pub fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = if self.stalled.is_empty() {
                self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                self.rx.recv_timeout(RETRY)
            };
            match first {
                Ok(ev) => batch.push(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(ev) => batch.push(ev),
                    Err(_) => break,
                }
            }
            let mut stop = false;
            for ev in batch.drain(..) {
                stop |= self.handle(ev);
            }
            self.commit_staged();
            self.flush();
            if stop {
                return;
            }
        }
        self.commit_staged();
    }

    /// Handles one event; true means stop.
    fn handle(&mut self, ev: Event) -> bool {
        match ev {
            Event::Chat { conn, kind, body } => self.stage(conn, kind, None, body),
            Event::Private { conn, to, body } => {
                self.stage(conn, Kind::Say, Some((to.id, to.name)), body)
            }
            // A session's answer to its own client (an error, a telnet CR) takes no place in
            // the chat order, so it does not cut the batch: it may arrive just before lines
            // staged in the same batch.
            Event::Reply { conn, bytes } => self.queue(conn, &bytes),
            other => {
                // Anything else is ordered after the messages before it.
                self.commit_staged();
                match other {
                    Event::Join {
                        conn,
                        user,
                        addr,
                        sock,
                    } => self.join(conn, user, addr, sock),
                    Event::Leave { conn } => self.leave(conn),
                    Event::Who { conn } => {
                        let line = self.online_line();
                        self.queue(conn, line.as_bytes());
                    }
                    Event::Kick {
                        key,
                        text,
                        announce,
                        reply,
                    } => {
                        let n = self.disconnect(|u, _| name_key(&u.name) == key, |_| text.clone());
                        if n > 0 {
                            self.send_to_all(announce.as_bytes(), None);
                        }
                        let _ = reply.send(n);
                    }
                    Event::Enforce { announce, reply } => {
                        let moderation = self.moderation.clone();
                        let ban = |u: &User, addr: SocketAddr| {
                            moderation.ban_on(&name_key(&u.name), addr.ip())
                        };
                        let n = self.disconnect(
                            |u, addr| ban(u, addr).is_some(),
                            |(u, addr)| ban(u, addr).map(|b| banned_line(&b)).unwrap_or_default(),
                        );
                        if let Some(text) = announce {
                            self.send_to_all(text.as_bytes(), None);
                        }
                        if let Some(reply) = reply {
                            let _ = reply.send(n);
                        }
                    }
                    Event::DisconnectAll { text, reply } => {
                        let n = self.disconnect(|_, _| true, |_| text.clone());
                        let _ = reply.send(n);
                    }
                    Event::Crash => panic!("fault injected: hub crash"),
                    Event::Announce { text } => {
                        let line = notice(&format!("[server] {text}"));
                        self.send_to_all(line.as_bytes(), None);
                    }
                    Event::Snapshot { reply } => {
                        let _ = reply.send(self.snapshot());
                    }
                    Event::Shutdown { done } => {
                        self.closing = true;
                        let bye = notice("Server is shutting down. Bye.");
                        self.disconnect(|_, _| true, |_| bye.clone());
                        let _ = done.send(());
                    }
                    Event::Stop => return true,
                    Event::Chat { .. } | Event::Private { .. } | Event::Reply { .. } => {
                        unreachable!("handled above")
                    }
                }
            }
        }
        false
    }

    fn stage(&mut self, conn: ConnId, kind: Kind, recipient: Option<(i64, String)>, body: String) {
        // A session the hub has cut (kicked, banned, removed, not reading) may still hand in
        // lines it had read: nothing from it is stored after its removal.
        let Some(c) = self.clients.get(&conn).filter(|c| !c.removed) else {
            return;
        };
        self.staged.push(Message {
            id: 0,
            created_at: String::new(),
            author_id: Some(c.user.id),
            author_name: c.user.name.clone(),
            recipient,
            kind,
            body,
        });
        self.staged_from.push(conn);
    }

    /// Commits the staged messages in one transaction, then queues them to their recipients.
    fn commit_staged(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let mut msgs = std::mem::take(&mut self.staged);
        let mut from = std::mem::take(&mut self.staged_from);
        let err = error("Your message was not sent: the server could not store it.");
        match messages::commit(&self.db, &mut msgs) {
            Ok(()) => {}
            Err(e) if e.is_constraint() => {
                // One bad row (a message from an account purged from the shell) must not
                // sink the others: commit them one by one and keep those that store.
                log::warn!(
                    "batch of {} message(s) failed ({e}); retrying one by one",
                    msgs.len()
                );
                let (mut kept, mut kept_from) = (Vec::new(), Vec::new());
                for (m, conn) in msgs.into_iter().zip(from) {
                    let mut one = [m];
                    match messages::commit(&self.db, &mut one) {
                        Ok(()) => {
                            let [m] = one;
                            kept.push(m);
                            kept_from.push(conn);
                        }
                        Err(e) => {
                            log::error!(
                                "could not store a message from {}: {e}",
                                one[0].author_name
                            );
                            self.queue(conn, err.as_bytes());
                        }
                    }
                }
                (msgs, from) = (kept, kept_from);
            }
            Err(e) => {
                // The database itself failed (busy past the timeout, disk full): retrying
                // row by row would only multiply the wait. Nothing was stored; say so.
                log::error!("could not store {} message(s): {e}", msgs.len());
                for conn in from {
                    self.queue(conn, err.as_bytes());
                }
                return;
            }
        }
        for (m, sender) in msgs.iter().zip(from) {
            let line = chat_line(m, false);
            match &m.recipient {
                // Public: everyone but the sending connection (a /me action goes to the
                // sender too, as confirmation that it was sent).
                None => self.send_to_all(line.as_bytes(), (m.kind == Kind::Say).then_some(sender)),
                Some((to, _)) => {
                    let mut conns: Vec<ConnId> = Vec::new();
                    for user in [m.author_id, Some(*to)].into_iter().flatten() {
                        if let Some(o) = self.online.get(&user) {
                            conns.extend(&o.conns);
                        }
                    }
                    conns.sort_unstable();
                    conns.dedup();
                    for conn in conns {
                        self.queue(conn, line.as_bytes());
                    }
                }
            }
        }
    }

    fn queue(&mut self, conn: ConnId, bytes: &[u8]) {
        if let Some(c) = self.clients.get_mut(&conn) {
            c.queue(conn, bytes, &mut self.dirty);
        }
    }

    /// Queues `bytes` to every live client but `skip`.
    fn send_to_all(&mut self, bytes: &[u8], skip: Option<ConnId>) {
        for (&id, c) in self.clients.iter_mut() {
            if Some(id) != skip {
                c.queue(id, bytes, &mut self.dirty);
            }
        }
    }

    /// One send per client with something queued, and a retry for those with a backlog.
    fn flush(&mut self) {
        let mut todo = std::mem::take(&mut self.dirty);
        todo.append(&mut self.stalled);
        todo.sort_unstable();
        todo.dedup();
        for conn in todo {
            let Some(c) = self.clients.get_mut(&conn) else {
                continue;
            };
            c.dirty = false;
            if c.dead {
                continue;
            }
            match c.out.flush() {
                Flushed::All => {}
                Flushed::Partly => self.stalled.push(conn),
                Flushed::Overflow => {
                    log::warn!(
                        "disconnecting {} ({}): not reading, backlog over {} bytes",
                        c.user.name,
                        c.addr,
                        self.max_backlog
                    );
                    c.dead = true;
                    c.removed = true;
                    c.out.close();
                }
                Flushed::Failed(kind) => {
                    log::debug!("send to {} ({}) failed: {kind:?}", c.user.name, c.addr);
                    c.dead = true;
                    c.out.close();
                }
            }
        }
    }

    fn join(&mut self, conn: ConnId, user: User, addr: SocketAddr, sock: TcpStream) {
        let mut out = Outbox::new(sock, self.max_backlog);
        // A purge may have removed the account while this session was logging in.
        // A ban may have come while this session was logging in.
        let refusal = if self.closing {
            Some(notice("Server is shutting down. Bye."))
        } else if let Some(ban) = self.moderation.ban_on(&name_key(&user.name), addr.ip()) {
            Some(banned_line(&ban))
        } else if !users::exists(&self.db, user.id).unwrap_or(true) {
            Some(notice("Your account was removed by the server operator."))
        } else {
            None
        };
        if let Some(text) = refusal {
            out.queue(text.as_bytes());
            out.flush();
            out.close();
            return;
        }
        match messages::visible(&self.db, user.id, self.history, None) {
            Ok(history) => out.queue(history_lines(&history, self.max_backlog / 2).as_bytes()),
            Err(e) => {
                log::error!("could not load history for {}: {e}", user.name);
                out.queue(error("Could not load the history.").as_bytes());
            }
        }
        let first = !self.online.contains_key(&user.id);
        if first {
            let joined = notice(&format!("{} joined", user.name));
            self.send_to_all(joined.as_bytes(), None);
        }
        self.online
            .entry(user.id)
            .or_insert_with(|| Online {
                name: user.name.clone(),
                conns: Vec::new(),
            })
            .conns
            .push(conn);
        self.stats
            .users_online
            .store(self.online.len(), Ordering::Relaxed);
        self.clients.insert(
            conn,
            Client {
                user,
                addr,
                out,
                dirty: false,
                dead: false,
                removed: false,
            },
        );
        let line = self.online_line();
        self.queue(conn, line.as_bytes());
    }

    fn leave(&mut self, conn: ConnId) {
        let Some(mut c) = self.clients.remove(&conn) else {
            return;
        };
        // Last words (a "Bye." queued just before) go out if the kernel takes them now.
        if !c.dead {
            c.out.flush();
        }
        let Some(o) = self.online.get_mut(&c.user.id) else {
            return;
        };
        o.conns.retain(|&x| x != conn);
        if o.conns.is_empty() {
            self.online.remove(&c.user.id);
            self.stats
                .users_online
                .store(self.online.len(), Ordering::Relaxed);
            let left = notice(&format!("{} left", c.user.name));
            self.send_to_all(left.as_bytes(), None);
        }
    }

    /// `* Online (N): @alice, bob` (`@` marks operators).
    fn online_line(&self) -> String {
        let mut names: Vec<(String, String)> = self
            .online
            .values()
            .map(|o| {
                let key = name_key(&o.name);
                let shown = if self.moderation.is_op(&key) {
                    format!("@{}", o.name)
                } else {
                    o.name.clone()
                };
                (key, shown)
            })
            .collect();
        names.sort();
        let names: Vec<&str> = names.iter().map(|(_, n)| n.as_str()).collect();
        online_line(&names)
    }

    /// Sends each session that `which` selects its `text` and disconnects it; the sessions
    /// then send `Leave`. Returns how many sessions.
    fn disconnect(
        &mut self,
        which: impl Fn(&User, SocketAddr) -> bool,
        text: impl Fn((&User, SocketAddr)) -> String,
    ) -> usize {
        let mut n = 0;
        let closing = self.closing;
        for c in self.clients.values_mut() {
            if !c.dead && which(&c.user, c.addr) {
                c.out.queue(text((&c.user, c.addr)).as_bytes());
                c.out.flush();
                if closing {
                    c.out.finish(); // the server closes the rest after a grace period
                } else {
                    c.out.close();
                }
                c.dead = true;
                c.removed = !closing;
                n += 1;
            }
        }
        n
    }

    fn snapshot(&self) -> Vec<OnlineUser> {
        let mut out: Vec<OnlineUser> = self
            .online
            .values()
            .map(|o| OnlineUser {
                name: o.name.clone(),
                addrs: o
                    .conns
                    .iter()
                    .filter_map(|c| self.clients.get(c).map(|c| c.addr))
                    .collect(),
            })
            .collect();
        out.sort_by_cached_key(|u| name_key(&u.name));
        out
    }
}
