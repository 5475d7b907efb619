//! What a client reads: the line protocol's text, or IRC messages. A client's [`Wire`] is
//! its way in's ([`super::socket::Via`]); whoever makes bytes for a client renders them in
//! its wire: the session for its own answers, the hub for chat, presence and notices.
//!
//! The line protocol's server text becomes IRC `NOTICE`s ([`notices`]); chat lines, joins,
//! leaves and topics become the IRC messages for them ([`privmsg`], [`join`], …), so an IRC
//! client files them in the right buffer. Every IRC line ends in `\r\n`.

mod batches;
mod caps;

pub use batches::{batch, chathistory, history, targets};
pub use caps::{server_time, Caps};

use crate::store::messages::{Kind, Message};

/// How a client's bytes are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    /// The line protocol: `* notices`, `! errors`, `[TIME] name: text` (telnet, nc, TLS, SSH,
    /// the web page).
    Line,
    /// IRC messages (RFC 1459/2812 as modern clients speak them), with the IRCv3
    /// capabilities the client asked for.
    Irc(Caps),
}

impl Wire {
    pub fn is_irc(self) -> bool {
        matches!(self, Wire::Irc(_))
    }

    /// The client's capabilities (none for the line protocol).
    pub fn caps(self) -> Caps {
        match self {
            Wire::Line => Caps::NONE,
            Wire::Irc(caps) => caps,
        }
    }

    /// What decides the bytes of a chat line for this client: clients with equal keys
    /// share one run ([`Caps::for_runs`]).
    pub fn for_runs(self) -> Wire {
        match self {
            Wire::Line => Wire::Line,
            Wire::Irc(caps) => Wire::Irc(caps.for_runs()),
        }
    }
}

/// The server's name in IRC prefixes and the host part of every user's mask.
pub const SERVER: &str = "besedka";

/// `nick!nick@besedka`: a user's IRC source (besedka has no user names or hosts to show).
pub fn mask(nick: &str) -> String {
    format!("{nick}!{nick}@{SERVER}")
}

/// The line protocol's `text` (one or more lines) as NOTICEs from the server to `target`
/// (a nick, `*` before login, or a channel). The notice mark `* ` is dropped (IRC clients
/// show notices apart already); the error mark `! ` is kept so an error still reads as one.
/// Terminal bytes (a bell) and empty lines are left out.
pub fn notices(target: &str, text: &str) -> String {
    let mut out = String::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        let line = line.strip_prefix("* ").unwrap_or(line);
        let line: String = line.chars().filter(|c| !c.is_control()).collect();
        if line.trim().is_empty() {
            continue;
        }
        out.push_str(&format!(":{SERVER} NOTICE {target} :{line}\r\n"));
    }
    out
}

/// A numeric reply: `:besedka CODE nick PARAMS` (`params` as written, the last one with its
/// `:` if it needs one).
pub fn numeric(code: u16, nick: &str, params: &str) -> String {
    format!(":{SERVER} {code:03} {nick} {params}\r\n")
}

/// A committed message as IRC: a public line as `PRIVMSG #room` (`room`: its room's name,
/// which a message staged by the hub does not carry), a private one as `PRIVMSG nick`, a
/// `/me` as a CTCP ACTION; with the tags `caps` asked for (server-time, msgid, account).
pub fn privmsg(m: &Message, room: &str, caps: Caps) -> String {
    let account = m.author_id.map(|_| m.author_name.as_str());
    let tags = caps.tags(m.id, &m.created_at, account);
    tags + &privmsg_untagged(m, room)
}

fn privmsg_untagged(m: &Message, room: &str) -> String {
    let target = match &m.recipient {
        Some((_, to)) => to.as_str(),
        None => room,
    };
    let body = match m.kind {
        Kind::Me => format!("\u{1}ACTION {}\u{1}", m.body),
        Kind::Say => m.body.clone(),
    };
    format!(
        ":{} PRIVMSG {target} :{}\r\n",
        mask(&m.author_name),
        trailing(&body)
    )
}

/// `REDACT` (IRCv3 `draft/message-redaction`): the line `id` (its `msgid`) to `target` (its
/// channel, or for a private line the nick it was sent to) was removed by `by` (an
/// operator's nick; `None`: the console, shown as the server).
pub fn redact(by: Option<&str>, target: &str, id: i64) -> String {
    let source = by.map_or_else(|| SERVER.to_string(), mask);
    format!(":{source} REDACT {target} {id}\r\n")
}

pub fn join(nick: &str, room: &str) -> String {
    format!(":{} JOIN {room}\r\n", mask(nick))
}

/// `JOIN` as a client with `extended-join` reads it: with the account and the real name
/// (besedka's nick is the account, and it keeps no real names: the name again).
pub fn extended_join(nick: &str, room: &str) -> String {
    format!(":{} JOIN {room} {nick} :{nick}\r\n", mask(nick))
}

/// `AWAY` (away-notify): `nick` went away (`Some(text)`) or came back.
pub fn away(nick: &str, away: Option<&str>) -> String {
    match away {
        Some(why) => format!(":{} AWAY :{}\r\n", mask(nick), trailing(why)),
        None => format!(":{} AWAY\r\n", mask(nick)),
    }
}

pub fn part(nick: &str, room: &str, why: &str) -> String {
    format!(":{} PART {room} :{why}\r\n", mask(nick))
}

/// A user went offline: every channel they shared with the reader loses them.
pub fn quit(nick: &str, why: &str) -> String {
    format!(":{} QUIT :{why}\r\n", mask(nick))
}

pub fn topic(nick: &str, room: &str, topic: &str) -> String {
    format!(":{} TOPIC {room} :{topic}\r\n", mask(nick))
}

/// The topic as a client coming into `room` is told it: 332, or 331 when there is none.
pub fn topic_reply(nick: &str, room: &str, topic: &str) -> String {
    if topic.is_empty() {
        numeric(331, nick, &format!("{room} :No topic is set"))
    } else {
        numeric(332, nick, &format!("{room} :{topic}"))
    }
}

/// `RPL_NAMREPLY` lines (as many as the names need) and `RPL_ENDOFNAMES`.
pub fn names(nick: &str, room: &str, names: &[String]) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for n in names {
        if !line.is_empty() && line.len() + n.len() > 400 {
            out.push_str(&numeric(353, nick, &format!("= {room} :{line}")));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(n);
    }
    if !line.is_empty() {
        out.push_str(&numeric(353, nick, &format!("= {room} :{line}")));
    }
    out.push_str(&numeric(366, nick, &format!("{room} :End of /NAMES list")));
    out
}

/// `RPL_WHOREPLY` for each `(name, op, away)` and `RPL_ENDOFWHO`.
pub fn who(nick: &str, room: &str, people: &[(String, bool, bool)]) -> String {
    let mut out = String::new();
    for (name, op, away) in people {
        let flags = format!(
            "{}{}",
            if *away { "G" } else { "H" },
            if *op { "@" } else { "" }
        );
        out.push_str(&numeric(
            352,
            nick,
            &format!("{room} {name} {SERVER} {SERVER} {name} {flags} :0 {name}"),
        ));
    }
    out.push_str(&numeric(315, nick, &format!("{room} :End of /WHO list")));
    out
}

/// `WHOIS` of someone online, told to `nick`: `RPL_WHOISUSER` (311, host `besedka`),
/// `RPL_WHOISCHANNELS` (319: their rooms, `@` before each for an operator, as `NAMES`
/// marks them), `RPL_WHOISSERVER` (312), `RPL_AWAY` (301) when away, `RPL_WHOISOPERATOR`
/// (313) for an operator (besedka's operators moderate the whole server, as IRC
/// operators), `RPL_WHOISIDLE` (317: seconds since they last said something, and when they
/// logged in, in Unix seconds) when `idle` is known, then `RPL_ENDOFWHOIS` (318).
pub fn whois(
    nick: &str,
    name: &str,
    rooms: &[String],
    (away, op): (Option<&str>, bool),
    idle: Option<(u64, u64)>,
) -> String {
    let mut out = numeric(311, nick, &format!("{name} {name} {SERVER} * :{name}"));
    if !rooms.is_empty() {
        let mark = if op { "@" } else { "" };
        let list: Vec<String> = rooms.iter().map(|r| format!("{mark}{r}")).collect();
        out.push_str(&numeric(319, nick, &format!("{name} :{}", list.join(" "))));
    }
    out.push_str(&numeric(
        312,
        nick,
        &format!("{name} {SERVER} :besedka, one chat for telnet, SSH, the web and IRC"),
    ));
    if let Some(why) = away {
        out.push_str(&numeric(301, nick, &format!("{name} :{}", trailing(why))));
    }
    if op {
        out.push_str(&numeric(
            313,
            nick,
            &format!("{name} :is a server operator"),
        ));
    }
    if let Some((quiet, signon)) = idle {
        let text = format!("{name} {quiet} {signon} :seconds idle, signon time");
        out.push_str(&numeric(317, nick, &text));
    }
    out.push_str(&numeric(318, nick, &format!("{name} :End of /WHOIS list")));
    out
}

/// `WHOIS` of a nick that is not online (no such account, or one that is offline):
/// `ERR_NOSUCHNICK` (401) and `RPL_ENDOFWHOIS` (318).
pub fn no_such_nick_whois(nick: &str, asked: &str) -> String {
    let mut out = numeric(401, nick, &format!("{asked} :No such nick"));
    out.push_str(&numeric(318, nick, &format!("{asked} :End of /WHOIS list")));
    out
}

/// An IRCv3 standard reply: `FAIL COMMAND CODE [CONTEXT…] :why` (`context` as written,
/// space-separated).
pub fn fail(command: &str, code: &str, context: &str, why: &str) -> String {
    let why = trailing(why.trim_end().trim_start_matches(['*', '!', ' ']));
    match context.is_empty() {
        true => format!(":{SERVER} FAIL {command} {code} :{why}\r\n"),
        false => format!(":{SERVER} FAIL {command} {code} {context} :{why}\r\n"),
    }
}

/// A closing line: `ERROR :why`.
pub fn error(why: &str) -> String {
    let why = why.trim_end().trim_start_matches(['*', '!', ' ']);
    format!("ERROR :{}\r\n", why.lines().next().unwrap_or(""))
}

/// Text that must not end an IRC line early: line ends become spaces (cleaned text has none;
/// this is a second guard).
fn trailing(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// Removes IRC formatting from a client's text: bold, italics, underline, strike-through,
/// monospace, reverse and reset (`\x02 \x1d \x1f \x1e \x11 \x16 \x0f`), and colours with
/// their digits (`\x03FG[,BG]`, `\x04RRGGBB[,RRGGBB]`). besedka stores plain text that every
/// client shows alike; what is left of other controls [`super::protocol::clean`] removes.
pub fn strip_formatting(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{2}' | '\u{1d}' | '\u{1f}' | '\u{1e}' | '\u{11}' | '\u{16}' | '\u{f}' => {}
            '\u{3}' => skip_colour(&mut chars, 2, |c| c.is_ascii_digit()),
            '\u{4}' => skip_colour(&mut chars, 6, |c| c.is_ascii_hexdigit()),
            c => out.push(c),
        }
    }
    out
}

/// Skips a colour's `FG[,BG]`, each up to `width` characters that `digit` accepts.
fn skip_colour(
    chars: &mut std::iter::Peekable<std::str::Chars>,
    width: usize,
    digit: fn(char) -> bool,
) {
    let take = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        let mut n = 0;
        while n < width && chars.peek().is_some_and(|&c| digit(c)) {
            chars.next();
            n += 1;
        }
        n
    };
    if take(chars) > 0 && chars.peek() == Some(&',') {
        let mut ahead = chars.clone();
        ahead.next();
        if ahead.peek().is_some_and(|&c| digit(c)) {
            chars.next();
            take(chars);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_goes_and_the_text_stays() {
        assert_eq!(strip_formatting("\u{2}bold\u{2} \u{1d}it\u{f}"), "bold it");
        assert_eq!(strip_formatting("\u{3}04red\u{3} \u{3}4,12x"), "red x");
        assert_eq!(
            strip_formatting("\u{3}4,a"),
            ",a",
            "a comma without a colour stays"
        );
        assert_eq!(strip_formatting("\u{4}ff0000hex"), "hex");
        assert_eq!(strip_formatting("12\u{3}345"), "125", "two digits at most");
    }

    #[test]
    fn server_text_becomes_notices() {
        assert_eq!(
            notices("alice", "* You are in #lobby.\r\n! No.\r\n\x07\r\n"),
            ":besedka NOTICE alice :You are in #lobby.\r\n:besedka NOTICE alice :! No.\r\n"
        );
    }

    #[test]
    fn names_are_cut_into_lines() {
        let many: Vec<String> = (0..100).map(|i| format!("user{i:04}")).collect();
        let out = names("me", "#lobby", &many);
        assert!(out.lines().count() > 2, "{out}");
        assert!(out.lines().all(|l| l.len() < 512));
        assert!(out.ends_with(":besedka 366 me #lobby :End of /NAMES list\r\n"));
    }
}
