//! Rooms at the console: `rooms`, and `say` to everyone or to one room.

use std::io::{self, Write};

use super::{Console, Outcome};
use crate::server::protocol::{clean, room_name};
use crate::store::rooms as stored;

/// Rooms `rooms` lists at most.
const LISTED: usize = 1_000;

pub fn rooms(c: &Console, _: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    match c.server.rooms(LISTED) {
        Ok((listed, total)) => {
            for r in &listed {
                let topic = if r.topic.is_empty() { "" } else { &r.topic };
                writeln!(out, "{:<34} {:>6}  {topic}", r.name, r.people)?;
            }
            if total > listed.len() {
                writeln!(out, "... and {} more", total - listed.len())?;
            }
        }
        Err(e) => writeln!(out, "Error: {e}")?,
    }
    Ok(Outcome::Continue)
}

/// `say TEXT` to everyone, `say #ROOM TEXT` to one room.
pub fn say(c: &Console, args: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    let (room, text) = match args.split_once(char::is_whitespace) {
        Some((first, rest)) if first.starts_with('#') => (Some(first), rest),
        _ => (None, args),
    };
    let text = clean(text);
    if text.trim().is_empty() {
        writeln!(out, "Usage: say [#ROOM] TEXT")?;
        return Ok(Outcome::Continue);
    }
    let Some(room) = room else {
        c.server.announce(&text, None);
        writeln!(out, "Sent to everyone online.")?;
        return Ok(Outcome::Continue);
    };
    let Some(name) = room_name(room) else {
        writeln!(out, "Not a room name: {}", clean(room))?;
        return Ok(Outcome::Continue);
    };
    match c.db(out, |conn| stored::find(conn, &name))? {
        Some(Some(found)) => {
            c.server.announce(&text, Some(found.id));
            writeln!(out, "Sent to {}.", found.name)?;
        }
        Some(None) => writeln!(out, "No such room: {name}")?,
        None => {}
    }
    Ok(Outcome::Continue)
}
