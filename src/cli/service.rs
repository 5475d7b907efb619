//! What `serve` tells a service manager that started it with `Type=notify` (systemd; see
//! contrib/besedka.service): `READY=1` once every listener is bound and the server has
//! started, so `systemctl start` returns (and units ordered after it start) only when
//! connections are taken; `STOPPING=1` when shutdown begins. sd_notify(3)'s protocol, by the
//! `sd-notify` crate: one datagram to the socket named by `NOTIFY_SOCKET`. Without that
//! variable (not started so) nothing is sent.

use sd_notify::NotifyState;

/// The server is ready; `listening` (the startup line's addresses) becomes the status line
/// `systemctl status` shows.
pub fn ready(listening: &str) {
    let status = format!("listening on {listening}");
    tell(&[NotifyState::Ready, NotifyState::Status(&status)], "ready");
}

/// A reload (SIGHUP) has begun: `systemctl reload` shows it until [`ready`] is sent again.
pub fn reloading() {
    tell(&[NotifyState::Reloading], "reloading");
}

/// Shutdown has begun (a signal, the console's `shutdown`, or a fatal error).
pub fn stopping() {
    tell(&[NotifyState::Stopping], "stopping");
}

fn tell(states: &[NotifyState], what: &str) {
    // A manager that waits for READY=1 and never gets it fails the start after its timeout:
    // the log says why.
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("cannot tell the service manager the server is {what}: {e}");
    }
}
