//! The bench's IRC framing (`--proto irc`): how a client registers, gets into its channel and
//! recognises a bench line in a `PRIVMSG`. Everything else (the socket, pacing, counting) is
//! the same as for the line protocol, so both servers are measured by the same code.
//!
//! To besedka ([`Framing::IrcAccount`]) a client logs in with SASL `PLAIN`, the password
//! being its token (no argon2 for the server in the login storm) or its password; an account
//! that does not exist yet (`--addr` without `--tokens`) is registered with NickServ
//! `REGISTER` after the `904`. besedka puts it in a room at login; `JOIN` moves it. To ngircd
//! ([`Framing::IrcNick`]) there are no accounts: `NICK` and `USER`, then `JOIN` after `001`.
//! Either way the client is ready at the `366` (end of `NAMES`) of its channel.

use base64::Engine;

use super::client::{Change, Client, Ctx, Framing, Login, Phase};
use super::line::parse_bench;

/// What comes before a bench line's fields in a `PRIVMSG`'s text.
const MARK: &str = "#b ";

/// An IRC message: its source's nick, the command and the parameters (the trailing one
/// without its `:`). Tags (`@…`) are skipped.
pub struct Message<'a> {
    pub nick: &'a str,
    pub command: &'a str,
    pub params: Vec<&'a str>,
}

impl<'a> Message<'a> {
    pub fn parse(line: &'a str) -> Option<Message<'a>> {
        let mut rest = line.trim_end_matches(['\r', '\n']);
        if rest.starts_with('@') {
            rest = rest.split_once(' ')?.1;
        }
        let mut nick = "";
        if let Some(source) = rest.strip_prefix(':') {
            let (source, after) = source.split_once(' ')?;
            nick = source.split(['!', '@']).next().unwrap_or("");
            rest = after;
        }
        let (head, trailing) = match rest.split_once(" :") {
            Some((head, trailing)) => (head, Some(trailing)),
            None => (rest, None),
        };
        let mut words = head.split(' ').filter(|w| !w.is_empty());
        let command = words.next()?;
        let mut params: Vec<&str> = words.collect();
        params.extend(trailing);
        Some(Message {
            nick,
            command,
            params,
        })
    }

    fn param(&self, i: usize) -> &'a str {
        self.params.get(i).copied().unwrap_or("")
    }

    /// The last parameter: the text of a `PRIVMSG`, `NOTICE`, `ERROR` or numeric.
    fn text(&self) -> &'a str {
        self.params.last().copied().unwrap_or("")
    }
}

/// What a sender writes before each bench line's text.
pub fn privmsg_prefix(channel: &str) -> Vec<u8> {
    format!("PRIVMSG {channel} :").into_bytes()
}

impl Client {
    /// What a client sends as soon as it is connected (IRC clients speak first).
    pub(super) fn irc_hello(&self) -> String {
        let n = &self.name;
        match self.framing {
            // Registration waits for `CAP END`, which follows the SASL answer.
            Framing::IrcAccount => {
                format!("CAP REQ :sasl\r\nNICK {n}\r\nUSER {n} 0 * :{n}\r\nAUTHENTICATE PLAIN\r\n")
            }
            _ => format!("NICK {n}\r\nUSER {n} 0 * :{n}\r\n"),
        }
    }

    /// One line from an IRC server.
    pub(super) fn on_irc(&mut self, line: &[u8], ctx: &mut Ctx) -> Change {
        let Ok(text) = std::str::from_utf8(line) else {
            return Change::None;
        };
        let Some(m) = Message::parse(text) else {
            return Change::None;
        };
        if m.command == "PING" {
            let pong = format!("PONG :{}\r\n", m.param(0));
            return self.irc_send(&pong);
        }
        if self.phase == Phase::Ready {
            self.irc_chat(&m, ctx);
            return Change::None;
        }
        self.irc_login(&m, ctx.password)
    }

    fn irc_send(&mut self, text: &str) -> Change {
        match self.send(text.as_bytes()) {
            Ok(()) => Change::None,
            Err(e) => self.close(format!("write failed: {e}")),
        }
    }

    /// Registration and the way into the planned channel.
    fn irc_login(&mut self, m: &Message, password: &str) -> Change {
        let error = |m: &Message| format!("{} {}", m.command, m.text());
        match m.command {
            "AUTHENTICATE" if m.param(0) == "+" => {
                let secret = match &self.login {
                    Login::Token(t) => t.as_str(),
                    Login::Password => password,
                };
                let plain = format!("\0{}\0{secret}", self.name);
                let b64 = base64::engine::general_purpose::STANDARD.encode(plain);
                self.password_sent = true;
                return self.irc_send(&format!("AUTHENTICATE {b64}\r\n"));
            }
            "903" => return self.irc_send("CAP END\r\n"),
            "904" if matches!(self.login, Login::Token(_)) => {
                // The token was refused (expired, or a new database): the password.
                self.login = Login::Password;
                self.token = None;
                return self.irc_send("AUTHENTICATE PLAIN\r\n");
            }
            // No such account, or a wrong password: register it; a wrong password then
            // fails on the registration's refusal.
            "904" if !std::mem::replace(&mut self.register_sent, true) => {
                self.last_error = None; // "No such user": what REGISTER answers
                let register = format!("CAP END\r\nPRIVMSG NickServ :REGISTER {password}\r\n");
                return self.irc_send(&register);
            }
            "904" => return self.close(format!("login failed: the server said: {}", error(m))),
            // Registered just now: besedka shows no token at an IRC login; ask for one,
            // for the next run (its notice comes after the JOIN, in the chat phase).
            "001" if self.register_sent && self.framing != Framing::IrcNick => {
                return self.irc_send("TOKEN new\r\n");
            }
            "001" if self.framing == Framing::IrcNick && !self.join_sent => {
                self.join_sent = true;
                let join = format!("JOIN {}\r\n", self.room);
                return self.irc_send(&join);
            }
            "JOIN" if m.nick.eq_ignore_ascii_case(&self.name) => {
                // besedka put us in another room than planned: move.
                let here = m.param(0);
                if !here.eq_ignore_ascii_case(&self.room) && !self.join_sent {
                    self.join_sent = true;
                    let join = format!("JOIN {}\r\n", self.room);
                    return self.irc_send(&join);
                }
            }
            "366" if m.param(1).eq_ignore_ascii_case(&self.room) => {
                if self.register_sent && self.token.is_none() {
                    self.awaiting_token = true; // Ready when it comes
                    return Change::None;
                }
                self.phase = Phase::Ready;
                return Change::Ready;
            }
            "NOTICE" => {
                let text = m.text();
                if let Some(rest) = text.split("Your session token: ").nth(1) {
                    let token = rest.split(|c: char| c == ';' || c.is_whitespace()).next();
                    self.token = token.filter(|t| !t.is_empty()).map(str::to_string);
                    if std::mem::take(&mut self.awaiting_token) {
                        self.phase = Phase::Ready;
                        return Change::Ready;
                    }
                } else if let Some(e) = text.strip_prefix("! ") {
                    self.last_error = Some(e.to_string());
                }
            }
            "ERROR" => self.last_error = Some(m.text().to_string()),
            // A refused nick or password, or a full server: the login cannot go on.
            "432" | "433" | "436" | "464" | "465" => {
                return self.close(format!("login failed: the server said: {}", error(m)));
            }
            c if c.starts_with(['4', '5']) && c.len() == 3 => {
                self.last_error = Some(error(m));
            }
            _ => {}
        }
        // After a REGISTER, a refusal ends the login: waiting would only time out.
        if self.register_sent && self.last_error.is_some() && m.command == "NOTICE" {
            let why = self.last_error.take().unwrap_or_default();
            return self.close(format!("login failed: the server said: {why}"));
        }
        Change::None
    }

    /// A line in the message phase: a bench line is counted, an error noted.
    fn irc_chat(&mut self, m: &Message, ctx: &mut Ctx) {
        let error = match m.command {
            "PRIVMSG" => {
                if let Some(fields) = m.text().strip_prefix(MARK) {
                    if let Some(b) = parse_bench(fields.as_bytes()) {
                        self.count(b, ctx);
                    }
                }
                return;
            }
            // besedka's errors keep their `! ` in a NOTICE; the token asked for after a
            // registration comes as one too.
            "NOTICE" => match m.text().strip_prefix("! ") {
                Some(e) => e.to_string(),
                None => {
                    if let Some(rest) = m.text().split("Your session token: ").nth(1) {
                        let token = rest.split(|c: char| c == ';' || c.is_whitespace()).next();
                        self.token = token.filter(|t| !t.is_empty()).map(str::to_string);
                    }
                    return;
                }
            },
            c if c.starts_with(['4', '5']) && c.len() == 3 => format!("{c} {}", m.text()),
            _ => return,
        };
        ctx.tally.errors += 1;
        let name = &self.name;
        ctx.tally
            .first_error
            .get_or_insert_with(|| format!("{name}: {error}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_as_both_servers_write_them() {
        let m = Message::parse(":bench3!~bench3@127.0.0.1 PRIVMSG #lobby :#b 1f 2 3 4 xx").unwrap();
        assert_eq!((m.nick, m.command), ("bench3", "PRIVMSG"));
        assert_eq!(m.params, ["#lobby", "#b 1f 2 3 4 xx"]);
        let m = Message::parse(":bench1!~bench1@127.0.0.1 JOIN :#lobby\r\n").unwrap();
        assert_eq!((m.nick, m.param(0)), ("bench1", "#lobby"));
        let m = Message::parse(":besedka 366 bench1 #lobby :End of /NAMES list").unwrap();
        assert_eq!(
            (m.command, m.param(1), m.text()),
            ("366", "#lobby", "End of /NAMES list")
        );
        let m = Message::parse("@time=x :s PING :tok").unwrap();
        assert_eq!((m.command, m.param(0)), ("PING", "tok"));
        assert_eq!(Message::parse("PING abc").unwrap().param(0), "abc");
        assert!(Message::parse(":lonely").is_none());
    }
}
