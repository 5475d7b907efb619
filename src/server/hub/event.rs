//! What sessions and the server ask of the hub, and what it tells them back.

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::RoomCount;
use crate::server::socket::ConnId;
use crate::server::socket::{Socket, Via};
use crate::server::wire::Wire;
use crate::store::messages::Kind;
use crate::store::rooms::Room;
use crate::store::users::User;

/// What sessions (and the server) ask of the hub.
pub enum Event {
    /// A session logged in: register it and tell the others. The hub answers with the id of
    /// the last message it committed (the watermark): the session loads its history up to
    /// there itself, off the hub, and hands it in with `Welcome`. Until then the hub holds
    /// what it queues to this client, so nothing is missed or shown twice. No answer (the
    /// sender dropped): refused (banned meanwhile, shutting down); the client was told.
    Join {
        conn: ConnId,
        user: User,
        addr: SocketAddr,
        /// The client's socket, shared with its session: one descriptor per connection.
        sock: Arc<Socket>,
        /// How the client came in, for the console's `who`.
        via: Via,
        /// What it reads: its way's wire, with the IRC capabilities it asked for.
        wire: Wire,
        /// A mention rings this user's bell (`/bell`).
        bell: bool,
        /// The user's own lines come back to their terminal (`/echo`).
        echo: bool,
        /// The room the session starts in (the user's last). Boxed, as in `Move`: events
        /// queue by the thousand, and a room is bigger than most of them.
        room: Box<Room>,
        /// The watermark, and whether the user had a session online already.
        watermark: Sender<(i64, bool)>,
    },
    /// What the session loaded after `Join` (its history), to go out in front of everything
    /// queued since. `keep` false: the account is gone; send `bytes` and cut the client.
    Welcome {
        conn: ConnId,
        bytes: Vec<u8>,
        keep: bool,
    },
    /// A session ended (quit, EOF, error, kicked); `why`: an IRC client's quit message,
    /// which IRC readers see in its `QUIT`.
    Leave { conn: ConnId, why: Option<String> },
    /// A public line or a `/me` action, said in `room` (one the session is in: a line for a
    /// room it has left meanwhile is dropped); `None`: the session's one room, as the hub
    /// knows it (a line-protocol session, which the hub may have moved out of a room).
    Chat {
        conn: ConnId,
        room: Option<i64>,
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
    /// `/who` (the session's room) or `/who *` (`all`: everyone, with their rooms).
    Who { conn: ConnId, all: bool },
    /// IRC's `NAMES` (or with `who`, `WHO`) of one of the session's rooms, answered in IRC.
    Names { conn: ConnId, room: i64, who: bool },
    /// IRC's `WHOIS` of the account whose name key is `key` (`asked`: as the client wrote
    /// it), answered in IRC from who is online: no database.
    Whois {
        conn: ConnId,
        key: String,
        asked: String,
    },
    /// IRC's `KICK`: whether the account with name key `key` is online (`Some`) and in
    /// `room` (`Some(true)`), on this node or another; from who is online, no database.
    Where {
        key: String,
        room: i64,
        reply: Sender<Option<bool>>,
    },
    /// `/join`: the session moves to `room` (stored as the user's room already); with
    /// `keep` (IRC's `JOIN`) it stays in its other rooms too. Answered, like `Join`, with
    /// the watermark the session loads the room's history up to; then `Welcome` with it.
    /// No answer: the client is gone.
    Move {
        conn: ConnId,
        room: Box<Room>,
        keep: bool,
        watermark: Sender<i64>,
    },
    /// `/private on`: the users in `room` now, on every node (they become its members).
    InRoom { room: i64, reply: Sender<Vec<i64>> },
    /// `/private on|off` (stored): hide or show the room's name to those not in it, and
    /// tell the room `announce`.
    Privacy {
        room: i64,
        private: bool,
        announce: String,
    },
    /// The line protocol's `text` to every session of `user` on this node (`/invite`).
    Tell { user: i64, text: String },
    /// `/uninvite` of someone from an invite-only room (stored): their sessions in it leave
    /// it (a line-protocol session for `#lobby`, an IRC one is parted), told `text`.
    Evict { room: i64, user: i64, text: String },
    /// IRC's `PART`: the session leaves `room`.
    Part { conn: ConnId, room: i64 },
    /// IRC's `CAP REQ` after login: what the client reads from now on.
    Caps { conn: ConnId, wire: Wire },
    /// `/topic TEXT` (stored already): tell `room`.
    Topic {
        conn: ConnId,
        room: i64,
        topic: String,
    },
    /// The rooms with people in them, busiest first.
    Rooms { reply: Sender<Vec<RoomCount>> },
    /// Another node committed messages, or its sessions changed (PostgreSQL): read what
    /// changed.
    Remote { messages: bool, presence: bool },
    /// `/echo on|off` from a session (already stored).
    Echo { conn: ConnId, on: bool },
    /// `/bell on|off` from a session (already stored).
    Bell { conn: ConnId, on: bool },
    /// `/away TEXT` (`Some`) or `/back` (`None`) from a session.
    Away { conn: ConnId, away: Option<String> },
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
    /// Lines were removed (stored already: tombstones), here or by another process: tell
    /// the operators online, take them out of the web pages' logs (`\u{1}removed ID,…`),
    /// send `REDACT` to the IRC clients that asked for it; log it with who did it.
    Removed {
        removal: Box<crate::store::removals::Removal>,
    },
    /// Operator: `* [server] TEXT` to everyone, or to one room.
    Announce { text: String, room: Option<i64> },
    /// Operator: every account was deleted (`clear-auth`); disconnect every session with
    /// `text`. A login whose account went meanwhile is refused at `Welcome`.
    DisconnectAll { text: String, reply: Sender<usize> },
    /// The janitor: the accounts of this node's sessions, to check that they still exist.
    Accounts { reply: Sender<Vec<i64>> },
    /// These accounts were removed (`besedka purge-auth` from a shell): disconnect their
    /// sessions, telling them why.
    AccountsRemoved { ids: Vec<i64> },
    /// Fault injection for tests (`BESEDKA_FAULTS=1`): the hub panics, as a bug would make it.
    Crash,
    /// Operator: who is online, with addresses.
    Snapshot { reply: Sender<Vec<OnlineUser>> },
    /// Answered as soon as it is handled: everything sent before it has been handled (a
    /// session's `Leave` included, so the hub has let go of its socket).
    Barrier { done: Sender<()> },
    /// A reload changed `--max-backlog` or `--send-timeout`: from now on, for every client.
    Backlog {
        max_backlog: usize,
        send_timeout: std::time::Duration,
    },
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
    /// Each session's address, how it came in, and its room.
    pub addrs: Vec<(SocketAddr, Via, String)>,
}

/// Counters the hub keeps for others to read without asking it.
#[derive(Default)]
pub struct Stats {
    /// Distinct users online, for the greeting.
    pub users_online: AtomicUsize,
}
