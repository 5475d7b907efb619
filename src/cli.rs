//! The command line: one function per subcommand.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::server::{self, Config};
use crate::store::Store;

#[derive(Parser, Debug)]
#[command(
    name = "besedka",
    version,
    about = "A chat server for telnet and nc clients, kept in one SQLite file."
)]
pub struct Cli {
    /// The SQLite database file (created if missing).
    #[arg(long, global = true, env = "BESEDKA_DB", default_value = "besedka.db")]
    pub db: PathBuf,
    /// Log level on standard error: error, warn, info, debug, trace or off.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: log::LevelFilter,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the chat server.
    Serve(ServeArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7777")]
    pub addr: String,
    /// Most clients served at once; more are told the server is full.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_clients: u32,
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
    /// Seconds a new connection has to log in.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_timeout: u32,
    /// Don't offer telnet options at connect (for raw-socket deployments).
    #[arg(long)]
    pub no_telnet: bool,
}

/// Runs the parsed command line; the error is the one-line message for exit code 1.
pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => serve(&cli.db, args),
    }
}

fn serve(db: &std::path::Path, args: ServeArgs) -> Result<(), String> {
    // Each client holds a socket; the default soft limit (often 1024) would cap the server
    // below --max-clients.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        log::warn!("cannot raise the open-files limit: {e}");
    }
    let store =
        Store::open(db).map_err(|e| format!("cannot open database {}: {e}", db.display()))?;
    let listener = TcpListener::bind(&args.addr)
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let config = Config {
        max_clients: args.max_clients as usize,
        history: args.history,
        token_ttl_days: args.token_ttl_days,
        max_line: args.max_line as usize,
        telnet: !args.no_telnet,
        max_backlog: args.max_backlog as usize,
        login_timeout: Duration::from_secs(args.login_timeout.into()),
    };
    let mut server = server::start(listener, store, config).map_err(|e| e.to_string())?;
    let addr = server.local_addr();
    println!("besedka listening on {addr} (db: {})", db.display());
    let _ = std::io::stdout().flush();
    log::info!("listening on {addr}, database {}", db.display());
    server.wait();
    server.shutdown();
    Ok(())
}
