//! What every session shares, and asking the hub for an answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use super::config::Settings;
use super::door::Door;
use super::hub::{Event, HubSender, RoomCount, Stats};
use super::limits::{is_loopback, Limits, Loopback};
use super::moderation::Moderation;
use super::quiet::Quiet;
use super::refusals::Refusals;
use super::socket::{ConnId, Socket};
use crate::auth::Hasher;
use crate::store::{rooms, Store};

/// How long the console waits for the hub's answer.
pub(super) const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the hub gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error("the server is stopping")]
    Stopped,
    #[error("the server did not answer within 10 s (overloaded?); try again")]
    TimedOut,
}

/// What every session shares.
pub struct Shared {
    /// The configuration in force (a reload replaces it).
    pub config: Settings,
    pub store: Store,
    /// This node's id among several on one database (random, per start).
    pub node: String,
    pub hasher: Hasher,
    pub hub: HubSender,
    pub stats: Arc<Stats>,
    pub limits: Limits,
    /// Who is inside: the pending and logged-in budgets.
    pub door: Door,
    /// Bans, mutes and operators in force (shared with the hub).
    pub moderation: Arc<Moderation>,
    /// Set when the shutdown grace ends: sessions read nothing more.
    pub cut: AtomicBool,
    /// Log lines about refusals, at most one per reason every 10 s.
    pub refusals: Refusals,
    /// Log lines about refused connections, at most one a second.
    pub(super) quiet_accept: Quiet,
    /// Messages the janitor and `prune` deleted since start, for `status`.
    pub pruned: AtomicU64,
    /// Searches running now (one per user, a few in all).
    pub searches: crate::server::searches::Searches,
    /// Every open connection (its socket, shared, not a duplicate descriptor), so shutdown
    /// can close them all.
    pub(super) conns: Mutex<HashMap<ConnId, Arc<Socket>>>,
    /// Connections being served (pending and logged in), for shutdown and `status`.
    pub(super) active: AtomicUsize,
    /// The next connection's id (shared by every listener).
    pub(super) next_conn: AtomicU64,
    /// The port the SSH listener took (the real one when asked for port 0), if it listens.
    pub ssh_port: Option<u16>,
}

impl Shared {
    /// Asks the hub and waits for its answer (bounded: the hub answers between batches).
    pub fn ask<T>(
        &self,
        make: impl FnOnce(mpsc::Sender<T>) -> Event,
    ) -> std::result::Result<T, AskError> {
        ask_within(&self.hub, ASK_TIMEOUT, make)
    }

    /// Writes a console command for the other nodes of the community (PostgreSQL; nothing on
    /// SQLite). A failure is logged: this node has acted already.
    pub fn tell_nodes(&self, command: &crate::store::control::Command) {
        let told = self
            .store
            .conn()
            .and_then(|c| crate::store::control::publish(&c, &self.node, command));
        if let Err(e) = told {
            log::warn!("cannot tell the other nodes ({command:?}): {e}");
        }
    }

    /// A connection from `peer` said it brings someone else (`what`: the forwarding header or
    /// PROXY header it sent). From this machine, while loopback is not a `--trusted-proxy`,
    /// that is a proxy here the operator has not named: every client it brings looks like
    /// loopback. The first time, loopback's exemption from the per-address limits ends and
    /// one loud line says so and what to pass; nothing after, and nothing for other addresses
    /// (a client there choosing its own address is not believed, and gains nothing).
    pub fn unnamed_proxy(&self, peer: SocketAddr, what: &str) {
        let ip = peer.ip();
        if !is_loopback(ip) || self.config.get().trusted(ip) {
            return;
        }
        let Some(now) = self.limits.unnamed_proxy_seen() else {
            return;
        };
        let effect = match now {
            Loopback::NoLongerExempt => {
                "From now on loopback clients are held to the per-address limits (until a \
                 restart), as if --limit-loopback were given"
            }
            Loopback::Limited => "Every client it brings shares this address's per-address limits",
            Loopback::Allowed => {
                "--allow-ip exempts loopback, so every client it brings is unlimited"
            }
        };
        log::warn!(
            "{peer}: a connection from this machine sent {what}, but loopback is not a \
             --trusted-proxy: a proxy on this machine makes every client it brings look like \
             {ip}. {effect}. Name the proxy with --trusted-proxy {ip} so that each client is \
             limited by its own address; pass --limit-loopback to hold loopback to the limits \
             from the start"
        );
    }

    /// Rooms for `/rooms` and the console: those with people in them, busiest first, then
    /// empty ones by name; at most `limit`, and how many rooms there are in all.
    pub fn rooms(
        &self,
        limit: usize,
        user: Option<i64>,
    ) -> std::result::Result<(Vec<RoomCount>, usize), String> {
        let mut listed = self
            .ask(|reply| Event::Rooms { reply })
            .map_err(|e| e.to_string())?;
        let (stored, total, hidden) = self
            .store
            .conn()
            .and_then(|c| {
                let hidden = match user {
                    Some(user) => crate::store::members::hidden_from(&c, user)?,
                    None => Vec::new(),
                };
                let (stored, total) = rooms::list(&c, user, limit as u32 + listed.len() as u32)?;
                Ok((stored, total, hidden))
            })
            .map_err(|e| e.to_string())?;
        // A private room is listed to its members only, however many are in it.
        listed.retain(|r| !hidden.contains(&r.id));
        for room in stored {
            if !listed.iter().any(|r| r.id == room.id) {
                listed.push(RoomCount {
                    id: room.id,
                    name: room.name,
                    topic: room.topic,
                    people: 0,
                });
            }
        }
        listed.truncate(limit);
        Ok((listed, total.max(0) as usize))
    }
}

/// Sends the hub a request and waits at most `timeout` for its answer.
pub fn ask_within<T>(
    hub: &HubSender,
    timeout: Duration,
    make: impl FnOnce(mpsc::Sender<T>) -> Event,
) -> std::result::Result<T, AskError> {
    let (tx, rx) = mpsc::channel();
    hub.send(make(tx)).map_err(|_| AskError::Stopped)?;
    rx.recv_timeout(timeout).map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => AskError::TimedOut,
        mpsc::RecvTimeoutError::Disconnected => AskError::Stopped,
    })
}

/// Locks a mutex, carrying on if a panicking thread poisoned it: the data it guards (maps
/// of sockets) stays consistent at every step.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_that_does_not_answer_is_reported_as_such() {
        let (tx, inbox) = super::super::hub::channel().unwrap();
        // The "hub" holds the request but never answers: a timeout, not a made-up answer.
        let kick = |reply| Event::Kick {
            key: "bob".into(),
            text: String::new(),
            announce: String::new(),
            reply,
        };
        assert_eq!(
            ask_within(&tx, Duration::from_millis(50), kick),
            Err(AskError::TimedOut)
        );
        // A hub that is gone.
        drop(inbox);
        let got: std::result::Result<usize, _> =
            ask_within(&tx, Duration::from_millis(50), |_reply| Event::Crash);
        assert_eq!(got, Err(AskError::Stopped));
    }
}
