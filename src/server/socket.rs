//! What the layers above know of a client's connection: its socket, its id and the way it came
//! in. Nothing here knows sessions, rooms or how a way in works.

use std::fmt;

/// Identifies one connection for its whole life.
pub type ConnId = u64;

/// A client's connection as the session and the hub see it: any stream socket (TCP or
/// Unix), shared by the session, the hub and the server's registry without duplicating the
/// descriptor.
pub type Socket = socket2::Socket;

/// How a client came in; shown by the console's `who` and in the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// telnet or nc, in clear text.
    Plain,
    /// TLS (`openssl s_client`, Mudlet, TinTin++).
    Tls,
    /// SSH.
    Ssh,
    /// A browser, over a WebSocket (`--web-addr`).
    Web,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::Plain => "telnet",
            Via::Tls => "tls",
            Via::Ssh => "ssh",
            Via::Web => "web",
        })
    }
}
