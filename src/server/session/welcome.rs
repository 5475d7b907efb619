//! What a session is shown when it comes into a room: at login (private messages missed
//! since the last visit, then the room's history) and on `/join` (the room's history).
//! Loaded here, off the hub, up to the watermark the hub gave; the hub queues what comes
//! after it and puts this text in front of that.

use std::sync::mpsc;

use super::super::hub::Event;
use super::super::protocol::history_lines;
use super::super::shared::ASK_TIMEOUT;
use super::super::text;
use super::super::wire::{self, Wire};
use super::Session;
use crate::store::messages::{self, Message};
use crate::store::read_marks;
use crate::store::rooms::Room;
use crate::store::users::{self, User};

/// Private messages shown at most at login as missed since the last visit.
const MISSED_SHOWN: u32 = 50;

impl Session<'_> {
    /// The room line and the history up to `watermark`, or why the session cannot go on (its
    /// account was removed while it logged in: checked after the hub registered it, so a
    /// `clear-auth` either is seen here or disconnects it there).
    /// Private messages since the last visit are shown first, unless another session of the
    /// user is online (then they were seen there); the user's private messages are in the
    /// history too.
    pub(super) fn welcome_text(&self, user: &User, watermark: i64, online: bool) -> (String, bool) {
        let config = self.shared.config.get();
        let (limit, budget) = (config.history, config.max_backlog / 2);
        let room = self.room.id;
        let loaded = self.shared.store.conn().and_then(|c| {
            // One read: the account is still there, and what it had seen.
            let Some(seen) = users::seen(&c, user.id)? else {
                return Ok(None);
            };
            let seen = if online { watermark } else { seen };
            let missed = messages::private_since(&c, user.id, seen, watermark, MISSED_SHOWN)?;
            // What came in the rooms since this user was last in each (another session
            // online has been reading: nothing to say).
            let unread = if online {
                Vec::new()
            } else {
                read_marks::unread(&c, user.id, watermark, &[])?
            };
            let history = room_history(&c, (user.id, room, true), limit, watermark)?;
            Ok(Some((missed, unread, history)))
        });
        match loaded {
            Ok(Some(((missed, total), unread, (mut history, mark)))) => {
                let mut out = String::new();
                if total > 0 {
                    let mut missed_text = text::missed(total as usize, missed.len());
                    missed_text.push_str(&history_lines(&missed, budget / 2, self.ids()));
                    out.push_str(&self.render(&missed_text, None));
                    // Shown once: not again in the history below.
                    history.retain(|m| !missed.iter().any(|x| x.id == m.id));
                }
                if !unread.is_empty() {
                    out.push_str(&self.render(&text::since_last_visit(&unread), None));
                }
                out.push_str(&self.came_in(None));
                let left = budget.saturating_sub(out.len());
                out.push_str(&self.history(&history, mark, left));
                (out, true)
            }
            Ok(None) => (text::account_removed(), false),
            Err(e) => {
                log::error!("could not load history for {}: {e}", user.name);
                (text::history_unavailable(), true)
            }
        }
    }

    /// `/join`: moves this session to `room` (already stored as the user's room); with
    /// `keep` (IRC's `JOIN`), adds it to the session's rooms. The hub tells the rooms and
    /// answers with its watermark; the room's history up to it goes out next, then the
    /// room's online line. False if the hub did not answer (the client is gone or the
    /// server is stopping).
    pub fn move_to(&mut self, room: Room, keep: bool) -> bool {
        let (tx, rx) = mpsc::channel();
        let ev = Event::Move {
            conn: self.conn,
            room: Box::new(room.clone()),
            keep,
            watermark: tx,
        };
        if self.shared.hub.send(ev).is_err() {
            return false;
        }
        let Ok(watermark) = rx.recv_timeout(ASK_TIMEOUT) else {
            return false;
        };
        let left = std::mem::replace(&mut self.room, room);
        let mut out = self.came_in((!keep).then_some(left.name.as_str()));
        let config = self.shared.config.get();
        let (limit, budget) = (config.history, config.max_backlog / 2);
        let user = self.login.as_ref().map_or(0, |l| l.user.id);
        match self
            .shared
            .store
            .conn()
            .and_then(|c| room_history(&c, (user, self.room.id, false), limit, watermark))
        {
            Ok((msgs, mark)) => out.push_str(&self.history(&msgs, mark, budget)),
            Err(e) => {
                log::error!("could not load the history of {}: {e}", self.room.name);
                out.push_str(&self.render(&text::history_unavailable(), None));
            }
        }
        // Always sent: the hub holds this client's lines until it arrives.
        let _ = self.shared.hub.send(Event::Welcome {
            conn: self.conn,
            bytes: out.into_bytes(),
            keep: true,
        });
        true
    }
}

impl Session<'_> {
    /// What tells the client it is in its room now (`left`: the room it was in): `* You are
    /// in #room.`, or on IRC the channel's `PART` and `JOIN` with its topic (the hub sends
    /// its `NAMES`).
    fn came_in(&self, left: Option<&str>) -> String {
        let room = &self.room;
        match self.wire {
            Wire::Line => text::you_are_in(&room.name, &room.topic),
            Wire::Irc(caps) => {
                let nick = self.nick();
                let mut out = String::new();
                if let Some(left) = left {
                    out.push_str(&wire::part(&nick, left, &format!("left for {}", room.name)));
                }
                if caps.has(wire::Caps::EXTENDED_JOIN) {
                    out.push_str(&wire::extended_join(&nick, &room.name));
                } else {
                    out.push_str(&wire::join(&nick, &room.name));
                }
                out.push_str(&wire::topic_reply(&nick, &room.name, &room.topic));
                out
            }
        }
    }

    /// The ids in front of replayed lines: the web page's, hidden (an operator asks
    /// `/history` for the ids it shows).
    fn ids(&self) -> crate::server::protocol::Ids {
        crate::server::protocol::Ids {
            shown: false,
            hidden: self.via.line_ids(),
        }
    }

    /// The line protocol's `text` in the client's wire; on IRC, notices to `channel` (the
    /// room's history, shown in the channel's buffer) or to the client.
    fn render(&self, text: &str, channel: Option<&str>) -> String {
        match self.wire {
            Wire::Line => text.to_string(),
            Wire::Irc(_) => wire::notices(channel.unwrap_or(&self.nick()), text),
        }
    }

    /// The room's history (`msgs`, the newest that fit in `budget` bytes) in the client's
    /// wire: lines with their dates; on IRC with server-time, `PRIVMSG`s with their times
    /// (in a `chathistory` batch if it asked for batches), else notices to the channel.
    /// A client that asked for `draft/chathistory` gets none: it asks for what it lacks
    /// (the spec: no history played back by itself).
    /// `mark`: the line protocol gets a line before the first of `msgs` after it (unread
    /// since the user was last here).
    fn history(&self, msgs: &[Message], mark: Unread, budget: usize) -> String {
        let room = &self.room.name;
        if self.wire.caps().has(wire::Caps::CHATHISTORY) {
            return String::new();
        }
        if let Some(irc) = wire::history(self.wire.caps(), room, msgs, budget) {
            return irc;
        }
        let split = mark.map_or(msgs.len(), |(m, _)| msgs.partition_point(|x| x.id <= m));
        if split == msgs.len() {
            return self.render(&history_lines(msgs, budget, self.ids()), Some(room));
        }
        // Read, then what is new: each half of the budget, the new lines first served.
        let new = history_lines(&msgs[split..], budget, self.ids());
        let mut text = history_lines(&msgs[..split], budget.saturating_sub(new.len()), self.ids());
        let count = mark.map_or(0, |(_, new)| new);
        text.push_str(&text::new_since_last_visit(count, msgs.len() - split));
        text.push_str(&new);
        self.render(&text, Some(room))
    }
}

/// Where the user's unread lines start in a room, and how many (counted up to
/// `read_marks::COUNT_CAP`): `None` when nothing is new.
type Unread = Option<(i64, i64)>;

/// Lines shown at most when coming back to a room with more new lines than `--history`.
const NEW_SHOWN: i64 = 200;

/// A room's history for `user` coming into it, up to `watermark`: the last `limit` lines,
/// and before them, if lines came since the user was last there (their unread marker), those
/// new lines (up to [`NEW_SHOWN`]) after `limit` lines from before; with the marker, to show
/// where the new ones start. `private`: the
/// user's private messages among them (at login; a `/join` shows the room's lines only).
fn room_history(
    c: &crate::store::Conn,
    (user, room, private): (i64, i64, bool),
    limit: u32,
    watermark: i64,
) -> crate::error::Result<(Vec<Message>, Unread)> {
    let mark = read_marks::of(c, user, room)?.filter(|&m| m < watermark);
    let new = match mark {
        Some(m) => read_marks::count_since(c, room, m, watermark, read_marks::COUNT_CAP)?,
        None => 0,
    };
    // The new lines, after as much of what came before as the history shows anyway; past
    // NEW_SHOWN of them, their newest NEW_SHOWN alone.
    let limit = if new > NEW_SHOWN {
        NEW_SHOWN as u32
    } else {
        limit + new as u32
    };
    let with = private.then_some(user);
    let msgs = messages::visible(c, room, with, limit, Some(watermark + 1))?;
    Ok((msgs, mark.filter(|_| new > 0).map(|m| (m, new))))
}
