//! The running server: the accept thread, the worker pool, the hub, and shutdown.
//!
//! Threads:
//! - **accept** (one): takes connections, refuses those beyond `max_clients`, hands the rest
//!   to the pool. Woken for shutdown by a connection to itself.
//! - **workers** (`max_clients`, small stacks): one per connected client, as in the lab's
//!   "thread per client" model, but bounded. A worker runs [`session::run`].
//! - **hub** (one): orders, commits and delivers chat ([`hub`]).
//!
//! The caller's thread stays free (for the operator console).

pub mod commands;
pub mod hub;
pub mod outbox;
pub mod protocol;
pub mod session;
pub mod telnet;

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use threadpool::ThreadPool;

use crate::auth::Hasher;
use crate::error::Result;
use crate::store::users::Purged;
use crate::store::Store;
use hub::{ConnId, Event, Hub, HubSender, OnlineUser, Stats};
use protocol::{error, notice};

/// How the server behaves; `besedka serve`'s options.
#[derive(Debug, Clone)]
pub struct Config {
    /// Connections served at once; more are told the server is full.
    pub max_clients: usize,
    /// Messages replayed at login.
    pub history: u32,
    /// Days a session token stays valid.
    pub token_ttl_days: u32,
    /// Longest input line in bytes.
    pub max_line: usize,
    /// Offer telnet binary mode at connect (off for raw-socket deployments).
    pub telnet: bool,
    /// Unsent bytes a client may have queued before it is cut off as not reading.
    pub max_backlog: usize,
    /// Time a connection has to log in.
    pub login_timeout: Duration,
    /// Lines per second a logged-in connection may send, on average; bursts of twice that
    /// pass at once. Faster input is not lost, just read more slowly.
    pub max_rate: u32,
}

/// At shutdown, how long clients get to finish sending what they sent before the goodbye
/// (they see our FIN and close); then every connection is cut. Keeps shutdown under 2 s.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// A worker's stack. Sessions keep little on the stack (argon2's memory is on the heap), so
/// a thousand workers cost a thousand small stacks, not a thousand default 2 MiB ones.
const WORKER_STACK: usize = 256 * 1024;

/// What every session shares.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub hasher: Hasher,
    pub hub: HubSender,
    pub stats: Arc<Stats>,
    /// Every open connection (a clone of its socket), so shutdown can close them all.
    conns: Mutex<HashMap<ConnId, TcpStream>>,
    /// Connections being served; compared with `max_clients` at accept.
    active: AtomicUsize,
}

/// The pause gate the accept thread passes before serving a connection. While it is shut,
/// new connections wait in the kernel's queue (or, if one was accepted already, in the accept
/// thread) and get no byte at all; on resume they are served in arrival order.
#[derive(Default)]
struct Gate {
    /// (paused, stopping)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    /// Waits while paused; false once stopping.
    fn pass(&self) -> bool {
        let mut st = lock(&self.state);
        while st.0 && !st.1 {
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        !st.1
    }

    /// Sets `paused`; returns whether it changed.
    fn set_paused(&self, paused: bool) -> bool {
        let mut st = lock(&self.state);
        let changed = st.0 != paused;
        st.0 = paused;
        self.changed.notify_all();
        changed
    }

    fn stop(&self) {
        lock(&self.state).1 = true;
        self.changed.notify_all();
    }

    fn paused(&self) -> bool {
        lock(&self.state).0
    }
}

/// A running server. Share it (`Arc`) between the console and the signal handler; dropping
/// it does not stop it: call [`Server::shutdown`].
pub struct Server {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    /// Pause state and the stop flag; the accept thread checks it after every accept.
    gate: Arc<Gate>,
    started: Instant,
    /// The threads to join at shutdown; taken by the first shutdown, so it runs once.
    threads: Mutex<Option<Threads>>,
}

struct Threads {
    accept: JoinHandle<()>,
    hub: JoinHandle<()>,
    pool: ThreadPool,
}

/// What the console's `status` shows.
#[derive(Debug, Clone)]
pub struct Status {
    pub addr: SocketAddr,
    pub paused: bool,
    pub uptime: Duration,
    /// Connections being served, logged in or not.
    pub connections: usize,
    pub online: Vec<OnlineUser>,
}

/// Starts serving on an already-bound listener (so tests can bind port 0).
pub fn start(listener: TcpListener, store: Store, config: Config) -> Result<Server> {
    let local_addr = listener.local_addr()?;
    let (tx, rx) = mpsc::sync_channel(hub::QUEUE);
    let stats = Arc::new(Stats::default());
    let hub = Hub::new(
        store.dedicated()?,
        rx,
        stats.clone(),
        config.history,
        config.max_backlog,
    );
    let hub = thread::Builder::new()
        .name("hub".into())
        .spawn(move || hub.run())?;

    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    let pool = threadpool::Builder::new()
        .num_threads(config.max_clients.max(1))
        .thread_name("session".into())
        .thread_stack_size(WORKER_STACK)
        .build();
    let shared = Arc::new(Shared {
        config,
        store,
        hasher: Hasher::new(cores),
        hub: tx,
        stats,
        conns: Mutex::new(HashMap::new()),
        active: AtomicUsize::new(0),
    });
    let gate = Arc::new(Gate::default());
    let accept = {
        let (shared, gate, pool) = (shared.clone(), gate.clone(), pool.clone());
        thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept_loop(listener, shared, gate, pool))?
    };
    Ok(Server {
        local_addr,
        shared,
        gate,
        started: Instant::now(),
        threads: Mutex::new(Some(Threads { accept, hub, pool })),
    })
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, gate: Arc<Gate>, pool: ThreadPool) {
    let mut next_id: ConnId = 1;
    loop {
        // Paused: stop taking connections, so new clients wait in the kernel's queue.
        if !gate.pass() {
            break;
        }
        let stream = listener.accept().map(|(s, _)| s);
        // A connection accepted just as a pause began also waits, unserved, for resume.
        if !gate.pass() {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning on the error.
                log::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let addr = match stream.peer_addr() {
            Ok(a) => a,
            Err(_) => continue, // already gone
        };
        let max = shared.config.max_clients;
        if shared.active.load(Ordering::SeqCst) >= max {
            log::warn!("{addr}: refused, server full ({max} clients)");
            refuse(
                stream,
                &error(&format!("Server is full ({max} clients). Try again later.")),
            );
            continue;
        }
        let _ = stream.set_nodelay(true);
        let conn = next_id;
        next_id += 1;
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.conns).insert(conn, clone);
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        log::info!("{addr}: connected");
        let shared = shared.clone();
        pool.execute(move || {
            // Runs when the session ends, a panic included.
            struct Done<'a>(&'a Shared, ConnId);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    lock(&self.0.conns).remove(&self.1);
                    self.0.active.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let _done = Done(&shared, conn);
            session::run(&shared, conn, stream, addr);
        });
    }
}

/// Tells a client why it is not served, without ever blocking the accept thread.
fn refuse(mut stream: TcpStream, text: &str) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(text.as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

/// Locks a mutex, carrying on if a panicking thread poisoned it: the data it guards (maps
/// of sockets) stays consistent at every step.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Server {
    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The database the server works on.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Stops serving new connections; false if already paused.
    pub fn pause(&self) -> bool {
        let changed = self.gate.set_paused(true);
        if changed {
            log::info!("paused: new connections wait");
        }
        changed
    }

    /// Serves new connections again; false if not paused.
    pub fn resume(&self) -> bool {
        let changed = self.gate.set_paused(false);
        if changed {
            log::info!("resumed");
        }
        changed
    }

    /// Asks the hub and waits for its answer (bounded: the hub answers between batches).
    fn ask<T>(&self, make: impl FnOnce(mpsc::Sender<T>) -> Event) -> Option<T> {
        let (tx, rx) = mpsc::channel();
        self.shared.hub.send(make(tx)).ok()?;
        rx.recv_timeout(Duration::from_secs(10)).ok()
    }

    /// The console's `status`.
    pub fn status(&self) -> Status {
        Status {
            addr: self.local_addr,
            paused: self.gate.paused(),
            uptime: self.started.elapsed(),
            connections: self.shared.active.load(Ordering::SeqCst),
            online: self
                .ask(|reply| Event::Snapshot { reply })
                .unwrap_or_default(),
        }
    }

    /// Disconnects every session of `name`; returns how many.
    pub fn kick(&self, name: &str) -> usize {
        self.ask(|reply| Event::Kick {
            name: name.to_string(),
            reply,
        })
        .unwrap_or(0)
    }

    /// `* [server] TEXT` to everyone logged in.
    pub fn announce(&self, text: &str) {
        let _ = self.shared.hub.send(Event::Announce {
            text: text.to_string(),
        });
    }

    /// Deletes every user and token and disconnects their sessions.
    pub fn purge_auth(&self) -> Result<Purged> {
        self.ask(|reply| Event::PurgeAuth { reply })
            .unwrap_or_else(|| Err(std::io::Error::other("the server is stopping").into()))
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
        // Wake the accept thread blocked in accept().
        let mut wake = self.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() {
                [127, 0, 0, 1].into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let _ = t.accept.join();
        // Logged-in clients: the hub says goodbye and closes their sockets.
        self.shared.hasher.stop();
        let _ = self.ask(|done| Event::Shutdown { done });
        // Connections still logging in: the hub never knew them. (Sockets the hub finished
        // already refuse this send.)
        let bye = notice("Server is shutting down. Bye.");
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
        for sock in lock(&self.shared.conns).values() {
            let _ = sock.shutdown(Shutdown::Both);
        }
        // Every session returns; what they read is in the hub's queue, committed at Stop.
        t.pool.join();
        let _ = self.shared.hub.send(Event::Stop);
        let _ = t.hub.join();
        log::info!("server stopped");
    }
}
