//! The `rooms` table: where public lines are said. `#lobby` (id [`LOBBY`]) always exists;
//! other rooms are made by `/join` and kept (with their topic) when everyone has left.

use super::conn::Row;
use super::users::name_key;
use super::Conn;
use crate::error::Result;

/// `#lobby`'s id: where everyone starts and where public lines from before rooms were said.
pub const LOBBY: i64 = 1;

/// A room as the rest of the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: i64,
    /// As first typed, with its `#`.
    pub name: String,
    /// `/topic`; empty for none.
    pub topic: String,
    /// Invite-only ([`super::members`]).
    pub private: bool,
}

/// What [`open`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Found(Room),
    Created(Room),
    /// The user made `per_hour` rooms in the last hour already.
    TooManyForUser,
    /// The server holds `max_rooms` rooms already.
    Full,
    /// It exists, invite-only, and the user is not a member.
    InviteOnly,
}

const COLUMNS: &str = "id, name, topic, private";

fn row(r: &Row<'_>) -> Result<Room> {
    Ok(Room {
        id: r.get(0)?,
        name: r.get(1)?,
        topic: r.get(2)?,
        private: r.get(3)?,
    })
}

/// The room called `name` (any case), if it exists.
pub fn find(c: &Conn, name: &str) -> Result<Option<Room>> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM rooms WHERE name_key = ?1"),
        &[&name_key(name)],
        row,
    )
}

/// The room called `name`, made for `user` if it does not exist and the bounds allow (at most
/// `per_hour` rooms made by one user in an hour, `max_rooms` in all). One transaction, so two
/// users making one name at once get one room.
pub fn open(c: &Conn, name: &str, user: i64, per_hour: u32, max_rooms: u32) -> Result<Opened> {
    let d = c.dialect();
    let recent_sql = format!(
        "SELECT count(*) FROM rooms WHERE created_by = ?1 AND created_at > {}",
        d.now_plus("'-1 hour'")
    );
    let insert = format!(
        "INSERT INTO rooms (name, name_key, created_at, created_by)
         VALUES (?1, ?2, {}, ?3) RETURNING id",
        d.now()
    );
    c.transaction(|c| {
        if let Some(room) = find(c, name)? {
            if room.private && !super::members::is_member(c, room.id, user)? {
                return Ok(Opened::InviteOnly);
            }
            return Ok(Opened::Found(room));
        }
        let recent: i64 = c.query_one(&recent_sql, &[&user], |r| r.get(0))?;
        if recent >= i64::from(per_hour) {
            return Ok(Opened::TooManyForUser);
        }
        let all: i64 = c.query_one("SELECT count(*) FROM rooms", &[], |r| r.get(0))?;
        if all >= i64::from(max_rooms) {
            return Ok(Opened::Full);
        }
        let id = c.query_one(&insert, &[&name, &name_key(name), &user], |r| r.get(0))?;
        Ok(Opened::Created(Room {
            id,
            name: name.to_string(),
            topic: String::new(),
            private: false,
        }))
    })
}

/// The room `user` was last in (`#lobby` if none, if theirs is gone, or if it is
/// invite-only and they are no longer a member).
pub fn of_user(c: &Conn, user: i64) -> Result<Room> {
    let room = c.query_opt(
        &format!(
            "SELECT {COLUMNS} FROM rooms r
             WHERE id = COALESCE((SELECT room_id FROM users WHERE id = ?1), {LOBBY})
             AND (NOT private OR EXISTS
                  (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = ?1))"
        ),
        &[&user],
        row,
    )?;
    match room {
        Some(room) => Ok(room),
        None => by_id(c, LOBBY),
    }
}

pub fn by_id(c: &Conn, id: i64) -> Result<Room> {
    c.query_one(
        &format!("SELECT {COLUMNS} FROM rooms WHERE id = ?1"),
        &[&id],
        row,
    )
}

/// Who made `room` (`None`: the server, or an account since removed).
pub fn creator(c: &Conn, room: i64) -> Result<Option<i64>> {
    Ok(c.query_opt(
        "SELECT created_by FROM rooms WHERE id = ?1",
        &[&room],
        |r| r.get::<Option<i64>>(0),
    )?
    .flatten())
}

/// Remembers `room` as where `user`'s next login starts.
pub fn set_current(c: &Conn, user: i64, room: i64) -> Result<()> {
    c.execute(
        "UPDATE users SET room_id = ?2 WHERE id = ?1",
        &[&user, &room],
    )?;
    Ok(())
}

pub fn set_topic(c: &Conn, room: i64, topic: &str) -> Result<()> {
    c.execute(
        "UPDATE rooms SET topic = ?2 WHERE id = ?1",
        &[&room, &topic],
    )?;
    Ok(())
}

/// Up to `limit` rooms that `user` may see (public, or private with them a member; all of
/// them for the operator, `None`), by name, and how many they may see in all.
pub fn list(c: &Conn, user: Option<i64>, limit: u32) -> Result<(Vec<Room>, i64)> {
    // The operator is user -1 here, for whom every room is listed (the cast tells
    // PostgreSQL the parameter's type).
    let (visible, user) = match user {
        Some(user) => (
            "(NOT private OR id IN (SELECT room_id FROM room_members WHERE user_id = ?1))",
            user,
        ),
        None => ("(CAST(?1 AS BIGINT) < 0)", -1),
    };
    let total = c.query_one(
        &format!("SELECT count(*) FROM rooms WHERE {visible}"),
        &[&user],
        |r| r.get(0),
    )?;
    let rooms = c.query(
        &format!("SELECT {COLUMNS} FROM rooms WHERE {visible} ORDER BY name_key LIMIT ?2"),
        &[&user, &i64::from(limit)],
        row,
    )?;
    Ok((rooms, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_db, users};

    #[test]
    fn rooms_are_found_in_any_case_and_made_within_bounds() {
        let db = test_db();
        let a = users::create(&db, "alice", "h").unwrap().unwrap();
        assert_eq!(of_user(&db, a.id).unwrap().name, "#lobby");
        assert!(
            matches!(open(&db, "#LOBBY", a.id, 2, 10).unwrap(), Opened::Found(r) if r.id == LOBBY)
        );
        let Opened::Created(rust) = open(&db, "#Rust", a.id, 2, 10).unwrap() else {
            panic!("not created");
        };
        assert_eq!(find(&db, "#rust").unwrap(), Some(rust.clone()));
        assert!(matches!(
            open(&db, "#Раст", a.id, 2, 10).unwrap(),
            Opened::Created(_)
        ));
        assert_eq!(
            open(&db, "#third", a.id, 2, 10).unwrap(),
            Opened::TooManyForUser
        );
        let b = users::create(&db, "bob", "h").unwrap().unwrap();
        assert_eq!(open(&db, "#fourth", b.id, 2, 3).unwrap(), Opened::Full);
        set_current(&db, a.id, rust.id).unwrap();
        set_topic(&db, rust.id, "borrowck").unwrap();
        assert_eq!(of_user(&db, a.id).unwrap().topic, "borrowck");
        let (listed, total) = list(&db, None, 2).unwrap();
        assert_eq!(total, 3);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].name, "#lobby");
    }
}
