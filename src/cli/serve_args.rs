//! `besedka serve`'s options (every one also a key of the `--config` file), and the server
//! configuration they make.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{parse_duration, parse_net, parse_seconds};
use besedka::server::limits::Rules;
use besedka::server::{Config, Keepalive};
use besedka::store::retention::Policy;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Read settings from this TOML file: each key an option below without its `--`
    /// (`max-clients = 100`); flags and environment variables win over it. SIGHUP or the
    /// console's `reload` rereads it. See contrib/besedka.toml.
    #[arg(long, env = "BESEDKA_CONFIG")]
    pub config: Option<PathBuf>,
    /// The ways in: each one's options (`--addr`, `--tls-addr`, `--ssh-addr`, `--web-addr`,
    /// …), declared by the way itself.
    #[command(flatten)]
    pub ways: besedka::server::transport::Options,
    /// Most users logged in at once; more are told the server is full.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_clients: u32,
    /// Most connections not logged in yet, at once (default: a quarter of --max-clients, at
    /// least 16). When they are all taken, a newcomer still gets in: the oldest of the address
    /// holding the most is dropped.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_pending: Option<u32>,
    /// Most connections not logged in yet, at once, from one address (IPv6: one /64).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pending_per_ip: u32,
    /// A proxy or load balancer (address or CIDR range, repeatable) whose PROXY protocol
    /// header, and on the web listener X-Forwarded-For (not Forwarded, which browsers can
    /// set and proxies pass on), says the client's real address. A PROXY header from
    /// anywhere else closes the connection.
    #[arg(long, value_parser = parse_net)]
    pub trusted_proxy: Vec<ipnet::IpNet>,
    /// Messages replayed to a user at login.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=500))]
    pub history: u32,
    /// Days a session token stays valid.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub token_ttl_days: u32,
    /// Longest input line, in bytes; longer lines are refused.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(64..=1_048_576))]
    pub max_line: u32,
    /// Unsent bytes a client may fall behind by before it is disconnected.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u32).range(4096..))]
    pub max_backlog: u32,
    /// A client with unsent lines that takes none of them for this long is disconnected.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub send_timeout: Duration,
    /// When a message is on the disk: full (before anyone sees it; survives power loss) or
    /// normal (survives a crash of the server, not of the machine; faster).
    #[arg(long, default_value = "full")]
    pub sync: besedka::store::Durability,
    /// How long an idle session thread waits for a new client before it ends.
    #[arg(long, default_value = "10s", value_parser = parse_duration, hide = true)]
    pub worker_idle: Duration,
    /// Seconds a new connection has to log in (a duration such as 2m works too).
    #[arg(long, default_value_t = 120, value_parser = parse_seconds)]
    pub login_timeout: u32,
    /// Lines per second one user may send, all their sessions together (bursts of twice
    /// that pass at once); also paces each connection before login.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rate: u32,
    /// Connections at once from one address (IPv6: one /64).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_per_ip: u32,
    /// New connections a minute from one address.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_rate: u32,
    /// An address or CIDR range exempt from the per-address limits (repeatable): a bouncer,
    /// a web gateway.
    #[arg(long, value_parser = parse_net)]
    pub allow_ip: Vec<ipnet::IpNet>,
    /// Hold loopback clients (127.0.0.0/8, ::1) to the per-address limits too. Without it
    /// they are exempt, so a class on one machine (everyone on `telnet 127.0.0.1`) works; the
    /// server ends the exemption, with a warning, when it sees a proxy on this machine that is
    /// not a --trusted-proxy.
    #[arg(long)]
    pub limit_loopback: bool,
    /// Failed logins for one account within --failed-login-window before it is locked.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_failed_logins: u32,
    /// Failed logins (wrong passwords, unknown names, bad tokens) from one address within
    /// --failed-login-window before it is locked.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_failed_logins_per_ip: u32,
    /// The window failed logins are counted in (and so the longest lock).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub failed_login_window: Duration,
    /// New accounts an hour from one address.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub register_rate: u32,
    /// Turn registration off: only `besedka useradd` creates accounts.
    #[arg(long)]
    pub no_register: bool,
    /// Sessions at once for one user.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions_per_user: u32,
    /// A logged-in connection silent this long is disconnected (e.g. 1h); off by default.
    #[arg(long, value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// TCP keepalive: silence before the first probe.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub keepalive_idle: Duration,
    /// TCP keepalive: time between probes.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub keepalive_interval: Duration,
    /// TCP keepalive: unanswered probes before the connection is dropped.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=127))]
    pub keepalive_probes: u32,
    /// Delete messages older than this many days (off by default: keep everything).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub retain_days: Option<u32>,
    /// Keep only the newest this many messages (off by default). The last --history public
    /// messages are always kept.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub retain_messages: Option<u64>,
    /// Don't offer telnet options at connect (for raw-socket deployments).
    #[arg(long)]
    pub no_telnet: bool,
    /// Also append log records to this file.
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Where the server keeps what it makes for itself between runs (the SSH host key).
    /// Default: the database file's directory (for a PostgreSQL URL, the working directory),
    /// never wherever `serve` happens to be started.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Don't read console commands from standard input.
    #[arg(long)]
    pub no_console: bool,
    /// Open the database even if other users of this machine can read or write it (its
    /// file, WAL or shared-memory file); without this, serve refuses to.
    #[arg(
        long,
        env = "BESEDKA_ALLOW_SHARED_DB",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub allow_shared_db: bool,
}

impl ServeArgs {
    /// The server's configuration from these options.
    pub fn config(&self) -> Config {
        let (public_host, public_port) = self.ways.ssh.public_host();
        Config {
            max_clients: self.max_clients as usize,
            max_pending: self
                .max_pending
                .map_or((self.max_clients as usize / 4).max(16), |n| n as usize),
            max_pending_per_ip: self.max_pending_per_ip as usize,
            trusted_proxies: self.trusted_proxy.clone(),
            history: self.history,
            token_ttl_days: self.token_ttl_days,
            max_line: self.max_line as usize,
            telnet: !self.no_telnet,
            max_backlog: self.max_backlog as usize,
            send_timeout: self.send_timeout,
            worker_idle: self.worker_idle,
            login_timeout: Duration::from_secs(self.login_timeout.into()),
            limits: Rules {
                max_per_ip: self.max_per_ip as usize,
                connect_rate: self.connect_rate,
                max_failures_per_user: self.max_failed_logins,
                max_failures_per_ip: self.max_failed_logins_per_ip,
                window: self.failed_login_window,
                register_rate: self.register_rate,
                max_sessions_per_user: self.max_sessions_per_user as usize,
                max_rate: self.max_rate,
                allow: self.allow_ip.clone(),
                limit_loopback: self.limit_loopback,
            },
            no_register: self.no_register,
            keepalive: Keepalive {
                idle: self.keepalive_idle,
                interval: self.keepalive_interval,
                probes: self.keepalive_probes,
            },
            idle_timeout: self.idle_timeout,
            retention: Policy {
                days: self.retain_days,
                messages: self.retain_messages,
                keep_public: self.history,
            },
            public_host,
            public_port,
            faults: std::env::var_os("BESEDKA_FAULTS").is_some_and(|v| v == "1"),
        }
    }
}
