//! What the operator can do to a running server, from the console or a signal: pause and
//! resume, status, moderation, say, rooms, clear-auth, prune. With several nodes on one
//! database, the community-wide ones are told to the other nodes too ([`Shared::tell_nodes`]).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::hub::{self, Event, OnlineUser};
use super::moderation;
use super::moderator::Moderator;
use super::shared::AskError;
use super::{text, Server};
use crate::error::Result;
use crate::store::control;
use crate::store::retention::{self, Policy};
use crate::store::users::{self, Purged};

/// What the console's `status` shows.
#[derive(Debug, Clone)]
pub struct Status {
    pub addr: SocketAddr,
    pub paused: bool,
    pub uptime: Duration,
    /// Connections being served, logged in or not.
    pub connections: usize,
    /// Of those, connections still logging in, and `--max-pending`.
    pub pending: (usize, usize),
    /// Session worker threads alive (busy or waiting for a client).
    pub workers: usize,
    /// The database's durability (`--sync`) as the database reports it.
    pub sync: String,
    pub online: std::result::Result<Vec<OnlineUser>, AskError>,
    pub retention: Policy,
    /// Messages pruned since start.
    pub pruned: u64,
}

impl Server {
    /// Stops serving new connections (on every node); false if already paused here.
    pub fn pause(&self) -> bool {
        self.shared.tell_nodes(&control::Command::Pause);
        let changed = self.gate.set_paused(true);
        if changed {
            log::info!("paused: new connections wait");
        }
        changed
    }

    /// Serves new connections again (on every node); false if not paused here.
    pub fn resume(&self) -> bool {
        self.shared.tell_nodes(&control::Command::Resume);
        let changed = self.gate.set_paused(false);
        if changed {
            log::info!("resumed");
        }
        changed
    }

    /// The console's `status`.
    pub fn status(&self) -> Status {
        Status {
            addr: self.local_addr(),
            paused: self.gate.paused(),
            uptime: self.started.elapsed(),
            connections: self.shared.active.load(Ordering::SeqCst),
            pending: (
                self.shared.door.counts().1,
                self.shared.door.budget().max_pending,
            ),
            workers: self.workers.threads(),
            sync: self.shared.store.synchronous(),
            online: self.shared.ask(|reply| Event::Snapshot { reply }),
            retention: self.shared.config.get().retention,
            pruned: self.shared.pruned.load(Ordering::Relaxed),
        }
    }

    /// Moderation with the console's rights, announced as `server`.
    pub fn moderator(&self) -> Moderator<'_> {
        Moderator {
            shared: &self.shared,
            by: moderation::CONSOLE,
            console: true,
        }
    }

    /// `* [server] TEXT` to everyone logged in, or to everyone in `room`.
    pub fn announce(&self, text: &str, room: Option<i64>) {
        self.shared.tell_nodes(&control::Command::Say {
            text: text.to_string(),
            room,
        });
        let _ = self.shared.hub.send(Event::Announce {
            text: text.to_string(),
            room,
        });
    }

    /// The rooms, busiest first (see [`Shared::rooms`]).
    pub fn rooms(&self, limit: usize) -> std::result::Result<(Vec<hub::RoomCount>, usize), String> {
        self.shared.rooms(limit, None)
    }

    /// Deletes every user and token (on this thread: the hub keeps delivering meanwhile), then
    /// has the hub disconnect every session; returns the counts and how many sessions went.
    pub fn purge_auth(&self) -> std::result::Result<(Purged, usize), String> {
        let purged = self
            .shared
            .store
            .conn()
            .and_then(|c| users::purge_all(&c))
            .map_err(|e| e.to_string())?;
        let text = text::account_removed();
        self.shared
            .tell_nodes(&control::Command::DisconnectAll { text: text.clone() });
        let n = self
            .shared
            .ask(|reply| Event::DisconnectAll { text, reply })
            .map_err(|e| {
                format!("accounts removed, but {e}: sessions may stay until they leave")
            })?;
        log::info!(
            "clear-auth: removed {} users and {} tokens, disconnected {n} sessions",
            purged.users,
            purged.tokens
        );
        Ok((purged, n))
    }

    /// Prunes old messages now by `--retain-*`; `None` if retention is off.
    pub fn prune(&self) -> Result<Option<usize>> {
        let policy = self.shared.config.get().retention;
        if !policy.is_on() {
            return Ok(None);
        }
        let n = retention::prune(&self.shared.store.conn()?, &policy)?;
        self.shared.pruned.fetch_add(n as u64, Ordering::Relaxed);
        Ok(Some(n))
    }

    /// Fault injection (tests only, `BESEDKA_FAULTS=1`): makes the hub panic. False if faults
    /// are not enabled.
    pub fn crash_hub(&self) -> bool {
        self.shared.config.get().faults && self.shared.hub.send(Event::Crash).is_ok()
    }
}
