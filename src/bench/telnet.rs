//! besedka's line protocol, as a bench client speaks it (telnet, nc): the login dialogue
//! (answering `Name: ` and `Password: `, `/token`, `/join`), and the chat lines, where a bench
//! line follows `[HH:MM:SS] NAME`. The socket and the line splitting are [`super::client`]'s.

use super::client::{Change, Client, Ctx, Framing, Login, Phase};
use super::line::{parse_bench, MARK};

impl Client {
    /// Answers `Name: `, `Password: ` or `Repeat password: ` when the unended line is one.
    pub(super) fn prompt(&mut self, password: &str) -> Change {
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

    pub(super) fn on_line(&mut self, line: &[u8], ctx: &mut Ctx) -> Change {
        if self.framing != Framing::Line {
            return self.on_irc(line, ctx);
        }
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
        if let Some(b) = parse_bench(&line[at + MARK.len()..]) {
            self.count(b, ctx);
        }
    }
}
