//! The janitor: one thread for slow housekeeping that must stay off the hub's hot path.
//!
//! - every [`RELOAD_EVERY`]: rereads bans, mutes and operators, so changes made from a shell
//!   (`besedka ban`, `besedka op`) and bans that expire apply to the running server; when
//!   something changed, the hub disconnects whoever a ban now keeps out;
//! - every [`RELOAD_EVERY`] too: disconnects the sessions of accounts removed from a shell
//!   (`besedka purge-auth`), telling them why ([`cut_removed_accounts`]);
//! - every [`RELOAD_EVERY`] too: adds new messages to the search index ([`search`]), in
//!   batches, so `/search` finds a line within seconds and the hub's commits do not pay for it;
//! - every [`RELOAD_EVERY`] too: hands the hub the removals of lines that another process
//!   wrote (`besedka purge-lines`, another node's operator), so open web pages and IRC
//!   clients hear of them ([`removals_by_others`]);
//! - every [`RELOAD_EVERY`] too: gives memory that bursts left free back to the system
//!   ([`crate::memory::give_back`]);
//! - every [`PRUNE_EVERY`]: deletes expired ban rows, and old messages by `--retain-*`, in
//!   small batches with a pause between them so the hub's commits never wait long.
//!
//! Its connection is its own ([`Dedicated`]): lost (a failover, a restart of the database)
//! it is replaced at the next round, and the outage said once, not every round.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::store::Dedicated;

use super::hub::Event;
use super::Shared;
use crate::store::{bans, removals, retention, search, users};

/// How often moderation state is reread.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// How often old rows are deleted.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// The pause between two pruning batches.
const BATCH_PAUSE: Duration = Duration::from_millis(20);

/// Runs until `stop` is dropped (or sent to).
pub fn run(shared: &Shared, mut conn: Dedicated, stop: Receiver<()>) {
    let mut pruned_at: Option<Instant> = None;
    // The last removal read: those from before the start are not told again.
    let mut removals_read: Option<i64> = conn.run(removals::last_id).ok();
    let stopped = |wait| !matches!(stop.recv_timeout(wait), Err(RecvTimeoutError::Timeout));
    loop {
        if stopped(RELOAD_EVERY) {
            return;
        }
        match conn.run(|c| shared.moderation.reload(c)) {
            Ok(true) => {
                let _ = shared.hub.send(Event::Enforce {
                    announce: None,
                    reply: None,
                });
            }
            Ok(false) => {}
            // Said once by the connection; nothing else this round can work either.
            Err(Error::DbDown) => continue,
            Err(e) => log::warn!("cannot reread bans: {e}"),
        }
        cut_removed_accounts(shared, &mut conn);
        removals_by_others(shared, &mut conn, &mut removals_read);
        crate::memory::give_back();
        if !index_new_messages(&mut conn, &stopped) {
            return;
        }
        if pruned_at.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
            continue;
        }
        pruned_at = Some(Instant::now());
        match conn.run(bans::delete_expired) {
            Ok(_) | Err(Error::DbDown) => {}
            Err(e) => log::warn!("cannot delete expired bans: {e}"),
        }
        let policy = shared.config.get().retention;
        let mut total = 0;
        loop {
            match conn.run(|c| retention::prune_batch(c, &policy, retention::BATCH)) {
                Ok(0) | Err(Error::DbDown) => break,
                Ok(n) => {
                    total += n;
                    shared.pruned.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    log::warn!("cannot prune old messages: {e}");
                    break;
                }
            }
            if stopped(BATCH_PAUSE) {
                return;
            }
        }
        if total > 0 {
            log::info!("retention: pruned {total} old message(s)");
        }
    }
}

/// Disconnects, with the reason, the sessions whose accounts were removed from a shell:
/// `besedka purge-auth` writes the database directly, and no running server hears of it (the
/// console's `clear-auth` tells the hub itself). Without this such a session would learn it
/// only from its next line, refused as if the server had failed.
fn cut_removed_accounts(shared: &Shared, conn: &mut Dedicated) {
    let Ok(ids) = shared.ask(|reply| Event::Accounts { reply }) else {
        return; // the hub is busy or stopping: next round
    };
    match conn.run(|c| users::missing(c, &ids)) {
        Ok(gone) if gone.is_empty() => {}
        Err(Error::DbDown) => {}
        Ok(gone) => {
            let _ = shared.hub.send(Event::AccountsRemoved { ids: gone });
        }
        Err(e) => log::warn!("cannot check that online accounts still exist: {e}"),
    }
}

/// Hands the hub what others removed since `read` (this node's own removals it told the hub
/// itself). The first round only finds where to start.
fn removals_by_others(shared: &Shared, conn: &mut Dedicated, read: &mut Option<i64>) {
    let Some(after) = *read else {
        if let Ok(last) = conn.run(removals::last_id) {
            *read = Some(last);
        }
        return;
    };
    match conn.run(|c| removals::since(c, &shared.node, after)) {
        Ok((found, next)) => {
            *read = Some(next);
            for removal in found {
                let _ = shared.hub.send(Event::Removed {
                    removal: Box::new(removal),
                });
            }
        }
        Err(Error::DbDown) => {}
        Err(e) => log::warn!("cannot read the removals of lines made elsewhere: {e}"),
    }
}

/// Messages indexed per transaction: short enough that the hub's commit never waits long.
const INDEX_BATCH: u32 = 2_000;

/// Indexes what is new, a batch at a time with a pause between; false if told to stop.
fn index_new_messages(conn: &mut Dedicated, stopped: &dyn Fn(Duration) -> bool) -> bool {
    loop {
        match conn.run(|c| search::index_batch(c, INDEX_BATCH)) {
            Ok(n) if n < INDEX_BATCH as usize => return true,
            Ok(_) => {}
            Err(Error::DbDown) => return true,
            Err(e) => {
                log::warn!("cannot index new messages for search: {e}");
                return true;
            }
        }
        if stopped(BATCH_PAUSE) {
            return false;
        }
    }
}
