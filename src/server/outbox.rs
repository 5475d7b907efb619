//! A client's send side as the hub sees it: a queue of shared lines, sent with non-blocking
//! `sendmsg` calls, with a bound on what may wait.
//!
//! A chat line goes to every client in the room: the hub makes its bytes once
//! ([`Bytes`], reference-counted) and each outbox holds a pointer to them, so a line to 10,000
//! clients costs one copy plus 16 bytes per client, and an outbox that is flushed holds no
//! buffer at all. The kernel gathers the pieces of one send from several lines (`writev`).
//!
//! The send uses `MSG_DONTWAIT` on that call only, so the session's thread keeps its blocking
//! reads on the same socket while the hub can never be blocked by a client that stops reading.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use socket2::SockRef;

/// Bytes shared by every outbox they are queued to.
pub type Bytes = Arc<[u8]>;

/// Pieces handed to one `sendmsg` at most (well under the kernel's `IOV_MAX` of 1024).
const MAX_IOV: usize = 64;

/// A queue that held more pieces than this is given back to the allocator once it is empty,
/// so a burst leaves no batch-sized buffer behind.
const KEEP_CAPACITY: usize = 8;

/// What one queued piece costs beside its bytes (its pointer in the queue, the shared
/// allocation's counts), charged against the limit so that a client sent many tiny pieces
/// is bounded by memory, not just by bytes.
const PIECE_COST: usize = 40;

/// What a flush or a queue found.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued is in the kernel.
    All,
    /// The kernel buffer is full; the rest waits for the socket to become writable.
    Partly,
    /// More than the limit is waiting: the client is not reading and must go.
    Overflow,
    /// The socket failed (the client is gone).
    Failed(io::ErrorKind),
}

pub struct Outbox {
    /// Shared with the session that reads from it: one file descriptor per connection.
    sock: Arc<TcpStream>,
    /// Lines not yet wholly in the kernel, oldest first.
    queue: VecDeque<Bytes>,
    /// Bytes of `queue[0]` already sent.
    head_sent: usize,
    /// Bytes queued and not yet sent, counted as they are queued.
    pending: usize,
    /// Most unsent bytes tolerated before the client is cut off.
    limit: usize,
    /// When the kernel last took bytes (or the queue last became non-empty): a client that
    /// takes nothing for `--send-timeout` is cut off even under the limit.
    progress: Instant,
}

impl Outbox {
    pub fn new(sock: Arc<TcpStream>, limit: usize) -> Outbox {
        Outbox {
            sock,
            queue: VecDeque::new(),
            head_sent: 0,
            pending: 0,
            limit,
            progress: Instant::now(),
        }
    }

    /// The socket, for the hub's readiness registration.
    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// Adds a line to send at the next flush. Past the limit it tries to send at once (a
    /// client that reads keeps up even with a big batch) and reports `Overflow` if the
    /// backlog stays over it: memory is bounded when bytes are queued, not only at a flush.
    pub fn queue(&mut self, bytes: Bytes) -> Flushed {
        if bytes.is_empty() {
            return Flushed::All;
        }
        if self.pending == 0 {
            self.progress = Instant::now();
        }
        self.pending += bytes.len();
        self.queue.push_back(bytes);
        if self.charged() <= self.limit {
            return Flushed::Partly;
        }
        match self.flush() {
            Flushed::Partly if self.charged() > self.limit => Flushed::Overflow,
            other => other,
        }
    }

    /// Puts bytes in front of everything queued (the history a session loaded while the hub
    /// was already queueing live lines to it).
    pub fn prepend(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if self.head_sent > 0 {
            // Never happens while held (nothing was sent), but stay correct.
            let rest: Bytes = self.queue[0][self.head_sent..].into();
            self.queue[0] = rest;
            self.head_sent = 0;
        }
        self.pending += bytes.len();
        self.queue.push_front(bytes);
    }

    /// Bytes waiting to be sent.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// What the waiting pieces cost in memory, at most: their bytes (counted in full even
    /// when shared with other clients) and [`PIECE_COST`] each.
    pub fn charged(&self) -> usize {
        self.pending + self.queue.len() * PIECE_COST
    }

    /// When the client last took bytes, if any are waiting.
    pub fn stuck_since(&self) -> Option<Instant> {
        (self.pending > 0).then_some(self.progress)
    }

    /// Sends what is queued without blocking.
    pub fn flush(&mut self) -> Flushed {
        while !self.queue.is_empty() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            for (i, piece) in self.queue.iter().take(MAX_IOV).enumerate() {
                let from = if i == 0 { self.head_sent } else { 0 };
                iov[n] = IoSlice::new(&piece[from..]);
                n += 1;
            }
            let sent = match SockRef::from(&*self.sock)
                .send_vectored_with_flags(&iov[..n], libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            {
                Ok(sent) => sent,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flushed::Partly,
                Err(e) => return Flushed::Failed(e.kind()),
            };
            self.consume(sent);
        }
        if self.queue.capacity() > KEEP_CAPACITY {
            self.queue = VecDeque::new();
        }
        Flushed::All
    }

    /// Drops `sent` bytes from the front of the queue.
    fn consume(&mut self, mut sent: usize) {
        if sent > 0 {
            self.progress = Instant::now();
        }
        self.pending -= sent;
        while sent > 0 {
            let left = self.queue[0].len() - self.head_sent;
            if sent < left {
                self.head_sent += sent;
                return;
            }
            sent -= left;
            self.queue.pop_front();
            self.head_sent = 0;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn pair() -> (Arc<TcpStream>, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        (Arc::new(server), client)
    }

    #[test]
    fn lines_arrive_whole_and_in_order_and_the_queue_is_released() {
        let (sock, mut client) = pair();
        let mut out = Outbox::new(sock, 1 << 20);
        for i in 0..500 {
            let line: Bytes = format!("line {i}\r\n").into_bytes().into();
            assert_eq!(out.queue(line), Flushed::Partly);
        }
        out.prepend(Bytes::from(&b"first\r\n"[..]));
        assert_eq!(out.flush(), Flushed::All);
        assert_eq!(out.pending(), 0);
        assert!(out.queue.capacity() <= KEEP_CAPACITY, "burst buffer kept");
        drop(out);
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        let mut want = String::from("first\r\n");
        for i in 0..500 {
            want.push_str(&format!("line {i}\r\n"));
        }
        assert_eq!(got, want);
    }

    #[test]
    fn a_client_that_does_not_read_overflows_when_queued_past_the_limit() {
        let (sock, _client) = pair();
        let mut out = Outbox::new(sock, 64 * 1024);
        let line: Bytes = vec![b'x'; 4096].into();
        let mut overflowed = false;
        // The kernel's buffers take a few MB at most on loopback; bounded loop.
        for _ in 0..10_000 {
            match out.queue(line.clone()) {
                Flushed::Overflow => {
                    overflowed = true;
                    break;
                }
                Flushed::Partly | Flushed::All => {}
                Flushed::Failed(k) => panic!("send failed: {k:?}"),
            }
        }
        assert!(overflowed);
        assert!(
            out.charged() <= 64 * 1024 + 4096 + PIECE_COST,
            "{}",
            out.charged()
        );
        assert!(out.stuck_since().is_some());
    }
}
