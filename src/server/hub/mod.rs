//! The hub: one thread that owns delivery order.
//!
//! Sessions send it [`Event`]s. It takes them in batches, commits the batch's chat messages in
//! one transaction, and only then queues each line to its recipients, so every client sees
//! the same order, equal to `messages.id` order, and nothing is shown that is not stored.
//! At the end of a batch each client's share goes out with one non-blocking send
//! ([`Outbox`](super::outbox::Outbox)). A client whose kernel buffer is full is registered
//! for writability and sent to again when it can take more; one that queues past
//! `--max-backlog`, or takes nothing for `--send-timeout`, is cut off. The hub never blocks
//! on a client, and a client that waits costs it nothing.
//!
//! The hub sleeps in one place, [`Poller::wait`]: woken by a writable socket, by a session
//! that hands it an event ([`HubSender::send`] notifies it only when it is asleep), or once a
//! second to look for stuck clients.
//!
//! Layout: this file has the events and the loop; [`commit`] stages and commits messages;
//! [`clients`] queues, sends and cuts; [`presence`] owns who is online, joins and leaves,
//! [`announce`] tells rooms about them; [`rooms`] owns which sessions are in which rooms,
//! [`listing`] says who is where, [`private`] keeps invite-only rooms' names to those in
//! them; [`prefs`] holds away, `/echo` and `/bell`; [`remote`] reads the other nodes.
//!
//! After login a session writes to its socket only through the hub (`Event::Reply`), so a
//! client's lines never interleave.

mod announce;
mod clients;
mod commit;
mod event;
mod listing;
mod prefs;
mod presence;
mod private;
mod remote;
mod removed;
mod rooms;
#[cfg(test)]
mod tests;
mod whois;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SendError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::store::Dedicated;
use polling::{Events, Poller};

use super::moderation::{banned_line, Moderation};
use super::outbox::Bytes;
use super::text;
use crate::server::socket::ConnId;
use crate::store::messages::{self, Kind, Message};
use crate::store::users::{name_key, User};
use clients::Client;
pub use event::{Event, OnlineUser, Stats};
use presence::Presence;
pub use rooms::RoomCount;
use rooms::Rooms;

/// Events a batch may hold at most; bounds the work between two sends.
const MAX_BATCH: usize = 512;

/// How often the hub looks for clients stuck past `--send-timeout` while any are connected.
const TICK: Duration = Duration::from_secs(1);

/// Events waiting for the hub at most.
pub const QUEUE: usize = 4096;

/// Wakes the hub when it sleeps.
struct Waker {
    poller: Arc<Poller>,
    /// The hub is (about to be) in `Poller::wait`: the next sender must notify it.
    asleep: AtomicBool,
}

/// A handle to send events to the hub. Bounded ([`QUEUE`]): when the hub falls behind, a
/// session blocks here, stops reading its socket, and TCP slows its client down; memory
/// stays bounded whatever clients send.
#[derive(Clone)]
pub struct HubSender {
    tx: SyncSender<Event>,
    waker: Arc<Waker>,
}

impl HubSender {
    /// Queues an event for the hub, waking it if it sleeps. Fails once the hub is gone.
    pub fn send(&self, ev: Event) -> Result<(), SendError<Event>> {
        self.tx.send(ev)?;
        // Only the first sender after the hub fell asleep pays for the wake-up (a write to
        // an eventfd); under load the hub never sleeps and nobody pays.
        if self.waker.asleep.swap(false, Ordering::SeqCst) {
            let _ = self.waker.poller.notify();
        }
        Ok(())
    }
}

/// The hub's end of the queue.
pub struct Inbox {
    rx: Receiver<Event>,
    waker: Arc<Waker>,
}

/// A new queue to a hub.
pub fn channel() -> io::Result<(HubSender, Inbox)> {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let waker = Arc::new(Waker {
        poller: Arc::new(Poller::new()?),
        asleep: AtomicBool::new(false),
    });
    Ok((
        HubSender {
            tx,
            waker: waker.clone(),
        },
        Inbox { rx, waker },
    ))
}

/// How the hub is set up; `serve`'s options that concern it.
pub struct Settings {
    /// Most unsent bytes per client before it is cut off.
    pub max_backlog: usize,
    /// A client with unsent bytes that takes none for this long is cut off.
    pub send_timeout: Duration,
    /// Where this node listens, shown to the other nodes' consoles.
    pub addr: String,
    /// This node's id in `nodes` (random, per start).
    pub node: String,
}

pub struct Hub {
    /// Its connection of its own: replaced when lost (a failover), said once.
    db: Dedicated,
    /// Bans and operators in force, to refuse a banned login at `Join` and mark `@ops`.
    moderation: Arc<Moderation>,
    inbox: Inbox,
    /// Readiness of stalled clients' sockets, and the sessions' wake-ups.
    poller: Arc<Poller>,
    stats: Arc<Stats>,
    settings: Settings,
    clients: HashMap<ConnId, Client>,
    presence: Presence,
    /// Which sessions are in which room.
    rooms: Rooms,
    /// The invite-only rooms: their names are shown only to those in them.
    private: std::collections::HashSet<i64>,
    /// Messages of this batch not yet committed, with the connection each came from.
    staged: Vec<Message>,
    staged_from: Vec<ConnId>,
    /// Clients with bytes queued in this batch.
    dirty: Vec<ConnId>,
    /// The id of the last message committed: the watermark handed to a joining session.
    last_id: i64,
    /// Users whose last session ended in this batch, with what they had been shown: stored
    /// once a batch (`users.seen_id`), so their next login can say what they missed.
    seen: Vec<(i64, i64)>,
    /// Unread markers to store once a batch: `(user, room, last id)` for each session that
    /// left a room in it (`read_marks`), with the watermark as it was when it left.
    read: Vec<(i64, i64, i64)>,
    /// Shutdown has begun: sockets are closed, logins are refused, messages still commit.
    closing: bool,
    /// Other nodes share the database (PostgreSQL): read what they commit.
    shared_db: bool,
    /// This node's id in `nodes` (random, per start) and where it listens.
    node: String,
    node_addr: String,
    /// Who is online on the other nodes.
    others: remote::Others,
    /// Changes to this node's sessions, written at the end of the batch.
    presence_ops: Vec<crate::store::presence::Op>,
    /// A batch committed but not yet delivered, with the connection each line came from:
    /// what the others committed before it could not be read (the database went away just
    /// after the commit), and it goes out only after that, in id order.
    held: Option<(Vec<Message>, Vec<ConnId>)>,
}

impl Hub {
    pub fn new(
        store: crate::store::Store,
        inbox: Inbox,
        stats: Arc<Stats>,
        moderation: Arc<Moderation>,
        settings: Settings,
    ) -> crate::error::Result<Hub> {
        let mut db = Dedicated::open(&store, "the hub", module_path!())?;
        let last_id = db.run(messages::last_id)?;
        let shared_db = db.run(|c| Ok(c.dialect()))? == crate::store::Dialect::Postgres;
        let private = db.run(crate::store::members::private_rooms)?;
        let (node_addr, node) = (settings.addr.clone(), settings.node.clone());
        Ok(Hub {
            db,
            moderation,
            poller: inbox.waker.poller.clone(),
            inbox,
            stats,
            settings,
            clients: HashMap::new(),
            presence: Presence::default(),
            rooms: Rooms::default(),
            private: private.into_iter().collect(),
            staged: Vec::new(),
            staged_from: Vec::new(),
            dirty: Vec::new(),
            last_id,
            seen: Vec::new(),
            read: Vec::new(),
            closing: false,
            shared_db,
            node,
            node_addr,
            others: remote::Others::default(),
            presence_ops: Vec::new(),
            held: None,
        })
    }

    /// Runs until `Event::Stop` or until every sender is gone.
    pub fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut events = Events::new();
        let mut checked = Instant::now();
        loop {
            while batch.len() < MAX_BATCH {
                match self.inbox.rx.try_recv() {
                    Ok(ev) => batch.push(ev),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                match self.sleep(&mut events) {
                    Ok(Some(ev)) => batch.push(ev),
                    Ok(None) => {}
                    Err(()) => break,
                }
            }
            let mut stop = false;
            for ev in batch.drain(..) {
                stop |= self.handle(ev);
            }
            self.settle();
            self.store_seen();
            self.store_read();
            self.store_presence();
            if checked.elapsed() >= TICK {
                checked = Instant::now();
                self.cut_stuck();
                // A lost notification costs a second at most.
                self.heartbeat();
                self.catch_up_all();
                self.refresh_others();
                self.settle();
            }
            self.flush();
            if stop {
                return;
            }
        }
        self.settle();
        self.store_seen();
        self.store_read();
        if self.shared_db {
            let node = &self.node;
            if let Err(e) = self.db.run(|c| crate::store::presence::leave(c, node)) {
                log::warn!("cannot take this node out of the others' view: {e}");
            }
        }
    }

    /// Writes what the users who left had been shown, in one transaction.
    fn store_seen(&mut self) {
        if self.seen.is_empty() {
            return;
        }
        let seen = &self.seen;
        match self.db.run(|c| crate::store::users::mark_seen(c, seen)) {
            Ok(()) | Err(crate::error::Error::DbDown) => {}
            Err(e) => log::warn!(
                "could not note what {} user(s) had seen: {e}",
                self.seen.len()
            ),
        }
        self.seen.clear();
    }

    /// Writes the unread markers of the sessions that left rooms, in one transaction.
    fn store_read(&mut self) {
        if self.read.is_empty() {
            return;
        }
        let read = std::mem::take(&mut self.read);
        match self.db.run(|c| crate::store::read_marks::mark(c, &read)) {
            Ok(()) | Err(crate::error::Error::DbDown) => {}
            Err(e) => log::warn!("could not store {} unread marker(s): {e}", read.len()),
        }
    }

    /// A session of `user` leaves `room`: what it was shown there is read.
    fn read_up_to_now(&mut self, user: i64, room: i64) {
        self.read.push((user, room, self.last_id));
    }

    /// Waits for an event, a writable socket or the tick. Writable clients are flushed
    /// here. `Err` when every sender is gone.
    fn sleep(&mut self, events: &mut Events) -> Result<Option<Event>, ()> {
        let waker = &self.inbox.waker;
        // A read-modify-write, so it synchronizes with the last sender's swap: the event
        // that sender queued before it is visible to the `try_recv` below.
        waker.asleep.swap(true, Ordering::SeqCst);
        // An event sent before `asleep` was set did not notify: look once more.
        match self.inbox.rx.try_recv() {
            Ok(ev) => {
                waker.asleep.store(false, Ordering::SeqCst);
                return Ok(Some(ev));
            }
            Err(TryRecvError::Disconnected) => return Err(()),
            Err(TryRecvError::Empty) => {}
        }
        // With other nodes, the tick also keeps this node's heartbeat and its view of them.
        let timeout = (!self.clients.is_empty() || self.shared_db).then_some(TICK);
        events.clear();
        if let Err(e) = self.poller.wait(events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                log::error!("the hub's poll failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        waker.asleep.store(false, Ordering::SeqCst);
        for ev in events.iter() {
            self.writable(ev.key as ConnId);
        }
        Ok(None)
    }

    /// Handles one event; true means stop.
    fn handle(&mut self, ev: Event) -> bool {
        match ev {
            Event::Chat {
                conn,
                room,
                kind,
                body,
            } => self.stage(conn, room, kind, None, body),
            Event::Private { conn, to, body } => self.stage(conn, None, Kind::Say, Some(to), body),
            // A session's answer to its own client (an error, a telnet CR) takes no place in
            // the chat order, so it does not cut the batch: it may arrive just before lines
            // staged in the same batch.
            Event::Reply { conn, bytes } => self.queue_owned(conn, bytes),
            Event::Welcome { conn, bytes, keep } => self.welcome(conn, bytes, keep),
            // Joins and leaves are announced together at the next point of order, so a
            // storm of them costs a line or two per batch, not one line per join per client.
            Event::Join {
                conn,
                user,
                addr,
                sock,
                via,
                wire,
                bell,
                echo,
                room,
                watermark,
            } => {
                if !self.staged.is_empty() {
                    self.settle();
                }
                self.join(
                    conn,
                    user,
                    (addr, via, wire, (bell, echo)),
                    *room,
                    sock,
                    watermark,
                );
            }
            Event::Leave { conn, why } => {
                if !self.staged.is_empty() {
                    self.settle();
                }
                self.leave(conn, why);
            }
            other => {
                // Anything else is ordered after everything before it.
                self.settle();
                return self.handle_other(other);
            }
        }
        false
    }

    fn handle_other(&mut self, ev: Event) -> bool {
        match ev {
            Event::Barrier { done } => {
                let _ = done.send(());
            }
            Event::Backlog {
                max_backlog,
                send_timeout,
            } => {
                self.settings.max_backlog = max_backlog;
                self.settings.send_timeout = send_timeout;
            }
            Event::Who { conn, all } => {
                let line = match self.clients.get(&conn) {
                    Some(c) if all => self.everyone_line(Some(c.user.id)),
                    Some(c) => match c.rooms.first() {
                        Some(&room) => self.room_line(room, None),
                        None => return false,
                    },
                    None => return false,
                };
                self.queue(conn, &line);
            }
            Event::Names { conn, room, who } => {
                if let Some(nick) = self
                    .clients
                    .get(&conn)
                    .filter(|c| c.rooms.contains(&room))
                    .map(|c| c.user.name.clone())
                {
                    let listed = self.room_irc(room, &nick, who);
                    self.queue_as(conn, None, Some(&listed));
                }
            }
            Event::Whois { conn, key, asked } => {
                if let Some((nick, asker)) = self
                    .clients
                    .get(&conn)
                    .map(|c| (c.user.name.clone(), c.user.id))
                {
                    let answer = self.whois(&key, &asked, (&nick, asker));
                    self.queue_as(conn, None, Some(&answer));
                }
            }
            Event::Where { key, room, reply } => {
                let _ = reply.send(self.where_is(&key, room));
            }
            Event::Move {
                conn,
                room,
                keep,
                watermark,
            } => self.move_to(conn, *room, keep, watermark),
            Event::Part { conn, room } => self.part(conn, room),
            Event::InRoom { room, reply } => {
                let _ = reply.send(self.users_in(room));
            }
            Event::Privacy {
                room,
                private,
                announce,
            } => self.set_privacy(room, private, announce),
            Event::Tell { user, text } => self.tell(user, &text),
            Event::Evict { room, user, text } => self.evict(room, user, &text),
            Event::Caps { conn, wire } => self.set_wire(conn, wire),
            Event::Topic { conn, room, topic } => self.set_topic(conn, room, topic),
            Event::Rooms { reply } => {
                let _ = reply.send(self.room_counts());
            }
            Event::Remote { messages, presence } => {
                if messages {
                    self.catch_up_all();
                }
                if presence {
                    self.refresh_others();
                }
            }
            Event::Away { conn, away } => self.set_away(conn, away),
            Event::Bell { conn, on } => self.set_bell(conn, on),
            Event::Echo { conn, on } => self.set_echo(conn, on),
            Event::Kick {
                key,
                text,
                announce,
                reply,
            } => {
                let n = self.disconnect(|u, _| name_key(&u.name) == key, |_| text.clone());
                if n > 0 {
                    self.send_to_all(&announce.into_bytes().into(), None);
                }
                let _ = reply.send(n);
            }
            Event::Enforce { announce, reply } => {
                let moderation = self.moderation.clone();
                let ban =
                    |u: &User, addr: SocketAddr| moderation.ban_on(&name_key(&u.name), addr.ip());
                let n = self.disconnect(
                    |u, addr| ban(u, addr).is_some(),
                    |(u, addr)| ban(u, addr).map(|b| banned_line(&b)).unwrap_or_default(),
                );
                if let Some(text) = announce {
                    self.send_to_all(&text.into_bytes().into(), None);
                }
                if let Some(reply) = reply {
                    let _ = reply.send(n);
                }
            }
            Event::DisconnectAll { text, reply } => {
                let n = self.disconnect(|_, _| true, |_| text.clone());
                let _ = reply.send(n);
            }
            Event::Accounts { reply } => {
                let _ = reply.send(self.accounts());
            }
            Event::AccountsRemoved { ids } => {
                self.cut_removed_accounts(&ids);
            }
            Event::Removed { removal } => self.removed(&removal),
            Event::Crash => panic!("fault injected: hub crash"),
            Event::Announce { text, room } => {
                let line: Bytes = text::from_server(&text).into_bytes().into();
                match room {
                    Some(room) => self.send_to_room(room, &line, None),
                    None => self.send_to_all(&line, None),
                }
            }
            Event::Snapshot { reply } => {
                let _ = reply.send(self.snapshot());
            }
            Event::Shutdown { done } => {
                self.closing = true;
                let bye = text::shutting_down();
                self.disconnect(|_, _| true, |_| bye.clone());
                let _ = done.send(());
            }
            Event::Stop => return true,
            Event::Chat { .. }
            | Event::Private { .. }
            | Event::Reply { .. }
            | Event::Welcome { .. }
            | Event::Join { .. }
            | Event::Leave { .. } => unreachable!("handled in handle()"),
        }
        false
    }

    /// A point of order: announces pending joins and leaves, then commits and queues the
    /// staged messages (which all came after them).
    fn settle(&mut self) {
        self.announce_presence();
        self.commit_staged();
    }
}
