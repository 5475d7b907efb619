//! The ways in. Each implements [`Way`]: its name, how it refuses a client, and how it serves
//! an admitted connection; the accept loop, the metrics and the CLI go through that, never
//! through a list of transports. Adding a way in is a folder here that implements [`Way`]
//! (with its options) and its name in the `ways!` list below.
//!
//! Each turns a client's connection into one stream socket that the rest of the server reads
//! lines from and writes lines to, the same for every transport:
//!
//! - **plain** ([`plain`], telnet and `nc`): the accepted TCP socket itself. Every transport's bytes
//!   reach the session as the telnet line protocol, which [`telnet`] decodes (TLS carries it
//!   as is; the SSH line editor speaks it).
//! - **tls** ([`tls`]): a thread of the transport terminates TLS and relays the plain bytes
//!   to one end of a Unix socket pair; the session gets the other end (IRC's front, for
//!   `--ircs-addr`).
//! - **ssh** ([`ssh`]): an SSH library on its own thread (a tokio runtime, the only one in
//!   the server) terminates SSH, edits the user's line, and relays it the same way.
//!
//! So the session, the limits and the hub's rule (one non-blocking send per client per batch;
//! a client that does not read is cut at `--max-backlog`) never know which way a client came
//! in: they hold a [`Socket`], which is any stream socket.

/// The ways in, in the order they are bound (the first is the main one, `--addr`). Each is a
/// module here with an `Options` struct (its `serve` options, `clap::Args`) whose `bind`
/// listens where they say, if they ask for it (`bind(&self, state: &Path)`). Adding a way in
/// is its folder and its name in this list.
macro_rules! ways {
    ($($way:ident),*) => {
        $(pub mod $way;)*

        /// Every way in's options, part of `besedka serve`'s.
        #[derive(clap::Args, Debug)]
#[group(skip)]
        pub struct Options {
            $(
                #[command(flatten)]
                pub $way: $way::Options,
            )*
        }

        impl Options {
            /// Binds every way in the options ask for, the main one first; `state`: the
            /// directory for what a way keeps between runs (SSH's host key). Each way is
            /// given every way's options too (IRC in TLS takes the TLS certificate).
            pub fn bind(&self, state: &std::path::Path) -> Result<Vec<Bound>, String> {
                let mut ways = Vec::new();
                $(ways.extend(self.$way.bind(state, self)?);)*
                Ok(ways)
            }
        }
    };
}

ways!(plain, tls, ssh, web, irc);

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use crate::server::admit::Admitted;
use crate::server::pool::Pool;
use crate::server::shared::Shared;
use crate::server::socket::{ConnId, Socket, Via};

/// A way in: how the server takes a client's connection.
pub trait Way: Send + Sync {
    /// Its name and what it carries ([`Via`]); the same value for every connection.
    fn via(&self) -> Via;

    /// Tells a refused client why, in the form it can read. By default it is closed without a
    /// word: a TLS or SSH client would read clear text as a broken handshake.
    fn refuse(&self, sock: &Socket, _text: &str) {
        let _ = sock.shutdown(Shutdown::Both);
    }

    /// It takes the TCP stream itself (SSH's runtime does): the server's registry of
    /// connections then holds a second descriptor of the socket, to cut it by.
    fn keeps_stream(&self) -> bool {
        false
    }

    /// Its requests may name the client behind a trusted proxy (the web's
    /// `X-Forwarded-For`): a connection from a trusted proxy is then admitted once the
    /// request says whom it brings.
    fn forwards(&self) -> bool {
        false
    }

    /// Serves an admitted connection, on a pool worker, for as long as it lasts (or hands it
    /// to a runtime of its own).
    fn serve(&self, c: Accepted);

    /// At shutdown, once the sessions are over: stops what the way runs itself.
    fn stop(&self) {}

    /// A reload: takes what it can change while running from the reread options (a TLS
    /// certificate, a token); what needs a restart (its address) the caller reports. An
    /// error leaves the way as it was.
    fn reload(&self, _options: &Options) -> Result<(), String> {
        Ok(())
    }
}

/// A connection the door let in, handed to its way.
pub struct Accepted {
    pub shared: Arc<Shared>,
    pub conn: ConnId,
    /// The socket as registered (for a way that [keeps the stream](Way::keeps_stream), a
    /// second descriptor of it).
    pub sock: Arc<Socket>,
    /// The TCP stream, for a way that keeps it.
    pub stream: Option<TcpStream>,
    /// The client's address (the one a trusted proxy named, if one did).
    pub addr: SocketAddr,
    /// A request from a trusted proxy whose head may still name the client (the web's
    /// `X-Forwarded-For`): not admitted yet.
    pub settle: Option<SocketAddr>,
    /// Counted until dropped.
    pub admitted: Admitted,
    pub pool: Pool,
}

/// A way in with its listener, bound.
pub type Bound = (TcpListener, Arc<dyn Way>);

/// A way in listening on `addr` (`HOST:PORT`; port 0 picks a free one), or the one-line
/// reason it cannot.
fn listening(addr: &str, way: Arc<dyn Way>) -> Result<Bound, String> {
    crate::server::socket::listen(addr)
        .map(|l| (l, way))
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Writes `bytes` if the socket takes them at once, then closes it: a refusal that never
/// blocks.
pub fn say_and_close(sock: &Socket, bytes: &[u8]) {
    let _ = sock.send_with_flags(bytes, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
    let _ = sock.shutdown(Shutdown::Both);
}

/// Serves a connection whose transport a relay thread terminates (TLS, WebSocket): makes a
/// Unix socket pair, starts `relay` (named `name`) on one end, runs the ordinary session on
/// the other, and when the session is over ends the relay and waits for it.
fn relayed(
    shared: &crate::server::shared::Shared,
    conn: crate::server::socket::ConnId,
    addr: std::net::SocketAddr,
    via: Via,
    relay: impl FnOnce(UnixStream) + Send + 'static,
) {
    relayed_to(shared, conn, addr, via, relay, |end| {
        crate::server::connection::run(
            shared,
            conn,
            end,
            addr,
            via,
            crate::server::connection::Known::Nobody,
        )
    });
}

/// [`relayed`], with `session` serving the session's end of the pair instead of the
/// ordinary line-protocol session (IRC inside TLS runs the IRC front there).
fn relayed_to(
    shared: &crate::server::shared::Shared,
    conn: crate::server::socket::ConnId,
    addr: std::net::SocketAddr,
    via: Via,
    relay: impl FnOnce(UnixStream) + Send + 'static,
    session: impl FnOnce(Arc<Socket>),
) {
    let (theirs, ours) = match UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => {
            log::warn!("{addr}: cannot make a socket pair: {e}");
            return;
        }
    };
    let session_end = Arc::new(Socket::from(ours));
    // From now on shutdown reaches the session through its end of the pair.
    crate::server::shared::lock(&shared.conns).insert(conn, session_end.clone());
    let relay = std::thread::Builder::new()
        .name(format!("{via}-relay"))
        .stack_size(64 * 1024)
        .spawn(move || relay(theirs));
    let relay = match relay {
        Ok(handle) => handle,
        Err(e) => {
            log::warn!("{addr}: cannot start the {via} relay: {e}");
            return;
        }
    };
    session(session_end.clone());
    release(shared, conn, &session_end);
    let _ = relay.join();
}

/// After a relayed session ended: closes the session's end of the pair, which ends the relay,
/// once the hub has let go of it (it sends the client's last words, such as `* Bye.`, when it
/// handles the session's `Leave`). The hub handles events in order, so its answer to a
/// barrier sent now (after the `Leave`) says it has; a second at most, if it is overloaded.
fn release(shared: &Shared, conn: ConnId, end: &Arc<Socket>) {
    crate::server::shared::lock(&shared.conns).remove(&conn);
    if Arc::strong_count(end) > 1 {
        let _ = crate::server::shared::ask_within(
            &shared.hub,
            std::time::Duration::from_secs(1),
            |done| crate::server::hub::Event::Barrier { done },
        );
    }
    let _ = end.shutdown(Shutdown::Both);
}

/// Ends a relayed connection both ways: the client's socket and the relay's end of the pair.
fn end(client: &Socket, plain: &UnixStream) {
    let _ = client.shutdown(Shutdown::Both);
    let _ = plain.shutdown(Shutdown::Both);
}

/// A relay's wait (TLS, WebSocket): until one of the wanted directions can move, `[client
/// in, client out, session in, session out]`; false if `poll` fails. A side with nothing
/// wanted is left out (a negative fd), or its hang-up would wake the poll again and again.
fn wait_pair(client: &Socket, plain: &UnixStream, want: [bool; 4]) -> bool {
    let events = |input: bool, output: bool| {
        (if input { libc::POLLIN } else { 0 }) | (if output { libc::POLLOUT } else { 0 })
    };
    let entry = |fd: i32, events: i16| libc::pollfd {
        fd: if events == 0 { -1 } else { fd },
        events,
        revents: 0,
    };
    let mut fds = [
        entry(client.as_raw_fd(), events(want[0], want[1])),
        entry(plain.as_raw_fd(), events(want[2], want[3])),
    ];
    loop {
        // SAFETY: `fds` is a valid array of two pollfd for the length given.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n >= 0 {
            return true;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
}
