//! The socket driver: every bench connection on this one thread, non-blocking, woken by
//! `polling` (epoll on Linux). A thousand clients are a thousand sockets, not a thousand
//! threads, so the bench's own scheduling stays out of the latencies it measures.
//!
//! Sockets are registered level-triggered, so a socket with more unread data than one turn
//! takes is simply reported again, and nothing is re-armed per event (a syscall per
//! delivery otherwise, as much as the read itself). Write interest is on only while a client
//! has output the kernel has not taken: a sender never writes into a full socket, it waits
//! until the socket is writable.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use polling::{Event, Events, PollMode, Poller};
use socket2::{Domain, Socket, Type};

use super::client::{Change, Client, Ctx, Framing, Login, Phase};
use super::stats::Tally;

/// Connections that log in at once may take this long without one more finishing.
const LOGIN_STALL: Duration = Duration::from_secs(30);
/// How often the progress bar and the caller's sampling run.
pub(super) const TICK: Duration = Duration::from_millis(100);

/// Who a connection logs in as.
pub struct Plan {
    pub name: String,
    pub framing: Framing,
    pub login: Login,
    /// The room it must be in before the message phase (`/join` after login if not there).
    pub room: String,
}

pub struct Driver {
    poller: Poller,
    events: Events,
    pub clients: Vec<Client>,
    /// Whether each client's socket is in the poller (it must leave before it is closed).
    armed: Vec<bool>,
    /// Whether each registration includes write interest now.
    writing: Vec<bool>,
    /// The server's nodes: client k connects to `addrs[k % len]`.
    addrs: Vec<SocketAddr>,
    /// The bench clock: every send time and receive time is read from it.
    clock: Instant,
    buf: Vec<u8>,
    password: String,
    pub tally: Tally,
    /// Set by SIGINT or SIGTERM: the bench stops at the next wait and cleans up (the
    /// temporary server and its directory) instead of dying where it stands.
    interrupted: Arc<AtomicBool>,
}

impl Driver {
    pub fn new(
        addrs: Vec<SocketAddr>,
        clock: Instant,
        password: String,
        run: u32,
        interrupted: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        Ok(Driver {
            poller: Poller::new()?,
            events: Events::new(),
            clients: Vec::new(),
            armed: Vec::new(),
            writing: Vec::new(),
            addrs,
            clock,
            buf: vec![0; 64 * 1024],
            password,
            tally: Tally::new(run),
            interrupted,
        })
    }

    pub(super) fn now_ns(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Starts a non-blocking connect for one more client.
    fn open(&mut self, plan: Plan) -> Result<(), String> {
        let addr = self.addrs[self.clients.len() % self.addrs.len()];
        let fail = |e: io::Error| format!("{}: cannot connect to {addr}: {e}", plan.name);
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(fail)?;
        sock.set_nonblocking(true).map_err(fail)?;
        sock.set_nodelay(true).map_err(fail)?;
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(fail(e)),
        }
        let stream: TcpStream = sock.into();
        let key = self.clients.len();
        // SAFETY: the socket is deleted from the poller before it is closed: when its client
        // closes, or when the driver is dropped.
        unsafe {
            self.poller
                .add_with_mode(&stream, Event::all(key), PollMode::Level)
        }
        .map_err(fail)?;
        self.clients.push(Client::new(
            key,
            plan.name,
            stream,
            plan.framing,
            plan.login,
            plan.room,
        ));
        self.armed.push(true);
        self.writing.push(true);
        Ok(())
    }

    /// Turns a client's write interest on or off as its output needs, or takes a closed
    /// client's socket out of the poller.
    pub(super) fn rearm(&mut self, key: usize) -> Change {
        let c = &mut self.clients[key];
        if !c.is_open() {
            if std::mem::take(&mut self.armed[key]) {
                let _ = self.poller.delete(&c.sock);
            }
            return Change::Closed;
        }
        let write = c.wants_write();
        if write == self.writing[key] {
            return Change::None;
        }
        self.writing[key] = write;
        let interest = Event::new(key, true, write);
        match self
            .poller
            .modify_with_mode(&c.sock, interest, PollMode::Level)
        {
            Ok(()) => Change::None,
            Err(e) => {
                c.close(format!("cannot watch the socket: {e}"));
                self.rearm(key)
            }
        }
    }

    /// Handles one readiness event.
    fn handle(&mut self, ev: Event) -> Change {
        let now_ns = self.now_ns();
        let key = ev.key;
        let Some(c) = self.clients.get_mut(key) else {
            return Change::None;
        };
        if !c.is_open() {
            return Change::None;
        }
        let mut change = Change::None;
        if c.phase == Phase::Connecting {
            change = c.connected();
        }
        if c.is_open() && ev.writable && c.pending() {
            if let Err(e) = c.flush() {
                change = c.close(format!("write failed: {e}"));
            }
        }
        if c.is_open() && (ev.readable || c.phase == Phase::LoggingIn) {
            let mut ctx = Ctx {
                password: &self.password,
                now_ns,
                tally: &mut self.tally,
            };
            match c.read(&mut self.buf, &mut ctx) {
                Change::None => {}
                other => change = other,
            }
        }
        match self.rearm(key) {
            Change::Closed => Change::Closed,
            _ => change,
        }
    }

    /// Waits up to `timeout` and handles what is ready; calls `on` for each change.
    pub(super) fn poll(
        &mut self,
        timeout: Duration,
        on: &mut dyn FnMut(usize, Change),
    ) -> Result<usize, String> {
        if self.interrupted.load(Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let n = match self.poller.wait(&mut events, Some(timeout)) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(format!("cannot wait for the sockets: {e}")),
        };
        for ev in events.iter() {
            match self.handle(ev) {
                Change::None => {}
                change => on(ev.key, change),
            }
        }
        self.events = events;
        Ok(n)
    }

    /// Connects and logs in every planned client, `batch` at a time, until all have their
    /// `* In #room` line (IRC: the `366` of its channel). Any failure ends the bench: the numbers would be meaningless.
    pub fn connect(
        &mut self,
        plans: Vec<Plan>,
        batch: usize,
        bar: &ProgressBar,
    ) -> Result<(), String> {
        let total = plans.len();
        let mut plans = plans.into_iter();
        let (mut in_flight, mut ready) = (0usize, 0usize);
        let mut progress = Instant::now();
        let mut failed = None;
        while ready < total {
            while in_flight < batch.max(1) {
                let Some(plan) = plans.next() else { break };
                self.open(plan)?;
                in_flight += 1;
            }
            self.poll(TICK, &mut |key, change| match change {
                Change::Ready => {
                    ready += 1;
                    in_flight -= 1;
                    progress = Instant::now();
                    bar.inc(1);
                }
                Change::Closed => {
                    failed.get_or_insert(key);
                }
                Change::None => {}
            })?;
            if let Some(key) = failed {
                return Err(format!("{}: {}", self.clients[key].name, self.reason(key)));
            }
            if progress.elapsed() > LOGIN_STALL {
                return Err(format!(
                    "{ready} of {total} clients logged in, then none more for {} s",
                    LOGIN_STALL.as_secs()
                ));
            }
        }
        Ok(())
    }

    pub(super) fn reason(&self, key: usize) -> String {
        match &self.clients[key].phase {
            Phase::Closed(why) => why.clone(),
            _ => "still open".into(),
        }
    }

    /// Reads until nothing has arrived for `quiet` (the join notices of the login storm),
    /// `max` at most, so the message phase starts on quiet sockets.
    pub fn settle(&mut self, quiet: Duration, max: Duration) -> Result<(), String> {
        let start = Instant::now();
        let mut last = Instant::now();
        let mut failed = None;
        while last.elapsed() < quiet && start.elapsed() < max {
            let n = self.poll(Duration::from_millis(20), &mut |key, change| {
                if change == Change::Closed {
                    failed.get_or_insert(key);
                }
            })?;
            if let Some(key) = failed {
                return Err(format!("{}: {}", self.clients[key].name, self.reason(key)));
            }
            if n > 0 {
                last = Instant::now();
            }
        }
        Ok(())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        for (c, armed) in self.clients.iter().zip(&self.armed) {
            if *armed {
                let _ = self.poller.delete(&c.sock);
            }
        }
    }
}
