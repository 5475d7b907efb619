//! What the layers above know of a client's connection: its socket, its id and the way it came
//! in. Nothing here knows sessions, rooms or how a way in works.

use std::fmt;

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
}

impl Via {
    /// The way in called `name` (`telnet`, `tls`, …); `telnet`: it carries the telnet
    /// protocol to the client, so the session offers telnet options. Made once per way in
    /// when the server starts (it lives as long as the process).
    pub fn new(name: &'static str, telnet: bool) -> Via {
        Via(Box::leak(Box::new(Info {
            name,
            slot: super::metrics::slot(name),
            telnet,
        })))
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
