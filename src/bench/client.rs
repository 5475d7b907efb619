//! One bench connection: its bytes in and out, the login dialogue, and the reading of bench
//! lines. It does no I/O waiting of its own; [`super::driver`] tells it when its socket is
//! ready. Everything here is non-blocking: a read or write that would block just stops.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use super::line::{parse_bench, MARK};
use super::stats::Tally;

/// Longest line kept while reading (the `* In #lobby (N): …` line of a big server is long);
/// the rest of a longer line is dropped, which no line the bench needs comes near.
const MAX_LINE: usize = 1 << 20;

/// Reads taken from one socket per readiness event, so one busy client cannot starve the
/// others; the poller reports it again if more is waiting.
const READS_PER_EVENT: usize = 4;

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
    login: Login,
    iac: Iac,
    /// Bytes of the line not yet ended.
    line: Vec<u8>,
    /// The rest of the current line is being dropped (it passed [`MAX_LINE`]).
    skipping: bool,
    /// Bytes to send; `out_at` of them are sent.
    out: Vec<u8>,
    out_at: usize,
    name_sent: bool,
    password_sent: bool,
    /// The token to keep for the next run: a new one shown at a password login, else the one
    /// used.
    pub token: Option<String>,
    /// The server's last `! ` line, the likely reason when something fails.
    last_error: Option<String>,
    /// Per sender: the highest sequence number received plus one (0: none yet).
    last_seq: Vec<u32>,
    /// The room to be in before the message phase.
    room: String,
    /// `/join ROOM` was sent (the login landed in another room).
    join_sent: bool,
}

impl Client {
    pub fn new(idx: usize, name: String, sock: TcpStream, login: Login, room: String) -> Client {
        let token = match &login {
            Login::Token(t) => Some(t.clone()),
            Login::Password => None,
        };
        Client {
            idx,
            name,
            sock,
            phase: Phase::Connecting,
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
                Change::None
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
        for &b in bytes {
            match self.iac {
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
                255 => self.iac = Iac::Command,
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
        if self.phase == Phase::LoggingIn && !self.line.is_empty() {
            return match self.prompt(ctx.password) {
                Change::None => change,
                other => other,
            };
        }
        change
    }

    /// Answers `Name: `, `Password: ` or `Repeat password: ` when the unended line is one.
    fn prompt(&mut self, password: &str) -> Change {
        let answer = match self.line.as_slice() {
            b"Name: " => match (&self.login, self.name_sent) {
                (Login::Token(token), false) => format!("/token {token}\r\n"),
                // The token was refused (expired, or the database is new): use the password.
                (Login::Token(_), true) => {
                    self.login = Login::Password;
                    self.token = None;
                    self.last_error = None;
                    format!("{}\r\n", self.name)
                }
                (Login::Password, false) => format!("{}\r\n", self.name),
                (Login::Password, true) => {
                    let why = self.last_error.take().map_or_else(
                        || "the server asked for the name again".to_string(),
                        |e| format!("the server said: {e}"),
                    );
                    return self.close(format!("login failed: {why}"));
                }
            },
            b"Password: " if self.password_sent => {
                let why = self
                    .last_error
                    .take()
                    .map_or_else(String::new, |e| format!(" (the server said: {e})"));
                return self.close(format!("login failed: the password was refused{why}"));
            }
            b"Password: " | b"Repeat password: " => format!("{password}\r\n"),
            _ => return Change::None,
        };
        if self.line.as_slice() == b"Name: " {
            self.name_sent = true;
            self.password_sent = false;
        } else if self.line.as_slice() == b"Repeat password: " {
            // Registering: the next `Password: ` (after a refusal) is a new try, not a repeat.
        } else {
            self.password_sent = true;
        }
        self.line.clear();
        match self.send(answer.as_bytes()) {
            Ok(()) => Change::None,
            Err(e) => self.close(format!("write failed: {e}")),
        }
    }

    fn on_line(&mut self, line: &[u8], ctx: &mut Ctx) -> Change {
        if self.phase == Phase::Ready {
            self.on_chat(line, ctx);
            return Change::None;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return Change::None;
        };
        if let Some(e) = text.strip_prefix("! ") {
            self.last_error = Some(e.to_string());
        } else if let Some(rest) = text.strip_prefix("* Your session token: ") {
            let token = rest.split(|c: char| c == ';' || c.is_whitespace()).next();
            self.token = token.filter(|t| !t.is_empty()).map(str::to_string);
        } else if let Some(rest) = text.strip_prefix("* In ") {
            // `* In #room (N): names`: ready once in the planned room (users are put back
            // in the room they were last in).
            let here = rest.split(" (").next().unwrap_or("");
            if self.phase == Phase::LoggingIn && here.eq_ignore_ascii_case(&self.room) {
                self.phase = Phase::Ready;
                return Change::Ready;
            }
            if self.phase == Phase::LoggingIn && !self.join_sent {
                self.join_sent = true;
                let join = format!("/join {}\r\n", self.room);
                if let Err(e) = self.send(join.as_bytes()) {
                    return self.close(format!("write failed: {e}"));
                }
            }
        }
        Change::None
    }

    /// Counts a bench line from this run; every other line is ignored.
    fn on_chat(&mut self, line: &[u8], ctx: &mut Ctx) {
        if let Some(e) = line.strip_prefix(b"! ") {
            ctx.tally.errors += 1;
            let text = || format!("{}: {}", self.name, String::from_utf8_lossy(e));
            ctx.tally.first_error.get_or_insert_with(text);
            return;
        }
        // The mark follows `[HH:MM:SS] NAME`, so it is near the start: names are short.
        let head = &line[..line.len().min(64)];
        let Some(at) = head.windows(MARK.len()).position(|w| w == MARK) else {
            return;
        };
        let Some(b) = parse_bench(&line[at + MARK.len()..]) else {
            return;
        };
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
