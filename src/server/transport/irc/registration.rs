//! Registration: from connect to a logged-in account. A client negotiates capabilities
//! (`CAP LS 302`, `CAP REQ :sasl`, `CAP END`), may log in with SASL `PLAIN` on the way, and
//! registers with `NICK` and `USER`; one without SASL logs in with `PASS name:password` or
//! `PASS password` and its nick as the account's name, or after registration with
//! `/msg NickServ IDENTIFY password` (or `REGISTER password` for a new account). IRCv3's
//! `REGISTER` ([`super::account`]) makes an account and logs in at any point. Every try
//! goes through the session's own login checks: the password lock, bans, the session limit,
//! the registration limits; and the login deadline bounds it all.

use base64::Engine;

use super::message::{parse, Message};
use crate::server::session::{End, Flow, Login, Session};
use crate::server::text;
use crate::server::hub::Event;
use crate::server::wire::{self, Caps, Wire};
use crate::store::users;

/// What a client told us so far.
#[derive(Default)]
struct Registration {
    nick: Option<String>,
    user: bool,
    pass: Option<String>,
    /// `CAP LS` came and `CAP END` not yet: registration waits.
    negotiating: bool,
    /// `AUTHENTICATE PLAIN` came: what follows is its payload, in 400-byte pieces.
    plain: Option<String>,
    /// `NICK` and `USER` came and negotiation ended, without a login.
    done: bool,
    /// SASL succeeded: registration ends logged in.
    login: Option<Login>,
    /// The client was told how to log in (at the end of registration): a 451 after that is
    /// the numeric alone.
    told: bool,
}

/// Runs registration to a login, or returns why the connection ended.
pub fn run(s: &mut Session) -> Result<Login, &'static str> {
    let mut reg = Registration::default();
    loop {
        let line = match s.read_line() {
            Ok(line) => line,
            Err(End::TimedOut) => {
                s.send(&text::login_timed_out());
                s.send_bytes(wire::error(text::LOGIN_TIMED_OUT).into_bytes());
                return Err("login timed out");
            }
            Err(End::Gone) if s.sent_proxy_header() => {
                s.shared.unnamed_proxy(s.addr, "a PROXY header");
                return Err("a PROXY header, not from a trusted proxy");
            }
            Err(End::Gone) => return Err("connection closed"),
        };
        let Some(m) = parse(&line) else {
            continue;
        };
        match step(s, &mut reg, &m) {
            Flow::Continue => {}
            Flow::LoggedIn(login) => return Ok(login),
            Flow::Close => {
                s.send_bytes(wire::error("Closing link").into_bytes());
                return Err("refused at login");
            }
        }
        if reg.done || reg.negotiating || !reg.user || reg.nick.is_none() {
            continue;
        }
        if let Some(login) = reg.login.take() {
            return Ok(login);
        }
        reg.done = true;
        if let Some(pass) = reg.pass.take() {
            let nick = reg.nick.clone().unwrap_or_default();
            // `name:password` as bouncers take it; else the nick names the account.
            let (name, password) = match pass.split_once(':') {
                Some((name, password)) if !name.is_empty() => (name.to_string(), password),
                _ => (nick, pass.as_str()),
            };
            match s.password_login(&users::normalize(&name), password) {
                Flow::LoggedIn(login) => return Ok(login),
                _ => {
                    s.send_bytes(wire::numeric(464, "*", ":Password incorrect").into_bytes());
                    s.send_bytes(wire::error("Password incorrect").into_bytes());
                    return Err("wrong password");
                }
            }
        }
        s.send(&how_to_log_in(s));
        reg.told = true;
    }
}

/// One message during registration.
fn step(s: &mut Session, reg: &mut Registration, m: &Message) -> Flow {
    let nick = reg.nick.clone().unwrap_or_else(|| "*".into());
    match m.command.as_str() {
        "CAP" => cap(s, &nick, m, &mut reg.negotiating),
        "AUTHENTICATE" => return authenticate(s, reg, m.param(0).unwrap_or("")),
        "PASS" => reg.pass = m.param(0).map(str::to_string),
        "NICK" => match m.param(0) {
            Some(n) if !n.is_empty() => reg.nick = Some(n.to_string()),
            _ => reply(s, 431, &nick, ":No nickname given"),
        },
        "USER" => reg.user = true,
        "PING" => pong(s, m),
        "PONG" => {}
        "QUIT" => return Flow::Close,
        "REGISTER" | "VERIFY" if reg.login.is_some() => {
            let account = reg.login.as_ref().map(|l| l.user.name.clone());
            super::account::already(s, &m.command, account.as_deref().unwrap_or("*"));
        }
        "REGISTER" => {
            return match super::account::register(s, reg.nick.as_deref(), m) {
                // Registration ends when the client says so, logged in (as after SASL).
                Flow::LoggedIn(login) if !reg.done => {
                    reg.login = Some(login);
                    Flow::Continue
                }
                flow => flow,
            };
        }
        "VERIFY" => super::account::verify(s, m),
        "PRIVMSG" if reg.done && m.param(0).is_some_and(is_nickserv) => {
            return nickserv(s, reg.nick.as_deref().unwrap_or(""), m.param(1).unwrap_or(""));
        }
        _ => {
            reply(s, 451, &nick, ":You have not logged in");
            if reg.done && !reg.told {
                reg.told = true;
                let how = how_to_log_in(s);
                s.send(&how);
            }
        }
    }
    Flow::Continue
}

/// The notice a client not logged in by the end of registration gets.
fn how_to_log_in(s: &Session) -> String {
    text::irc_how_to_log_in(!s.shared.config.get().no_register)
}

/// `/msg NickServ IDENTIFY [NAME] PASSWORD` or `REGISTER PASSWORD`, after registration.
fn nickserv(s: &mut Session, nick: &str, text: &str) -> Flow {
    let words: Vec<&str> = text.split_whitespace().collect();
    let flow = match words.as_slice() {
        [cmd, password] if cmd.eq_ignore_ascii_case("IDENTIFY") => {
            s.password_login(&users::normalize(nick), password)
        }
        [cmd, name, password] if cmd.eq_ignore_ascii_case("IDENTIFY") => {
            s.password_login(&users::normalize(name), password)
        }
        [cmd, password, ..] if cmd.eq_ignore_ascii_case("REGISTER") => {
            s.register(&users::normalize(nick), password)
        }
        _ => {
            let how = how_to_log_in(s);
            s.send(&how);
            Flow::Continue
        }
    };
    if let Flow::LoggedIn(login) = &flow {
        let account = login.user.name.clone();
        let mask = wire::mask(&account);
        let logged = format!("{mask} {account} :You are now logged in as {account}");
        reply(s, 900, nick, &logged);
    }
    flow
}

fn reply(s: &mut Session, code: u16, nick: &str, params: &str) {
    s.send_bytes(wire::numeric(code, nick, params).into_bytes());
}

/// `PING token` → `PONG besedka :token`.
pub fn pong(s: &mut Session, m: &Message) {
    let token = m.param(0).unwrap_or(wire::SERVER);
    s.send_bytes(format!(":{0} PONG {0} :{token}\r\n", wire::SERVER).into_bytes());
}

pub fn is_nickserv(target: &str) -> bool {
    target.eq_ignore_ascii_case("NickServ")
}

/// `CAP`: `LS` lists what besedka offers ([`Caps::OFFERED`]), `REQ` takes a set of them
/// whole or none (`-name` drops one), `LIST` says what the client has. A change after login
/// tells the hub, which writes to the client from then on as it asked.
pub fn cap(s: &mut Session, nick: &str, m: &Message, negotiating: &mut bool) {
    let sub = m.param(0).unwrap_or("").to_ascii_uppercase();
    let line = |rest: &str| format!(":{} CAP {nick} {rest}\r\n", wire::SERVER);
    let out = match sub.as_str() {
        "LS" => {
            *negotiating = s.login.is_none();
            let v302 = m.param(1).and_then(|v| v.parse::<u32>().ok()) >= Some(302);
            line(&format!("LS :{}", Caps::listed(v302)))
        }
        "LIST" => line(&format!("LIST :{}", s.wire.caps().names())),
        "REQ" => {
            *negotiating = s.login.is_none();
            let asked = m.param(1).unwrap_or("");
            match requested(s.wire.caps(), asked) {
                Some(caps) => {
                    s.wire = Wire::Irc(caps);
                    if s.login.is_some() {
                        let (conn, wire) = (s.conn, s.wire);
                        let _ = s.shared.hub.send(Event::Caps { conn, wire });
                    }
                    line(&format!("ACK :{asked}"))
                }
                None => line(&format!("NAK :{asked}")),
            }
        }
        "END" => {
            *negotiating = false;
            return;
        }
        _ => wire::numeric(410, nick, &format!("{sub} :Invalid CAP command")),
    };
    s.send_bytes(out.into_bytes());
}

/// `caps` with the changes `CAP REQ :a -b c` asks for, or `None` if it names one not
/// offered (then nothing changes, as IRCv3 says).
fn requested(caps: Caps, asked: &str) -> Option<Caps> {
    let mut out = caps;
    for word in asked.split_whitespace() {
        let (off, name) = match word.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, word),
        };
        let cap = Caps::named(name)?;
        out = if off { out.without(cap) } else { out.with(cap) };
    }
    Some(out)
}

/// `AUTHENTICATE`: `PLAIN`, then its payload (`authzid NUL authcid NUL password`, base64, in
/// pieces of 400). A password that is a session token logs in with the token.
fn authenticate(s: &mut Session, reg: &mut Registration, arg: &str) -> Flow {
    let nick = reg.nick.clone().unwrap_or_else(|| "*".into());
    if reg.login.is_some() {
        reply(s, 907, &nick, ":You have already authenticated");
        return Flow::Continue;
    }
    let Some(mut payload) = reg.plain.take() else {
        if arg.eq_ignore_ascii_case("PLAIN") {
            reg.plain = Some(String::new());
            s.send_bytes(b"AUTHENTICATE +\r\n".to_vec());
        } else if arg == "*" {
            reply(s, 906, &nick, ":SASL authentication aborted");
        } else {
            reply(s, 908, &nick, "PLAIN :are available SASL mechanisms");
            reply(s, 904, &nick, ":SASL authentication failed");
        }
        return Flow::Continue;
    };
    if arg == "*" {
        reply(s, 906, &nick, ":SASL authentication aborted");
        return Flow::Continue;
    }
    if arg != "+" {
        payload.push_str(arg);
    }
    if arg.len() == 400 && payload.len() < 4000 {
        reg.plain = Some(payload); // more to come
        return Flow::Continue;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(payload.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let parts: Option<Vec<String>> =
        decoded.map(|d| d.split('\0').map(str::to_string).collect());
    let Some([_, name, password]) = parts.as_deref() else {
        reply(s, 904, &nick, ":SASL authentication failed: not PLAIN");
        return Flow::Continue;
    };
    let flow = if uuid::Uuid::parse_str(password.trim()).is_ok() {
        s.redeem_token(password)
    } else {
        s.password_login(&users::normalize(name), password)
    };
    match flow {
        Flow::LoggedIn(login) => {
            let account = login.user.name.clone();
            let mask = wire::mask(&account);
            reply(s, 900, &nick, &format!("{mask} {account} :You are now logged in as {account}"));
            reply(s, 903, &nick, ":SASL authentication successful");
            // Registration ends when the client says so (CAP END), logged in.
            reg.login = Some(login);
            Flow::Continue
        }
        Flow::Continue => {
            reply(s, 904, &nick, ":SASL authentication failed");
            Flow::Continue
        }
        Flow::Close => {
            reply(s, 904, &nick, ":SASL authentication failed");
            Flow::Close
        }
    }
}
