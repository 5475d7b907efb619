//! telnet and `nc` (`--addr`): the accepted TCP socket is the session's; the session speaks
//! the telnet line protocol on it ([`crate::server::telnet`]).

use std::sync::Arc;

use super::{listening, say_and_close, Accepted, Bound, Way};
use crate::server::connection::{self, Known};
use crate::server::socket::{Socket, Via};

/// Its options.
#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct Options {
    /// Address to listen on (telnet and nc); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7777")]
    pub addr: String,
}

impl Options {
    pub fn bind(
        &self,
        _state: &std::path::Path,
        _all: &crate::server::transport::Options,
    ) -> Result<Option<Bound>, String> {
        listening(&self.addr, Arc::new(Plain::new())).map(Some)
    }
}

pub struct Plain {
    via: Via,
}

impl Plain {
    pub fn new() -> Plain {
        Plain {
            via: Via::new("telnet", true),
        }
    }
}

impl Default for Plain {
    fn default() -> Self {
        Plain::new()
    }
}

impl Way for Plain {
    fn via(&self) -> Via {
        self.via
    }

    fn refuse(&self, sock: &Socket, text: &str) {
        say_and_close(sock, text.as_bytes());
    }

    fn serve(&self, c: Accepted) {
        let _admitted = c.admitted; // released when the session ends, a panic included
        connection::run(&c.shared, c.conn, c.sock, c.addr, self.via, Known::Nobody);
    }
}
