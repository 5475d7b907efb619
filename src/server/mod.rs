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
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use threadpool::ThreadPool;

use crate::auth::Hasher;
use crate::error::Result;
use crate::store::Store;
use hub::{ConnId, Event, Hub, HubSender, Stats};
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_clients: 1024,
            history: 20,
            token_ttl_days: 30,
            max_line: 2048,
            telnet: true,
            max_backlog: 1 << 20,
            login_timeout: Duration::from_secs(120),
        }
    }
}

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

/// A running server. Dropping it does not stop it: call [`Server::shutdown`].
pub struct Server {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    /// Set once shutdown has begun; the accept thread checks it after every accept.
    stopping: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    hub: Option<JoinHandle<()>>,
    pool: ThreadPool,
}

/// Starts serving on an already-bound listener (so tests can bind port 0).
pub fn start(listener: TcpListener, store: Store, config: Config) -> Result<Server> {
    let local_addr = listener.local_addr()?;
    let (tx, rx) = mpsc::channel();
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
    let stopping = Arc::new(AtomicBool::new(false));
    let accept = {
        let (shared, stopping, pool) = (shared.clone(), stopping.clone(), pool.clone());
        thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept_loop(listener, shared, stopping, pool))?
    };
    Ok(Server {
        local_addr,
        shared,
        stopping,
        accept: Some(accept),
        hub: Some(hub),
        pool,
    })
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    stopping: Arc<AtomicBool>,
    pool: ThreadPool,
) {
    let next_id = AtomicU64::new(1);
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
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
        let conn = next_id.fetch_add(1, Ordering::Relaxed);
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

    /// The state shared with sessions (for the console).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, says goodbye to every client, commits what is pending, closes every
    /// connection and joins every thread.
    pub fn shutdown(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
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
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let _ = self.shared.hub.send(Event::Shutdown);
        if let Some(t) = self.hub.take() {
            let _ = t.join();
        }
        // Connections still logging in: the hub never knew them.
        let bye = notice("Server is shutting down. Bye.");
        for sock in lock(&self.shared.conns).values() {
            let _ = socket2::SockRef::from(sock)
                .send_with_flags(bye.as_bytes(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
            let _ = sock.shutdown(Shutdown::Both);
        }
        self.pool.join();
        log::info!("server stopped");
    }

    /// Blocks until the accept thread ends (it only does at shutdown).
    pub fn wait(&mut self) {
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}
