//! The `bans` table: bans by name or address, and mutes.
//!
//! Rows are the truth; the server keeps an in-memory copy of the active ones
//! ([`crate::server::moderation`]) and reloads it after every change and every few seconds, so a
//! ban made with `besedka ban` from a shell reaches a running server too.

use std::time::Duration;

use super::conn::Row;
use super::Conn;
use crate::error::Result;

/// What a row restricts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A user (by name key) may not log in.
    Name,
    /// An address or CIDR range may not connect.
    Ip,
    /// A user may read but not speak.
    Mute,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Name => "name",
            Kind::Ip => "ip",
            Kind::Mute => "mute",
        }
    }

    fn parse(s: &str) -> Kind {
        match s {
            "ip" => Kind::Ip,
            "mute" => Kind::Mute,
            _ => Kind::Name,
        }
    }
}

/// One row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub kind: Kind,
    pub value: String,
    pub reason: String,
    pub created_at: String,
    /// `None`: forever. Same text format as every timestamp, so text order is time order.
    pub expires_at: Option<String>,
    pub created_by: String,
}

/// Adds a ban or mute, replacing an earlier one on the same value (so `ban bob 1h` after
/// `ban bob` shortens it, as the operator asked). `ttl` `None` is forever.
pub fn add(
    c: &Conn,
    kind: Kind,
    value: &str,
    reason: &str,
    ttl: Option<Duration>,
    by: &str,
) -> Result<Ban> {
    let ttl = ttl.map(|d| format!("+{} seconds", d.as_secs()));
    let d = c.dialect();
    let sql = format!(
        "INSERT INTO bans (kind, value, reason, created_at, expires_at, created_by)
         VALUES (?1, ?2, ?3, {},
                 CASE WHEN CAST(?4 AS TEXT) IS NULL THEN NULL ELSE {} END,
                 ?5)
         ON CONFLICT (kind, value) DO UPDATE SET reason = excluded.reason,
             created_at = excluded.created_at, expires_at = excluded.expires_at,
             created_by = excluded.created_by
         RETURNING kind, value, reason, created_at, expires_at, created_by",
        d.now(),
        d.now_plus("?4")
    );
    c.query_one(&sql, &[&kind.as_str(), &value, &reason, &ttl, &by], row)
}

/// Bans a user by name and revokes every token of theirs, in one transaction: a banned user
/// keeps no way back in but the password once the ban ends.
pub fn ban_user(
    c: &Conn,
    user_id: i64,
    key: &str,
    reason: &str,
    ttl: Option<Duration>,
    by: &str,
) -> Result<Ban> {
    c.transaction(|c| {
        let ban = add(c, Kind::Name, key, reason, ttl, by)?;
        super::tokens::revoke_user(c, user_id)?;
        Ok(ban)
    })
}

/// Lifts a ban or mute; returns whether one was in force.
pub fn remove(c: &Conn, kind: Kind, value: &str) -> Result<bool> {
    let sql = format!(
        "DELETE FROM bans WHERE kind = ?1 AND value = ?2
         RETURNING expires_at IS NULL OR expires_at > {}",
        c.dialect().now()
    );
    let active: Vec<bool> = c.query(&sql, &[&kind.as_str(), &value], |r| r.get(0))?;
    Ok(active.into_iter().any(|a| a))
}

/// Every ban and mute still in force, oldest first.
pub fn active(c: &Conn) -> Result<Vec<Ban>> {
    let sql = format!(
        "SELECT kind, value, reason, created_at, expires_at, created_by FROM bans
         WHERE expires_at IS NULL OR expires_at > {} ORDER BY id",
        c.dialect().now()
    );
    c.query(&sql, &[], row)
}

/// Deletes expired rows; returns how many.
pub fn delete_expired(c: &Conn) -> Result<usize> {
    let sql = format!("DELETE FROM bans WHERE expires_at <= {}", c.dialect().now());
    Ok(c.execute(&sql, &[])? as usize)
}

fn row(r: &Row<'_>) -> Result<Ban> {
    Ok(Ban {
        kind: Kind::parse(&r.get::<String>(0)?),
        value: r.get(1)?,
        reason: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        created_by: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db;

    #[test]
    fn add_replace_list_and_remove() {
        let db = test_db();
        add(&db, Kind::Name, "bob", "spam", None, "server").unwrap();
        let b = add(
            &db,
            Kind::Name,
            "bob",
            "flood",
            Some(Duration::from_secs(3600)),
            "alice",
        )
        .unwrap();
        assert_eq!(b.reason, "flood");
        assert_eq!(b.created_by, "alice");
        let until = b.expires_at.clone().expect("timed");
        assert!(until > b.created_at, "{until} after {}", b.created_at);
        add(&db, Kind::Ip, "203.0.113.0/24", "", None, "server").unwrap();
        add(&db, Kind::Mute, "bob", "", None, "server").unwrap();
        let all = active(&db).unwrap();
        assert_eq!(all.len(), 3, "one row per (kind, value): {all:?}");
        assert!(remove(&db, Kind::Name, "bob").unwrap());
        assert!(!remove(&db, Kind::Name, "bob").unwrap());
        assert_eq!(active(&db).unwrap().len(), 2);
    }

    #[test]
    fn expired_rows_stop_applying_and_are_deleted() {
        let db = test_db();
        add(
            &db,
            Kind::Name,
            "bob",
            "",
            Some(Duration::from_secs(60)),
            "server",
        )
        .unwrap();
        add(&db, Kind::Name, "eve", "", None, "server").unwrap();
        db.raw()
            .execute(
                "UPDATE bans SET expires_at = '2000-01-01T00:00:00Z' WHERE value = 'bob'",
                [],
            )
            .unwrap();
        let left: Vec<String> = active(&db).unwrap().into_iter().map(|b| b.value).collect();
        assert_eq!(left, ["eve"]);
        assert!(
            !remove(&db, Kind::Name, "bob").unwrap(),
            "an expired ban was not in force"
        );
        add(
            &db,
            Kind::Name,
            "bob",
            "",
            Some(Duration::from_secs(60)),
            "server",
        )
        .unwrap();
        db.raw()
            .execute(
                "UPDATE bans SET expires_at = '2000-01-01T00:00:00Z' WHERE value = 'bob'",
                [],
            )
            .unwrap();
        assert_eq!(delete_expired(&db).unwrap(), 1);
        assert_eq!(active(&db).unwrap().len(), 1);
    }
}
