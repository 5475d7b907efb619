//! What a client is told about rooms, away, offline messages, mentions and search.

use super::super::protocol::{error, notice};

// ---- rooms ----

/// A user came online, into the room.
pub fn joined(name: &str) -> String {
    notice(&format!("{name} joined"))
}

/// A user left the room (or went offline).
pub fn left(name: &str) -> String {
    notice(&format!("{name} left"))
}

/// A user already online came into the room.
pub fn entered(name: &str, room: &str) -> String {
    notice(&format!("{name} joined {room}"))
}

pub fn left_for(name: &str, room: &str) -> String {
    notice(&format!("{name} left for {room}"))
}

/// To a session that came into a room (login or `/join`), before the room's history.
pub fn you_are_in(room: &str, topic: &str) -> String {
    if topic.is_empty() {
        notice(&format!("You are in {room}."))
    } else {
        notice(&format!("You are in {room}. Topic: {topic}"))
    }
}

pub fn already_in(room: &str) -> String {
    error(&format!("You are in {room} already."))
}

pub fn invalid_room(quoted: &str, rule: &str) -> String {
    error(&format!(
        "Not a room name: {quoted}. Room names are '#' and {rule}."
    ))
}

pub fn no_such_room(quoted: &str) -> String {
    error(&format!("No such room: {quoted}"))
}

pub fn too_many_rooms_made(per_hour: u32) -> String {
    error(&format!(
        "You have made {per_hour} rooms in the last hour; join an existing one (/rooms) or try later."
    ))
}

/// `/join` of an invite-only room by someone not invited. (The same words whether or not
/// the room exists would hide more; but a room's name is no secret once you know it, and
/// "no such room" would make /join create it.)
pub fn invite_only(room: &str) -> String {
    error(&format!(
        "{room} is invite-only: ask one of its members to /invite you."
    ))
}

pub fn rooms_full(max: u32) -> String {
    error(&format!(
        "The server has {max} rooms, its limit; join an existing one (/rooms)."
    ))
}

/// To the room: someone set its topic.
pub fn topic_set(name: &str, topic: &str) -> String {
    if topic.is_empty() {
        notice(&format!("{name} cleared the topic"))
    } else {
        notice(&format!("{name} set the topic: {topic}"))
    }
}

pub fn topic_is(room: &str, topic: &str) -> String {
    if topic.is_empty() {
        notice(&format!("{room} has no topic. /topic TEXT sets one."))
    } else {
        notice(&format!("Topic of {room}: {topic}"))
    }
}

pub fn topic_too_long(max: usize) -> String {
    error(&format!("A topic is {max} characters at most."))
}

pub fn rooms_header(total: usize) -> String {
    notice(&format!("Rooms ({total}), busiest first:"))
}

/// One room in `/rooms`.
pub fn room_entry(name: &str, people: usize, topic: &str) -> String {
    if topic.is_empty() {
        notice(&format!("  {name} ({people})"))
    } else {
        notice(&format!("  {name} ({people}): {topic}"))
    }
}

pub fn more_rooms(n: usize) -> String {
    notice(&format!("  … and {n} more"))
}

/// How `/who` shows a user: `alice`, `alice (away: lunch)`, `alice (#rust, away: lunch)`.
pub fn who_entry(name: &str, rooms: Option<&str>, away: Option<&str>) -> String {
    let mut notes: Vec<String> = Vec::new();
    if let Some(rooms) = rooms {
        notes.push(rooms.to_string());
    }
    match away {
        Some("") => notes.push("away".into()),
        Some(why) => notes.push(format!("away: {why}")),
        None => {}
    }
    if notes.is_empty() {
        name.to_string()
    } else {
        format!("{name} ({})", notes.join(", "))
    }
}

// ---- away ----

pub fn now_away(why: &str) -> String {
    if why.is_empty() {
        notice("You are away.")
    } else {
        notice(&format!("You are away: {why}."))
    }
}

pub fn now_back() -> String {
    notice("You are back.")
}

/// To the sender of a private message to someone away.
pub fn is_away(name: &str, why: &str) -> String {
    if why.is_empty() {
        notice(&format!("{name} is away."))
    } else {
        notice(&format!("{name} is away: {why}"))
    }
}

/// To the sender of a private message to someone with no session online.
pub fn offline(name: &str) -> String {
    notice(&format!(
        "{name} is offline; they will see it when they log in."
    ))
}

/// At login: private messages that came while the user was away (`shown` of `total`).
/// At login: `* Since your last visit: 37 new lines in #rust, 2 in #lobby.` (`1000+` where
/// the count stopped).
pub fn since_last_visit(rooms: &[(String, i64)]) -> String {
    let parts: Vec<String> = rooms
        .iter()
        .enumerate()
        .map(|(i, (room, n))| {
            let n = if *n >= crate::store::read_marks::COUNT_CAP {
                format!("{n}+")
            } else {
                n.to_string()
            };
            if i == 0 {
                let s = if n == "1" { "" } else { "s" };
                format!("{n} new line{s} in {room}")
            } else {
                format!("{n} in {room}")
            }
        })
        .collect();
    notice(&format!("Since your last visit: {}.", parts.join(", ")))
}

/// `/unread`'s answer.
pub fn unread(rooms: &[(String, i64)]) -> String {
    if rooms.is_empty() {
        return notice("Nothing new in your other rooms.");
    }
    let mut out = notice("New since you were last there:");
    for (room, n) in rooms {
        let n = if *n >= crate::store::read_marks::COUNT_CAP {
            format!("{n}+")
        } else {
            n.to_string()
        };
        out.push_str(&notice(&format!("  {room}: {n} new")));
    }
    out
}

/// In a room's history, before the lines that came since the user was last there.
/// `new`: the room's new lines (counted up to `read_marks::COUNT_CAP`); `shown`: how many
/// of them (and private messages among them) follow.
pub fn new_since_last_visit(new: i64, shown: usize) -> String {
    let s = if new == 1 { "" } else { "s" };
    if new >= crate::store::read_marks::COUNT_CAP {
        notice(&format!(
            "--- {new}+ new lines since you were last here; the last {shown}: ---"
        ))
    } else if (new as usize) > shown {
        notice(&format!(
            "--- {new} new lines since you were last here; the last {shown}: ---"
        ))
    } else {
        notice(&format!(
            "--- {new} new line{s} since you were last here ---"
        ))
    }
}

pub fn missed(total: usize, shown: usize) -> String {
    let s = if total == 1 { "" } else { "s" };
    if shown < total {
        notice(&format!(
            "You have {total} private message{s} since your last visit; the last {shown}:"
        ))
    } else {
        notice(&format!(
            "You have {total} private message{s} since your last visit:"
        ))
    }
}

// ---- mentions ----

pub fn echo(on: bool) -> String {
    notice(if on {
        "Your lines will come back to you with time and name, as everyone's do."
    } else {
        "Your lines will not come back to you."
    })
}

pub fn bell(on: bool) -> String {
    notice(if on {
        "A line naming you will ring your bell."
    } else {
        "Lines naming you will not ring your bell."
    })
}

pub fn mentions_header(n: usize) -> String {
    if n == 0 {
        notice("No recent line names you.")
    } else {
        notice(&format!("The last {n} line(s) that named you:"))
    }
}

// ---- search ----

pub fn search_header(n: usize) -> String {
    if n == 0 {
        notice("Nothing found.")
    } else {
        notice(&format!("Found {n} line(s), oldest first:"))
    }
}

/// The header of `/search -c N`'s hits, each with up to `around` lines on each side.
pub fn search_header_context(n: usize, around: u32) -> String {
    if n == 0 {
        notice("Nothing found.")
    } else {
        notice(&format!(
            "Found {n} line(s), oldest first, each marked > with up to {around} line(s) \
             around it:"
        ))
    }
}

/// `/search -c` without a number it takes.
pub fn search_context_usage(max: u32) -> String {
    error(&format!(
        "/search -c N wants N from 0 to {max}: the lines shown around each hit."
    ))
}

/// Another session of the same user is searching.
pub fn search_busy_user() -> String {
    error("You have a search running already (in another session); one at a time.")
}

/// The server's searches at once are all taken.
pub fn search_busy_server(at_once: usize) -> String {
    error(&format!(
        "The server is running {at_once} searches already; try again in a moment."
    ))
}

/// A query the search engine cannot read; `why` is the store's reason, in the user's words.
pub fn not_a_query(why: &str) -> String {
    error(&format!("Not a search query: {why}."))
}

// ---- invite-only rooms ----

pub fn lobby_is_open() -> String {
    error("#lobby is open to everyone; make a room of your own with /join #name.")
}

pub fn not_your_room(room: &str) -> String {
    error(&format!(
        "Only the one who made {room} (or an operator) can decide who may join it."
    ))
}

/// To the room, when `/private` changed it.
pub fn privacy_set(by: &str, room: &str, on: bool, members: usize) -> String {
    if on {
        notice(&format!(
            "{by} made {room} invite-only: the {members} here are its members; /invite NAME lets someone in."
        ))
    } else {
        notice(&format!("{by} opened {room} to everyone."))
    }
}

pub fn invited(name: &str, room: &str, private: bool) -> String {
    if private {
        notice(&format!("{name} may join {room} now."))
    } else {
        notice(&format!(
            "{name} may join {room} when it is invite-only (it is open to everyone now)."
        ))
    }
}

pub fn you_are_invited(by: &str, room: &str) -> String {
    notice(&format!("{by} invited you to {room}: /join {room}"))
}

pub fn already_member(name: &str, room: &str) -> String {
    error(&format!("{name} is a member of {room} already."))
}

pub fn not_a_member(name: &str, room: &str) -> String {
    error(&format!("{name} is not a member of {room}."))
}

pub fn uninvited(name: &str, room: &str) -> String {
    notice(&format!("{name} is no longer a member of {room}."))
}

pub fn you_are_uninvited(by: &str, room: &str) -> String {
    notice(&format!(
        "{by} took you off {room}'s members; you are in #lobby."
    ))
}

pub fn room_is_open(room: &str) -> String {
    notice(&format!(
        "{room} is open to everyone (/private on makes it invite-only)."
    ))
}

pub fn members_line(room: &str, total: usize, names: &[String]) -> String {
    crate::server::protocol::online_line(&format!("Members of {room}"), total, names)
}
