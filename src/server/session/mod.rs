//! One client's state and what it can do: read a line, send text, speak. Logging in and
//! registering are in [`login`].
//! The order of things (greeting, login stage, chat stage) is in [`super::connection`]; the
//! slash-commands are in [`super::commands`]. Both use this module; it uses neither.
//!
//! Until login the session writes to its socket itself (blocking, with a timeout). From
//! login on, every byte to the client goes through the hub, so chat lines and the session's
//! own answers never interleave and a slow reader can never block this thread's writes.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

mod login;
mod welcome;

pub use login::{Refusal, Refused};

use super::hub::Event;
use super::limits::{Bucket, SessionSlot};
use super::moderation::muted_line;
use super::protocol::clean;
use super::shared::Shared;
use super::socket::ConnId;
use super::socket::{Socket, Via};
use super::telnet::{Input, LineReader, ECHO_OFF, ECHO_ON};
use super::text;
use super::wire::{self, Wire};
use crate::store::messages::Kind;
use crate::store::rooms::{self, Room};
use crate::store::users::{self, name_key, User};

/// Longest a blocking write to a client may take before login.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a write may take once the login deadline has passed (the goodbye).
const LAST_WORD: Duration = Duration::from_secs(1);

/// Bytes an IRC line may hold beyond its text: the command and target (512 is IRC's
/// classic line) and a client's message tags (4,096 at most, IRCv3). The text itself is
/// held to `--max-line` once parsed (`417`), as a telnet user's whole line is.
const IRC_OVERHEAD: usize = 512 + 4096;

/// What a way's lines may hold beyond `--max-line` of text.
fn wire_overhead(via: Via) -> usize {
    if via.wire().is_irc() {
        IRC_OVERHEAD
    } else {
        0
    }
}

/// Wrong passwords allowed per connection before it is closed.
pub const MAX_FAILURES: u32 = 3;

/// Why reading a line did not give one.
pub enum End {
    /// The client closed the connection, the socket failed, or the server is cutting it.
    Gone,
    /// The login deadline passed, or (logged in) the client was silent for `--idle-timeout`.
    TimedOut,
}

/// Where a command may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before login.
    Login,
    /// After login.
    Chat,
}

/// What the session does next.
pub enum Flow {
    Continue,
    /// Close the connection (quit, logout, too many failures, banned).
    Close,
    /// The login stage is over.
    LoggedIn(Login),
}

/// How a login succeeded; logged, and decides whether a token is issued.
#[derive(Clone, Copy, Debug)]
pub enum Method {
    Password,
    Registered,
    Token,
    /// An SSH key the user added (`/key add`).
    Key,
}

impl std::fmt::Display for Method {
    /// In the log's words: `alice logged in (registration, telnet)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Password => "password",
            Method::Registered => "registration",
            Method::Token => "token",
            Method::Key => "ssh key",
        })
    }
}

/// A successful login.
pub struct Login {
    pub user: User,
    pub method: Method,
    /// The hash of this session's token (issued now, or the one used), for `/logout`.
    pub token_hash: String,
}

/// The socket's read side. Before login every read (not just every line) is bounded by the
/// login deadline, so a client that trickles a byte at a time is cut at it.
pub struct Reader {
    sock: Arc<Socket>,
    deadline: Option<Instant>,
    /// The first bytes were read (and looked at).
    started: bool,
    /// They were a PROXY protocol header: a proxy that is not trusted, or a client choosing
    /// its own address. The reader then reads nothing more.
    proxy_header: bool,
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.proxy_header {
            return Ok(0);
        }
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.sock.set_read_timeout(Some(left))?;
        }
        let n = (&*self.sock).read(buf)?;
        if !self.started && n > 0 {
            self.started = true;
            if super::proxy::is_header(&buf[..n]) {
                self.proxy_header = true;
                return Ok(0);
            }
        }
        Ok(n)
    }
}

pub struct Session<'a> {
    pub shared: &'a Shared,
    pub conn: ConnId,
    pub addr: SocketAddr,
    /// How the client came in.
    pub via: Via,
    /// The socket, shared with the reader, the hub and the server's registry (one
    /// descriptor). Written directly before login only.
    stream: Arc<Socket>,
    reader: LineReader<Reader>,
    /// Wrong passwords on this connection so far.
    failures: u32,
    /// Paces lines before login (after it, the user's shared bucket does).
    pace: Bucket,
    /// One of the user's `--max-sessions-per-user` slots, held from login to the end.
    slot: Option<SessionSlot<'a>>,
    /// Set once logged in.
    pub login: Option<Login>,
    /// Registered with the hub: writes go through it, and it must hear `Leave`.
    joined: bool,
    /// The hub took the login and the history went out: the chat stage may begin.
    chatting: bool,
    /// The room this session is in (its id and name; the topic as of when it came in). An
    /// IRC session may be in several: this is the one its last command was about.
    pub room: Room,
    /// What the client reads: its way's wire, with the IRC capabilities it asked for.
    pub wire: Wire,
    /// An IRC client's `QUIT` message, for the others' `QUIT`.
    pub quit_message: Option<String>,
}

impl Drop for Session<'_> {
    /// Runs on every exit, a panic included, so the hub never keeps a dead client.
    fn drop(&mut self) {
        if self.joined {
            let why = self.quit_message.take();
            let _ = self.shared.hub.send(Event::Leave {
                conn: self.conn,
                why,
            });
        }
    }
}

impl<'a> Session<'a> {
    pub fn new(
        shared: &'a Shared,
        conn: ConnId,
        stream: Arc<Socket>,
        addr: SocketAddr,
        via: Via,
    ) -> io::Result<Session<'a>> {
        // One snapshot of the configuration for the session's start: a reload meanwhile
        // must not give it a line limit from one file and a telnet setting from another.
        let config = shared.config.get();
        // The deadline runs from when the connection came in, not from here: a TLS
        // handshake, an SSH key exchange or a web request before the session do not extend it.
        let deadline = shared
            .door
            .deadline(conn)
            .unwrap_or_else(|| Instant::now() + config.login_timeout);
        let reader = Reader {
            sock: stream.clone(),
            deadline: Some(deadline),
            started: false,
            proxy_header: false,
        };
        // Before login the session writes itself; a client that doesn't read holds it this
        // long per write at most (the login deadline bounds the rest).
        stream.set_write_timeout(Some(config.login_timeout.min(WRITE_TIMEOUT)))?;
        Ok(Session {
            shared,
            conn,
            addr,
            via,
            stream,
            reader: LineReader::new(reader, config.max_line + wire_overhead(via), config.telnet),
            failures: 0,
            pace: Bucket::new(config.limits.max_rate),
            slot: None,
            login: None,
            joined: false,
            chatting: false,
            room: Room {
                id: rooms::LOBBY,
                name: "#lobby".into(),
                topic: String::new(),
                private: false,
            },
            wire: via.wire(),
            quit_message: None,
        })
    }

    // ---- output ----

    /// Sends the line protocol's text to the client, in its wire (an IRC client gets
    /// notices): directly before login, through the hub after. A prompt is sent the same
    /// way; it just has no line end.
    pub fn send(&mut self, text: &str) {
        match self.wire {
            Wire::Line => self.send_bytes(text.as_bytes().to_vec()),
            Wire::Irc(_) => {
                let notices = wire::notices(&self.nick(), text);
                self.send_bytes(notices.into_bytes());
            }
        }
    }

    /// The client's name on IRC: its account's once logged in, `*` before.
    pub fn nick(&self) -> String {
        self.login
            .as_ref()
            .map_or_else(|| "*".to_string(), |l| l.user.name.clone())
    }

    /// Sends bytes already in the client's wire (IRC's numerics), as [`Session::send`] does.
    pub fn send_bytes(&mut self, bytes: Vec<u8>) {
        if self.joined {
            let _ = self.shared.hub.send(Event::Reply {
                conn: self.conn,
                bytes,
            });
        } else {
            let _ = self.write_raw(&bytes);
        }
    }

    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        // Before login a client that does not read holds this thread no later than its login
        // deadline (and no write longer than WRITE_TIMEOUT); past it, a last word (`! Login
        // timed out.`) gets LAST_WORD.
        if let Some(deadline) = self.reader.get_mut().deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let limit = if left.is_zero() {
                LAST_WORD
            } else {
                left.min(WRITE_TIMEOUT)
            };
            self.stream.set_write_timeout(Some(limit))?;
        }
        (&*self.stream).write_all(bytes)
    }

    /// The connection began with a PROXY protocol header (from where none is trusted).
    pub fn sent_proxy_header(&mut self) -> bool {
        self.reader.get_mut().proxy_header
    }

    // ---- input ----

    /// The next line of text, paced to `--max-rate`. Lines that break the input rules are
    /// answered with an error and skipped; telnet answers owed to the client are sent on the
    /// way. Once the server cuts connections at shutdown, nothing more is read.
    pub fn read_line(&mut self) -> Result<String, End> {
        loop {
            if self.shared.cut.load(Ordering::SeqCst) {
                return Err(End::Gone);
            }
            let input = match self.reader.read_line() {
                Ok(Some(input)) => input,
                Ok(None) => return Err(End::Gone),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(End::TimedOut)
                }
                Err(_) => return Err(End::Gone),
            };
            // Sleeping here leaves the client's input in the kernel: TCP slows it down and
            // nothing is lost.
            let wait = match &self.slot {
                Some(slot) => slot.pace(),
                None => self.pace.take(),
            };
            std::thread::sleep(wait);
            let mut replies = self.reader.take_replies();
            if self.reader.needs_cr() {
                replies.push(b'\r');
            }
            if !replies.is_empty() {
                self.send_bytes(replies);
            }
            match input {
                Input::Line(bytes) => match String::from_utf8(bytes) {
                    Ok(line) => return Ok(line),
                    Err(_) => self.send(&text::not_utf8()),
                },
                Input::TooLong => {
                    let max = self.shared.config.get().max_line;
                    match self.wire {
                        Wire::Line => self.send(&text::line_too_long(max)),
                        Wire::Irc(_) => {
                            let why = format!(":Input line was too long (at most {max} bytes)");
                            let reply = wire::numeric(417, &self.nick(), &why);
                            self.send_bytes(reply.into_bytes());
                        }
                    }
                }
            }
        }
    }

    /// The client is known to speak telnet before it has read anything (see
    /// [`LineReader::assume_telnet`]), so a first prompt for a password turns its echo off.
    pub fn telnet_client(&mut self) {
        self.reader.assume_telnet();
    }

    /// Reads a password with the client's echo off (telnet clients only: `nc` gets no IAC).
    pub fn read_password(&mut self, prompt: &str) -> Result<String, End> {
        let telnet = self.reader.is_telnet();
        if telnet {
            let _ = self.write_raw(&ECHO_OFF);
        }
        self.send(prompt);
        // Surrounding spaces are not part of a password, here as in /login NAME PASSWORD.
        let line = self.read_line().map(|l| l.trim().to_string());
        if telnet {
            // The Enter key was not echoed either: end the prompt's line ourselves.
            let _ = self.write_raw(&ECHO_ON);
            let _ = self.write_raw(b"\r\n");
        }
        line
    }

    /// Charges `lines` more of the user's rate for what this line made the server do (a
    /// search): their next lines wait until it is paid.
    pub fn charge(&self, lines: u32) {
        if let Some(slot) = &self.slot {
            slot.charge(lines);
        }
    }

    /// Runs a store call on a pooled connection. On failure logs it, tells the client and
    /// returns `None`, so callers just go back to where they were.
    pub fn db<T>(
        &mut self,
        f: impl FnOnce(&crate::store::Conn) -> crate::error::Result<T>,
    ) -> Option<T> {
        match self.shared.store.conn().and_then(|c| f(&c)) {
            Ok(v) => Some(v),
            Err(e) => {
                log::error!("{}: {e}", self.addr);
                self.send(&text::database_unavailable());
                None
            }
        }
    }

    // ---- chat stage ----

    /// Registers with the hub: from now on every write goes through it. Lifts the login
    /// deadline; `--idle-timeout`, if set, bounds each wait for a line instead. Then loads
    /// this user's history here, not on the hub, up to the hub's watermark (lines after it
    /// the hub queues itself), so a storm of logins does not stall the chat. False if the
    /// hub refused the login (it told the client why).
    pub fn join(&mut self, login: Login) -> bool {
        log::info!(
            "{}: {} logged in ({}, {})",
            self.addr,
            login.user.name,
            login.method,
            self.via
        );
        let method = match login.method {
            Method::Password => 0,
            Method::Registered => 1,
            Method::Token => 2,
            Method::Key => 3,
        };
        super::metrics::inc(&super::metrics::METRICS.logins[method]);
        self.reader.get_mut().deadline = None;
        let _ = self
            .stream
            .set_read_timeout(self.shared.config.get().idle_timeout);
        let user = login.user.clone();
        self.login = Some(login);
        let (tx, rx) = mpsc::channel();
        // Where the user was last, and whether mentions ring: the hub needs both to
        // register the session. (A database failure here is no reason to refuse a login.)
        let ((bell, echo), room) = self
            .shared
            .store
            .conn()
            .and_then(|c| {
                let prefs = (users::bell(&c, user.id)?, users::echo(&c, user.id)?);
                Ok((prefs, rooms::of_user(&c, user.id)?))
            })
            .unwrap_or_else(|e| {
                log::error!("{}: {e}", self.addr);
                ((true, true), self.room.clone())
            });
        self.room = room.clone();
        let join = Event::Join {
            conn: self.conn,
            user: user.clone(),
            addr: self.addr,
            sock: self.stream.clone(),
            via: self.via,
            wire: self.wire,
            bell,
            echo,
            room: Box::new(room),
            watermark: tx,
        };
        if self.shared.hub.send(join).is_err() {
            return false;
        }
        self.joined = true;
        let Ok((watermark, online)) = rx.recv_timeout(super::shared::ASK_TIMEOUT) else {
            return false;
        };
        let (bytes, keep) = self.welcome_text(&user, watermark, online);
        let _ = self.shared.hub.send(Event::Welcome {
            conn: self.conn,
            bytes: bytes.into_bytes(),
            keep,
        });
        self.chatting = keep;
        keep
    }

    /// Bounds each wait for the client's next bytes (a way in that pings its clients).
    pub fn set_read_timeout(&self, limit: Option<Duration>) {
        let _ = self.stream.set_read_timeout(limit);
    }

    /// In the chat stage: the hub took the login.
    pub fn chatting(&self) -> bool {
        self.chatting
    }

    /// Tells a muted user so; true if muted.
    pub fn muted(&mut self) -> bool {
        let Some(user) = self.login.as_ref().map(|l| &l.user) else {
            return false;
        };
        match self.shared.moderation.mute(&name_key(&user.name)) {
            Some(mute) => {
                self.send(&muted_line(&mute));
                true
            }
            None => false,
        }
    }

    /// Sends a public line to the session's room (as the hub knows it: it may have moved the
    /// session out of an invite-only room); control characters are stripped and an empty
    /// result is ignored.
    pub fn say(&mut self, kind: Kind, text: &str) {
        self.say_in(None, kind, text);
    }

    /// Sends a public line to `room` (an IRC session's channel), as [`Session::say`].
    pub fn say_in(&mut self, room: Option<i64>, kind: Kind, text: &str) {
        let body = clean(text);
        if body.trim().is_empty() || self.muted() {
            return;
        }
        let _ = self.shared.hub.send(Event::Chat {
            conn: self.conn,
            room,
            kind,
            body,
        });
    }
}
