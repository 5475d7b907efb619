//! A client's send side as the hub sees it: bytes queued during a batch, sent with one
//! non-blocking `send`, and a bounded backlog for what the kernel would not take.
//!
//! The send uses `MSG_DONTWAIT` on that call only, so the session's thread keeps its blocking
//! reads on the same socket while the hub can never be blocked by a client that stops reading.

use std::io;
use std::net::{Shutdown, TcpStream};

use socket2::SockRef;

/// What a flush found.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued is in the kernel.
    All,
    /// The kernel buffer is full; the rest waits in the backlog for a retry.
    Partly,
    /// The backlog grew past its bound: the client is not reading and must go.
    Overflow,
    /// The socket failed (the client is gone).
    Failed(io::ErrorKind),
}

pub struct Outbox {
    sock: TcpStream,
    /// Queued bytes; `buf[sent..]` is not yet in the kernel.
    buf: Vec<u8>,
    sent: usize,
    /// Most unsent bytes tolerated before the client is cut off.
    limit: usize,
}

impl Outbox {
    pub fn new(sock: TcpStream, limit: usize) -> Outbox {
        Outbox {
            sock,
            buf: Vec::new(),
            sent: 0,
            limit,
        }
    }

    /// Adds bytes to send at the next flush.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Sends what is queued without blocking.
    pub fn flush(&mut self) -> Flushed {
        while self.sent < self.buf.len() {
            match SockRef::from(&self.sock).send_with_flags(
                &self.buf[self.sent..],
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            ) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Flushed::Failed(e.kind()),
            }
        }
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
            return Flushed::All;
        }
        if self.buf.len() - self.sent > self.limit {
            return Flushed::Overflow;
        }
        // Keep the backlog from creeping: drop what was sent once it is most of the buffer.
        if self.sent > self.buf.len() / 2 {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
        Flushed::Partly
    }

    /// Ends the connection both ways; the session's blocked read returns and it leaves.
    pub fn close(&self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    /// Ends our side only (a FIN after what is queued), so the session can still read what
    /// the client sent before it saw the goodbye.
    pub fn finish(&self) {
        let _ = self.sock.shutdown(Shutdown::Write);
    }
}
