//! One client's life on a pool worker: the login stage, then the chat stage.
//!
//! Until login the session writes to its socket itself (blocking, with a timeout). From
//! login on, every byte to the client goes through the hub, so chat lines and the session's
//! own answers never interleave and a slow reader can never block this thread's writes.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::commands::{self, Flow, Stage};
use super::hub::{ConnId, Event};
use super::protocol::{clean, error, notice, valid_name, NAME_RULE};
use super::telnet::{Input, LineReader, ECHO_OFF, ECHO_ON};
use super::Shared;
use crate::auth::{self, MIN_PASSWORD_CHARS};
use crate::store::messages::Kind;
use crate::store::tokens;
use crate::store::users::{self, User};

/// Longest a blocking write to a client may take before login.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Wrong passwords allowed per connection before it is closed.
pub const MAX_FAILURES: u32 = 3;

/// Why reading a line did not give one.
pub enum End {
    /// The client closed the connection or the socket failed.
    Gone,
    /// The login stage ran out of time.
    TimedOut,
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

/// A token bucket: `rate` lines a second on average, bursts of `2 × rate`.
struct Throttle {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Throttle {
    fn new(rate: u32) -> Throttle {
        let rate = f64::from(rate.max(1));
        Throttle {
            rate,
            tokens: 2.0 * rate,
            last: Instant::now(),
        }
    }

    /// Takes one token, sleeping until there is one.
    fn take(&mut self) {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(2.0 * self.rate);
        self.last = now;
        if self.tokens < 1.0 {
            let wait = (1.0 - self.tokens) / self.rate;
            std::thread::sleep(Duration::from_secs_f64(wait));
            self.tokens = 1.0;
            self.last = Instant::now();
        }
        self.tokens -= 1.0;
    }
}

pub struct Session<'a> {
    pub shared: &'a Shared,
    pub conn: ConnId,
    pub addr: SocketAddr,
    /// The write side, used directly before login only.
    stream: TcpStream,
    reader: LineReader<TcpStream>,
    /// The login stage ends by this instant.
    deadline: Option<Instant>,
    /// Wrong passwords so far.
    failures: u32,
    /// Set once logged in.
    pub login: Option<Login>,
    /// Registered with the hub: writes go through it, and it must hear `Leave`.
    joined: bool,
}

/// Serves one connection from greeting to goodbye.
pub fn run(shared: &Shared, conn: ConnId, stream: TcpStream, addr: SocketAddr) {
    let reader = match stream.try_clone() {
        Ok(r) => r,
        Err(e) => {
            log::warn!("{addr}: cannot clone socket: {e}");
            return;
        }
    };
    let mut s = Session {
        shared,
        conn,
        addr,
        stream,
        reader: LineReader::new(reader, shared.config.max_line, shared.config.telnet),
        deadline: Some(Instant::now() + shared.config.login_timeout),
        failures: 0,
        login: None,
        joined: false,
    };
    let reason = s.serve();
    match &s.login {
        Some(l) => log::info!("{addr}: {} disconnected ({reason})", l.user.name),
        None => log::info!("{addr}: disconnected before login ({reason})"),
    }
}

impl Drop for Session<'_> {
    /// Runs on every exit, a panic included, so the hub never keeps a dead client.
    fn drop(&mut self) {
        if self.joined {
            let _ = self.shared.hub.send(Event::Leave { conn: self.conn });
        }
    }
}

impl Session<'_> {
    /// Both stages; returns why the connection ended, for the log.
    fn serve(&mut self) -> &'static str {
        // Before login the session writes itself; a client that doesn't read holds it this
        // long per write at most (the login deadline bounds the rest).
        let _ = self
            .stream
            .set_write_timeout(Some(self.shared.config.login_timeout.min(WRITE_TIMEOUT)));
        if self.shared.config.telnet && self.write_raw(&super::telnet::OFFER).is_err() {
            return "write failed";
        }
        let online = self
            .shared
            .stats
            .users_online
            .load(std::sync::atomic::Ordering::Relaxed);
        self.send(&notice(&format!(
            "Welcome to besedka! {online} {} online.",
            if online == 1 { "user" } else { "users" }
        )));
        self.send(&notice(
            "Type your name to log in or register, or /token TOKEN to resume a session.",
        ));
        match self.login_stage() {
            Ok(Some(login)) => self.enter_chat(login),
            Ok(None) => return "quit",
            Err(End::Gone) => return "connection closed",
            Err(End::TimedOut) => {
                self.send(&error("Login timed out."));
                return "login timed out";
            }
        }
        self.chat_stage()
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

    fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    // ---- input ----

    /// The next line of text. Lines that break the input rules are answered with an error
    /// and skipped; telnet answers owed to the client are sent on the way.
    pub fn read_line(&mut self) -> Result<String, End> {
        loop {
            if let Some(deadline) = self.deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(End::TimedOut);
                }
                let _ = self.stream.set_read_timeout(Some(left));
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

    // ---- login stage ----

    fn login_stage(&mut self) -> Result<Option<Login>, End> {
        loop {
            self.send("Name: ");
            let line = self.read_line()?;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let flow = if line.starts_with('/') {
                commands::dispatch(self, line, Stage::Login)?
            } else {
                self.interactive(line)?
            };
            match flow {
                Flow::Continue => {}
                Flow::Close => return Ok(None),
                Flow::LoggedIn(login) => return Ok(Some(login)),
            }
        }
    }

    /// The interactive path: a name, then a password or a new account.
    fn interactive(&mut self, name: &str) -> Result<Flow, End> {
        if !self.name_ok(name) {
            return Ok(Flow::Continue);
        }
        let found = match self.db(|c| users::find(c, name)) {
            Some(found) => found,
            None => return Ok(Flow::Continue),
        };
        match found {
            Some((user, hash)) => loop {
                let password = self.read_password("Password: ")?;
                if password.is_empty() {
                    return Ok(Flow::Continue); // back to Name:
                }
                match self.check_password(user.clone(), &hash, &password) {
                    Flow::Continue => continue,
                    other => return Ok(other),
                }
            },
            None => {
                self.send(&notice(&format!(
                    "New user {name}. Choose a password (at least {MIN_PASSWORD_CHARS} characters), or an empty line to go back."
                )));
                loop {
                    let password = self.read_password("Password: ")?;
                    if password.is_empty() {
                        return Ok(Flow::Continue);
                    }
                    if !self.password_ok(&password) {
                        continue;
                    }
                    let again = self.read_password("Repeat password: ")?;
                    if again != password {
                        self.send(&error("Passwords do not match. Try again."));
                        continue;
                    }
                    return Ok(self.register(name, &password));
                }
            }
        }
    }

    /// Checks a password for a known user; counts failures and closes after too many.
    pub fn check_password(&mut self, user: User, hash: &str, password: &str) -> Flow {
        match self.shared.hasher.verify(password, hash) {
            Ok(true) => self.issue_token(user, Method::Password),
            Ok(false) => {
                self.failures += 1;
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
    fn name_ok(&mut self, name: &str) -> bool {
        if !valid_name(name) {
            self.send(&error(&format!(
                "Invalid name: {name}. Names are {NAME_RULE}."
            )));
            return false;
        }
        true
    }

    /// Creates the account and logs it in, after checking the name and the password (again,
    /// for the interactive path: cheap, and it keeps every check in one place).
    pub fn register(&mut self, name: &str, password: &str) -> Flow {
        if !self.name_ok(name) {
            return Flow::Continue;
        }
        // Checked before hashing: argon2 is too costly to spend on a name that is taken. The
        // insert below still catches two people registering the same name at once.
        match self.db(|c| users::find(c, name)) {
            Some(None) => {}
            Some(Some(_)) => return self.name_taken(name),
            None => return Flow::Continue,
        }
        if !self.password_ok(password) {
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
                log::info!("{}: registered {}", self.addr, user.name);
                self.issue_token(user, Method::Registered)
            }
            Some(None) => self.name_taken(name),
            None => Flow::Continue,
        }
    }

    fn name_taken(&mut self, name: &str) -> Flow {
        self.send(&error(&format!(
            "The name {name} is taken. Choose another, or log in with its password."
        )));
        Flow::Continue
    }

    /// Issues a session token after a password login or registration.
    fn issue_token(&mut self, user: User, method: Method) -> Flow {
        let (token, hash) = auth::new_token();
        let ttl = self.shared.config.token_ttl_days;
        if self
            .db(|c| tokens::insert(c, user.id, &hash, ttl))
            .is_none()
        {
            return Flow::Continue;
        }
        self.send(&notice(&format!("Hello, {}!", user.name)));
        self.send(&notice(&format!(
            "Your session token: {token}; next time type /token {token} to log in without a password."
        )));
        Flow::LoggedIn(Login {
            user,
            method,
            token_hash: hash,
        })
    }

    /// `/token TOKEN`.
    pub fn redeem_token(&mut self, token: &str) -> Flow {
        let hash = auth::token_hash(token);
        match self.db(|c| tokens::redeem(c, &hash)) {
            Some(Some(user)) => {
                self.send(&notice(&format!("Hello, {}!", user.name)));
                Flow::LoggedIn(Login {
                    user,
                    method: Method::Token,
                    token_hash: hash,
                })
            }
            Some(None) => {
                log::info!("{}: unknown or expired token", self.addr);
                self.send(&error("Unknown or expired token."));
                Flow::Continue
            }
            None => Flow::Continue,
        }
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

    fn enter_chat(&mut self, login: Login) {
        log::info!(
            "{}: {} logged in ({:?})",
            self.addr,
            login.user.name,
            login.method
        );
        self.deadline = None;
        let _ = self.stream.set_read_timeout(None);
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

    fn chat_stage(&mut self) -> &'static str {
        if !self.joined {
            return "server error";
        }
        // Sleeping here leaves the client's input in the kernel: TCP slows it down and
        // nothing is lost.
        let mut throttle = Throttle::new(self.shared.config.max_rate);
        loop {
            let line = match self.read_line() {
                Ok(line) => line,
                Err(_) => return "connection closed",
            };
            throttle.take();
            let flow = if let Some(text) = line.strip_prefix("//") {
                self.say(Kind::Say, &format!("/{text}"));
                Flow::Continue
            } else if line.starts_with('/') {
                match commands::dispatch(self, line.trim(), Stage::Chat) {
                    Ok(flow) => flow,
                    Err(_) => return "connection closed",
                }
            } else {
                self.say(Kind::Say, &line);
                Flow::Continue
            };
            if let Flow::Close = flow {
                return "quit";
            }
        }
    }

    /// Sends a public line; control characters are stripped and an empty result is ignored.
    pub fn say(&mut self, kind: Kind, text: &str) {
        let body = clean(text);
        if body.trim().is_empty() {
            return;
        }
        let _ = self.shared.hub.send(Event::Chat {
            conn: self.conn,
            kind,
            body,
        });
    }
}
