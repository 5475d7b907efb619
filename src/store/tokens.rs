//! The `tokens` table: session tokens, stored only as hashes.

use super::users::User;
use super::Conn;
use crate::error::Result;

/// Tokens a user may hold at once. Each password login adds one; past this the oldest go, so a
/// script that logs in in a loop cannot grow the table without bound.
pub const MAX_PER_USER: i64 = 50;

/// Stores a new token hash for `user_id`, valid for `ttl_days`, and drops the user's oldest
/// tokens beyond [`MAX_PER_USER`] and any expired ones.
pub fn insert(c: &Conn, user_id: i64, token_hash: &str, ttl_days: u32) -> Result<()> {
    let d = c.dialect();
    let (now, expires) = (d.now(), d.now_plus("?3"));
    let insert = format!(
        "INSERT INTO tokens (user_id, token_hash, created_at, last_used_at, expires_at)
         VALUES (?1, ?2, {now}, {now}, {expires})"
    );
    let trim = format!(
        "DELETE FROM tokens WHERE user_id = ?1 AND (expires_at <= {now} OR id NOT IN
           (SELECT id FROM tokens WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2))"
    );
    c.transaction(|c| {
        c.execute(
            &insert,
            &[&user_id, &token_hash, &format!("+{ttl_days} days")],
        )?;
        c.execute(&trim, &[&user_id, &MAX_PER_USER])?;
        Ok(())
    })
}

/// The user a token hash belongs to, if it exists and has not expired. Marks it used.
pub fn redeem(c: &Conn, token_hash: &str) -> Result<Option<User>> {
    let now = c.dialect().now();
    let sql = format!(
        "UPDATE tokens SET last_used_at = {now} WHERE token_hash = ?1 AND expires_at > {now}
         RETURNING user_id, (SELECT name FROM users WHERE users.id = tokens.user_id)"
    );
    c.query_opt(&sql, &[&token_hash], |r| {
        Ok(User {
            id: r.get(0)?,
            name: r.get(1)?,
        })
    })
}

/// Revokes one token (`/logout`). Returns whether it existed.
pub fn revoke(c: &Conn, token_hash: &str) -> Result<bool> {
    Ok(c.execute("DELETE FROM tokens WHERE token_hash = ?1", &[&token_hash])? > 0)
}

/// Revokes every token of a user (a ban); returns how many.
pub fn revoke_user(c: &Conn, user_id: i64) -> Result<usize> {
    Ok(c.execute("DELETE FROM tokens WHERE user_id = ?1", &[&user_id])? as usize)
}

/// How many tokens are stored.
pub fn count(c: &Conn) -> Result<i64> {
    c.query_one("SELECT count(*) FROM tokens", &[], |r| r.get(0))
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
        db.raw()
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
        db.raw().execute("DELETE FROM users", []).unwrap();
        assert_eq!(count(&db).unwrap(), 0);
    }
}
