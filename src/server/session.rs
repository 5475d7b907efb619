//! One client's state and what it can do: read a line, send text, log in, register, speak.
//! The order of things (greeting, login stage, chat stage) is in [`super::connection`]; the
//! slash-commands are in [`super::commands`]. Both use this module; it uses neither.
//!
//! Until login the session writes to its socket itself (blocking, with a timeout). From
//! login on, every byte to the client goes through the hub, so chat lines and the session's
//! own answers never interleave and a slow reader can never block this thread's writes.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::hub::{ConnId, Event};
use super::limits::{Bucket, SessionSlot};
use super::moderation::{banned_line, muted_line};
use super::protocol::{clean, error, notice, quote, valid_name, NAME_RULE};
use super::telnet::{Input, LineReader, ECHO_OFF, ECHO_ON};
use super::Shared;
use crate::auth::{self, MIN_PASSWORD_CHARS};
use crate::store::messages::Kind;
use crate::store::tokens;
use crate::store::users::{self, name_key, Clash, User};

/// Longest a blocking write to a client may take before login.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

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
    sock: TcpStream,
    deadline: Option<Instant>,
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.sock.set_read_timeout(Some(left))?;
        }
        self.sock.read(buf)
    }
}

pub struct Session<'a> {
    pub shared: &'a Shared,
    pub conn: ConnId,
    pub addr: SocketAddr,
    /// The write side, used directly before login only.
    stream: TcpStream,
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
}

impl Drop for Session<'_> {
    /// Runs on every exit, a panic included, so the hub never keeps a dead client.
    fn drop(&mut self) {
        if self.joined {
            let _ = self.shared.hub.send(Event::Leave { conn: self.conn });
        }
    }
}

impl<'a> Session<'a> {
    pub fn new(
        shared: &'a Shared,
        conn: ConnId,
        stream: TcpStream,
        addr: SocketAddr,
    ) -> io::Result<Session<'a>> {
        let reader = Reader {
            sock: stream.try_clone()?,
            deadline: Some(Instant::now() + shared.config.login_timeout),
        };
        // Before login the session writes itself; a client that doesn't read holds it this
        // long per write at most (the login deadline bounds the rest).
        stream.set_write_timeout(Some(shared.config.login_timeout.min(WRITE_TIMEOUT)))?;
        Ok(Session {
            shared,
            conn,
            addr,
            stream,
            reader: LineReader::new(reader, shared.config.max_line, shared.config.telnet),
            failures: 0,
            pace: Bucket::new(shared.config.limits.max_rate),
            slot: None,
            login: None,
            joined: false,
        })
    }

    // ---- output ----

    /// Sends text to the client: directly before login, through the hub after. A prompt is
    /// sent the same way; it just has no line end.
    pub fn send(&mut self, text: &str) {
        self.send_bytes(text.as_bytes().to_vec());
    }

    fn send_bytes(&mut self, bytes: Vec<u8>) {
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
        self.stream.write_all(bytes)
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
                Some(slot) => self.shared.limits.pace(slot),
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
                    Err(_) => self.send(&error("That line is not valid UTF-8; it was ignored.")),
                },
                Input::TooLong => self.send(&error(&format!(
                    "Line too long (over {} bytes); it was ignored.",
                    self.shared.config.max_line
                ))),
            }
        }
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

    // ---- login checks ----

    /// Says how long logins stay locked for this address (and account); true if they are.
    pub fn login_locked(&mut self, account: Option<&str>) -> bool {
        let Some(wait) = self.shared.limits.login_locked(self.addr.ip(), account) else {
            return false;
        };
        if let Some(more) = self.shared.quiet_refusals.allow() {
            log::info!(
                "{}: login refused: too many failed logins ({more} more refusals not logged)",
                self.addr
            );
        }
        self.send(&error(&format!(
            "Too many failed logins. Try again in {} seconds.",
            wait.as_secs() + 1
        )));
        true
    }

    /// Refuses a banned user before any password work; true if banned.
    pub fn refuse_if_banned(&mut self, user: &User) -> bool {
        match self.shared.moderation.name_ban(&name_key(&user.name)) {
            Some(ban) => {
                log::info!("{}: refused banned user {}", self.addr, user.name);
                self.send(&banned_line(&ban));
                true
            }
            None => false,
        }
    }

    /// Checks a password for a known user; counts failures (here and across connections) and
    /// closes after too many.
    pub fn check_password(&mut self, user: User, hash: &str, password: &str) -> Flow {
        let key = name_key(&user.name);
        if self.login_locked(Some(&key)) {
            return Flow::Continue;
        }
        if self.refuse_if_banned(&user) {
            return Flow::Close;
        }
        match self.shared.hasher.verify(password, hash) {
            Ok(true) => {
                self.shared.limits.succeeded(&key);
                self.welcome(user, Method::Password, None)
            }
            Ok(false) => {
                self.failures += 1;
                self.shared.limits.failed(self.addr.ip(), Some(&key));
                log::info!("{}: failed login for {}", self.addr, user.name);
                if self.failures >= MAX_FAILURES {
                    self.send(&error("Too many failed attempts."));
                    Flow::Close
                } else {
                    self.send(&error("Wrong password."));
                    Flow::Continue
                }
            }
            Err(e) => {
                log::warn!("cannot check the password of {}: {e}", user.name);
                self.send(&error("Server error: cannot check this password now."));
                Flow::Close
            }
        }
    }

    /// A login attempt with a name no account has: counts against the address.
    pub fn unknown_name(&mut self, name: &str) {
        if self.login_locked(None) {
            return;
        }
        self.shared.limits.failed(self.addr.ip(), None);
        self.send(&error(&format!(
            "No such user: {}. Use /register to create it.",
            quote(name)
        )));
    }

    /// Whether a new password is acceptable; says why not.
    pub fn password_ok(&mut self, password: &str) -> bool {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            self.send(&error(&format!(
                "Password too short: at least {MIN_PASSWORD_CHARS} characters."
            )));
            return false;
        }
        true
    }

    /// Whether a name follows the rule; says why not.
    pub fn name_ok(&mut self, name: &str) -> bool {
        if !valid_name(name) {
            self.send(&error(&format!(
                "Invalid name: {}. Names are {NAME_RULE}.",
                quote(name)
            )));
            return false;
        }
        true
    }

    /// Whether this connection may create an account now; says why not.
    pub fn may_register(&mut self) -> bool {
        if self.shared.config.no_register {
            self.send(&error(
                "Registration is closed on this server. Ask the operator for an account.",
            ));
            return false;
        }
        if !self.shared.limits.may_register(self.addr.ip()) {
            self.send(&error(
                "Too many new accounts from your address. Try again later.",
            ));
            return false;
        }
        true
    }

    /// Creates the account and logs it in, after checking the name, the registration limits
    /// and the password (again, for the interactive path: cheap, and it keeps every check in
    /// one place).
    pub fn register(&mut self, name: &str, password: &str) -> Flow {
        if !self.name_ok(name) || !self.may_register() {
            return Flow::Continue;
        }
        if !self.name_free(name) || !self.password_ok(password) {
            return Flow::Continue;
        }
        let hash = match self.shared.hasher.hash(password) {
            Ok(h) => h,
            Err(e) => {
                log::warn!("cannot hash a new password: {e}");
                self.send(&error("Server error: cannot register now."));
                return Flow::Close;
            }
        };
        match self.db(|c| users::create(c, name, &hash)) {
            Some(Some(user)) => {
                self.shared.limits.registered(self.addr.ip());
                log::info!("{}: registered {}", self.addr, user.name);
                self.welcome(user, Method::Registered, None)
            }
            // Someone registered this name, or a look-alike, meanwhile.
            Some(None) => match self.db(|c| users::clash(c, name)) {
                Some(Some(clash)) => self.clash(name, clash),
                _ => Flow::Continue,
            },
            None => Flow::Continue,
        }
    }

    /// Whether no user has this name or one that looks like it; says why not. Checked before
    /// hashing (argon2 is too costly to spend on a taken name); the insert still has the final
    /// word when two people register at once.
    pub fn name_free(&mut self, name: &str) -> bool {
        match self.db(|c| users::clash(c, name)) {
            Some(None) => true,
            Some(Some(clash)) => {
                self.clash(name, clash);
                false
            }
            None => false,
        }
    }

    /// Says why a name cannot be registered.
    fn clash(&mut self, name: &str, clash: Clash) -> Flow {
        self.send(&error(&match clash {
            Clash::Taken => format!(
                "The name {} is taken. Choose another, or log in with its password.",
                quote(name)
            ),
            Clash::TooClose(existing) => {
                format!("That name is too close to an existing one: {existing}.")
            }
        }));
        Flow::Continue
    }

    /// `/token TOKEN`.
    pub fn redeem_token(&mut self, token: &str) -> Flow {
        if self.login_locked(None) {
            return Flow::Continue;
        }
        let hash = auth::token_hash(token);
        match self.db(|c| tokens::redeem(c, &hash)) {
            Some(Some(user)) => self.welcome(user, Method::Token, Some(hash)),
            Some(None) => {
                self.shared.limits.failed(self.addr.ip(), None);
                log::info!("{}: unknown or expired token", self.addr);
                self.send(&error("Unknown or expired token."));
                Flow::Continue
            }
            None => Flow::Continue,
        }
    }

    /// The last checks before a login counts (bans, the user's session limit), then a new
    /// token for a password login or registration, then the greeting.
    fn welcome(&mut self, user: User, method: Method, token_hash: Option<String>) -> Flow {
        let key = name_key(&user.name);
        if let Some(ban) = self.shared.moderation.ban_on(&key, self.addr.ip()) {
            log::info!("{}: refused banned user {}", self.addr, user.name);
            self.send(&banned_line(&ban));
            return Flow::Close;
        }
        let Some(slot) = self.shared.limits.claim_session(user.id) else {
            self.send(&error(&format!(
                "Too many sessions for {} ({}).",
                user.name,
                self.shared.limits.rules().max_sessions_per_user
            )));
            return Flow::Close;
        };
        // A password login or a registration gets a new token, shown once.
        let (shown, token_hash) = match token_hash {
            Some(hash) => (None, hash),
            None => {
                let (token, hash) = auth::new_token();
                let ttl = self.shared.config.token_ttl_days;
                if self
                    .db(|c| tokens::insert(c, user.id, &hash, ttl))
                    .is_none()
                {
                    return Flow::Continue;
                }
                (Some(token), hash)
            }
        };
        self.send(&notice(&format!("Hello, {}!", user.name)));
        if let Some(token) = shown {
            self.send(&notice(&format!(
                "Your session token: {token}; next time type /token {token} to log in without a password."
            )));
        }
        self.slot = Some(slot);
        Flow::LoggedIn(Login {
            user,
            method,
            token_hash,
        })
    }

    /// Runs a store call on a pooled connection. On failure logs it, tells the client and
    /// returns `None`, so callers just go back to where they were.
    pub fn db<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Connection) -> crate::Result<T>,
    ) -> Option<T> {
        match self.shared.store.conn().and_then(|c| f(&c)) {
            Ok(v) => Some(v),
            Err(e) => {
                log::error!("{}: {e}", self.addr);
                self.send(&error(
                    "Server error: the database is unavailable. Try again.",
                ));
                None
            }
        }
    }

    // ---- chat stage ----

    /// Registers with the hub: from now on every write goes through it. Lifts the login
    /// deadline; `--idle-timeout`, if set, bounds each wait for a line instead.
    pub fn join(&mut self, login: Login) {
        log::info!(
            "{}: {} logged in ({:?})",
            self.addr,
            login.user.name,
            login.method
        );
        self.reader.get_mut().deadline = None;
        let _ = self
            .stream
            .set_read_timeout(self.shared.config.idle_timeout);
        if let Ok(sock) = self.stream.try_clone() {
            let _ = self.shared.hub.send(Event::Join {
                conn: self.conn,
                user: login.user.clone(),
                addr: self.addr,
                sock,
            });
            self.joined = true;
        }
        self.login = Some(login);
    }

    pub fn joined(&self) -> bool {
        self.joined
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

    /// Sends a public line; control characters are stripped and an empty result is ignored.
    pub fn say(&mut self, kind: Kind, text: &str) {
        let body = clean(text);
        if body.trim().is_empty() || self.muted() {
            return;
        }
        let _ = self.shared.hub.send(Event::Chat {
            conn: self.conn,
            kind,
            body,
        });
    }
}
