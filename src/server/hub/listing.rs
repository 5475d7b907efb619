//! What the hub says about who is where: a room's people (`/who`, the online line at
//! login, IRC's `NAMES` and `WHO`) and everyone online with their rooms (`/who *`), on this
//! node and the others.

use std::collections::HashMap;

use super::Hub;
use crate::server::outbox::Bytes;
use crate::server::protocol::online_line;
use crate::server::text;
use crate::server::wire;
use crate::store::users::name_key;

impl Hub {
    /// The room's name and its people on this node and on the others, by name key: name
    /// key, name, away text.
    fn people(&self, room: i64) -> (String, Vec<(String, String, Option<String>)>) {
        let local = self.rooms.by_id.get(&room);
        let mut seen: Vec<i64> = Vec::new();
        let mut entries = Vec::new();
        for (id, key, o) in self.presence.names() {
            if local.is_some_and(|r| r.users.contains_key(&id)) {
                seen.push(id);
                entries.push((key.to_string(), o.name.clone(), o.away.clone()));
            }
        }
        let mut room_name = local.map(|r| r.name.clone());
        for r in self.others.sessions.values().filter(|r| r.room == room) {
            room_name.get_or_insert_with(|| r.room_name.clone());
            if !seen.contains(&r.user) {
                seen.push(r.user);
                entries.push((name_key(&r.name), r.name.clone(), r.away.clone()));
            }
        }
        entries.sort();
        let room_name = room_name.unwrap_or_else(|| self.rooms.name(room).to_string());
        (room_name, entries)
    }

    /// `* In #room (N): @alice, bob (away: lunch)`, at most `limit` names: the room's
    /// people on this node and on the others.
    pub(super) fn room_line(&self, room: i64, limit: Option<usize>) -> Bytes {
        let (room_name, entries) = self.people(room);
        let total = entries.len();
        let names: Vec<String> = entries
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|(key, name, away)| self.shown_name(&key, &name, away.as_deref(), None))
            .collect();
        online_line(&format!("In {room_name}"), total, &names)
            .into_bytes()
            .into()
    }

    /// The room's people as IRC tells one of them (`nick`): `NAMES` (353, 366), or with
    /// `who`, `WHO` (352, 315). Operators are marked `@`, the away `G` in `WHO`.
    pub(super) fn room_irc(&self, room: i64, nick: &str, who: bool) -> Bytes {
        let (room_name, entries) = self.people(room);
        let listed = if who {
            let people: Vec<(String, bool, bool)> = entries
                .into_iter()
                .map(|(key, name, away)| (name, self.moderation.is_op(&key), away.is_some()))
                .collect();
            wire::who(nick, &room_name, &people)
        } else {
            let names: Vec<String> = entries
                .into_iter()
                .map(|(key, name, _)| match self.moderation.is_op(&key) {
                    true => format!("@{name}"),
                    false => name,
                })
                .collect();
            wire::names(nick, &room_name, &names)
        };
        listed.into_bytes().into()
    }

    /// `/who *`: `* Online (N): @alice (#lobby), bob (#rust, away: lunch)`, every node.
    /// An invite-only room's name is shown only to someone in it (`asker`); to the others,
    /// "a private room".
    pub(super) fn everyone_line(&self, asker: Option<i64>) -> Bytes {
        let shown = |room: i64, name: &str| -> String {
            if self.room_shown_to(room, asker) {
                name.to_string()
            } else {
                "a private room".to_string()
            }
        };
        // By user: name key, name, away, rooms.
        let mut users: HashMap<i64, (String, String, Option<String>, Vec<String>)> = HashMap::new();
        for (id, key, o) in self.presence.names() {
            let rooms = o
                .conns
                .iter()
                .filter_map(|c| self.clients.get(c))
                .flat_map(|c| c.rooms.iter().map(|&r| shown(r, self.rooms.name(r))))
                .collect();
            users.insert(id, (key.to_string(), o.name.clone(), o.away.clone(), rooms));
        }
        for r in self.others.sessions.values() {
            let entry = users
                .entry(r.user)
                .or_insert_with(|| (name_key(&r.name), r.name.clone(), None, Vec::new()));
            entry.3.push(shown(r.room, &r.room_name));
            if entry.2.is_none() {
                entry.2 = r.away.clone();
            }
        }
        let mut entries: Vec<(String, String)> = users
            .into_values()
            .map(|(key, name, away, mut rooms)| {
                rooms.sort_unstable();
                rooms.dedup();
                let shown = self.shown_name(&key, &name, away.as_deref(), Some(&rooms.join(", ")));
                (key, shown)
            })
            .collect();
        entries.sort();
        let names: Vec<String> = entries.into_iter().map(|(_, shown)| shown).collect();
        online_line("Online", names.len(), &names)
            .into_bytes()
            .into()
    }

    /// A name as `/who` shows it: `@` for operators, then what to say about them.
    fn shown_name(&self, key: &str, name: &str, away: Option<&str>, rooms: Option<&str>) -> String {
        let name = if self.moderation.is_op(key) {
            format!("@{name}")
        } else {
            name.to_string()
        };
        text::who_entry(&name, rooms, away)
    }
}
