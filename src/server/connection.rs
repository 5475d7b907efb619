//! One connection's life on a pool worker, in order: the greeting, the login stage, the chat
//! stage, the goodbye. What each step does is in [`super::session`] and [`super::commands`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::commands;
use super::protocol::valid_name;
use super::session::{End, Flow, Method, Session, Stage};
use super::shared::Shared;
use super::socket::ConnId;
use super::socket::{Socket, Via};
use super::text;
use crate::auth::MIN_PASSWORD_CHARS;
use crate::store::messages::Kind;
use crate::store::users::{self, name_key, User};

/// Who the way in says the client is, before the session starts.
pub enum Known {
    /// No one: the `Name:` dialogue.
    Nobody,
    /// A name the client gave but did not prove (SSH's user name): the dialogue starts at it,
    /// maybe at a password. The client is a telnet client (SSH's line editor): known before
    /// it says so, or that first password would be echoed.
    Name(String),
    /// The way in authenticated the user (SSH with a key or a password): no login stage.
    User(User, Method),
}

/// Serves one connection from greeting to goodbye.
pub fn run(
    shared: &Shared,
    conn: ConnId,
    stream: Arc<Socket>,
    addr: SocketAddr,
    via: Via,
    known: Known,
) {
    let mut s = match Session::new(shared, conn, stream, addr, via) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("{addr}: cannot set up the connection: {e}");
            return;
        }
    };
    let reason = serve(&mut s, known);
    match &s.login {
        Some(l) => log::info!("{addr}: {} disconnected ({via}, {reason})", l.user.name),
        None => log::info!("{addr}: disconnected before login ({via}, {reason})"),
    }
}

/// Both stages; returns why the connection ended, for the log.
fn serve(s: &mut Session, known: Known) -> &'static str {
    // Only to a client that reads telnet (not a browser: its relay would drop the offer).
    let telnet = s.shared.config.get().telnet && s.via.telnet();
    if telnet && s.write_raw(&super::telnet::OFFER).is_err() {
        return "write failed";
    }
    let online = s.shared.stats.users_online.load(Ordering::Relaxed);
    s.send(&text::welcome(online));
    let login = match known {
        Known::User(user, method) => match s.login_as(user, method) {
            Flow::LoggedIn(login) => Ok(Some(login)),
            _ => return "refused at login",
        },
        Known::Name(name) => {
            s.telnet_client();
            login_stage(s, Some(&name))
        }
        Known::Nobody => {
            s.send(&text::how_to_log_in());
            login_stage(s, None)
        }
    };
    match login {
        Ok(Some(login)) => {
            // A session's place: the door counts logged-in users apart from those still
            // logging in. (A connection dropped from the pending budget was cut already.)
            if !s.shared.door.logged_in(s.conn) {
                let shared = s.shared;
                shared
                    .refusals
                    .log(&shared.config.get(), s.addr, super::refusals::Why::Full);
                s.send(&text::server_full(s.shared.config.get().max_clients));
                return "refused: server full";
            }
            if !s.join(login) {
                return "refused at login";
            }
            crate::memory::release_unused_stack();
        }
        Ok(None) => return "quit",
        Err(End::Gone) if s.sent_proxy_header() => {
            // A PROXY header from where none is trusted: a proxy the operator has not named
            // with --trusted-proxy, or someone choosing their own address.
            s.shared.unnamed_proxy(s.addr, "a PROXY header");
            s.send(&text::untrusted_proxy_header());
            return "a PROXY header, not from a trusted proxy";
        }
        Err(End::Gone) => return "connection closed",
        Err(End::TimedOut) => {
            s.send(&text::login_timed_out());
            return "login timed out";
        }
    }
    chat_stage(s)
}

/// Not inlined: the login's locals (and those of what it calls inline) then live in a frame
/// that is gone by the chat stage, instead of in `serve`'s, which stays on the stack for the
/// whole session: every byte of it is resident per client (see `memory::release_unused_stack`).
#[inline(never)]
fn login_stage(s: &mut Session, given: Option<&str>) -> Result<Option<super::session::Login>, End> {
    if let Some(name) = given {
        match given_name(s, name)? {
            Flow::Continue => s.send(&text::how_to_log_in()),
            Flow::Close => return Ok(None),
            Flow::LoggedIn(login) => return Ok(Some(login)),
        }
    }
    loop {
        s.send("Name: ");
        let line = s.read_line()?;
        let line = erased(&line);
        let line = typed(&line).trim();
        if line.is_empty() {
            continue;
        }
        let flow = if line.starts_with('/') {
            commands::dispatch(s, line, Stage::Login)?
        } else {
            interactive(s, line)?
        };
        match flow {
            Flow::Continue => {}
            Flow::Close => return Ok(None),
            Flow::LoggedIn(login) => return Ok(Some(login)),
        }
    }
}

/// The interactive path: a name, then a password or a new account.
fn interactive(s: &mut Session, name: &str) -> Result<Flow, End> {
    let name = &users::normalize(name);
    if !s.name_ok(name) {
        return Ok(Flow::Continue);
    }
    let Some(found) = s.db(|c| users::find(c, name)) else {
        return Ok(Flow::Continue);
    };
    match found {
        Some((user, hash)) => account(s, user, &hash, None),
        None => new_account(s, name, &text::new_user(name, MIN_PASSWORD_CHARS)),
    }
}

/// The name the client gave (`ssh carol@HOST`): an account's goes to its password, a free
/// one to making the account, each as if typed at `Name:` (the same checks, lock and
/// failure counts); Enter on an empty password goes back to `Name:`. A name that breaks
/// the rule goes there without a word: it may be the local login name that `ssh HOST`
/// sends, which the user never chose.
fn given_name(s: &mut Session, name: &str) -> Result<Flow, End> {
    let name = &users::normalize(name);
    if !valid_name(name) {
        return Ok(Flow::Continue);
    }
    let Some(found) = s.db(|c| users::find(c, name)) else {
        return Ok(Flow::Continue);
    };
    match found {
        Some((user, hash)) => {
            let intro = text::password_for(&user.name);
            account(s, user, &hash, Some(&intro))
        }
        None => new_account(s, name, &text::name_is_free(name, MIN_PASSWORD_CHARS)),
    }
}

/// An account's password, asked until it is right, given up (an empty line: back to
/// `Name:`), locked or failed too often; `intro` is said just before the first prompt.
fn account(s: &mut Session, user: User, hash: &str, intro: Option<&str>) -> Result<Flow, End> {
    // Refused before the prompt: no one types a password for nothing.
    if s.login_locked(Some(&name_key(&user.name))) {
        return Ok(Flow::Continue);
    }
    if s.refuse_if_banned(&user) {
        return Ok(Flow::Close);
    }
    if let Some(intro) = intro {
        s.send(intro);
    }
    loop {
        let password = s.read_password("Password: ")?;
        if password.is_empty() {
            return Ok(Flow::Continue); // back to Name:
        }
        // Asked again only while another try can work; the lock goes back to Name:.
        if let Some(flow) = s.check_password(user.clone(), hash, &password) {
            return Ok(flow);
        }
    }
}

/// Making the account `name` (free as far as the name rule goes): the registration limits
/// and look-alike check first, then `intro`, then the new password twice.
fn new_account(s: &mut Session, name: &str, intro: &str) -> Result<Flow, End> {
    if !s.may_register() || !s.name_free(name) {
        return Ok(Flow::Continue);
    }
    s.send(intro);
    loop {
        let password = s.read_password("Password: ")?;
        if password.is_empty() {
            return Ok(Flow::Continue);
        }
        if !s.password_ok(&password) {
            continue;
        }
        let again = s.read_password("Repeat password: ")?;
        if again != password {
            s.send(&text::passwords_differ());
            continue;
        }
        return Ok(s.register(name, &password));
    }
}

fn chat_stage(s: &mut Session) -> &'static str {
    loop {
        let line = match s.read_line() {
            Ok(line) => line,
            Err(End::Gone) => return "connection closed",
            Err(End::TimedOut) => {
                if let Some(idle) = s.shared.config.get().idle_timeout {
                    s.send(&text::idle_timeout(&super::moderation::short(idle)));
                }
                return "idle timeout";
            }
        };
        // Backspaces are applied to see whether a command was typed; a chat line is said as
        // it came (its controls are cleaned away like any other's).
        let raw = line;
        let edited = erased(&raw);
        let line = typed(&edited);
        let flow = if let Some(text) = line.strip_prefix("//") {
            s.say(Kind::Say, &format!("/{text}"));
            Flow::Continue
        } else if line.starts_with('/') {
            let flow = match commands::dispatch(s, line.trim(), Stage::Chat) {
                Ok(flow) => flow,
                Err(_) => return "connection closed",
            };
            crate::memory::release_unused_stack();
            flow
        } else {
            s.say(Kind::Say, typed(&raw));
            Flow::Continue
        };
        if let Flow::Close = flow {
            return "quit";
        }
    }
}

/// The line with its Backspaces (and DELs) applied, as a terminal showed it while typed
/// (a raw `nc` sends them in the line; a telnet client in line mode edits before sending).
fn erased(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains(['\u{8}', '\u{7f}']) {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '\u{8}' | '\u{7f}' => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// What the user typed, without the control keys and escape sequences in front of it (a
/// Ctrl-L to clear the screen, an arrow key): `^L/help` is still `/help`, not chat.
fn typed(line: &str) -> &str {
    let mut rest = line;
    loop {
        let mut chars = rest.chars();
        match chars.next() {
            Some('\u{1b}') => {
                // ESC [ params final, ESC O x (keypad), or ESC and one more.
                let after = chars.as_str();
                rest = if let Some(csi) = after.strip_prefix('[') {
                    match csi.find(|c: char| ('\u{40}'..='\u{7e}').contains(&c)) {
                        Some(end) => &csi[end + 1..],
                        None => "",
                    }
                } else if after.starts_with('/') {
                    after // a lone Escape, then the command
                } else {
                    let skip = if after.starts_with('O') { 2 } else { 1 };
                    let mut next = after.chars();
                    for _ in 0..skip {
                        next.next();
                    }
                    next.as_str()
                };
            }
            Some(c) if c.is_control() => rest = chars.as_str(),
            _ => return rest,
        }
    }
}
