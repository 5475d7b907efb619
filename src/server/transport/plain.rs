//! telnet and `nc` (`--addr`): the accepted TCP socket is the session's; the session speaks
//! the telnet line protocol on it ([`crate::server::telnet`]).

use super::{say_and_close, Accepted, Way};
use crate::server::connection;
use crate::server::socket::{Socket, Via};

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
        connection::run(&c.shared, c.conn, c.sock, c.addr, self.via, None);
    }
}
