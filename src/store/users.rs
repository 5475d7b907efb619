//! The `users` table: accounts.

use unicode_normalization::UnicodeNormalization;

use super::conn::Value;
use super::{Conn, Dialect};
use crate::error::Result;

/// An account as the rest of the server sees it (never with its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    /// The name as registered; shown in chat whatever case the user logs in with.
    pub name: String,
}

/// A name as stored and compared: NFKC-normalized, so fullwidth `ａｌｉｃｅ` is `alice` and a
/// decomposed `é` is the composed one.
pub fn normalize(name: &str) -> String {
    name.nfkc().collect()
}

/// The key that makes names case-insensitive: Unicode lowercase of the NFKC form, so `Борис`
/// and `борис` are one user (SQLite's NOCASE folds ASCII only).
pub fn name_key(name: &str) -> String {
    normalize(name).to_lowercase()
}

/// The key that finds look-alikes: the UTS #39 confusable skeleton of [`name_key`], so
/// `alice`, `аlice` (Cyrillic а), `ΑLICE` (Greek Alpha) and `alıce` (dotless ı) share one.
/// Lowercased first: a capital Alpha's skeleton is `A`, a small alpha's is `a`.
pub fn skeleton_key(name: &str) -> String {
    unicode_security::skeleton(&name_key(name)).collect()
}

/// Why a new name cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clash {
    /// The name, in any case, belongs to someone.
    Taken,
    /// It looks like this existing user's name.
    TooClose(String),
}

/// Whether `name` clashes with an existing user's.
pub fn clash(c: &Conn, name: &str) -> Result<Option<Clash>> {
    if find(c, name)?.is_some() {
        return Ok(Some(Clash::Taken));
    }
    let similar = c.query_opt(
        "SELECT name FROM users WHERE name_skeleton = ?1 LIMIT 1",
        &[&skeleton_key(name)],
        |r| r.get::<String>(0),
    )?;
    Ok(similar.map(Clash::TooClose))
}

/// Fills `name_skeleton` for rows that have none (users registered before the column; run by
/// SQLite's migration 0002).
pub fn fill_skeletons(conn: &rusqlite::Connection) -> rusqlite::Result<usize> {
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT id, name FROM users WHERE name_skeleton IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = conn.prepare("UPDATE users SET name_skeleton = ?1 WHERE id = ?2")?;
    for (id, name) in &rows {
        update.execute(rusqlite::params![skeleton_key(name), id])?;
    }
    Ok(rows.len())
}

/// Looks a user up by name, any case. Returns the user and their password hash.
pub fn find(c: &Conn, name: &str) -> Result<Option<(User, String)>> {
    c.query_opt(
        "SELECT id, name, password_hash FROM users WHERE name_key = ?1",
        &[&name_key(name)],
        |r| {
            Ok((
                User {
                    id: r.get(0)?,
                    name: r.get(1)?,
                },
                r.get(2)?,
            ))
        },
    )
}

/// Creates a user under the NFKC form of `name`. `Ok(None)` if the name [clashes](clash)
/// with an existing one (taken in any case, or a look-alike), which can also happen between a
/// check and this insert when two people register at once: the insert is the final word.
pub fn create(c: &Conn, name: &str, password_hash: &str) -> Result<Option<User>> {
    let name = normalize(name);
    let sql = format!(
        "INSERT INTO users (name, name_key, name_skeleton, password_hash, created_at)
         SELECT ?1, ?2, ?3, ?4, {}
         WHERE NOT EXISTS (SELECT 1 FROM users WHERE name_skeleton = ?3)
         ON CONFLICT (name_key) DO NOTHING RETURNING id",
        c.dialect().now()
    );
    let id = c.query_opt(
        &sql,
        &[
            &name,
            &name_key(&name),
            &skeleton_key(&name),
            &password_hash,
        ],
        |r| r.get::<i64>(0),
    )?;
    Ok(id.map(|id| User { id, name }))
}

/// How many accounts exist.
pub fn count(c: &Conn) -> Result<i64> {
    c.query_one("SELECT count(*) FROM users", &[], |r| r.get(0))
}

/// A row of `besedka users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub created_at: String,
    pub tokens: i64,
    /// An operator (`users.role = 'op'`).
    pub op: bool,
}

/// Every user with their token count, oldest account first.
pub fn list(c: &Conn) -> Result<Vec<Listed>> {
    c.query(
        "SELECT u.name, u.created_at, count(t.id), u.role = 'op' FROM users u
         LEFT JOIN tokens t ON t.user_id = u.id GROUP BY u.id, u.name, u.created_at, u.role
         ORDER BY u.id",
        &[],
        |r| {
            Ok(Listed {
                name: r.get(0)?,
                created_at: r.get(1)?,
                tokens: r.get(2)?,
                op: r.get(3)?,
            })
        },
    )
}

/// The last message id the user had been shown when their last session ended; `None` if
/// the account does not exist (any more).
pub fn seen(c: &Conn, id: i64) -> Result<Option<i64>> {
    c.query_opt("SELECT seen_id FROM users WHERE id = ?1", &[&id], |r| {
        r.get(0)
    })
}

/// Records, for each `(user, message id)`, what the user had been shown when they left; in
/// one transaction (the hub writes a batch's leaves at once).
pub fn mark_seen(c: &Conn, seen: &[(i64, i64)]) -> Result<()> {
    let sql = match c.dialect() {
        Dialect::Sqlite => "UPDATE users SET seen_id = MAX(seen_id, ?2) WHERE id = ?1",
        Dialect::Postgres => "UPDATE users SET seen_id = GREATEST(seen_id, ?2) WHERE id = ?1",
    };
    c.transaction(|c| {
        for (user, id) in seen {
            c.execute(sql, &[user, id])?;
        }
        Ok(())
    })
}

/// Whether the user's own lines come back to their terminal (`/echo`).
pub fn echo(c: &Conn, id: i64) -> Result<bool> {
    Ok(
        c.query_opt("SELECT echo FROM users WHERE id = ?1", &[&id], |r| r.get(0))?
            .unwrap_or(true),
    )
}

pub fn set_echo(c: &Conn, id: i64, on: bool) -> Result<()> {
    c.execute("UPDATE users SET echo = ?2 WHERE id = ?1", &[&id, &on])?;
    Ok(())
}

/// Whether a mention rings the user's bell (`/bell`).
pub fn bell(c: &Conn, id: i64) -> Result<bool> {
    Ok(
        c.query_opt("SELECT bell FROM users WHERE id = ?1", &[&id], |r| r.get(0))?
            .unwrap_or(true),
    )
}

pub fn set_bell(c: &Conn, id: i64, on: bool) -> Result<()> {
    c.execute("UPDATE users SET bell = ?2 WHERE id = ?1", &[&id, &on])?;
    Ok(())
}

/// Ids a statement checks at most ([`missing`]); well under either backend's limit on
/// parameters.
const CHECK_CHUNK: usize = 500;

/// The ids among `ids` that no account has any more: removed while their sessions were
/// online (`besedka purge-auth` writes the database directly). Ids are never reused, so a
/// present id is the same account.
pub fn missing(c: &Conn, ids: &[i64]) -> Result<Vec<i64>> {
    let mut gone = Vec::new();
    for chunk in ids.chunks(CHECK_CHUNK) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
        let sql = format!("SELECT id FROM users WHERE id IN ({})", marks.join(", "));
        let params: Vec<&dyn Value> = chunk.iter().map(|id| id as &dyn Value).collect();
        let present: std::collections::HashSet<i64> =
            c.query(&sql, &params, |r| r.get(0))?.into_iter().collect();
        gone.extend(chunk.iter().filter(|id| !present.contains(id)));
    }
    Ok(gone)
}

/// How many rows a purge removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub users: usize,
    pub tokens: usize,
}

/// Deletes every user and token in one transaction (console `clear-auth`, CLI `purge-auth`).
/// History stays: authors keep their names as text; private messages go with their
/// recipients.
pub fn purge_all(c: &Conn) -> Result<Purged> {
    c.transaction(|c| {
        let tokens = c.execute("DELETE FROM tokens", &[])? as usize;
        let users = c.execute("DELETE FROM users", &[])? as usize;
        Ok(Purged { users, tokens })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db;

    #[test]
    fn missing_lists_the_ids_no_account_has() {
        let db = test_db();
        let a = create(&db, "alice", "h").unwrap().unwrap();
        let b = create(&db, "bob", "h").unwrap().unwrap();
        assert_eq!(missing(&db, &[a.id, b.id]).unwrap(), Vec::<i64>::new());
        assert_eq!(missing(&db, &[]).unwrap(), Vec::<i64>::new());
        db.raw()
            .execute("DELETE FROM users WHERE id = ?1", [b.id])
            .unwrap();
        // More ids than one statement takes.
        let many: Vec<i64> = (1000..2200).chain([a.id, b.id]).collect();
        let gone = missing(&db, &many).unwrap();
        assert!(gone.contains(&b.id) && !gone.contains(&a.id), "{gone:?}");
        assert_eq!(gone.len(), many.len() - 1);
    }

    #[test]
    fn names_are_unique_in_any_case_and_script() {
        let db = test_db();
        let alice = create(&db, "Alice", "h1").unwrap().expect("created");
        assert!(create(&db, "alice", "h2").unwrap().is_none());
        let (found, hash) = find(&db, "ALICE").unwrap().expect("found");
        assert_eq!(found, alice);
        assert_eq!(found.name, "Alice");
        assert_eq!(hash, "h1");

        create(&db, "Борис", "h3").unwrap().expect("created");
        assert!(create(&db, "борис", "h4").unwrap().is_none());
        assert_eq!(find(&db, "БОРИС").unwrap().unwrap().0.name, "Борис");
        assert_eq!(count(&db).unwrap(), 2);
    }

    #[test]
    fn purge_removes_users_and_tokens_and_keeps_public_history() {
        let db = test_db();
        let a = create(&db, "alice", "h").unwrap().unwrap();
        crate::store::tokens::insert(&db, a.id, "t1", 30).unwrap();
        crate::store::tokens::insert(&db, a.id, "t2", 30).unwrap();
        db.raw().execute(
            "INSERT INTO messages (created_at, author_id, author_name, body) VALUES ('x', ?1, 'alice', 'hi')",
            [a.id],
        )
        .unwrap();
        assert_eq!(list(&db).unwrap()[0].tokens, 2);
        assert_eq!(
            purge_all(&db).unwrap(),
            Purged {
                users: 1,
                tokens: 2
            }
        );
        assert_eq!(seen(&db, a.id).unwrap(), None, "the account is gone");
        assert_eq!(crate::store::messages::count(&db).unwrap(), 1);
        assert!(list(&db).unwrap().is_empty());
    }

    #[test]
    fn look_alikes_of_an_existing_name_are_refused() {
        let db = test_db();
        create(&db, "alice", "h").unwrap().expect("created");
        for twin in ["аlice", "ΑLICE", "alıce"] {
            assert_eq!(
                clash(&db, twin).unwrap(),
                Some(Clash::TooClose("alice".into())),
                "{twin}"
            );
            assert!(create(&db, twin, "h").unwrap().is_none(), "{twin}");
        }
        // Fullwidth is NFKC `alice`: the same name, taken.
        assert_eq!(clash(&db, "ａｌｉｃｅ").unwrap(), Some(Clash::Taken));
        assert_eq!(find(&db, "ＡＬＩＣＥ").unwrap().unwrap().0.name, "alice");
        assert_eq!(clash(&db, "Борис").unwrap(), None);
        assert_eq!(create(&db, "ｂｏｂ", "h").unwrap().unwrap().name, "bob");
    }

    #[test]
    fn skeletons_are_filled_for_users_from_before_the_rule() {
        let db = test_db();
        db.raw().execute(
            "INSERT INTO users (name, name_key, password_hash, created_at) VALUES ('alice', 'alice', 'h', 'x')",
            [],
        )
        .unwrap();
        assert!(
            create(&db, "аlice", "h").unwrap().is_some(),
            "no skeleton yet"
        );
        assert_eq!(fill_skeletons(db.raw()).unwrap(), 1);
        assert_eq!(
            clash(&db, "ΑLICE").unwrap(),
            Some(Clash::TooClose("alice".into()))
        );
    }

    #[test]
    fn unknown_name_is_none() {
        assert!(find(&test_db(), "nobody").unwrap().is_none());
    }
}
