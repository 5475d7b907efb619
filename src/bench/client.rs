//! One bench connection: its bytes in and out, the login dialogue, and the reading of bench
//! lines. It does no I/O waiting of its own; [`super::driver`] tells it when its socket is
//! ready. Everything here is non-blocking: a read or write that would block just stops.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use super::line::BenchLine;
use super::stats::Tally;

/// Longest line kept while reading (the `* In #lobby (N): …` line of a big server is long);
/// the rest of a longer line is dropped, which no line the bench needs comes near.
const MAX_LINE: usize = 1 << 20;

/// Reads taken from one socket per readiness event, so one busy client cannot starve the
/// others; the poller reports it again if more is waiting.
const READS_PER_EVENT: usize = 4;

/// What a client speaks, and how it logs in and gets into its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// besedka's line protocol (telnet, nc): answers the prompts, `/join`, `* In #room`.
    Line,
    /// IRC to besedka: SASL `PLAIN` with the token or the password (NickServ `REGISTER`
    /// for an account not there yet); the server puts the client in its room, `JOIN` moves it.
    IrcAccount,
    /// IRC to a server without accounts (ngircd): `NICK` and `USER`, then `JOIN`.
    IrcNick,
}

/// How a client logs in.
#[derive(Debug, Clone)]
pub enum Login {
    /// `/token TOKEN`; falls back to the password if the server no longer knows the token.
    Token(String),
    /// The name, then the password: logs in, or registers when the account does not exist.
    Password,
}

/// Where a client is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The non-blocking connect is under way.
    Connecting,
    /// Connected; answering the server's prompts.
    LoggingIn,
    /// The hub has it (its `* In #room` line arrived): it receives every chat line.
    Ready,
    /// The connection ended; the text says why.
    Closed(String),
}

/// What one readiness event changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    None,
    /// The login finished.
    Ready,
    /// The connection ended (the reason is in [`Phase::Closed`]).
    Closed,
}

/// What a read needs besides the client itself.
pub struct Ctx<'a> {
    pub password: &'a str,
    /// The bench clock's reading for this batch of bytes, in nanoseconds.
    pub now_ns: u64,
    pub tally: &'a mut Tally,
}

/// Telnet commands are 2 or 3 bytes (`IAC WILL x`, `IAC DO x`, …); the server sends no
/// subnegotiations, so they are not tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Iac {
    Data,
    /// After `IAC`.
    Command,
    /// After `IAC WILL|WONT|DO|DONT`, before the option byte.
    Option,
}

pub struct Client {
    /// Its index: 0-based; senders are the first ones.
    pub idx: usize,
    pub name: String,
    pub sock: TcpStream,
    pub phase: Phase,
    pub(super) framing: Framing,
    pub(super) login: Login,
    iac: Iac,
    /// Bytes of the line not yet ended.
    pub(super) line: Vec<u8>,
    /// The rest of the current line is being dropped (it passed [`MAX_LINE`]).
    skipping: bool,
    /// Bytes to send; `out_at` of them are sent.
    out: Vec<u8>,
    out_at: usize,
    pub(super) name_sent: bool,
    pub(super) password_sent: bool,
    /// The token to keep for the next run: a new one shown at a password login, else the one
    /// used.
    pub token: Option<String>,
    /// The server's last `! ` line, the likely reason when something fails.
    pub(super) last_error: Option<String>,
    /// Per sender: the highest sequence number received plus one (0: none yet).
    pub(super) last_seq: Vec<u32>,
    /// The room to be in before the message phase.
    pub(super) room: String,
    /// `/join ROOM` (or IRC `JOIN`) was sent (the login landed in another room, or none).
    pub(super) join_sent: bool,
    /// IRC: NickServ `REGISTER` was sent (the account was not there).
    pub(super) register_sent: bool,
    /// IRC: in its room, waiting for the token it asked for after registering (the run's
    /// messages must not start before it, or the notice may come after the bench stops).
    pub(super) awaiting_token: bool,
}

impl Client {
    pub fn new(
        idx: usize,
        name: String,
        sock: TcpStream,
        framing: Framing,
        login: Login,
        room: String,
    ) -> Client {
        let token = match &login {
            Login::Token(t) => Some(t.clone()),
            Login::Password => None,
        };
        Client {
            idx,
            name,
            sock,
            phase: Phase::Connecting,
            framing,
            login,
            iac: Iac::Data,
            line: Vec::new(),
            skipping: false,
            out: Vec::new(),
            out_at: 0,
            name_sent: false,
            password_sent: false,
            token,
            last_error: None,
            last_seq: Vec::new(),
            room,
            join_sent: false,
            register_sent: false,
            awaiting_token: false,
        }
    }

    /// Prepares the per-sender sequence check for `senders` senders.
    pub fn expect_senders(&mut self, senders: usize) {
        self.last_seq = vec![0; senders];
    }

    pub fn is_open(&self) -> bool {
        !matches!(self.phase, Phase::Closed(_))
    }

    /// Bytes queued and not yet taken by the kernel.
    pub fn pending(&self) -> bool {
        self.out_at < self.out.len()
    }

    /// Whether the poller should report writability: to finish the connect or the output.
    pub fn wants_write(&self) -> bool {
        self.phase == Phase::Connecting || self.pending()
    }

    pub fn close(&mut self, why: String) -> Change {
        if self.is_open() {
            self.phase = Phase::Closed(why);
            let _ = self.sock.shutdown(std::net::Shutdown::Both);
        }
        Change::Closed
    }

    /// The non-blocking connect finished (the socket became writable).
    pub fn connected(&mut self) -> Change {
        match self.sock.take_error() {
            Ok(None) => {
                self.phase = Phase::LoggingIn;
                if self.framing == Framing::Line {
                    return Change::None; // the server speaks first
                }
                match self.send(self.irc_hello().as_bytes()) {
                    Ok(()) => Change::None,
                    Err(e) => self.close(format!("write failed: {e}")),
                }
            }
            Ok(Some(e)) | Err(e) => self.close(format!("cannot connect: {e}")),
        }
    }

    /// Queues bytes and writes what the socket takes now.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.pending() {
            self.out.clear();
            self.out_at = 0;
        }
        self.out.extend_from_slice(bytes);
        self.flush()
    }

    /// Writes queued bytes until done or the socket is full.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.pending() {
            match self.sock.write(&self.out[self.out_at..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what the socket has (a few buffers at most) and handles every complete line.
    pub fn read(&mut self, buf: &mut [u8], ctx: &mut Ctx) -> Change {
        let mut change = Change::None;
        for _ in 0..READS_PER_EVENT {
            let n = match self.sock.read(buf) {
                Ok(0) => {
                    let why = match (&self.phase, self.last_error.take()) {
                        (Phase::Ready, _) => "the server closed the connection".to_string(),
                        (_, Some(e)) => format!("the server said: {e}"),
                        _ => "the server closed the connection during the login".to_string(),
                    };
                    return self.close(why);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.close(format!("read failed: {e}")),
            };
            match self.scan(&buf[..n], ctx) {
                Change::None => {}
                Change::Ready => change = Change::Ready,
                Change::Closed => return Change::Closed,
            }
            if n < buf.len() {
                break; // the socket is most likely drained
            }
        }
        change
    }

    /// Strips telnet commands, splits lines and handles them; answers a prompt left at the end.
    fn scan(&mut self, bytes: &[u8], ctx: &mut Ctx) -> Change {
        let mut change = Change::None;
        let telnet = self.framing == Framing::Line;
        for &b in bytes {
            match self.iac {
                _ if !telnet => {}
                Iac::Data => {}
                Iac::Command => {
                    self.iac = match b {
                        251..=254 => Iac::Option,
                        255 => Iac::Data, // IAC IAC: a literal 0xFF, dropped like the rest
                        _ => Iac::Data,
                    };
                    continue;
                }
                Iac::Option => {
                    self.iac = Iac::Data;
                    continue;
                }
            }
            match b {
                255 if telnet => self.iac = Iac::Command,
                b'\n' => {
                    let mut line = std::mem::take(&mut self.line);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    self.skipping = false;
                    let c = self.on_line(&line, ctx);
                    line.clear();
                    self.line = line;
                    match c {
                        Change::None => {}
                        Change::Ready => change = Change::Ready,
                        Change::Closed => return Change::Closed,
                    }
                }
                _ if self.skipping => {}
                _ if self.line.len() >= MAX_LINE => self.skipping = true,
                _ => self.line.push(b),
            }
        }
        if telnet && self.phase == Phase::LoggingIn && !self.line.is_empty() {
            return match self.prompt(ctx.password) {
                Change::None => change,
                other => other,
            };
        }
        change
    }

    /// Counts a bench line received: its latency, or why it does not count.
    pub(super) fn count(&mut self, b: BenchLine, ctx: &mut Ctx) {
        if b.run != ctx.tally.run || b.sender as usize >= self.last_seq.len() {
            return; // another run's line (history), or not ours
        }
        if b.sender as usize == self.idx {
            ctx.tally.own_lines += 1;
            return;
        }
        if !self.room.eq_ignore_ascii_case(super::LOBBY) {
            ctx.tally.misrouted += 1;
            return;
        }
        let last = &mut self.last_seq[b.sender as usize];
        if b.seq < *last {
            ctx.tally.out_of_order += 1;
        } else {
            *last = b.seq + 1;
        }
        ctx.tally
            .record(ctx.now_ns.saturating_sub(b.sent_ns), ctx.now_ns);
    }
}
