//! `besedka bench`'s command line.

use std::path::PathBuf;

use clap::{ArgGroup, Args, ValueEnum};

/// What the bench clients speak.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// besedka's line protocol, as telnet and nc speak it (`/token`, `* In #room`).
    Line,
    /// IRC: register, join one channel, senders `PRIVMSG` it.
    Irc,
}

/// What kind of server is loaded (and, with --spawn, started).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// besedka: clients log in to their accounts (`/token`, or SASL over IRC).
    Besedka,
    /// ngircd (Debian's `ngircd`), IRC only, no accounts: clients register with NICK and USER.
    Ngircd,
    /// With --spawn: besedka's IRC listener and ngircd, runs alternating, medians side by
    /// side.
    Both,
}

#[derive(Args, Debug, Clone)]
#[command(group(ArgGroup::new("target").required(true).args(["addr", "spawn"])))]
pub struct BenchArgs {
    /// The server to load, HOST:PORT. Give it `--allow-ip` for this address and a high
    /// `--max-rate`, or the bench measures those limits instead. Several nodes of one
    /// community: HOST:PORT,HOST:PORT (the clients, senders included, alternate between them).
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT…]")]
    pub addr: Option<String>,
    /// Start a temporary server (this executable's `serve`, on a new database in a temporary
    /// directory), measure its CPU and memory, and stop it at the end.
    #[arg(long)]
    pub spawn: bool,
    /// Connections, each logged in as its own user bench1..benchN.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=1_000_000))]
    pub clients: u32,
    /// How many of the clients send.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub senders: u32,
    /// Lines each sender sends.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub messages: u32,
    /// Lines a second, all senders together; without it, flat out (bounded by --window).
    /// Flat out measures throughput, and its latencies are those of a full pipeline: for
    /// the latency at a given load, set a rate.
    #[arg(long, value_parser = positive)]
    pub rate: Option<f64>,
    /// Bytes per line sent, padding included (not the line end); at most the server's
    /// --max-line.
    #[arg(long, value_name = "BYTES", default_value_t = 60, value_parser = clap::value_parser!(u32).range(0..=1_048_576))]
    pub size: u32,
    /// Lines sent but not yet delivered to everyone, at most: keeps a flat-out run from
    /// filling the server's per-client backlogs faster than the bench reads them.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub window: u64,
    /// With --addr: a file of `name token` lines. Read to log in with /token; written with
    /// the tokens of the accounts registered or logged in by password.
    #[arg(long, value_name = "FILE", conflicts_with = "spawn")]
    pub tokens: Option<PathBuf>,
    /// Password of the bench accounts (registered with it when they don't exist).
    #[arg(long, default_value = "bench-password-123")]
    pub password: String,
    /// With --addr: the server's process id, to measure its CPU and memory in /proc.
    #[arg(long, conflicts_with = "spawn")]
    pub pid: Option<u32>,
    /// With --spawn: one more argument for `serve` (repeatable), e.g. --serve-arg=--no-telnet.
    /// A flag given here replaces the bench's own choice of it.
    #[arg(
        long = "serve-arg",
        value_name = "ARG",
        requires = "spawn",
        allow_hyphen_values = true
    )]
    pub serve_args: Vec<String>,
    /// With --spawn: the server executable to start (default: this one), to compare two
    /// builds under the same load from the same bench.
    #[arg(long, value_name = "PATH", requires = "spawn")]
    pub server_bin: Option<std::path::PathBuf>,
    /// Connections being set up (connecting or logging in) at once. Default: 200, or 10
    /// when ngircd is loaded (--server ngircd or both, for both servers): ngircd listens with
    /// a backlog of 10, and a storm of connects beyond it loses some.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_batch: Option<u32>,
    /// The clients' names are PREFIX1..PREFIXN: two bench processes against one server need
    /// different prefixes (and tokens files).
    #[arg(long, default_value = "bench", value_parser = prefix)]
    pub prefix: String,
    /// Rooms the clients are spread over. 1: everyone in #lobby. K > 1: the senders and
    /// every Kth other client in #lobby (the busy room), the others in K-1 quiet rooms
    /// (#PREFIXroom2..) that hear none of it; deliveries count the busy room's readers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rooms: u32,
    /// The clients' protocol. `irc` drives besedka's IRC listener (with --spawn, started
    /// with `--irc-addr`; with --addr, give the IRC address) or ngircd. Default: `line`, or
    /// `irc` with --server ngircd or both.
    #[arg(long, value_enum)]
    pub proto: Option<Proto>,
    /// The server loaded: besedka, or ngircd (IRC, no accounts) to compare with on the same
    /// protocol. With --spawn, `ngircd` starts one from a temporary configuration (flood
    /// penalties off), and `both` runs besedka's IRC listener and ngircd in turn, --runs
    /// times each, and prints the medians side by side.
    #[arg(long, value_enum, default_value = "besedka")]
    pub server: Server,
    /// Runs of each server, one after another (alternating with --server both); more than
    /// one prints the median of each figure.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The protocol the clients speak: as asked, or IRC where the server speaks nothing else.
fn proto(args: &BenchArgs) -> Result<Proto, String> {
    match (args.server, args.proto) {
        (Server::Besedka, p) => Ok(p.unwrap_or(Proto::Line)),
        (_, Some(Proto::Line)) => {
            Err("ngircd speaks IRC only: leave out --proto or give --proto irc".into())
        }
        (_, _) => Ok(Proto::Irc),
    }
}

impl BenchArgs {
    /// Refuses the choices that cannot go together; returns the clients' protocol.
    pub fn check(&self) -> Result<Proto, String> {
        let args = self;
        if args.senders > args.clients {
            return Err(format!(
                "--senders {} is more than --clients {}",
                args.senders, args.clients
            ));
        }
        if u64::from(args.senders) * u64::from(args.clients) > 100_000_000 {
            return Err(
                "--senders x --clients is over 100 million: too many sequences to track".into(),
            );
        }
        let proto = proto(args)?;
        if args.server == Server::Besedka {
            return Ok(proto);
        }
        if args.server == Server::Both && !args.spawn {
            return Err("--server both starts both servers: add --spawn".into());
        }
        if args.server == Server::Ngircd
            && (!args.serve_args.is_empty() || args.server_bin.is_some())
        {
            return Err("--serve-arg and --server-bin are for a besedka server, not ngircd".into());
        }
        if args.tokens.is_some() {
            return Err("--tokens keeps besedka's tokens; ngircd has no accounts".into());
        }
        // The line ngircd relays is `:nick!~user@host PRIVMSG #lobby :TEXT`, 512 bytes at most.
        if args.size > MAX_IRC_TEXT {
            return Err(format!(
            "--size {}: ngircd takes IRC lines of 512 bytes, so a bench line's text is at most \
             {MAX_IRC_TEXT} bytes here",
            args.size
        ));
        }
        Ok(proto)
    }

    /// `--connect-batch`, or its default for the servers loaded.
    pub fn connect_batch(&self) -> usize {
        let default = match self.server {
            Server::Besedka => 200,
            _ => 10,
        };
        self.connect_batch.unwrap_or(default) as usize
    }
}

/// The longest text of a bench line to ngircd (`--size`).
const MAX_IRC_TEXT: u32 = 400;

fn prefix(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.len() <= 20 && s.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?}: a prefix is 1-20 ASCII letters"))
    }
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}
