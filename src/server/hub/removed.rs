//! Lines an operator removed (`/delete`, a purge; stored already as tombstones): who is told
//! what. The operators online get the announcement; a web page the ids to take out of its
//! log, for the lines it may have shown (its rooms', its user's private ones); an IRC client
//! that asked for `draft/message-redaction` a `REDACT` per such line; a terminal nothing (it
//! cannot unprint a line).

use std::collections::HashMap;

use super::Hub;
use crate::server::outbox::Bytes;
use crate::server::socket::ConnId;
use crate::server::text;
use crate::server::wire::{self, Caps};
use crate::store::messages::Message;
use crate::store::removals::Removal;
use crate::store::users::name_key;

/// The console's name in `removed_by`: its `REDACT`s come from the server.
const CONSOLE: &str = "console";

impl Hub {
    pub(super) fn removed(&mut self, removal: &Removal) {
        let Some(first) = removal.lines.first() else {
            return;
        };
        let ids: Vec<i64> = removal.lines.iter().map(|m| m.id).collect();
        let said = text::removed(&removal.by, &ids, &first.author_name, &removal.what);
        log::info!("moderation: {said} (ids {})", listed(&ids));
        let announce: Bytes = text::from_server(&said).into_bytes().into();
        // Where each line was: its room, or the two users of a private line.
        let mut rooms: HashMap<i64, Vec<&Message>> = HashMap::new();
        let mut users: HashMap<i64, Vec<&Message>> = HashMap::new();
        for m in &removal.lines {
            match (&m.recipient, &m.room) {
                (Some((to, _)), _) => {
                    users.entry(*to).or_default().push(m);
                    if let Some(author) = m.author_id.filter(|a| a != to) {
                        users.entry(author).or_default().push(m);
                    }
                }
                (None, Some((room, _))) => rooms.entry(*room).or_default().push(m),
                (None, None) => {}
            }
        }
        let by = (removal.by != CONSOLE).then_some(removal.by.as_str());
        let conns: Vec<ConnId> = self.clients.keys().copied().collect();
        for conn in conns {
            let Some(c) = self.clients.get(&conn) else {
                continue;
            };
            let web = c.via.line_ids();
            let redact = c.wire.caps().has(Caps::MESSAGE_REDACTION);
            let op = self.moderation.is_op(&name_key(&c.user.name));
            let seen: Vec<&Message> = if web || redact {
                let mut seen: Vec<&Message> = c
                    .rooms
                    .iter()
                    .filter_map(|r| rooms.get(r))
                    .chain(users.get(&c.user.id))
                    .flatten()
                    .copied()
                    .collect();
                seen.sort_unstable_by_key(|m| m.id);
                seen
            } else {
                Vec::new()
            };
            if web && !seen.is_empty() {
                let list: Vec<String> = seen.iter().map(|m| m.id.to_string()).collect();
                let frame = format!("\u{1}removed {}\r\n", list.join(","));
                self.queue_owned(conn, frame.into_bytes());
            }
            if redact && !seen.is_empty() {
                let mut out = String::new();
                for m in &seen {
                    let target = match (&m.recipient, &m.room) {
                        (Some((_, to)), _) => to.as_str(),
                        (None, Some((_, room))) => room.as_str(),
                        (None, None) => continue,
                    };
                    out.push_str(&wire::redact(by, target, m.id));
                }
                self.queue_owned(conn, out.into_bytes());
            }
            if op {
                self.queue(conn, &announce);
            }
        }
    }
}

/// Ids the log names one by one at most; a larger removal names its first ones and how
/// many more (the `removals` table keeps them all).
const IDS_LOGGED: usize = 20;

/// `12, 15, 19`, or `12, 15, … and 9980 more`: the ids removed, never a range that would
/// take in lines that were not.
fn listed(ids: &[i64]) -> String {
    let shown: Vec<String> = ids.iter().take(IDS_LOGGED).map(i64::to_string).collect();
    match ids.len().saturating_sub(IDS_LOGGED) {
        0 => shown.join(", "),
        more => format!("{}, … and {more} more", shown.join(", ")),
    }
}
