//! IRC's `WHOIS` (and `KICK`'s "is this nick in the channel?"), answered from what the hub knows of who is online (this node's sessions
//! and the other nodes' as last read): no database, as `/who`.

use super::Hub;
use crate::server::outbox::Bytes;
use crate::server::wire;

impl Hub {
    /// `WHOIS` of the user with name key `key`, told to `nick`: 311, 319 (their rooms),
    /// 312, 301 (away), 313 (operator), 317 (idle: sessions on this node only), 318; or 401 and 318 if they are not online.
    pub(super) fn whois(&self, key: &str, asked: &str, nick: &str) -> Bytes {
        let mut found: Option<(String, Option<String>)> = None;
        let mut rooms: Vec<String> = Vec::new();
        // Idle since the user last spoke in any session here, online since the first.
        let mut idle: Option<(std::time::Duration, std::time::SystemTime)> = None;
        if let Some((_, o)) = self.presence.by_key(key) {
            found = Some((o.name.clone(), o.away.clone()));
            for c in o.conns.iter().filter_map(|c| self.clients.get(c)) {
                rooms.extend(c.rooms.iter().map(|&r| self.rooms.name(r).to_string()));
                let (quiet, since) = idle.get_or_insert((c.said_at.elapsed(), c.signon));
                *quiet = (*quiet).min(c.said_at.elapsed());
                *since = (*since).min(c.signon);
            }
        }
        for r in self.others.sessions.values() {
            if crate::store::users::name_key(&r.name) != key {
                continue;
            }
            let entry = found.get_or_insert_with(|| (r.name.clone(), None));
            if entry.1.is_none() {
                entry.1 = r.away.clone();
            }
            rooms.push(r.room_name.clone());
        }
        let answer = match found {
            Some((name, away)) => {
                rooms.sort_unstable();
                rooms.dedup();
                let idle = idle.map(|(quiet, since)| {
                    let since = since
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                    (quiet.as_secs(), since.as_secs())
                });
                let op = self.moderation.is_op(key);
                wire::whois(nick, &name, &rooms, (away.as_deref(), op), idle)
            }
            None => wire::no_such_nick_whois(nick, asked),
        };
        answer.into_bytes().into()
    }

    /// Whether the user with name key `key` is online (`Some`) and in `room` (`Some(true)`).
    pub(super) fn where_is(&self, key: &str, room: i64) -> Option<bool> {
        let mut online = false;
        if let Some((_, o)) = self.presence.by_key(key) {
            online = true;
            let mut clients = o.conns.iter().filter_map(|c| self.clients.get(c));
            if clients.any(|c| c.rooms.contains(&room)) {
                return Some(true);
            }
        }
        for r in self.others.sessions.values() {
            if crate::store::users::name_key(&r.name) == key {
                online = true;
                if r.room == room {
                    return Some(true);
                }
            }
        }
        online.then_some(false)
    }
}
