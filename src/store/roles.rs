//! The `users.role` column: who is an operator.

use super::users::name_key;
use super::Conn;
use crate::error::Result;

/// Makes a user an operator (`op`) or not; returns the name as registered, or `None` if there
/// is no such user.
pub fn set(c: &Conn, name: &str, op: bool) -> Result<Option<String>> {
    let role = if op { "op" } else { "user" };
    c.query_opt(
        "UPDATE users SET role = ?1 WHERE name_key = ?2 RETURNING name",
        &[&role, &name_key(name)],
        |r| r.get(0),
    )
}

/// The name keys of every operator.
pub fn ops(c: &Conn) -> Result<Vec<String>> {
    c.query("SELECT name_key FROM users WHERE role = 'op'", &[], |r| {
        r.get(0)
    })
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
