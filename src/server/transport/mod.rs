//! The ways in. Each transport turns a client's connection into one stream socket that the
//! rest of the server reads lines from and writes lines to, the same for every transport:
//!
//! - **plain** (telnet and `nc`): the accepted TCP socket itself. Every transport's bytes
//!   reach the session as the telnet line protocol, which [`telnet`] decodes (TLS carries it
//!   as is; the SSH line editor speaks it).
//! - **tls** ([`tls`]): a thread of the transport terminates TLS and relays the plain bytes
//!   to one end of a Unix socket pair; the session gets the other end.
//! - **ssh** ([`ssh`]): an SSH library on its own thread (a tokio runtime, the only one in
//!   the server) terminates SSH, edits the user's line, and relays it the same way.
//!
//! So the session, the limits and the hub's rule (one non-blocking send per client per batch;
//! a client that does not read is cut at `--max-backlog`) never know which way a client came
//! in: they hold a [`Socket`], which is any stream socket.

pub mod ssh;
pub mod telnet;
pub mod tls;

use std::fmt;

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
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::Plain => "telnet",
            Via::Tls => "tls",
            Via::Ssh => "ssh",
        })
    }
}
