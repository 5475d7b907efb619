//! Invite-only rooms: `rooms.private` and `room_members`. A private room is listed to,
//! joined by, and read (history, search, mentions) by its members only; the one who makes a
//! room private (its creator or an operator) and those in it at that moment become its
//! first members, and members (or operators) invite others.
//!
//! Every read of a room's lines by a user goes through [`may_see`] or the SQL of
//! [`VISIBLE_TO`], so a private room's lines reach no one else by any path.

use super::Conn;
use crate::error::Result;

/// SQL that is true when room `room_id` may be seen by user `?N` (write the parameter's
/// number in place of `{user}`): a public room, or a private one they are a member of.
pub const VISIBLE_TO: &str =
    "(room_id IS NULL OR room_id NOT IN (SELECT id FROM rooms WHERE private \
     AND id NOT IN (SELECT room_id FROM room_members WHERE user_id = {user})))";

/// `VISIBLE_TO` for the user bound as parameter `n`.
pub fn visible_to(n: usize) -> String {
    VISIBLE_TO.replace("{user}", &format!("?{n}"))
}

/// Whether `room` is invite-only.
pub fn is_private(c: &Conn, room: i64) -> Result<bool> {
    Ok(
        c.query_opt("SELECT private FROM rooms WHERE id = ?1", &[&room], |r| {
            r.get(0)
        })?
        .unwrap_or(false),
    )
}

/// Whether `user` may see `room`: it is public, or they are a member.
pub fn may_see(c: &Conn, room: i64, user: i64) -> Result<bool> {
    let hidden: Option<i64> = c.query_opt(
        "SELECT r.id FROM rooms r WHERE r.id = ?1 AND r.private
         AND NOT EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = ?2)",
        &[&room, &user],
        |r| r.get(0),
    )?;
    Ok(hidden.is_none())
}

/// Whether `user` is a member of `room`.
pub fn is_member(c: &Conn, room: i64, user: i64) -> Result<bool> {
    let found: Option<i64> = c.query_opt(
        "SELECT user_id FROM room_members WHERE room_id = ?1 AND user_id = ?2",
        &[&room, &user],
        |r| r.get(0),
    )?;
    Ok(found.is_some())
}

/// The private rooms `user` may not see (to leave out of a list).
pub fn hidden_from(c: &Conn, user: i64) -> Result<Vec<i64>> {
    c.query(
        "SELECT id FROM rooms WHERE private
         AND id NOT IN (SELECT room_id FROM room_members WHERE user_id = ?1)",
        &[&user],
        |r| r.get(0),
    )
}

/// Every private room's id (for the hub, which hides their names from non-members).
pub fn private_rooms(c: &Conn) -> Result<Vec<i64>> {
    c.query("SELECT id FROM rooms WHERE private", &[], |r| r.get(0))
}

/// Makes `room` private (`on`) with `present` (the users in it now, the one asking among
/// them) as members, or public again (its member list is kept, for if it is made private
/// again). One transaction.
pub fn set_private(c: &Conn, room: i64, on: bool, by: &str, present: &[i64]) -> Result<()> {
    let now = c.dialect().now();
    let add = format!(
        "INSERT INTO room_members (room_id, user_id, added_by, added_at)
         VALUES (?1, ?2, ?3, {now}) ON CONFLICT DO NOTHING"
    );
    c.transaction(|c| {
        c.execute("UPDATE rooms SET private = ?2 WHERE id = ?1", &[&room, &on])?;
        if on {
            for user in present {
                c.execute(&add, &[&room, user, &by])?;
            }
        }
        Ok(())
    })
}

/// Adds `user` to `room`'s members; false if they were one already.
pub fn invite(c: &Conn, room: i64, user: i64, by: &str) -> Result<bool> {
    let now = c.dialect().now();
    let n = c.execute(
        &format!(
            "INSERT INTO room_members (room_id, user_id, added_by, added_at)
             VALUES (?1, ?2, ?3, {now}) ON CONFLICT DO NOTHING"
        ),
        &[&room, &user, &by],
    )?;
    Ok(n > 0)
}

/// Takes `user` off `room`'s members; false if they were not one.
pub fn uninvite(c: &Conn, room: i64, user: i64) -> Result<bool> {
    let n = c.execute(
        "DELETE FROM room_members WHERE room_id = ?1 AND user_id = ?2",
        &[&room, &user],
    )?;
    Ok(n > 0)
}

/// How many members `room` has, and the first `limit` names, by name.
pub fn members(c: &Conn, room: i64, limit: u32) -> Result<(Vec<String>, i64)> {
    let total = c.query_one(
        "SELECT count(*) FROM room_members WHERE room_id = ?1",
        &[&room],
        |r| r.get(0),
    )?;
    let names = c.query(
        "SELECT u.name FROM room_members m JOIN users u ON u.id = m.user_id
         WHERE m.room_id = ?1 ORDER BY u.name_key LIMIT ?2",
        &[&room, &i64::from(limit)],
        |r| r.get(0),
    )?;
    Ok((names, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{rooms, test_db, users};

    #[test]
    fn a_private_room_is_seen_by_its_members_only() {
        let db = test_db();
        let a = users::create(&db, "alice", "h").unwrap().unwrap();
        let b = users::create(&db, "bob", "h").unwrap().unwrap();
        let rooms::Opened::Created(den) = rooms::open(&db, "#den", a.id, 5, 10).unwrap() else {
            panic!("not created");
        };
        assert!(may_see(&db, den.id, b.id).unwrap(), "public at first");
        set_private(&db, den.id, true, "alice", &[a.id]).unwrap();
        assert!(is_private(&db, den.id).unwrap());
        assert!(may_see(&db, den.id, a.id).unwrap());
        assert!(!may_see(&db, den.id, b.id).unwrap());
        assert_eq!(hidden_from(&db, b.id).unwrap(), [den.id]);
        assert!(hidden_from(&db, a.id).unwrap().is_empty());
        assert!(invite(&db, den.id, b.id, "alice").unwrap());
        assert!(!invite(&db, den.id, b.id, "alice").unwrap(), "once");
        assert!(may_see(&db, den.id, b.id).unwrap());
        assert_eq!(
            members(&db, den.id, 10).unwrap(),
            (vec!["alice".into(), "bob".into()], 2)
        );
        assert!(uninvite(&db, den.id, b.id).unwrap());
        assert!(!may_see(&db, den.id, b.id).unwrap());
        set_private(&db, den.id, false, "alice", &[]).unwrap();
        assert!(may_see(&db, den.id, b.id).unwrap(), "public again");
        assert!(may_see(&db, rooms::LOBBY, b.id).unwrap());
    }
}
