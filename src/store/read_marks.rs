//! Unread markers: per user and room, the newest line they have been shown there
//! (`read_marks`). The hub writes a mark when a session leaves a room (a `/join`
//! elsewhere, `PART`, logging out), once a batch; a login, `/unread` and coming into a room
//! read them. Counting what came after a mark walks `messages_room` from the mark, and stops
//! at [`COUNT_CAP`]: the cost does not grow with the history.

use super::{Conn, Dialect};
use crate::error::Result;

/// New lines counted per room at most: more is shown as "1000+".
pub const COUNT_CAP: i64 = 1000;

/// Rooms whose marks are read at most (the most recently left first).
pub const ROOMS_COUNTED: i64 = 20;

/// Moves marks forward (never back: two sessions' marks may arrive out of order), in one
/// transaction: `(user, room, last id shown)`.
pub fn mark(c: &Conn, marks: &[(i64, i64, i64)]) -> Result<()> {
    let sql = match c.dialect() {
        Dialect::Sqlite => {
            "INSERT INTO read_marks (user_id, room_id, last_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id, room_id) DO UPDATE SET last_id = MAX(last_id, excluded.last_id)"
        }
        Dialect::Postgres => {
            "INSERT INTO read_marks (user_id, room_id, last_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id, room_id)
             DO UPDATE SET last_id = GREATEST(read_marks.last_id, excluded.last_id)"
        }
    };
    c.transaction(|c| {
        for (user, room, id) in marks {
            c.execute(sql, &[user, room, id])?;
        }
        Ok(())
    })
}

/// The user's mark in `room`, if they were ever there.
pub fn of(c: &Conn, user: i64, room: i64) -> Result<Option<i64>> {
    c.query_opt(
        "SELECT last_id FROM read_marks WHERE user_id = ?1 AND room_id = ?2",
        &[&user, &room],
        |r| r.get(0),
    )
}

/// The rooms (name, new lines, capped at [`COUNT_CAP`]) with lines after the user's mark
/// and up to `upto` (the hub's watermark), busiest first; rooms the user may no longer see
/// (invite-only, no longer a member) and `except` (where the session is) left out.
pub fn unread(c: &Conn, user: i64, upto: i64, except: &[i64]) -> Result<Vec<(String, i64)>> {
    let marks: Vec<(i64, String, i64)> = c.query(
        &format!(
            "SELECT m.room_id, r.name, m.last_id FROM read_marks m JOIN rooms r ON r.id = m.room_id
             WHERE m.user_id = ?1 AND m.last_id < ?2 AND {}
             ORDER BY m.last_id DESC LIMIT ?3",
            super::members::visible_to(1)
        ),
        &[&user, &upto, &ROOMS_COUNTED],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let count = "SELECT count(*) FROM (SELECT 1 FROM messages
                 WHERE room_id = ?1 AND id > ?2 AND id <= ?3 AND removed_by IS NULL LIMIT ?4) t";
    let mut out = Vec::new();
    for (room, name, last) in marks {
        if except.contains(&room) {
            continue;
        }
        let n: i64 = c.query_one(count, &[&room, &last, &upto, &COUNT_CAP], |r| r.get(0))?;
        if n > 0 {
            out.push((name, n));
        }
    }
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::messages::{self, Kind, Message};
    use crate::store::{rooms, test_db, users};

    #[test]
    fn marks_move_forward_and_count_what_came_after() {
        let db = test_db();
        let a = users::create(&db, "alice", "h").unwrap().unwrap();
        let b = users::create(&db, "bob", "h").unwrap().unwrap();
        let rooms::Opened::Created(rust) = rooms::open(&db, "#rust", a.id, 5, 10).unwrap() else {
            panic!("not created");
        };
        let say = |room: i64, n: usize| {
            let mut batch: Vec<Message> = (0..n)
                .map(|i| Message::new(&b, None, Some(room), Kind::Say, format!("line {i}")))
                .collect();
            messages::commit(&db, &mut batch).unwrap();
            batch.last().map_or(0, |m| m.id)
        };
        let first = say(rust.id, 2);
        mark(&db, &[(a.id, rust.id, first), (a.id, rooms::LOBBY, first)]).unwrap();
        mark(&db, &[(a.id, rust.id, first - 1)]).unwrap(); // older: no step back
        assert_eq!(of(&db, a.id, rust.id).unwrap(), Some(first));
        let last = say(rust.id, 37);
        let lobby = say(rooms::LOBBY, 2);
        let got = unread(&db, a.id, lobby, &[]).unwrap();
        assert_eq!(got, [("#rust".to_string(), 37), ("#lobby".to_string(), 2)]);
        // Up to the watermark only; where the session is, left out.
        assert_eq!(
            unread(&db, a.id, last, &[]).unwrap(),
            [("#rust".to_string(), 37)]
        );
        assert_eq!(
            unread(&db, a.id, lobby, &[rust.id]).unwrap(),
            [("#lobby".to_string(), 2)]
        );
        assert!(
            unread(&db, b.id, lobby, &[]).unwrap().is_empty(),
            "bob has no marks"
        );
    }
}
