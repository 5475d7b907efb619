//! `ssh_keys`: public keys that log their user in over SSH. A key belongs to one user at
//! most; deleting the user deletes its keys (`ON DELETE CASCADE`).

use super::users::User;
use super::Conn;
use crate::error::Result;

/// Keys one user may have at most.
pub const MAX_PER_USER: usize = 20;

/// A stored key, as `/key list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub algorithm: String,
    pub fingerprint: String,
    pub comment: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// What adding a key did.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    Added,
    /// This user has it already.
    Already,
    /// Another user has it: a key belongs to one user at most.
    Taken,
    /// The user has [`MAX_PER_USER`] keys.
    Full,
}

/// Adds a key to a user, in one transaction (the count and the insert agree).
pub fn add(
    c: &Conn,
    user_id: i64,
    algorithm: &str,
    public_key: &str,
    fingerprint: &str,
    comment: &str,
) -> Result<Added> {
    c.transaction(|c| {
        let owner: Option<i64> = c.query_opt(
            "SELECT user_id FROM ssh_keys WHERE fingerprint = ?1",
            &[&fingerprint],
            |r| r.get(0),
        )?;
        match owner {
            Some(id) if id == user_id => return Ok(Added::Already),
            Some(_) => return Ok(Added::Taken),
            None => {}
        }
        let n: i64 = c.query_one(
            "SELECT count(*) FROM ssh_keys WHERE user_id = ?1",
            &[&user_id],
            |r| r.get(0),
        )?;
        if n as usize >= MAX_PER_USER {
            return Ok(Added::Full);
        }
        c.execute(
            "INSERT INTO ssh_keys (user_id, algorithm, public_key, fingerprint, comment)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &[&user_id, &algorithm, &public_key, &fingerprint, &comment],
        )?;
        Ok(Added::Added)
    })
}

/// A user's keys, oldest first.
pub fn list(c: &Conn, user_id: i64) -> Result<Vec<Key>> {
    c.query(
        "SELECT algorithm, fingerprint, comment, created_at, last_used_at
         FROM ssh_keys WHERE user_id = ?1 ORDER BY id",
        &[&user_id],
        |r| {
            Ok(Key {
                algorithm: r.get(0)?,
                fingerprint: r.get(1)?,
                comment: r.get(2)?,
                created_at: r.get(3)?,
                last_used_at: r.get(4)?,
            })
        },
    )
}

/// Removes one of a user's keys; false if the user has no key with that fingerprint.
pub fn remove(c: &Conn, user_id: i64, fingerprint: &str) -> Result<bool> {
    Ok(c.execute(
        "DELETE FROM ssh_keys WHERE user_id = ?1 AND fingerprint = ?2",
        &[&user_id, &fingerprint],
    )? > 0)
}

/// The user a key belongs to, if any.
pub fn owner(c: &Conn, fingerprint: &str) -> Result<Option<User>> {
    c.query_opt(
        "SELECT u.id, u.name FROM ssh_keys k JOIN users u ON u.id = k.user_id
         WHERE k.fingerprint = ?1",
        &[&fingerprint],
        |r| {
            Ok(User {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        },
    )
}

/// Notes that a key was just used to log in.
pub fn touch(c: &Conn, fingerprint: &str) -> Result<()> {
    let sql = format!(
        "UPDATE ssh_keys SET last_used_at = {} WHERE fingerprint = ?1",
        c.dialect().now()
    );
    c.execute(&sql, &[&fingerprint])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_db, users};

    #[test]
    fn a_key_belongs_to_one_user_and_goes_with_it() {
        let db = test_db();
        let alice = users::create(&db, "alice", "h").unwrap().unwrap();
        let bob = users::create(&db, "bob", "h").unwrap().unwrap();
        let add = |u: &User, fp: &str| add(&db, u.id, "ssh-ed25519", "ssh-ed25519 AAAA", fp, "c");
        assert_eq!(add(&alice, "SHA256:a").unwrap(), Added::Added);
        assert_eq!(add(&alice, "SHA256:a").unwrap(), Added::Already);
        assert_eq!(add(&bob, "SHA256:a").unwrap(), Added::Taken);
        assert_eq!(owner(&db, "SHA256:a").unwrap(), Some(alice.clone()));
        assert_eq!(owner(&db, "SHA256:zz").unwrap(), None);
        touch(&db, "SHA256:a").unwrap();
        assert!(list(&db, alice.id).unwrap()[0].last_used_at.is_some());
        assert!(
            !remove(&db, bob.id, "SHA256:a").unwrap(),
            "only its owner removes it"
        );
        for i in 1..MAX_PER_USER {
            assert_eq!(add(&alice, &format!("SHA256:{i}")).unwrap(), Added::Added);
        }
        assert_eq!(add(&alice, "SHA256:one-more").unwrap(), Added::Full);
        users::purge_all(&db).unwrap();
        assert_eq!(
            owner(&db, "SHA256:a").unwrap(),
            None,
            "keys go with their users"
        );
        let n: i64 = db
            .raw()
            .query_row("SELECT count(*) FROM ssh_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
