//! The `users.role` column: who is an operator.

use super::Conn;
use rusqlite::params;

use super::users::name_key;
use crate::error::Result;

/// Makes a user an operator (`op`) or not; returns the name as registered, or `None` if there
/// is no such user.
pub fn set(c: &Conn, name: &str, op: bool) -> Result<Option<String>> {
    let conn = c.sqlite_only()?;
    let role = if op { "op" } else { "user" };
    let mut stmt =
        conn.prepare_cached("UPDATE users SET role = ?1 WHERE name_key = ?2 RETURNING name")?;
    let mut rows = stmt.query(params![role, name_key(name)])?;
    Ok(match rows.next()? {
        Some(r) => Some(r.get(0)?),
        None => None,
    })
}

/// The name keys of every operator.
pub fn ops(c: &Conn) -> Result<Vec<String>> {
    let conn = c.sqlite_only()?;
    let mut stmt = conn.prepare_cached("SELECT name_key FROM users WHERE role = 'op'")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_db, users};

    #[test]
    fn op_and_deop() {
        let db = test_db();
        users::create(&db, "Alice", "h").unwrap();
        assert_eq!(ops(&db).unwrap(), Vec::<String>::new());
        assert_eq!(set(&db, "ALICE", true).unwrap().as_deref(), Some("Alice"));
        assert_eq!(ops(&db).unwrap(), ["alice"]);
        set(&db, "alice", false).unwrap();
        assert!(ops(&db).unwrap().is_empty());
        assert_eq!(set(&db, "nobody", true).unwrap(), None);
    }
}
