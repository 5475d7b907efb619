//! The accept thread: takes connections, refuses what must be refused before any work is spent
//! on it (banned addresses, addresses over their limits, a full server: [`super::admit`]),
//! tunes the socket and hands the connection to a worker. Paused by the [`Gate`]; backs off
//! when the process runs out of descriptors.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::admit::{admit_addr, admit_as, enter, refused, Admitted};
use super::metrics::{self, METRICS};
use super::pool::Pool;
use super::quiet::Quiet;
use super::socket::{ConnId, Socket};
use super::transport::{Accepted, Way};
use super::{lock, proxy, Keepalive, Shared};

/// The pause gate the accept thread passes before serving a connection. While it is shut,
/// new connections wait in the kernel's queue (or, if one was accepted already, in the accept
/// thread) and get no byte at all; on resume they are served in arrival order.
#[derive(Default)]
pub struct Gate {
    /// (paused, stopping)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    /// Waits while paused; false once stopping.
    pub fn pass(&self) -> bool {
        let mut st = lock(&self.state);
        while st.0 && !st.1 {
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        !st.1
    }

    /// Sets `paused`; returns whether it changed.
    pub fn set_paused(&self, paused: bool) -> bool {
        let mut st = lock(&self.state);
        let changed = st.0 != paused;
        st.0 = paused;
        self.changed.notify_all();
        changed
    }

    pub fn stop(&self) {
        lock(&self.state).1 = true;
        self.changed.notify_all();
    }

    pub fn paused(&self) -> bool {
        lock(&self.state).0
    }
}

/// Sets what every accepted socket gets: no Nagle delay (chat lines are small and
/// interactive) and keepalive.
pub fn tune(stream: &TcpStream, k: &Keepalive) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let ka = socket2::TcpKeepalive::new()
        .with_time(k.idle)
        .with_interval(k.interval)
        .with_retries(k.probes);
    socket2::SockRef::from(stream).set_tcp_keepalive(&ka)
}

/// Backs off when `accept` fails for lack of resources (out of file descriptors or memory):
/// 100 ms, doubling to 1 s, and one log line a second at most.
struct Backoff {
    delay: Duration,
    quiet: Quiet,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(1);

    fn failed(&mut self, e: &io::Error) {
        let scarce = matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS)
        );
        if !scarce {
            // The peer gave up before we took it (ECONNABORTED, …): nothing to wait for.
            log::debug!("accept failed: {e}");
            return;
        }
        if let Some(more) = self.quiet.allow() {
            log::warn!(
                "accept failed: {e} ({} time(s) since the last report); backing off",
                more + 1
            );
        }
        thread::sleep(self.delay);
        self.delay = (self.delay * 2).min(Self::MAX);
    }

    fn succeeded(&mut self) {
        self.delay = Self::FIRST;
    }
}
/// Takes connections on `listener` until the gate stops, and hands them to `way`.
pub fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    gate: Arc<Gate>,
    pool: Pool,
    way: Arc<dyn Way>,
) {
    let via = way.via();
    let mut backoff = Backoff {
        delay: Backoff::FIRST,
        quiet: Quiet::default(),
    };
    loop {
        // Paused: stop taking connections, so new clients wait in the kernel's queue.
        if !gate.pass() {
            break;
        }
        let accepted = listener.accept();
        // A connection accepted just as a pause began also waits, unserved, for resume.
        if !gate.pass() {
            break;
        }
        let (stream, addr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                backoff.failed(&e);
                continue;
            }
        };
        backoff.succeeded();
        // A trusted proxy's connection is admitted as the client it brings, once it has said
        // whom (on a worker: the accept thread never waits for a byte).
        let proxied = shared.config.get().trusted(addr.ip());
        if !proxied {
            if let Err((why, text)) = admit_addr(&shared, addr.ip()) {
                refused(&shared, addr, why);
                way.refuse(&Socket::from(stream), &text);
                continue;
            }
        }
        if let Err(e) = tune(&stream, &shared.config.get().keepalive) {
            log::debug!("{addr}: cannot set socket options: {e}");
        }
        let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        // One descriptor per connection: the registry, the session and the hub share it. (A
        // TLS connection is registered with its TCP socket until the handshake is done; one
        // whose way keeps the stream (SSH, served by its runtime) with a second descriptor
        // until its session starts, so that it can be cut at its login deadline or for a
        // newcomer.)
        let (sock, stream) = if way.keeps_stream() {
            match stream.try_clone() {
                Ok(dup) => (Ok(Socket::from(dup)), Some(stream)),
                Err(e) => (Err(e), None),
            }
        } else {
            (Ok(Socket::from(stream)), None)
        };
        let sock = match sock {
            Ok(sock) => Arc::new(sock),
            Err(e) => {
                log::warn!("{addr}: cannot serve: {e}");
                if !proxied {
                    shared.limits.release(addr.ip());
                }
                continue;
            }
        };
        lock(&shared.conns).insert(conn, sock.clone());
        let counted = (!proxied).then_some(addr.ip());
        if let Err((why, text)) = enter(&shared, conn, addr.ip(), counted) {
            lock(&shared.conns).remove(&conn);
            if !proxied {
                shared.limits.release(addr.ip());
            }
            refused(&shared, addr, why);
            way.refuse(&sock, &text);
            continue;
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        if proxied {
            log::debug!("{addr}: connected ({via}, a trusted proxy)");
        } else {
            log::info!("{addr}: connected ({via})");
        }
        metrics::inc(&METRICS.connections[via.slot()]);
        metrics::inc(&METRICS.open[via.slot()]);
        let admitted = Admitted {
            shared: shared.clone(),
            conn,
            via,
        };
        let (way, job_pool) = (way.clone(), pool.clone());
        let started = pool.execute(move || {
            let shared = admitted.shared.clone();
            // `settle`: a request from a trusted proxy whose head will name the client.
            let (addr, settle) = if proxied {
                match from_proxy(&shared, conn, &sock, addr, &*way) {
                    Some((client, true)) => (client, None),
                    Some((client, false)) => (client, Some(client)),
                    None => return,
                }
            } else {
                (addr, None)
            };
            way.serve(Accepted {
                shared,
                conn,
                sock,
                stream,
                addr,
                settle,
                admitted,
                pool: job_pool,
            });
        });
        if let Err(e) = started {
            // No thread could be started and none is alive: the job was dropped unrun, and
            // its `Admitted` with it.
            log::warn!("{addr}: cannot serve: no worker thread ({e})");
        }
    }
}

/// A connection from a trusted proxy: reads its PROXY header, if it sends one, and admits the
/// client it names, or the proxy itself if it names none. The client's address and whether it
/// is admitted (not yet: on the web listener, when the client is itself a trusted proxy, whose
/// request's forwarding headers will say more), or `None` if the connection is to be closed
/// (refused, or a bad header).
///
/// Not inlined: the PROXY header's 1 KiB buffer would otherwise sit in the worker's outermost
/// frame, which stays on the stack, resident, for the whole session.
#[inline(never)]
fn from_proxy(
    shared: &Shared,
    conn: ConnId,
    sock: &crate::server::socket::Socket,
    peer: SocketAddr,
    way: &dyn Way,
) -> Option<(SocketAddr, bool)> {
    let via = way.via();
    let deadline = shared
        .door
        .deadline(conn)
        .unwrap_or_else(|| Instant::now() + shared.config.get().login_timeout);
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
    if way.forwards() && shared.config.get().trusted(client.ip()) {
        return Some((client, false));
    }
    if let Err(text) = admit_as(shared, conn, client) {
        way.refuse(sock, &text);
        return None;
    }
    log::info!("{client}: connected ({via}, through {peer})");
    Some((client, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_get_keepalive_as_configured() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let k = Keepalive {
            idle: Duration::from_secs(61),
            interval: Duration::from_secs(14),
            probes: 5,
        };
        tune(&accepted, &k).unwrap();
        // Read back from the kernel (getsockopt), not from our own settings.
        let sock = socket2::SockRef::from(&accepted);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.keepalive_time().unwrap(), k.idle);
        assert_eq!(sock.keepalive_interval().unwrap(), k.interval);
        assert_eq!(sock.keepalive_retries().unwrap(), k.probes);
        assert!(accepted.nodelay().unwrap());
    }
}
