//! History by the page, for IRC's `CHATHISTORY`: one conversation's messages between two
//! ids (a room's public lines, or the private lines between two users), the id a time
//! falls at, and the conversations a user had in a stretch of time.
//!
//! Every read walks an index of `messages` in id order from a bound, `limit` rows at most:
//! what it costs does not depend on how long the conversation or the table is.

use super::messages::{message_columns, message_joins, row_to_message, Message};
use super::Conn;
use crate::error::Result;

/// Whose lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversation {
    /// A room's public lines.
    Room(i64),
    /// The private lines between two users, either way: `me` sent them to `other` or
    /// received them from `other`. Nobody else's private lines can be in it.
    Private { me: i64, other: i64 },
}

/// Which end of a window a limited read keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The oldest `limit` (reading forwards: `AFTER`).
    Oldest,
    /// The newest `limit` (reading backwards: `BEFORE`, `LATEST`).
    Newest,
}

/// The messages of `conv` with `after < id < before`, at most `limit` of them from `end`,
/// oldest first.
pub fn window(
    c: &Conn,
    conv: Conversation,
    after: i64,
    before: i64,
    limit: u32,
    end: End,
) -> Result<Vec<Message>> {
    let dir = match end {
        End::Oldest => "ASC",
        End::Newest => "DESC",
    };
    let limit = i64::from(limit);
    let mut out = match conv {
        Conversation::Room(room) => c.query(
            &format!(
                concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages m INDEXED BY messages_room",
                    message_joins!(),
                    "WHERE m.room_id = ?1 AND m.id > ?2 AND m.id < ?3 AND m.removed_by IS NULL
                     ORDER BY m.id {} LIMIT ?4"
                ),
                dir
            ),
            &[&room, &after, &before, &limit],
            row_to_message,
        )?,
        // Two scans of the authors' private rows, one per direction, merged.
        Conversation::Private { me, other } => c.query(
            &format!(
                concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM (
                       SELECT id FROM (SELECT id FROM messages INDEXED BY messages_private_author
                                       WHERE author_id = ?1 AND recipient_id = ?2
                                         AND id > ?3 AND id < ?4 AND removed_by IS NULL
                                       ORDER BY id {dir} LIMIT ?5) a
                       UNION
                       SELECT id FROM (SELECT id FROM messages INDEXED BY messages_private_author
                                       WHERE author_id = ?2 AND recipient_id = ?1
                                         AND id > ?3 AND id < ?4 AND removed_by IS NULL
                                       ORDER BY id {dir} LIMIT ?5) b
                     ) v JOIN messages m ON m.id = v.id",
                    message_joins!(),
                    "ORDER BY m.id {dir} LIMIT ?5"
                ),
                dir = dir
            ),
            &[&me, &other, &after, &before, &limit],
            row_to_message,
        )?,
    };
    if end == End::Newest {
        out.reverse();
    }
    Ok(out)
}

/// The id of the first message whose time is after `at` (`strict`) or at or after it:
/// every message below it is older. `at` is a time as stored (`2026-12-01T06:05:57Z`);
/// with no such message, one past the newest id.
///
/// Times follow ids (the hub commits in order, each batch stamped by the database's clock),
/// so the id is found by bisecting the primary key: about log2(rows) point reads, and no
/// index on `created_at` for every commit to keep up. Where a clock stepped back, the
/// boundary is one of the places the time is crossed.
pub fn first_at(c: &Conn, at: &str, strict: bool) -> Result<i64> {
    let newest = super::messages::last_id(c)?;
    // Below `lo` (and at it) every message is older; from `hi` up none is.
    let (mut lo, mut hi) = (0i64, newest + 1);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        // The first row at or after `mid`: ids have gaps where retention deleted rows.
        let row: Option<(i64, String)> = c.query_opt(
            "SELECT id, created_at FROM messages WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 1",
            &[&mid, &hi],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        match row {
            None => hi = mid,
            Some((id, time)) if time.as_str() < at || (strict && time == at) => lo = id,
            Some((id, _)) => hi = id,
        }
    }
    // `hi` may be in a gap: the message that starts the newer side, if any.
    let first: Option<i64> =
        c.query_one("SELECT min(id) FROM messages WHERE id >= ?1", &[&hi], |r| {
            r.get(0)
        })?;
    Ok(first.unwrap_or(newest + 1))
}

/// A conversation's latest message: the room's or the other user's name, its id and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub name: String,
    pub id: i64,
    pub created_at: String,
}

/// For `TARGETS`: the latest message of each room in `rooms` and of each private
/// conversation of `user`, for those whose latest message has `after < id < before`.
/// Unordered. The private rows read are the user's from `after` on.
pub fn latest(c: &Conn, user: i64, rooms: &[i64], after: i64, before: i64) -> Result<Vec<Latest>> {
    let mut out = Vec::new();
    for &room in rooms {
        let last = c.query_opt(
            "SELECT m.id, m.created_at, rm.name FROM messages m INDEXED BY messages_room
             JOIN rooms rm ON rm.id = m.room_id
             WHERE m.room_id = ?1 AND m.removed_by IS NULL ORDER BY m.id DESC LIMIT 1",
            &[&room],
            |r| {
                Ok(Latest {
                    id: r.get(0)?,
                    created_at: r.get(1)?,
                    name: r.get(2)?,
                })
            },
        )?;
        out.extend(last.filter(|l| l.id > after && l.id < before));
    }
    out.extend(c.query(
        "SELECT u.name, t.last, m.created_at FROM (
           SELECT other, max(id) AS last FROM (
             SELECT recipient_id AS other, id FROM messages INDEXED BY messages_private_author
             WHERE author_id = ?1 AND recipient_id IS NOT NULL AND id > ?2 AND removed_by IS NULL
             UNION ALL
             SELECT author_id AS other, id FROM messages INDEXED BY messages_recipient
             WHERE recipient_id = ?1 AND author_id IS NOT NULL AND id > ?2 AND removed_by IS NULL
           ) p GROUP BY other
         ) t JOIN users u ON u.id = t.other JOIN messages m ON m.id = t.last
         WHERE t.last < ?3",
        &[&user, &after, &before],
        |r| {
            Ok(Latest {
                name: r.get(0)?,
                id: r.get(1)?,
                created_at: r.get(2)?,
            })
        },
    )?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::messages::{commit, msg};
    use crate::store::rooms::LOBBY;
    use crate::store::{test_db, users};

    fn bodies(msgs: &[Message]) -> Vec<&str> {
        msgs.iter().map(|m| m.body.as_str()).collect()
    }

    #[test]
    fn a_private_conversation_holds_its_two_users_lines_only() {
        let db = test_db();
        let a = users::create(&db, "alice", "h").unwrap().unwrap();
        let b = users::create(&db, "bob", "h").unwrap().unwrap();
        let c = users::create(&db, "carol", "h").unwrap().unwrap();
        let mut batch = vec![
            msg(&a, Some(&b), "a to b"),
            msg(&c, Some(&b), "c to b"),
            msg(&b, Some(&a), "b to a"),
            msg(&b, Some(&c), "b to c"),
            msg(&a, None, "public"),
        ];
        commit(&db, &mut batch).unwrap();
        let conv = Conversation::Private {
            me: a.id,
            other: b.id,
        };
        let got = window(&db, conv, 0, i64::MAX, 10, End::Newest).unwrap();
        assert_eq!(bodies(&got), ["a to b", "b to a"]);
        let first = window(&db, conv, 0, i64::MAX, 1, End::Oldest).unwrap();
        assert_eq!(bodies(&first), ["a to b"]);
        let room = window(&db, Conversation::Room(LOBBY), 0, i64::MAX, 10, End::Newest).unwrap();
        assert_eq!(bodies(&room), ["public"]);
        // bob's conversations: with alice (latest "b to a") and carol ("b to c").
        let mut l = latest(&db, b.id, &[], 0, i64::MAX).unwrap();
        l.sort_by_key(|l| l.id);
        let names: Vec<_> = l.iter().map(|l| (l.name.as_str(), l.id)).collect();
        assert_eq!(names, [("alice", batch[2].id), ("carol", batch[3].id)]);
    }

    #[test]
    fn a_time_is_found_as_an_id_across_gaps() {
        let db = test_db();
        users::create(&db, "alice", "h").unwrap();
        for (i, at) in [
            "2026-01-01T00:00:01Z",
            "2026-01-01T00:00:02Z",
            "2026-01-01T00:00:02Z",
        ]
        .iter()
        .chain(&["2026-01-01T00:00:05Z", "2026-01-01T00:00:09Z"])
        .enumerate()
        {
            db.raw()
                .execute(
                    "INSERT INTO messages (id, created_at, author_id, author_name, room_id, body)
                     VALUES (?1, ?2, 1, 'alice', 1, 'x')",
                    rusqlite::params![(i as i64 + 1) * 10, at],
                )
                .unwrap();
        }
        let at =
            |t: &str, strict| first_at(&db, &format!("2026-01-01T00:00:0{t}Z"), strict).unwrap();
        assert_eq!(at("0", false), 10, "before everything");
        assert_eq!(at("2", false), 20);
        assert_eq!(at("2", true), 40);
        assert_eq!(at("3", false), 40);
        assert_eq!(at("9", true), 51, "after everything: past the newest");
        assert_eq!(at("9", false), 50);
    }
}
