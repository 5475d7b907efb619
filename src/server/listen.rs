//! Several nodes on one PostgreSQL database: the *listen* thread waits on the database for
//! other nodes' commits (`LISTEN`) and wakes the hub, which reads the new rows by id. Not
//! started on SQLite.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::accept::Gate;
use super::hub::Event;
use super::Shared;
use crate::store::control::{self, Command};
use crate::store::notify::Listener;
use crate::store::Outage;

/// How long one wait lasts: the longest shutdown waits for this thread.
const WAIT: Duration = Duration::from_millis(500);

/// Runs until `stop` is set or the hub is gone.
pub fn run(mut listener: Listener, shared: &Shared, gate: &Gate, stop: Arc<AtomicBool>) {
    let hub = &shared.hub;
    // The database restarted, failed over, or the network failed: the listener connects
    // again (through the URL: to the new primary), spaced by a bounded back-off, and says so
    // once (the hub reads what was missed once it is back).
    let mut outage = Outage::new("the listener", module_path!());
    // Console commands from before this node started are not this node's business.
    let mut seen = shared
        .store
        .conn()
        .and_then(|c| control::last_id(&c))
        .unwrap_or(0);
    while !stop.load(Ordering::SeqCst) {
        match listener.wait(WAIT) {
            Ok(woke) if woke.messages || woke.presence || woke.control => {
                outage.reached();
                let ev = Event::Remote {
                    messages: woke.messages,
                    presence: woke.presence,
                };
                if hub.send(ev).is_err() {
                    return;
                }
                if woke.control {
                    seen = carry_out(shared, gate, seen);
                }
            }
            Ok(_) => outage.reached(),
            Err(e) => {
                outage.failed(&e);
                std::thread::sleep(outage.wait().max(Duration::from_millis(20)));
            }
        }
    }
}

/// Carries out the console commands other nodes wrote after `seen`; returns the new cursor.
fn carry_out(shared: &Shared, gate: &Gate, seen: i64) -> i64 {
    let rows = match shared
        .store
        .conn()
        .and_then(|c| control::since(&c, &shared.node, seen))
    {
        Ok(rows) => rows,
        Err(e) => {
            log::warn!("cannot read the other nodes' console commands: {e}");
            return seen;
        }
    };
    let mut last = seen;
    for (id, command) in rows {
        last = id;
        let Some(command) = command else { continue };
        log::info!("console command from another node: {command:?}");
        let hub = &shared.hub;
        let _ = match command {
            Command::Say { text, room } => hub.send(Event::Announce { text, room }),
            Command::Kick {
                key,
                told,
                announce,
            } => hub.send(Event::Kick {
                key,
                text: told,
                announce,
                reply: std::sync::mpsc::channel().0,
            }),
            Command::Pause => {
                gate.set_paused(true);
                Ok(())
            }
            Command::Resume => {
                gate.set_paused(false);
                Ok(())
            }
            Command::DisconnectAll { text } => hub.send(Event::DisconnectAll {
                text,
                reply: std::sync::mpsc::channel().0,
            }),
        };
    }
    last
}
