//! The running server: the accept thread, the worker pool, the hub, the janitor, shutdown.
//!
//! Threads:
//! - **accept** (one): takes connections; refuses banned addresses, addresses over their
//!   limits and everything beyond `max_clients` before any work is spent on them; hands the
//!   rest to the pool. Woken for shutdown by a connection to itself.
//! - **workers** (up to `max_clients`, small stacks): one per connected client, as in the
//!   lab's "thread per client" model, but bounded, started when a client comes and ended
//!   when idle ([`pool`]). A worker runs [`connection::run`].
//! - **hub** (one): orders, commits and delivers chat ([`hub`]); sleeps on socket readiness.
//!   Watched: if it panics, the server stops with an error instead of running on mute.
//! - **janitor** (one): rereads bans every few seconds, deletes expired ones, prunes old
//!   messages ([`janitor`]).
//! - **relays**: one per TLS connection and per browser's WebSocket ([`transport`]); the
//!   **ssh** thread runs the SSH transport's runtime.
//! - **pg-listen** (PostgreSQL only): wakes the hub when other nodes commit, and carries out
//!   their console commands ([`listen`]).
//!
//! What the operator can do to a running server (pause, status, say, clear-auth, …) is in
//! [`operator`].
//!
//! The caller's thread stays free (for the operator console).

mod accept;
mod admit;
pub mod bucket;
pub mod config;
pub mod door;
mod operator;
mod reload;
pub mod shared;
pub use config::{Config, Keepalive};
pub use operator::Status;
pub use shared::{lock, AskError, Shared};
pub use socket::listen;
pub mod cleanup;
pub mod commands;
pub mod connection;
pub mod hub;
pub mod janitor;
pub mod limits;
mod listen;
pub mod metrics;
pub mod moderation;
pub mod moderator;
pub mod outbox;
mod pool;
pub mod protocol;
pub mod proxy;
pub mod quiet;
pub mod refusals;
pub mod searches;
pub mod session;
pub mod socket;
pub mod telnet;
pub mod text;
pub mod transport;
pub mod wire;

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::auth::Hasher;
use crate::error::Result;
use crate::store::Store;
use accept::Gate;
use hub::{Event, Hub, Stats};
use limits::Limits;
use moderation::Moderation;
use pool::Pool;
use quiet::Quiet;
use transport::Way;

/// At shutdown, how long clients get to finish sending what they sent before the goodbye
/// (they see our FIN and close); then every connection is cut. Keeps shutdown under 2 s.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// A worker's stack. Sessions keep little on the stack (argon2's memory is on the heap), so
/// a thousand workers cost a thousand small stacks, not a thousand default 2 MiB ones.
const WORKER_STACK: usize = 256 * 1024;

/// A running server. Share it (`Arc`) between the console and the signal handler; dropping
/// it does not stop it: call [`Server::shutdown`].
pub struct Server {
    /// Each way in with the address it listens on, the first being the main one.
    ways: Vec<(SocketAddr, Arc<dyn Way>)>,
    shared: Arc<Shared>,
    /// Pause state and the stop flag; the accept thread checks it after every accept.
    gate: Arc<Gate>,
    /// The worker pool (a handle), so `status` counts workers without the shutdown guard.
    workers: Pool,
    started: Instant,
    /// The threads to join at shutdown; taken by the first shutdown, so it runs once.
    threads: Mutex<Option<Threads>>,
}

struct Threads {
    /// One per listener.
    accept: Vec<JoinHandle<()>>,
    hub: JoinHandle<()>,
    janitor: JoinHandle<()>,
    /// Dropped to stop the janitor.
    janitor_stop: mpsc::Sender<()>,
    /// The listen thread (PostgreSQL) and its stop flag.
    listen: Option<(JoinHandle<()>, Arc<AtomicBool>)>,
    pool: Pool,
}

/// The text of a panic's payload.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Where the server listens, each listener with its way in, already bound (so tests can bind
/// port 0). The first is the main one (its address is `local_addr`).
pub type Listeners = Vec<(TcpListener, Arc<dyn Way>)>;

/// Starts serving on already-bound listeners. `on_fatal` is
/// called (once, from the failing thread) if the server cannot go on: the hub panicked. The
/// caller should then shut down and exit with an error, so a service manager restarts it.
pub fn start(
    listeners: Listeners,
    store: Store,
    config: Config,
    on_fatal: impl FnOnce(String) + Send + 'static,
) -> Result<Server> {
    let mut ways = Vec::new();
    for (l, way) in &listeners {
        ways.push((l.local_addr()?, way.clone()));
    }
    let local_addr = ways.first().map(|(a, _)| *a).ok_or_else(|| {
        crate::error::Error::from(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no listener",
        ))
    })?;
    let moderation = Arc::new(Moderation::default());
    moderation.reload(&store.conn()?)?;
    let (tx, inbox) = hub::channel()?;
    let stats = Arc::new(Stats::default());
    // This node's id among the nodes on one database (PostgreSQL).
    let node = uuid::Uuid::new_v4().to_string();
    let hub = Hub::new(
        store.clone(),
        inbox,
        stats.clone(),
        moderation.clone(),
        hub::Settings {
            max_backlog: config.max_backlog,
            send_timeout: config.send_timeout,
            addr: local_addr.to_string(),
            node: node.clone(),
        },
    )?;
    let hub = thread::Builder::new().name("hub".into()).spawn(move || {
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| hub.run())) {
            let why = panic_text(&*panic);
            log::error!("the hub thread panicked ({why}): chat is down; stopping the server");
            on_fatal(format!("the hub thread failed: {why}"));
        }
    })?;

    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    // A worker for every session and every connection logging in.
    let pool = Pool::new(
        config.max_clients + config.max_pending,
        WORKER_STACK,
        config.worker_idle,
        "session",
    );
    let shared = Arc::new(Shared {
        limits: Limits::new(config.limits.clone()),
        door: door::Door::new(config.budget()),
        config: config::Settings::new(config),
        store,
        node,
        hasher: Hasher::new(cores),
        hub: tx,
        stats,
        moderation,
        cut: AtomicBool::new(false),
        refusals: refusals::Refusals::default(),
        quiet_accept: Quiet::default(),
        pruned: AtomicU64::new(0),
        searches: searches::Searches::default(),
        conns: Mutex::new(HashMap::new()),
        active: AtomicUsize::new(0),
        next_conn: AtomicU64::new(1),
        ssh_port: ways
            .iter()
            .find(|(_, way)| way.via().name() == "ssh")
            .map(|(addr, _)| addr.port()),
    });
    let (janitor_stop, stop_rx) = mpsc::channel();
    let janitor = {
        let shared = shared.clone();
        let conn = crate::store::Dedicated::open(
            &shared.store,
            "the janitor",
            "besedka::server::janitor",
        )?;
        thread::Builder::new()
            .name("janitor".into())
            .spawn(move || janitor::run(&shared, conn, stop_rx))?
    };
    let gate = Arc::new(Gate::default());
    let listen = match shared.store.listener(&shared.node) {
        Some(listener) => {
            let stop = Arc::new(AtomicBool::new(false));
            let (shared, gate, flag) = (shared.clone(), gate.clone(), stop.clone());
            let handle = thread::Builder::new()
                .name("pg-listen".into())
                .spawn(move || listen::run(listener, &shared, &gate, flag))?;
            Some((handle, stop))
        }
        None => None,
    };
    let mut accept = Vec::new();
    for (listener, way) in listeners {
        let name = format!("accept-{}", way.via());
        let (shared, gate, pool) = (shared.clone(), gate.clone(), pool.clone());
        accept.push(
            thread::Builder::new()
                .name(name)
                .spawn(move || accept::accept_loop(listener, shared, gate, pool, way))?,
        );
    }
    Ok(Server {
        ways,
        shared,
        gate,
        workers: pool.clone(),
        started: Instant::now(),
        threads: Mutex::new(Some(Threads {
            accept,
            hub,
            janitor,
            janitor_stop,
            listen,
            pool,
        })),
    })
}

impl Server {
    /// The main listener's address (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.ways[0].0
    }

    /// Each way in's name and the address it listens on.
    pub fn listening(&self) -> Vec<(&'static str, SocketAddr)> {
        self.ways
            .iter()
            .map(|(a, w)| (w.via().name(), *a))
            .collect()
    }

    /// Says once at startup that loopback is exempt from the per-address limits, if it is: at
    /// warn when the web listener, which is meant to sit behind a reverse proxy, is up and no
    /// proxy on this machine is named (a proxy that sends no `X-Forwarded-For` could not be told
    /// from a person on this machine); at info otherwise.
    pub fn loopback_notice(&self) {
        let shared = &self.shared;
        if !shared.limits.loopback_exempt()
            || shared
                .config
                .get()
                .trusted(std::net::Ipv4Addr::LOCALHOST.into())
        {
            return;
        }
        let exempt = "loopback clients (127.0.0.0/8, ::1) are exempt from the per-address limits";
        if self.listening().iter().any(|(name, _)| *name == "web") {
            log::warn!(
                "{exempt}, and the web listener is up with no --trusted-proxy: a reverse proxy on \
                 this machine would make every client it brings exempt too. Name it with \
                 --trusted-proxy 127.0.0.1, or pass --limit-loopback (a class on one machine needs \
                 neither)"
            );
        } else {
            log::info!(
                "{exempt} (a class on one machine); --limit-loopback holds them to the limits, and \
                 a proxy on this machine must be named with --trusted-proxy"
            );
        }
    }

    /// The database the server works on.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// This node's id among several on one database.
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    /// Stops accepting, says goodbye to every client, closes every connection, commits every
    /// message the sessions read, and joins every thread. Safe to call from several threads:
    /// the first does the work, the others wait for it.
    pub fn shutdown(&self) {
        let mut threads = lock(&self.threads);
        let Some(t) = threads.take() else {
            return; // done already
        };
        self.gate.stop();
        drop(t.janitor_stop);
        if let Some((handle, stop)) = t.listen {
            stop.store(true, Ordering::SeqCst);
            let _ = handle.join();
        }
        let _ = t.janitor.join();
        // Wake the accept threads blocked in accept().
        for mut wake in self.ways.iter().map(|(a, _)| *a) {
            if wake.ip().is_unspecified() {
                wake.set_ip(if wake.is_ipv4() {
                    [127, 0, 0, 1].into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        }
        for accept in t.accept {
            let _ = accept.join();
        }
        // Logged-in clients: the hub says goodbye and closes their sockets.
        self.shared.hasher.stop();
        let _ = self.shared.ask(|done| Event::Shutdown { done });
        // Connections still logging in: the hub never knew them. (Sockets the hub finished
        // already refuse this send.)
        let bye = text::shutting_down();
        for sock in lock(&self.shared.conns).values() {
            let _ = socket2::SockRef::from(sock)
                .send_with_flags(bye.as_bytes(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
            let _ = sock.shutdown(Shutdown::Write);
        }
        // Sessions go on reading what their clients sent before the goodbye, until the client
        // closes or the grace period ends; then the rest are cut.
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.shared.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        // From here on nothing more is read, even what is already in a session's buffer.
        self.shared.cut.store(true, Ordering::SeqCst);
        for sock in lock(&self.shared.conns).values() {
            let _ = sock.shutdown(Shutdown::Both);
        }
        // Every session returns; what they read is in the hub's queue, committed at Stop.
        t.pool.join();
        // What the ways run themselves (SSH's runtime, and the connections still
        // authenticating on it, which have no session).
        for (_, way) in &self.ways {
            way.stop();
        }
        let _ = self.shared.hub.send(Event::Stop);
        let _ = t.hub.join();
        log::info!("server stopped");
    }
}
