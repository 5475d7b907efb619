//! The `tokens` table: session tokens, stored only as hashes.

use super::Conn;
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::users::User;
use super::NOW;
use crate::error::Result;

/// Tokens a user may hold at once. Each password login adds one; past this the oldest go, so a
/// script that logs in in a loop cannot grow the table without bound.
pub const MAX_PER_USER: i64 = 50;

/// Stores a new token hash for `user_id`, valid for `ttl_days`, and drops the user's oldest
/// tokens beyond [`MAX_PER_USER`] and any expired ones.
pub fn insert(c: &Conn, user_id: i64, token_hash: &str, ttl_days: u32) -> Result<()> {
    let conn = c.lite();
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    tx.prepare_cached(&format!(
        "INSERT INTO tokens (user_id, token_hash, created_at, last_used_at, expires_at)
         VALUES (?1, ?2, {NOW}, {NOW}, strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?3))"
    ))?
    .execute(params![user_id, token_hash, format!("+{ttl_days} days")])?;
    tx.prepare_cached(&format!(
        "DELETE FROM tokens WHERE user_id = ?1 AND (expires_at <= {NOW} OR id NOT IN
           (SELECT id FROM tokens WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2))"
    ))?
    .execute(params![user_id, MAX_PER_USER])?;
    tx.commit()?;
    Ok(())
}

/// The user a token hash belongs to, if it exists and has not expired. Marks it used.
pub fn redeem(c: &Conn, token_hash: &str) -> Result<Option<User>> {
    let conn = c.lite();
    let sql = format!(
        "UPDATE tokens SET last_used_at = {NOW} WHERE token_hash = ?1 AND expires_at > {NOW}
         RETURNING user_id, (SELECT name FROM users WHERE users.id = tokens.user_id)"
    );
    let user = conn
        .prepare_cached(&sql)?
        .query_row([token_hash], |r| {
            Ok(User {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        })
        .optional()?;
    Ok(user)
}

/// Revokes one token (`/logout`). Returns whether it existed.
pub fn revoke(c: &Conn, token_hash: &str) -> Result<bool> {
    let conn = c.lite();
    let n = conn
        .prepare_cached("DELETE FROM tokens WHERE token_hash = ?1")?
        .execute([token_hash])?;
    Ok(n > 0)
}

/// Revokes every token of a user (a ban); returns how many.
pub fn revoke_user(c: &Conn, user_id: i64) -> Result<usize> {
    let conn = c.lite();
    Ok(conn
        .prepare_cached("DELETE FROM tokens WHERE user_id = ?1")?
        .execute([user_id])?)
}

/// How many tokens are stored.
pub fn count(c: &Conn) -> Result<i64> {
    let conn = c.lite();
    Ok(conn.query_row("SELECT count(*) FROM tokens", [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_db, users};

    #[test]
    fn redeem_finds_the_owner_until_revoked() {
        let db = test_db();
        let u = users::create(&db, "alice", "h").unwrap().unwrap();
        insert(&db, u.id, "abc", 30).unwrap();
        assert_eq!(redeem(&db, "abc").unwrap(), Some(u.clone()));
        assert_eq!(redeem(&db, "nope").unwrap(), None);
        assert!(revoke(&db, "abc").unwrap());
        assert_eq!(redeem(&db, "abc").unwrap(), None);
        insert(&db, u.id, "d", 30).unwrap();
        insert(&db, u.id, "e", 30).unwrap();
        assert_eq!(revoke_user(&db, u.id).unwrap(), 2);
        assert_eq!(redeem(&db, "e").unwrap(), None);
    }

    #[test]
    fn expired_tokens_are_refused() {
        let db = test_db();
        let u = users::create(&db, "alice", "h").unwrap().unwrap();
        insert(&db, u.id, "abc", 30).unwrap();
        db.lite()
            .execute("UPDATE tokens SET expires_at = '2000-01-01T00:00:00Z'", [])
            .unwrap();
        assert_eq!(redeem(&db, "abc").unwrap(), None);
    }

    #[test]
    fn tokens_per_user_are_bounded() {
        let db = test_db();
        let u = users::create(&db, "alice", "h").unwrap().unwrap();
        for i in 0..MAX_PER_USER + 5 {
            insert(&db, u.id, &format!("t{i}"), 30).unwrap();
        }
        assert_eq!(count(&db).unwrap(), MAX_PER_USER);
        assert_eq!(redeem(&db, "t0").unwrap(), None, "oldest dropped");
        assert!(redeem(&db, &format!("t{}", MAX_PER_USER + 4))
            .unwrap()
            .is_some());
    }

    #[test]
    fn tokens_go_with_their_user() {
        let db = test_db();
        let u = users::create(&db, "alice", "h").unwrap().unwrap();
        insert(&db, u.id, "abc", 30).unwrap();
        db.lite().execute("DELETE FROM users", []).unwrap();
        assert_eq!(count(&db).unwrap(), 0);
    }
}
