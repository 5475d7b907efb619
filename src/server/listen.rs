//! Several nodes on one PostgreSQL database: the *listen* thread waits on the database for
//! other nodes' commits (`LISTEN`) and wakes the hub, which reads the new rows by id. Not
//! started on SQLite.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hub::{Event, HubSender};
use crate::store::notify::Listener;

/// How long one wait lasts: the longest shutdown waits for this thread.
const WAIT: Duration = Duration::from_millis(500);

/// Runs until `stop` is set or the hub is gone.
pub fn run(mut listener: Listener, hub: HubSender, stop: Arc<AtomicBool>) {
    let mut warned: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        match listener.wait(WAIT) {
            Ok(woke) if woke.messages || woke.presence => {
                if warned.take().is_some() {
                    log::info!("listening to the other nodes again");
                }
                let ev = Event::Remote {
                    messages: woke.messages,
                    presence: woke.presence,
                };
                if hub.send(ev).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                // The database restarted or the network failed: try again each second, and
                // say so once a minute (the hub reads what was missed once it is back).
                if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    log::warn!("cannot listen to the other nodes: {e}");
                    warned = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}
