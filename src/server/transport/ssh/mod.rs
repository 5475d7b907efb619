//! SSH (`--ssh-addr`): `ssh -p 2222 HOST` reaches the chat, encrypted, with the line editing
//! a raw-mode terminal needs done on the server's side ([`editor`]).
//!
//! `russh` terminates SSH. It needs tokio, which runs here only: one thread, `ssh`, with a
//! single-threaded runtime. The accept thread admits a connection as for every transport
//! (bans, per-address limits, `--max-clients`) and hands the socket to that runtime. When the
//! client asks for a shell, the connection gets a session thread from the worker pool, on
//! one end of a Unix socket pair, and a task on the runtime relays between the SSH channel
//! and the other end through the editor. So the session and the hub are the same as for
//! telnet, and the hub's non-blocking send and `--max-backlog` rule hold unchanged (a client
//! that stops reading stops the relay, which stops reading the pair).
//!
//! Authentication:
//! - as a name that is not an account (`ssh HOST` sends the local user name): accepted at
//!   once, then the same dialogue as telnet, inside the channel, starting at that name (an
//!   offer to register it; see `connection::Known::Name`);
//! - as an account's name: a key the account added (`/key add`) logs in at once; without one
//!   (or with another), OpenSSH goes on to keyboard-interactive, which lets it in to the
//!   dialogue at the account's password; a client that asks for SSH password authentication
//!   (`-o PreferredAuthentications=password`) gets it, checked against the same argon2 hash
//!   and counted by the same password lock as a telnet login.

mod client;
pub mod editor;
mod history;
mod host_key;
mod relay;

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::{MethodKind, MethodSet};

use super::{Accepted, Way};
use crate::server::admit::Admitted;
use crate::server::pool::Pool;
use crate::server::shared::{lock, Shared};
use crate::server::socket::ConnId;
use crate::server::socket::Via;
use client::Client;
pub use host_key::host_key;

/// Threads SSH authentication may block at once (the rest wait their turn).
const BLOCKING_THREADS: usize = 4;

/// The host key's file name in the state directory, when `--ssh-host-key` is not given.
pub const HOST_KEY_FILE: &str = "besedka_ssh_host_ed25519_key";

/// Its options.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct Options {
    /// Also listen for SSH connections here, e.g. 0.0.0.0:2222.
    #[arg(long)]
    pub ssh_addr: Option<String>,
    /// The SSH host key (OpenSSH format); made (ed25519) and stored there if missing.
    /// Default: besedka_ssh_host_ed25519_key in --state-dir.
    #[arg(long)]
    pub ssh_host_key: Option<std::path::PathBuf>,
    /// Where users reach the SSH listener, for the command /key add and /help show (ssh -p
    /// 2222 alice@HOST): HOST, or HOST:PORT when a proxy or port forward puts it on another
    /// port (chat.example.org:22). Default: the --ssh-addr host and the listener's port
    /// (with 0.0.0.0 or ::, which no client connects to, they show HOST).
    #[arg(long, value_parser = parse_public_host)]
    pub public_host: Option<String>,
}

/// `--public-host`: a DNS name or an IP address (what a client can type after `ssh
/// NAME@`), with or without `:PORT` (`[ADDRESS]:PORT` for IPv6).
fn parse_public_host(s: &str) -> Result<String, String> {
    match split_host(s) {
        Some((host, _)) if rustls_pki_types::ServerName::try_from(host).is_ok() => {
            Ok(s.to_string())
        }
        _ => Err(format!(
            "{s:?} is not a host name or an address, with or without :PORT (write e.g. \
             chat.example.org or chat.example.org:22)"
        )),
    }
}

/// `HOST`, `HOST:PORT`, `[V6]:PORT` or a bare IPv6 address: the host and the port if one is
/// given; `None` if the port is not one (or is 0).
fn split_host(s: &str) -> Option<(&str, Option<u16>)> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|&p| p != 0);
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            after => Some((host, Some(port(after.strip_prefix(':')?)?))),
        };
    }
    match s.split_once(':') {
        Some((host, p)) if !p.contains(':') => Some((host, Some(port(p)?))),
        _ => Some((s, None)), // no port, or an IPv6 address
    }
}

impl Options {
    /// The host for `ssh NAME@HOST`, and the port if it is not the listener's: from
    /// `--public-host`, else the `--ssh-addr` host if it names one (not 0.0.0.0 or ::, which
    /// no client can connect to).
    pub fn public_host(&self) -> (Option<String>, Option<u16>) {
        if let Some((host, port)) = self.public_host.as_deref().and_then(split_host) {
            return (Some(host.to_string()), port);
        }
        let Some((host, _port)) = self.ssh_addr.as_deref().and_then(|a| a.rsplit_once(':'))
        else {
            return (None, None);
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let unspecified = host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        let host = (!host.is_empty() && !unspecified).then(|| host.to_string());
        (host, None)
    }

    pub fn bind(
        &self,
        state: &std::path::Path,
        _all: &crate::server::transport::Options,
    ) -> Result<Option<crate::server::transport::Bound>, String> {
        let Some(addr) = &self.ssh_addr else {
            return Ok(None);
        };
        let path = self
            .ssh_host_key
            .clone()
            .unwrap_or_else(|| state.join(HOST_KEY_FILE));
        let key = host_key(&path)?;
        // Bound before the runtime starts: a port in use costs no thread.
        let l = crate::server::socket::listen(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let ssh = Ssh::start(key).map_err(|e| format!("cannot start SSH: {e}"))?;
        Ok(Some((l, Arc::new(ssh))))
    }
}

/// The SSH transport: its runtime thread and the server's key.
pub struct Ssh {
    config: Arc<russh::server::Config>,
    runtime: tokio::runtime::Handle,
    /// Stops the runtime thread (dropped or sent to), and the thread to join.
    stop: Mutex<Option<(tokio::sync::oneshot::Sender<()>, JoinHandle<()>)>>,
    via: Via,
}

impl Way for Ssh {
    fn via(&self) -> Via {
        self.via
    }

    fn keeps_stream(&self) -> bool {
        true
    }

    fn serve(&self, c: Accepted) {
        if let Some(stream) = c.stream {
            self.serve_stream(c.shared, stream, c.addr, c.conn, c.admitted, c.pool);
        }
    }

    fn stop(&self) {
        self.stop_runtime();
    }
}

impl Ssh {
    /// Starts the runtime thread.
    pub fn start(key: PrivateKey) -> io::Result<Ssh> {
        let config = russh::server::Config {
            keys: vec![key],
            methods: MethodSet::from(
                &[
                    MethodKind::None,
                    MethodKind::PublicKey,
                    MethodKind::KeyboardInteractive,
                    MethodKind::Password,
                ][..],
            ),
            // The chat has its own idle and login timeouts; SSH's would cut quiet readers.
            inactivity_timeout: None,
            auth_rejection_time: Duration::from_millis(500),
            auth_rejection_time_initial: Some(Duration::ZERO),
            nodelay: true,
            ..Default::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            // For the database lookups and argon2 checks of SSH authentication (argon2 itself
            // is bounded by the hasher's one thread per core); tokio's default is 512.
            .max_blocking_threads(BLOCKING_THREADS)
            .thread_name("ssh-auth")
            .build()?;
        let handle = runtime.handle().clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ssh".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
                // Dropping the runtime drops every connection's task: their sockets close.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Ssh {
            config: Arc::new(config),
            runtime: handle,
            stop: Mutex::new(Some((stop_tx, thread))),
            // The line editor speaks telnet to the session's end of the pair.
            via: Via::new("ssh", true),
        })
    }

    /// Serves an admitted connection on the runtime. Not inlined: the connection's future is
    /// built on the caller's stack before the runtime takes it, and inlined into the worker's
    /// job (a connection from a trusted proxy) it made that frame 1 KiB larger for every
    /// session, telnet's included, for as long as they last.
    #[inline(never)]
    fn serve_stream(
        &self,
        shared: Arc<Shared>,
        tcp: TcpStream,
        addr: SocketAddr,
        conn: ConnId,
        admitted: Admitted,
        pool: Pool,
    ) {
        let (config, via) = (self.config.clone(), self.via);
        self.runtime.spawn(async move {
            // The login deadline covers everything before the shell, as it covers a telnet
            // login: the version exchange, key exchange, authentication, the shell request.
            let left = shared
                .door
                .deadline(conn)
                .map_or(shared.config.get().login_timeout, |d| {
                    d.saturating_duration_since(std::time::Instant::now())
                });
            let deadline = tokio::time::Instant::now() + left;
            let Ok(tcp) = tcp
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpStream::from_std(tcp))
            else {
                return;
            };
            let shell = Arc::new(AtomicBool::new(false));
            let handler = Client {
                shared: shared.clone(),
                pool,
                addr,
                conn,
                admitted: Arc::new(admitted),
                user: None,
                asked: None,
                channel: None,
                shell: shell.clone(),
                via,
            };
            // russh runs the connection as a task of its own, which nothing outside can
            // abort, and which reads no request of ours (such as a disconnect) while a key
            // exchange is unfinished: a client that sent its version and nothing more held
            // it for ever. So the deadline is enforced below SSH: the accept thread
            // registered a second descriptor of the socket, and shutting the socket down
            // ends the task's reads and writes whatever state it is in. (That descriptor is
            // replaced by the session's end of its pair when the shell starts.)
            let watchdog = {
                let shell = shell.clone();
                tokio::spawn(async move {
                    tokio::time::sleep_until(deadline).await;
                    if !shell.load(Ordering::SeqCst) {
                        log::info!("{addr}: SSH connection ended: login timed out");
                        if let Some(sock) = lock(&shared.conns).get(&conn) {
                            let _ = sock.shutdown(std::net::Shutdown::Both);
                        }
                    }
                })
            };
            let running = match russh::server::run_stream(config, tcp, handler).await {
                Ok(running) => running,
                Err(e) => {
                    log::info!("{addr}: SSH connection ended: {e}");
                    watchdog.abort();
                    return;
                }
            };
            match running.await {
                Ok(()) => log::info!("{addr}: SSH connection ended"),
                Err(e) => log::info!("{addr}: SSH connection ended: {e}"),
            }
            watchdog.abort();
        });
    }

    /// Stops the runtime (every SSH connection still open is closed) and joins its thread.
    fn stop_runtime(&self) {
        if let Some((stop, thread)) = lock(&self.stop).take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(addr: Option<&str>, public: Option<&str>) -> Options {
        Options {
            ssh_addr: addr.map(str::to_string),
            ssh_host_key: None,
            public_host: public.map(str::to_string),
        }
    }

    #[test]
    fn the_public_host_is_named_or_taken_from_the_ssh_address() {
        let host = |addr, public| {
            let (host, port) = options(addr, public).public_host();
            (host.unwrap_or_else(|| "-".into()), port)
        };
        let named = |h: &str, p| (h.to_string(), p);
        assert_eq!(
            host(Some("0.0.0.0:2222"), Some("chat.example.org")),
            named("chat.example.org", None)
        );
        assert_eq!(
            host(Some("0.0.0.0:2222"), Some("chat.example.org:22")),
            named("chat.example.org", Some(22))
        );
        assert_eq!(
            host(None, Some("[2001:db8::1]:22")),
            named("2001:db8::1", Some(22))
        );
        assert_eq!(host(None, Some("2001:db8::1")), named("2001:db8::1", None));
        assert_eq!(
            host(Some("chat.example.org:2222"), None),
            named("chat.example.org", None)
        );
        assert_eq!(host(Some("127.0.0.1:0"), None), named("127.0.0.1", None));
        assert_eq!(host(Some("[2001:db8::1]:22"), None), named("2001:db8::1", None));
        assert_eq!(host(Some("0.0.0.0:2222"), None), named("-", None), "not 0.0.0.0");
        assert_eq!(host(Some("[::]:2222"), None), named("-", None));
        assert_eq!(host(None, None), named("-", None));
        for good in ["chat.example.org", "203.0.113.7:2222", "[2001:db8::1]:22"] {
            assert!(parse_public_host(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "alice@host", "host/x", "host:0", "host:x", "[::1]x"] {
            let e = parse_public_host(bad).unwrap_err();
            assert!(e.contains("is not a host name or an address"), "{e}");
        }
    }

    #[test]
    fn the_command_says_host_when_the_operator_named_none() {
        use crate::server::text::ssh_login;
        assert_eq!(ssh_login(22, Some("alice"), Some("h.org")), "ssh alice@h.org");
        assert_eq!(ssh_login(2222, None, Some("h.org")), "ssh -p 2222 h.org");
        assert_eq!(
            ssh_login(2222, Some("alice"), None),
            "ssh -p 2222 alice@HOST (HOST: the address you reach this server by)"
        );
    }
}
