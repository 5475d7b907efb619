//! A client's send side as the hub sees it: a queue of shared lines, sent with non-blocking
//! `sendmsg` calls, with a bound on what may wait.
//!
//! The hub makes the bytes of a batch's chat lines once ([`Bytes`], reference-counted) and
//! queues each client a *slice* of them: the whole run of lines, or the run minus the
//! client's own lines. So a line to 10,000 clients is one copy plus a pointer per client, a
//! client's share of a batch is one or two pieces, and one `sendmsg` gathers them (`writev`).
//! (Measured against one piece per line: a `writev` piece per 60-byte line, or copying short
//! lines into per-client chunks, both cost more CPU per delivery than the old copy into one
//! buffer; slices of a batch cost less.) An outbox that is flushed holds no buffer.
//!
//! The send uses `MSG_DONTWAIT` on that call only, so the session's thread keeps its blocking
//! reads on the same socket while the hub can never be blocked by a client that stops reading.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Instant;

use super::socket::Socket;

/// Bytes shared by every outbox they are queued to.
pub type Bytes = Arc<[u8]>;

/// One piece of the queue.
enum Piece {
    /// `bytes[start..end]`, shared with every client it was sent to.
    Shared {
        bytes: Bytes,
        start: usize,
        end: usize,
    },
    /// Bytes for this client alone (its session's answers).
    Owned(Vec<u8>),
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        match self {
            Piece::Shared { bytes, start, end } => &bytes[*start..*end],
            Piece::Owned(v) => v,
        }
    }
}

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
    sock: Arc<Socket>,
    /// Pieces not yet wholly in the kernel, oldest first.
    queue: VecDeque<Piece>,
    /// Bytes of `queue[0]` already sent.
    head_sent: usize,
    /// Bytes queued and not yet sent, counted as they are queued.
    pending: usize,
    /// Most unsent bytes tolerated before the client is cut off.
    limit: usize,
    /// Since when bytes have waited with the kernel taking none (set by a flush that could
    /// not send everything, moved on by one that sent some, cleared by one that sent all): a
    /// client stuck for `--send-timeout` is cut off even under the limit. Read from the clock
    /// only on a partial flush, never per queued line.
    stuck: Option<Instant>,
    /// Pieces sent whole so far: with the queue's length, names a place in the stream
    /// ([`Outbox::mark`]).
    popped: u64,
}

impl Outbox {
    pub fn new(sock: Arc<Socket>, limit: usize) -> Outbox {
        Outbox {
            sock,
            queue: VecDeque::new(),
            head_sent: 0,
            pending: 0,
            limit,
            stuck: None,
            popped: 0,
        }
    }

    /// The socket, for the hub's readiness registration.
    pub fn socket(&self) -> &Socket {
        &self.sock
    }

    /// Adds shared bytes to send at the next flush.
    pub fn queue(&mut self, bytes: &Bytes) -> Flushed {
        self.queue_range(bytes, 0, bytes.len())
    }

    /// Adds `bytes[start..end]` (a client's share of a batch). Past the limit it tries to
    /// send at once (a client that reads keeps up even with a big batch) and reports
    /// `Overflow` if the backlog stays over it: memory is bounded when bytes are queued, not
    /// only at a flush.
    pub fn queue_range(&mut self, bytes: &Bytes, start: usize, end: usize) -> Flushed {
        self.push(Piece::Shared {
            bytes: bytes.clone(),
            start,
            end,
        })
    }

    /// Adds bytes for this client alone.
    pub fn queue_owned(&mut self, bytes: Vec<u8>) -> Flushed {
        self.push(Piece::Owned(bytes))
    }

    fn push(&mut self, piece: Piece) -> Flushed {
        let len = piece.bytes().len();
        if len == 0 {
            return Flushed::All;
        }
        self.pending += len;
        self.queue.push_back(piece);
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
            let rest = self.queue[0].bytes()[self.head_sent..].to_vec();
            self.queue[0] = Piece::Owned(rest);
            self.head_sent = 0;
        }
        self.pending += bytes.len();
        let end = bytes.len();
        self.queue.push_front(Piece::Shared {
            bytes,
            start: 0,
            end,
        });
    }

    /// The place after everything queued so far, for [`Outbox::insert_at`].
    pub fn mark(&self) -> u64 {
        self.popped + self.queue.len() as u64
    }

    /// Puts bytes at `mark`: after what was queued before it was taken, before what was
    /// queued since (a room's history, loaded while the hub queued the room's new lines).
    pub fn insert_at(&mut self, mark: u64, bytes: Bytes) {
        let at = mark.saturating_sub(self.popped) as usize;
        if at == 0 {
            return self.prepend(bytes);
        }
        if bytes.is_empty() {
            return;
        }
        self.pending += bytes.len();
        let end = bytes.len();
        let at = at.min(self.queue.len());
        self.queue.insert(
            at,
            Piece::Shared {
                bytes,
                start: 0,
                end,
            },
        );
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
        self.stuck
    }

    /// Sends what is queued without blocking.
    pub fn flush(&mut self) -> Flushed {
        while !self.queue.is_empty() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let mut n = 0;
            for (i, piece) in self.queue.iter().take(MAX_IOV).enumerate() {
                let from = if i == 0 { self.head_sent } else { 0 };
                iov[n] = IoSlice::new(&piece.bytes()[from..]);
                n += 1;
            }
            let sent = match self
                .sock
                .send_vectored_with_flags(&iov[..n], libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            {
                Ok(sent) => sent,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.stuck.is_none() {
                        self.stuck = Some(Instant::now());
                    }
                    return Flushed::Partly;
                }
                Err(e) => return Flushed::Failed(e.kind()),
            };
            if sent > 0 && self.stuck.is_some() {
                self.stuck = Some(Instant::now()); // it took some: moving, not stuck
            }
            self.consume(sent);
        }
        self.stuck = None;
        if self.queue.capacity() > KEEP_CAPACITY {
            self.queue = VecDeque::new();
        }
        Flushed::All
    }

    /// Drops `sent` bytes from the front of the queue.
    fn consume(&mut self, mut sent: usize) {
        self.pending -= sent;
        while sent > 0 {
            let left = self.queue[0].bytes().len() - self.head_sent;
            if sent < left {
                self.head_sent += sent;
                return;
            }
            sent -= left;
            self.queue.pop_front();
            self.popped += 1;
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

    fn pair() -> (Arc<Socket>, std::net::TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        (Arc::new(server.into()), client)
    }

    #[test]
    fn lines_arrive_whole_and_in_order_and_the_queue_is_released() {
        let (sock, mut client) = pair();
        let mut out = Outbox::new(sock, 1 << 20);
        for i in 0..500 {
            let line: Bytes = format!("line {i}\r\n").into_bytes().into();
            assert_eq!(out.queue(&line), Flushed::Partly);
        }
        out.prepend(Bytes::from(&b"first\r\n"[..]));
        assert!(out.stuck_since().is_none(), "nothing was tried yet");
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
    fn bytes_inserted_at_a_mark_go_between_what_came_before_and_after_it() {
        let (sock, mut client) = pair();
        let mut out = Outbox::new(sock, 1 << 20);
        out.queue(&Bytes::from(&b"sent "[..]));
        assert_eq!(out.flush(), Flushed::All);
        out.queue(&Bytes::from(&b"old "[..]));
        let mark = out.mark();
        out.queue(&Bytes::from(&b"new"[..]));
        out.insert_at(mark, Bytes::from(&b"history "[..]));
        let mut empty = Outbox::new(out.sock.clone(), 1 << 20);
        let at_start = empty.mark();
        empty.queue(&Bytes::from(&b"!"[..]));
        empty.insert_at(at_start, Bytes::from(&b" first"[..]));
        assert_eq!(out.flush(), Flushed::All);
        assert_eq!(empty.flush(), Flushed::All);
        drop((out, empty));
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        assert_eq!(got, "sent old history new first!");
    }

    #[test]
    fn a_mark_keeps_its_place_while_what_came_before_it_is_sent() {
        let (sock, mut client) = pair();
        let mut out = Outbox::new(sock, 1 << 20);
        out.queue(&Bytes::from(&b"a "[..]));
        out.queue_owned(b"b ".to_vec());
        let mark = out.mark();
        assert_eq!(mark, 2, "after the two pieces queued");
        // What came before the mark goes out; the mark still names the same place.
        assert_eq!(out.flush(), Flushed::All);
        assert_eq!(out.mark(), mark, "nothing queued since: the same place");
        out.queue(&Bytes::from(&b"d "[..]));
        out.queue(&Bytes::from(&b"e"[..]));
        let later = out.mark();
        out.insert_at(mark, Bytes::from(&b"c "[..]));
        // An empty insert changes nothing; one at the end goes after everything.
        out.insert_at(mark, Bytes::from(&b""[..]));
        out.insert_at(later + 1, Bytes::from(&b" f"[..]));
        assert_eq!(out.pending(), "c d e f".len());
        assert_eq!(out.flush(), Flushed::All);
        drop(out);
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        assert_eq!(got, "a b c d e f");
    }

    #[test]
    fn a_client_that_does_not_read_overflows_when_queued_past_the_limit() {
        let (sock, _client) = pair();
        let mut out = Outbox::new(sock, 64 * 1024);
        let line: Bytes = vec![b'x'; 4096].into();
        let mut overflowed = false;
        // The kernel's buffers take a few MB at most on loopback; bounded loop.
        for _ in 0..10_000 {
            match out.queue(&line) {
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
