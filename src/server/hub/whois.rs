//! IRC's `WHOIS`, answered from what the hub knows of who is online (this node's sessions
//! and the other nodes' as last read): no database, as `/who`.

use super::Hub;
use crate::server::outbox::Bytes;
use crate::server::wire;

impl Hub {
    /// `WHOIS` of the user with name key `key`, told to `nick`: 311, 319 (their rooms),
    /// 312, 301 (away), 313 (operator), 318; or 401 and 318 if they are not online.
    pub(super) fn whois(&self, key: &str, asked: &str, nick: &str) -> Bytes {
        let mut found: Option<(String, Option<String>)> = None;
        let mut rooms: Vec<String> = Vec::new();
        if let Some((_, o)) = self.presence.by_key(key) {
            found = Some((o.name.clone(), o.away.clone()));
            rooms.extend(
                o.conns
                    .iter()
                    .filter_map(|c| self.clients.get(c))
                    .flat_map(|c| c.rooms.iter().map(|&r| self.rooms.name(r).to_string())),
            );
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
                wire::whois(
                    nick,
                    &name,
                    &rooms,
                    away.as_deref(),
                    self.moderation.is_op(key),
                )
            }
            None => wire::no_such_nick_whois(nick, asked),
        };
        answer.into_bytes().into()
    }
}
