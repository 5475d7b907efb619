//! Who is let in: bans and the per-address limits for the client's address, the door's
//! budgets ([`super::door`]), and for a connection from a trusted proxy, the client it
//! brings ([`super::proxy`]). Refusals are logged ([`super::refusals`]: one line per reason
//! every 10 s at most), counted, and told to the client, with when to try again, in the form
//! its way in can show.

use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::door::{Share, Shut};
use super::limits::Refusal;
use super::metrics::{self, Refused, METRICS};
use super::moderation::banned_line;
use super::refusals::Why;
use super::shared::{lock, Shared};
use super::socket::ConnId;
use super::socket::Via;
use super::text;

/// Bans and the per-address limits for a client at `ip`: counted against its address (until
/// [`Limits::release`](super::limits::Limits::release)), or why not and the line to refuse it
/// with.
pub(super) fn admit_addr(shared: &Shared, ip: IpAddr) -> Result<(), (Refused, String)> {
    if let Some(ban) = shared.moderation.ip_ban(ip) {
        return Err((Refused::Banned, banned_line(&ban)));
    }
    match shared.limits.admit(ip) {
        Ok(()) => Ok(()),
        Err(Refusal::TooMany) => Err((
            Refused::PerAddress,
            text::too_many_connections(shared.config.get().limits.max_per_ip),
        )),
        Err(Refusal::TooFast(wait)) => Err((Refused::TooFast, text::connecting_too_fast(wait))),
    }
}

fn shut(shared: &Shared, why: Shut) -> (Refused, String) {
    match why {
        Shut::Full => (
            Refused::Full,
            text::server_full(shared.config.get().max_clients),
        ),
        Shut::PendingPerAddress => (Refused::Pending, text::too_many_pending()),
    }
}

/// Lets `conn` (its socket registered already) in through the door, pending; cuts the pending
/// connection dropped to make room for it, if any.
pub(super) fn enter(
    shared: &Shared,
    conn: ConnId,
    ip: IpAddr,
    counted: Option<IpAddr>,
) -> Result<(), (Refused, String)> {
    let share = match counted {
        // A trusted proxy that has not said yet whom it brings.
        None => Share::Server,
        Some(ip) if shared.limits.exempt(ip) => Share::Exempt,
        Some(_) => Share::Address,
    };
    let victim = shared
        .door
        .enter(conn, ip, share, counted, Instant::now())
        .map_err(|why| shut(shared, why))?;
    if let Some(victim) = victim {
        metrics::inc(&METRICS.dropped_pending);
        if let Some(more) = shared.quiet_accept.allow() {
            log::info!(
                "{ip}: too many connections logging in: dropped the oldest of the address \
                 holding the most ({more} more not logged)"
            );
        }
        if let Some(sock) = lock(&shared.conns).get(&victim) {
            let _ = sock.shutdown(Shutdown::Both);
        }
    }
    Ok(())
}

/// A connection from a trusted proxy now knows whom it brings (`client`): the client is
/// admitted as [`accept_loop`] admits others (bans, per-address limits and pending budget),
/// or refused (logged and counted) with the line that says why.
pub fn admit_as(shared: &Shared, conn: ConnId, client: SocketAddr) -> Result<(), String> {
    let ip = client.ip();
    let refusal = match admit_addr(shared, ip) {
        Err(refusal) => refusal,
        Ok(()) => {
            let share = if shared.limits.exempt(ip) {
                Share::Exempt
            } else {
                Share::Address
            };
            let refusal = match shared.door.moved(conn, ip, share) {
                Ok(true) => return Ok(()),
                Ok(false) => (Refused::Pending, text::too_many_pending()),
                Err(why) => shut(shared, why),
            };
            shared.limits.release(ip);
            refusal
        }
    };
    refused(shared, client, refusal.0);
    Err(refusal.1)
}

/// Logs and counts a refusal.
pub(super) fn refused(shared: &Shared, addr: SocketAddr, why: Refused) {
    metrics::inc(&METRICS.refused[why as usize]);
    let why = match why {
        Refused::Banned => Why::Banned,
        Refused::PerAddress => Why::PerAddress,
        Refused::TooFast => Why::TooFast,
        Refused::Full => Why::Full,
        Refused::Pending => Why::Pending,
    };
    shared.refusals.log(&shared.config.get(), addr, why);
}

/// A connection admitted and counted (registry, `active`, the door, its address's open
/// connections); dropping it undoes all of them, whenever and on whatever thread the
/// connection ends (a panic included, or a job dropped unrun).
pub struct Admitted {
    pub(super) shared: Arc<Shared>,
    pub(super) conn: ConnId,
    /// For the open-connections gauge.
    pub(super) via: Via,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        METRICS.open[self.via.slot()].fetch_sub(1, Ordering::Relaxed);
        lock(&self.shared.conns).remove(&self.conn);
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
        if let Some(ip) = self.shared.door.leave(self.conn) {
            self.shared.limits.release(ip);
        }
    }
}
