//! The `rooms` table: where public lines are said. `#lobby` (id [`LOBBY`]) always exists;
//! other rooms are made by `/join` and kept (with their topic) when everyone has left.

use super::Conn;
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::users::name_key;
use super::NOW;
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
}

const COLUMNS: &str = "id, name, topic";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Room> {
    Ok(Room {
        id: r.get(0)?,
        name: r.get(1)?,
        topic: r.get(2)?,
    })
}

/// The room called `name` (any case), if it exists.
pub fn find(c: &Conn, name: &str) -> Result<Option<Room>> {
    let conn = c.sqlite_only()?;
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM rooms WHERE name_key = ?1"))?
        .query_row([name_key(name)], row)
        .optional()?)
}

/// The room called `name`, made for `user` if it does not exist and the bounds allow (at most
/// `per_hour` rooms made by one user in an hour, `max_rooms` in all). One transaction, so two
/// users making one name at once get one room.
pub fn open(c: &Conn, name: &str, user: i64, per_hour: u32, max_rooms: u32) -> Result<Opened> {
    let conn = c.sqlite_only()?;
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    if let Some(room) = find(c, name)? {
        return Ok(Opened::Found(room));
    }
    let recent: u32 = tx.query_row(
        "SELECT count(*) FROM rooms
         WHERE created_by = ?1 AND created_at > strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-1 hour')",
        [user],
        |r| r.get(0),
    )?;
    if recent >= per_hour {
        return Ok(Opened::TooManyForUser);
    }
    let all: u32 = tx.query_row("SELECT count(*) FROM rooms", [], |r| r.get(0))?;
    if all >= max_rooms {
        return Ok(Opened::Full);
    }
    let id = tx.query_row(
        &format!(
            "INSERT INTO rooms (name, name_key, created_at, created_by)
             VALUES (?1, ?2, {NOW}, ?3) RETURNING id"
        ),
        params![name, name_key(name), user],
        |r| r.get(0),
    )?;
    tx.commit()?;
    Ok(Opened::Created(Room {
        id,
        name: name.to_string(),
        topic: String::new(),
    }))
}

/// The room `user` was last in (`#lobby` if none, or if theirs is gone).
pub fn of_user(c: &Conn, user: i64) -> Result<Room> {
    let conn = c.sqlite_only()?;
    let room = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM rooms
             WHERE id = COALESCE((SELECT room_id FROM users WHERE id = ?1), {LOBBY})"
        ))?
        .query_row([user], row)
        .optional()?;
    match room {
        Some(room) => Ok(room),
        None => by_id(c, LOBBY),
    }
}

pub fn by_id(c: &Conn, id: i64) -> Result<Room> {
    let conn = c.sqlite_only()?;
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM rooms WHERE id = ?1"))?
        .query_row([id], row)?)
}

/// Remembers `room` as where `user`'s next login starts.
pub fn set_current(c: &Conn, user: i64, room: i64) -> Result<()> {
    let conn = c.sqlite_only()?;
    conn.execute(
        "UPDATE users SET room_id = ?2 WHERE id = ?1",
        params![user, room],
    )?;
    Ok(())
}

pub fn set_topic(c: &Conn, room: i64, topic: &str) -> Result<()> {
    let conn = c.sqlite_only()?;
    conn.execute(
        "UPDATE rooms SET topic = ?2 WHERE id = ?1",
        params![room, topic],
    )?;
    Ok(())
}

/// Up to `limit` rooms, by name, and how many there are in all.
pub fn list(c: &Conn, limit: u32) -> Result<(Vec<Room>, i64)> {
    let conn = c.sqlite_only()?;
    let total = conn.query_row("SELECT count(*) FROM rooms", [], |r| r.get(0))?;
    let rooms = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM rooms ORDER BY name_key LIMIT ?1"
        ))?
        .query_map([limit], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
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
        let (listed, total) = list(&db, 2).unwrap();
        assert_eq!(total, 3);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].name, "#lobby");
    }
}
