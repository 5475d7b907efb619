//! A logged-in IRC client's commands, each turned into what a session does: a line said, a
//! slash-command run through the command table (so its checks and answers are the same as
//! for every client), or a question to the hub answered in IRC.
//!
//! The channels the session is in are [`channels`](super::channels)' business.

use std::time::{Duration, Instant};

use super::channels::{self, Channels};
use super::message::{parse, Message};
use super::registration::{cap, is_nickserv, pong};
use crate::server::commands;
use crate::server::hub::Event;
use crate::server::protocol::clean;
use crate::server::session::{End, Flow, Session, Stage};
use crate::server::text;
use crate::server::wire;
use crate::store::messages::Kind;
use crate::store::users::{self, name_key};

/// Nicks one `WHOIS` asks about at most (`WHOIS a,b,c`).
const MAX_WHOIS: usize = 5;

/// Reads and runs the client's commands until it quits or goes; returns why, for the log.
/// After `ping` of silence the client is sent a `PING`; after as long again without a word,
/// it is cut (or sooner, at `--idle-timeout`).
pub fn run(s: &mut Session, ping: Duration) -> &'static str {
    let idle = s.shared.config.get().idle_timeout;
    s.set_read_timeout(Some(idle.map_or(ping, |idle| idle.min(ping))));
    let mut heard = Instant::now();
    let mut pinged = false;
    let mut chans = Channels::starting_in(s.room.clone());
    loop {
        let line = match s.read_line() {
            Ok(line) => line,
            Err(End::Gone) => return "connection closed",
            Err(End::TimedOut) => {
                let silent = heard.elapsed();
                if idle.is_some_and(|idle| silent >= idle) {
                    if let Some(idle) = idle {
                        let why = text::idle_timeout(&crate::server::moderation::short(idle));
                        s.send(&why);
                        s.send_bytes(wire::error(&why).into_bytes());
                    }
                    return "idle timeout";
                }
                if pinged && silent >= ping * 2 {
                    let why = format!("Ping timeout: {} seconds", silent.as_secs());
                    s.send_bytes(wire::error(&why).into_bytes());
                    return "ping timeout";
                }
                if !pinged && silent >= ping {
                    pinged = true;
                    s.send_bytes(format!("PING :{}\r\n", wire::SERVER).into_bytes());
                }
                continue;
            }
        };
        heard = Instant::now();
        pinged = false;
        let Some(m) = parse(&line) else {
            continue;
        };
        match command(s, &mut chans, &m) {
            Ok(Flow::Close) => return "quit",
            Ok(_) => {}
            Err(_) => return "connection closed",
        }
    }
}

fn command(s: &mut Session, chans: &mut Channels, m: &Message) -> Result<Flow, End> {
    let nick = s.nick();
    match m.command.as_str() {
        "PRIVMSG" | "NOTICE" => return privmsg(s, chans, m),
        "JOIN" => return channels::join_all(s, chans, m),
        "PART" => return channels::part_all(s, chans, m),
        "TOPIC" => return channels::topic(s, chans, m),
        "CHATHISTORY" => return super::history::chathistory(s, chans, m),
        "NAMES" => channels::names(s, chans, m, false),
        "WHO" => channels::names(s, chans, m, true),
        "WHOIS" => {
            // `WHOIS [server] nick`: the nick is the last parameter; `a,b` asks for each.
            let Some(list) = m.params.last().copied() else {
                reply(s, wire::numeric(431, &nick, ":No nickname given"));
                return Ok(Flow::Continue);
            };
            for (i, asked) in list.split(',').filter(|a| !a.is_empty()).enumerate() {
                if i >= MAX_WHOIS {
                    let why = format!("{asked} :Too many targets (at most {MAX_WHOIS} a WHOIS)");
                    reply(s, wire::numeric(407, &nick, &why));
                    break; // one 407 says it for the rest
                }
                let _ = s.shared.hub.send(Event::Whois {
                    conn: s.conn,
                    key: name_key(asked),
                    asked: asked.to_string(),
                });
            }
        }
        "LIST" => list(s),
        "MOTD" => reply(s, super::motd(&nick)),
        "PING" => pong(s, m),
        "PONG" => {}
        "QUIT" => {
            s.quit_message = quit_message(m.param(0));
            reply(s, wire::error("Closing link (quit)"));
            return Ok(Flow::Close);
        }
        "AWAY" => {
            return match m.param(0).filter(|t| !t.trim().is_empty()) {
                Some(why) => commands::dispatch(s, &format!("/away {why}"), Stage::Chat),
                None => commands::dispatch(s, "/back", Stage::Chat),
            };
        }
        "CAP" => cap(s, &nick, m, &mut false),
        "NICK" => {
            let asked = m.param(0).unwrap_or("");
            if name_key(asked) != name_key(&nick) {
                let why = format!("{asked} :Your nick is your account's name");
                reply(s, wire::numeric(432, &nick, &why));
            }
        }
        "REGISTER" | "VERIFY" => super::account::already(s, &m.command, &nick),
        "USER" | "PASS" => reply(s, wire::numeric(462, &nick, ":You are already registered")),
        "MODE" => match super::operator::ban_mode(s, chans, m) {
            Some(flow) => return flow,
            None => mode(s, m),
        },
        "KICK" => return super::operator::kick(s, chans, m),
        "INVITE" => return invite(s, chans, m),
        // besedka's own commands (`SEARCH words`, `ROOMS`, `HISTORY 50`, `MENTIONS`, …): IRC
        // clients send a command they do not know as it is typed, and `/quote` sends any.
        // The answer comes as notices, as to every client.
        other if commands::known(other) => {
            let line = format!("/{} {}", other.to_ascii_lowercase(), m.params.join(" "));
            return commands::dispatch(s, line.trim_end(), Stage::Chat);
        }
        _ => {
            let why = format!("{} :Unknown command", m.command);
            reply(s, wire::numeric(421, &nick, &why));
        }
    }
    Ok(Flow::Continue)
}

/// `PRIVMSG`/`NOTICE` to the session's channel (a line said), to a nick (a private
/// message) or to NickServ. IRC formatting is stripped, then the text is cleaned as every
/// client's is; a CTCP `ACTION` is a `/me`, other CTCP is dropped.
fn privmsg(s: &mut Session, chans: &Channels, m: &Message) -> Result<Flow, End> {
    let nick = s.nick();
    let Some(target) = m.param(0) else {
        reply(s, wire::numeric(411, &nick, ":No recipient given"));
        return Ok(Flow::Continue);
    };
    let Some(text) = m.param(1).filter(|t| !t.is_empty()) else {
        reply(s, wire::numeric(412, &nick, ":No text to send"));
        return Ok(Flow::Continue);
    };
    // The text is held to --max-line, as a telnet user's line is (the IRC line around it
    // may be longer: the reader allows for the command, the target and tags).
    let max = s.shared.config.get().max_line;
    if text.len() > max {
        let why = format!(":Input line was too long (at most {max} bytes of text)");
        reply(s, wire::numeric(417, &nick, &why));
        return Ok(Flow::Continue);
    }
    let (kind, text) = match text.strip_prefix('\u{1}') {
        Some(ctcp) => match ctcp.strip_prefix("ACTION ") {
            Some(action) => (Kind::Me, action.trim_end_matches('\u{1}')),
            None => return Ok(Flow::Continue),
        },
        None => (Kind::Say, text),
    };
    let text = wire::strip_formatting(text);
    // Muted: told why (the mute's end, in a notice), and IRC's 404.
    if !clean(&text).trim().is_empty() && !is_nickserv(target) && s.muted() {
        let why = format!("{target} :Cannot send to channel (you are muted)");
        reply(s, wire::numeric(404, &nick, &why));
        return Ok(Flow::Continue);
    }
    if target.starts_with('#') {
        match chans.get(target) {
            Some(room) => s.say_in(Some(room.id), kind, &text),
            None => {
                let why = format!("{target} :Cannot send to channel (join it first)");
                reply(s, wire::numeric(404, &nick, &why));
            }
        }
        return Ok(Flow::Continue);
    }
    if is_nickserv(target) {
        s.send(&text::irc_logged_in_as(&nick));
        return Ok(Flow::Continue);
    }
    let body = clean(&text);
    if body.trim().is_empty() {
        return Ok(Flow::Continue);
    }
    match s.db(|c| users::find(c, &users::normalize(target))) {
        Some(Some((to, _))) => {
            let _ = s.shared.hub.send(Event::Private {
                conn: s.conn,
                to,
                body,
            });
        }
        Some(None) => reply(s, wire::numeric(401, &nick, &format!("{target} :No such nick"))),
        None => {}
    }
    Ok(Flow::Continue)
}

/// `LIST`: the rooms, busiest first, as many as `/rooms` lists (the people in each, its
/// topic); a channel mask is not taken, the list is always the same.
fn list(s: &mut Session) {
    let nick = s.nick();
    let mut out = wire::numeric(321, &nick, "Channel :Users  Name");
    let user = s.login.as_ref().map(|l| l.user.id);
    match s.shared.rooms(commands::ROOMS_LISTED, user) {
        Ok((listed, _)) => {
            for r in &listed {
                let topic = r.topic.replace(['\r', '\n'], " ");
                let entry = format!("{} {} :{topic}", r.name, r.people);
                out.push_str(&wire::numeric(322, &nick, &entry));
            }
        }
        Err(e) => {
            log::error!("{}: LIST: {e}", s.addr);
            s.send(&text::database_unavailable());
        }
    }
    out.push_str(&wire::numeric(323, &nick, ":End of /LIST"));
    reply(s, out);
}

/// `MODE`: the channel's and the user's modes are empty; bans are
/// [`operator`](super::operator)'s.
fn mode(s: &mut Session, m: &Message) {
    let nick = s.nick();
    let target = m.param(0).unwrap_or("");
    let out = match (target.starts_with('#'), m.param(1)) {
        (true, None) => wire::numeric(324, &nick, &format!("{target} +")),
        (true, Some(_)) => wire::numeric(
            482,
            &nick,
            &format!("{target} :Modes are not kept here; operators use besedka's /ban and /kick"),
        ),
        (false, _) => wire::numeric(221, &nick, "+"),
    };
    reply(s, out);
}


fn reply(s: &mut Session, bytes: String) {
    s.send_bytes(bytes.into_bytes());
}

/// Characters of a quit message passed on at most.
const MAX_QUIT: usize = 200;

/// A `QUIT` message as the others see it: formatting stripped, cleaned as any line, cut to
/// [`MAX_QUIT`] characters; none if nothing is left.
fn quit_message(text: Option<&str>) -> Option<String> {
    let text = clean(&wire::strip_formatting(text?));
    let text: String = text.trim().chars().take(MAX_QUIT).collect();
    (!text.is_empty()).then_some(text)
}

/// `INVITE nick #room`: besedka's `/invite` in that room (it must be one the session is in;
/// its maker or an operator decides), answered as `/invite` is, in notices.
fn invite(s: &mut Session, chans: &Channels, m: &Message) -> Result<Flow, End> {
    let (Some(nick), Some(ch)) = (m.param(0), m.param(1)) else {
        return channels::need_more(s, m);
    };
    let Some(room) = chans.get(ch).cloned() else {
        channels::not_on(s, ch);
        return Ok(Flow::Continue);
    };
    s.room = room; // `/invite` is about the session's room
    commands::dispatch(s, &format!("/invite {nick}"), Stage::Chat)
}
