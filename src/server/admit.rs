//! Who is let in: bans and the per-address limits for the client's address, the door's
//! budgets ([`super::door`]), and for a connection from a trusted proxy, the client it
//! brings ([`super::proxy`]). Refusals are logged (once a second at most), counted, and told
//! to the client in the form its way in can show.

use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::door::{Share, Shut};
use super::limits::Refusal;
use super::metrics::{self, Refused, METRICS};
use super::moderation::banned_line;
use super::shared::{lock, Shared};
use super::socket::ConnId;
use super::socket::Via;
use super::{proxy, text};

/// Bans and the per-address limits for a client at `ip`: counted against its address (until
/// [`Limits::release`](super::limits::Limits::release)), or why not and the line to refuse it
/// with.
pub(super) fn admit_addr(shared: &Shared, ip: IpAddr) -> Result<(), (Refused, String)> {
    if let Some(ban) = shared.moderation.ip_ban(ip) {
        return Err((Refused::Banned, banned_line(&ban)));
    }
    match shared.limits.admit(ip) {
        Ok(()) => Ok(()),
        Err(Refusal::TooMany) => Err((Refused::PerAddress, text::too_many_connections())),
        Err(Refusal::TooFast) => Err((Refused::TooFast, text::connecting_too_fast())),
    }
}

fn shut(shared: &Shared, why: Shut) -> (Refused, String) {
    match why {
        Shut::Full => (Refused::Full, text::server_full(shared.config.max_clients)),
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
    refused(shared, client, refusal.0, &refusal.1);
    Err(refusal.1)
}

/// Logs and counts a refusal.
pub(super) fn refused(shared: &Shared, addr: SocketAddr, why: Refused, text: &str) {
    metrics::inc(&METRICS.refused[why as usize]);
    if let Some(more) = shared.quiet_accept.allow() {
        log::warn!(
            "{addr}: refused: {} ({more} more refusals not logged)",
            text.trim_start_matches("! ").trim_end()
        );
    }
}

/// Tells a refused client why, in the form its way in can show: a line for telnet, a 503
/// for a browser; a TLS or SSH client would read clear text as a broken handshake, so it is
/// just closed.
pub(super) fn tell_refused(sock: &socket2::Socket, via: Via, text: &str) {
    match via {
        Via::Plain => refuse(sock, text),
        Via::Web => refuse(sock, &http_refusal(text)),
        Via::Tls | Via::Ssh => {
            let _ = sock.shutdown(Shutdown::Both);
        }
    }
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
        METRICS.open[metrics::via_index(self.via)].fetch_sub(1, Ordering::Relaxed);
        lock(&self.shared.conns).remove(&self.conn);
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
        if let Some(ip) = self.shared.door.leave(self.conn) {
            self.shared.limits.release(ip);
        }
    }
}

/// A connection from a trusted proxy: reads its PROXY header, if it sends one, and admits the
/// client it names, or the proxy itself if it names none. The client's address and whether it
/// is admitted (not yet: on the web listener, when the client is itself a trusted proxy, whose
/// request's forwarding headers will say more), or `None` if the connection is to be closed
/// (refused, or a bad header).
// Not inlined: the PROXY header's 1 KiB buffer would otherwise sit in the worker's outermost
// frame, which stays on the stack, resident, for the whole session.
#[inline(never)]
pub(super) fn from_proxy(
    shared: &Shared,
    conn: ConnId,
    sock: &crate::server::socket::Socket,
    peer: SocketAddr,
    via: Via,
) -> Option<(SocketAddr, bool)> {
    let deadline = shared
        .door
        .deadline(conn)
        .unwrap_or_else(|| Instant::now() + shared.config.login_timeout);
    let client = match proxy::read_header(sock, deadline) {
        Ok(proxy::Said::Client(client)) => client,
        Ok(proxy::Said::Nothing | proxy::Said::Local) => peer,
        Err(e) => {
            log::info!("{peer}: closed: {e}");
            let _ = sock.shutdown(Shutdown::Both);
            return None;
        }
    };
    // On the web listener a request from a proxy may still name its client (a trusted proxy
    // whose PROXY header names another, or none): that waits for the request's head. Any
    // other client is admitted now, before it may send anything more.
    if via == Via::Web && shared.config.trusted(client.ip()) {
        return Some((client, false));
    }
    if let Err(text) = admit_as(shared, conn, client) {
        tell_refused(sock, via, &text);
        return None;
    }
    log::info!("{client}: connected ({via}, through {peer})");
    Some((client, true))
}

/// A refusal as an HTTP response (503: the reasons are all "not now").
fn http_refusal(text: &str) -> String {
    let body = text.trim_start_matches("! ");
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Tells a client why it is not served, without ever blocking (the accept thread calls it).
fn refuse(sock: &socket2::Socket, text: &str) {
    let _ = sock.send_with_flags(text.as_bytes(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
    let _ = sock.shutdown(Shutdown::Both);
}
