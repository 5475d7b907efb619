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

/// A query the search engine cannot read; `why` is the store's reason, in the user's words.
pub fn not_a_query(why: &str) -> String {
    error(&format!("Not a search query: {why}."))
}
