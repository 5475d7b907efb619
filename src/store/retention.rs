//! Retention: deleting old rows of `messages` so a busy public server's file does not grow
//! without bound.
//!
//! Pruning works in small batches, each its own short transaction on the oldest rows, so the
//! hub's commits never wait long behind it. It never deletes one of the newest `keep_public`
//! public messages of any room (what a user sees on coming into it), whatever the policy says.

use super::Conn;
use crate::error::Result;

/// What to keep. Both limits off keeps everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Delete messages older than this many days.
    pub days: Option<u32>,
    /// Delete all but the newest this many messages.
    pub messages: Option<u64>,
    /// The newest this many public messages of each room are never deleted (the server's
    /// `--history`).
    pub keep_public: u32,
}

impl Policy {
    /// Whether the policy deletes anything at all.
    pub fn is_on(&self) -> bool {
        self.days.is_some() || self.messages.is_some()
    }
}

/// Rows one batch deletes at most.
pub const BATCH: usize = 500;

/// Deletes at most `batch` of the oldest messages the policy lets go; returns how many went.
/// Call again until it returns 0.
pub fn prune_batch(c: &Conn, policy: &Policy, batch: usize) -> Result<usize> {
    if !policy.is_on() {
        return Ok(0);
    }
    // Rows at or below `count_cut` are beyond the newest N.
    let count_cut: Option<i64> = match policy.messages {
        None => None,
        Some(n) => c.query_opt(
            "SELECT id FROM messages ORDER BY id DESC LIMIT 1 OFFSET ?1",
            &[&i64::try_from(n).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?,
    };
    let days = policy.days.map(|d| format!("-{d} days"));
    // Each room's newest `keep_public` rows are what a user sees on coming into it: below
    // its `floor` nothing of the room is protected. The inner scan reads the oldest rows not
    // protected (skipping at most rooms x keep_public rows), `batch` of them, so a run costs
    // about the same however large the table is; of those, the policy picks what goes.
    let sql = format!(
        "WITH floors AS MATERIALIZED (
           SELECT r.id AS room,
                  (SELECT min(id) FROM (SELECT id FROM messages INDEXED BY messages_room
                                        WHERE room_id = r.id ORDER BY id DESC LIMIT ?4) k)
                  AS floor
           FROM rooms r WHERE ?4 > 0)
         DELETE FROM messages WHERE id IN (
           SELECT id FROM (SELECT m.id, m.created_at FROM messages m
                           LEFT JOIN floors f ON f.room = m.room_id
                           WHERE f.floor IS NULL OR m.id < f.floor
                           ORDER BY m.id LIMIT ?1) oldest
           WHERE id <= ?2
              OR created_at < CASE WHEN CAST(?3 AS TEXT) IS NULL THEN '' ELSE {} END)",
        c.dialect().now_plus("?3")
    );
    let n = c.execute(
        &sql,
        &[
            &(batch as i64),
            &count_cut.unwrap_or(-1),
            &days,
            &i64::from(policy.keep_public),
        ],
    )? as usize;
    Ok(n)
}

/// Runs batches until nothing more goes; returns the total.
pub fn prune(c: &Conn, policy: &Policy) -> Result<usize> {
    let mut total = 0;
    loop {
        let n = prune_batch(c, policy, BATCH)?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{messages, test_db, users};

    /// `n` public messages in `#lobby`, the first half `old_days` old.
    fn fill(db: &Conn, n: i64, old_days: i64) {
        users::create(db, "alice", "h").unwrap();
        users::create(db, "bob", "h").unwrap();
        for i in 0..n {
            let age = if i < n / 2 { old_days } else { 0 };
            db.raw()
                .execute(
                    "INSERT INTO messages (created_at, author_id, author_name, room_id, body)
                 VALUES (strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?1), 1, 'alice', 1, ?2)",
                    rusqlite::params![format!("-{age} days"), format!("m{i}")],
                )
                .unwrap();
        }
    }

    fn bodies(db: &Conn) -> Vec<String> {
        let mut stmt = db
            .raw()
            .prepare("SELECT body FROM messages ORDER BY id")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn off_keeps_everything() {
        let db = test_db();
        fill(&db, 10, 400);
        assert_eq!(prune(&db, &Policy::default()).unwrap(), 0);
        assert_eq!(messages::count(&db).unwrap(), 10);
    }

    #[test]
    fn by_count_keeps_the_newest() {
        let db = test_db();
        fill(&db, 10, 0);
        let policy = Policy {
            messages: Some(3),
            ..Policy::default()
        };
        // Small batches: the loop must carry on until done.
        assert_eq!(prune_batch(&db, &policy, 4).unwrap(), 4);
        assert_eq!(prune(&db, &policy).unwrap(), 3);
        assert_eq!(bodies(&db), ["m7", "m8", "m9"]);
    }

    #[test]
    fn by_age_deletes_only_old_rows() {
        let db = test_db();
        fill(&db, 10, 40);
        let policy = Policy {
            days: Some(30),
            ..Policy::default()
        };
        assert_eq!(prune(&db, &policy).unwrap(), 5);
        assert_eq!(bodies(&db), ["m5", "m6", "m7", "m8", "m9"]);
    }

    #[test]
    fn each_rooms_login_history_is_kept() {
        let db = test_db();
        fill(&db, 10, 40);
        let crate::store::rooms::Opened::Created(quiet) =
            crate::store::rooms::open(&db, "#quiet", 1, 5, 100).unwrap()
        else {
            panic!("#quiet not made");
        };
        // The quiet room's two lines are the oldest of all, and old.
        db.raw()
            .execute(
                "UPDATE messages SET room_id = ?1, created_at = '2000-01-01T00:00:00Z'
             WHERE body IN ('m0', 'm1')",
                [quiet.id],
            )
            .unwrap();
        let policy = Policy {
            days: Some(30),
            messages: None,
            keep_public: 3,
        };
        // In #lobby m2..m4 are old and go; m0 and m1 are all #quiet has: they stay.
        assert_eq!(prune(&db, &policy).unwrap(), 3);
        assert_eq!(bodies(&db), ["m0", "m1", "m5", "m6", "m7", "m8", "m9"]);
    }

    #[test]
    fn the_login_history_is_never_deleted() {
        let db = test_db();
        fill(&db, 10, 40);
        // Everything is old and over the count, but the newest 6 public ones are kept.
        db.raw()
            .execute(
                "UPDATE messages SET created_at = '2000-01-01T00:00:00Z'",
                [],
            )
            .unwrap();
        let policy = Policy {
            days: Some(1),
            messages: Some(1),
            keep_public: 6,
        };
        assert_eq!(prune(&db, &policy).unwrap(), 4);
        assert_eq!(bodies(&db), ["m4", "m5", "m6", "m7", "m8", "m9"]);
    }
}
