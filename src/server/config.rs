//! How the server behaves: `besedka serve`'s options, as the server takes them.

use std::time::Duration;

use super::limits::Rules;
use crate::store::retention::Policy;

/// TCP keepalive on every accepted socket, so a peer that vanished (cable pulled, NAT entry
/// gone) is noticed and its worker freed after `idle + probes × interval`.
#[derive(Debug, Clone, Copy)]
pub struct Keepalive {
    /// Silence before the first probe.
    pub idle: Duration,
    /// Between probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped.
    pub probes: u32,
}

/// How the server behaves; `besedka serve`'s options.
#[derive(Debug, Clone)]
pub struct Config {
    /// Logged-in sessions at once; more are told the server is full.
    pub max_clients: usize,
    /// Connections not logged in yet, at once (server-wide); past it the oldest pending
    /// connection of the address holding the most is dropped for a newcomer.
    pub max_pending: usize,
    /// Connections not logged in yet, at once, from one address.
    pub max_pending_per_ip: usize,
    /// Proxies and load balancers whose PROXY protocol header (and, on the web listener,
    /// `X-Forwarded-For`; `Forwarded` is not read) says the client's real address.
    pub trusted_proxies: Vec<ipnet::IpNet>,
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
    /// A client with unsent bytes that takes none for this long is cut off as not reading.
    pub send_timeout: Duration,
    /// How long an idle worker thread waits for a new client before it ends.
    pub worker_idle: Duration,
    /// Time a connection has to log in, from connect to the last byte of the login.
    pub login_timeout: Duration,
    /// Per-address and per-user limits (`max_rate` also paces each connection before login).
    pub limits: Rules,
    /// Registration is off: only the operator creates accounts (`besedka useradd`).
    pub no_register: bool,
    pub keepalive: Keepalive,
    /// A logged-in connection silent this long is disconnected; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// What old messages the janitor deletes.
    pub retention: Policy,
    /// The host users reach the server by (`--public-host`, or the `--ssh-addr` host), for
    /// the SSH command `/key add` shows; `None`: not known (it shows `HOST`).
    pub public_host: Option<String>,
    /// The port users reach the SSH listener by, when `--public-host` names one (a proxy or
    /// port forward in front); `None`: the listener's own.
    pub public_port: Option<u16>,
    /// Enables the console's `fault` command, which breaks the server on purpose (tests only).
    pub faults: bool,
}

impl Config {
    /// The door's budgets ([`super::door`]).
    pub fn budget(&self) -> super::door::Budget {
        super::door::Budget {
            max_clients: self.max_clients,
            max_pending: self.max_pending,
            max_pending_per_ip: self.max_pending_per_ip,
            login_timeout: self.login_timeout,
        }
    }

    /// Whether `ip` is a trusted proxy (`--trusted-proxy`).
    pub fn trusted(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// The configuration in force, replaced whole by a reload (`SIGHUP`, the console's
/// `reload`). Readers take the current one with [`Settings::get`] and keep it for what they
/// are doing (a connection's limits stay consistent within one check); what a reload changes
/// applies from the next read: new connections, new logins, the next check.
pub struct Settings {
    now: std::sync::RwLock<std::sync::Arc<Config>>,
}

impl Settings {
    pub fn new(config: Config) -> Settings {
        Settings {
            now: std::sync::RwLock::new(std::sync::Arc::new(config)),
        }
    }

    /// The configuration in force.
    pub fn get(&self) -> std::sync::Arc<Config> {
        // A writer never panics while holding the lock (it swaps an Arc), so a poisoned
        // lock still holds a whole configuration.
        match self.now.read() {
            Ok(now) => now.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `config` in force; returns the one it replaces.
    pub fn replace(&self, config: Config) -> std::sync::Arc<Config> {
        let new = std::sync::Arc::new(config);
        match self.now.write() {
            Ok(mut now) => std::mem::replace(&mut *now, new),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), new),
        }
    }
}
