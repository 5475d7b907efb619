//! What the layers above know of a client's connection: its socket, its id and the way it came
//! in. Nothing here knows sessions, rooms or how a way in works.

use std::fmt;
use std::io;
use std::net::TcpListener;

/// Identifies one connection for its whole life.
pub type ConnId = u64;

/// A client's connection as the session and the hub see it: any stream socket (TCP or
/// Unix), shared by the session, the hub and the server's registry without duplicating the
/// descriptor.
pub type Socket = socket2::Socket;

/// How a client came in: its way in's name (shown by the console's `who`, in the logs and
/// in the metrics' `transport` label) and what that way carries. One word wide: it travels in
/// the hub's events.
#[derive(Clone, Copy)]
pub struct Via(&'static Info);

struct Info {
    name: &'static str,
    slot: usize,
    telnet: bool,
    wire: super::wire::Wire,
    /// Its chat lines carry their ids, hidden (`\u{1}ID `): the web page's.
    line_ids: bool,
}

impl Via {
    /// The way in called `name` (`telnet`, `tls`, …); `telnet`: it carries the telnet
    /// protocol to the client, so the session offers telnet options. Made once per way in
    /// when the server starts (it lives as long as the process).
    pub fn new(name: &'static str, telnet: bool) -> Via {
        Via::framed(name, telnet, super::wire::Wire::Line)
    }

    /// A way in whose clients read `wire` (IRC's clients read IRC messages).
    pub fn framed(name: &'static str, telnet: bool, wire: super::wire::Wire) -> Via {
        Via(Box::leak(Box::new(Info {
            name,
            slot: super::metrics::slot(name),
            telnet,
            wire,
            line_ids: false,
        })))
    }

    /// The web page's way in: the line protocol, each chat line with its id in front
    /// (`\u{1}1234 `, which the page reads and does not show), so the page can take a line
    /// an operator removed out of its log. A terminal would print the id: only the page
    /// gets it.
    pub fn web(name: &'static str) -> Via {
        Via(Box::leak(Box::new(Info {
            name,
            slot: super::metrics::slot(name),
            telnet: false,
            wire: super::wire::Wire::Line,
            line_ids: true,
        })))
    }

    /// Whether its chat lines carry their ids, hidden (the web page's).
    pub fn line_ids(&self) -> bool {
        self.0.line_ids
    }

    /// What its clients read.
    pub fn wire(&self) -> super::wire::Wire {
        self.0.wire
    }

    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// Its index in the per-way counters ([`super::metrics`]).
    pub fn slot(&self) -> usize {
        self.0.slot
    }

    /// Whether the client at the other end reads the telnet protocol.
    pub fn telnet(&self) -> bool {
        self.0.telnet
    }
}

impl PartialEq for Via {
    fn eq(&self, other: &Via) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Via {}

impl fmt::Debug for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

/// Connections the kernel may hold complete but not yet accepted. std's `bind` asks for 128:
/// a crowd reconnecting at once (a restart, the bench's 200 at a time) overflowed it while
/// the accept thread started workers, and each dropped SYN cost its client a 1 s
/// retransmit (seen: logins of 250 clients in 0.1 s or 1.1 s, at random). The kernel caps
/// it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 1024;

/// Binds a listening socket on `addr` (`HOST:PORT`, the first address that binds) with a
/// listen queue of [`LISTEN_BACKLOG`].
pub fn listen(addr: &str) -> io::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on");
    for a in addr.to_socket_addrs()? {
        let sock =
            socket2::Socket::new(socket2::Domain::for_address(a), socket2::Type::STREAM, None)?;
        // As std does: a restarted server can bind while old connections linger in TIME_WAIT.
        sock.set_reuse_address(true)?;
        match sock
            .bind(&a.into())
            .and_then(|()| sock.listen(LISTEN_BACKLOG))
        {
            Ok(()) => return Ok(sock.into()),
            Err(e) => last = e,
        }
    }
    Err(last)
}
