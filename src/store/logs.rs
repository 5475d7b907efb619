//! The `logs` table: the server's log records, written by the logging sink.

use super::Conn;
use rusqlite::{params, Transaction, TransactionBehavior};

use crate::error::Result;

/// Records kept at most; the oldest beyond this are deleted as new ones arrive, so a client
/// that connects in a loop cannot fill the disk through the log.
pub const MAX_ROWS: i64 = 200_000;

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub created_at: String,
    pub level: String,
    pub target: String,
    pub message: String,
}

/// Inserts records in one transaction and trims the table to [`MAX_ROWS`].
pub fn insert(c: &Conn, records: &[Record]) -> Result<()> {
    let conn = c.sqlite_only()?;
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO logs (created_at, level, target, message) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for r in records {
            stmt.execute(params![r.created_at, r.level, r.target, r.message])?;
        }
        tx.prepare_cached("DELETE FROM logs WHERE id <= (SELECT max(id) FROM logs) - ?1")?
            .execute([MAX_ROWS])?;
    }
    tx.commit()?;
    Ok(())
}

/// The last `limit` records, oldest first; with `levels`, only records of those levels.
pub fn recent(c: &Conn, limit: u32, levels: Option<&[&str]>) -> Result<Vec<Record>> {
    let conn = c.sqlite_only()?;
    let levels = levels.map(|l| l.join(","));
    let mut stmt = conn.prepare_cached(
        "SELECT created_at, level, target, message FROM logs
         WHERE ?2 IS NULL OR instr(',' || ?2 || ',', ',' || level || ',') > 0
         ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map(params![limit, levels], |r| {
        Ok(Record {
            created_at: r.get(0)?,
            level: r.get(1)?,
            target: r.get(2)?,
            message: r.get(3)?,
        })
    })?;
    let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    out.reverse();
    Ok(out)
}

/// `DELETE FROM logs`; returns how many records were removed.
pub fn clear(c: &Conn) -> Result<usize> {
    let conn = c.sqlite_only()?;
    Ok(conn.execute("DELETE FROM logs", [])?)
}

/// How many records are stored.
pub fn count(c: &Conn) -> Result<i64> {
    let conn = c.sqlite_only()?;
    Ok(conn.query_row("SELECT count(*) FROM logs", [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db;

    fn rec(level: &str, message: &str) -> Record {
        Record {
            created_at: "2026-11-24T14:33:53Z".into(),
            level: level.into(),
            target: "t".into(),
            message: message.into(),
        }
    }

    #[test]
    fn recent_filters_by_level_oldest_first() {
        let db = test_db();
        insert(
            &db,
            &[
                rec("INFO", "a"),
                rec("WARN", "b"),
                rec("ERROR", "c"),
                rec("INFO", "d"),
            ],
        )
        .unwrap();
        let all: Vec<_> = recent(&db, 3, None)
            .unwrap()
            .into_iter()
            .map(|r| r.message)
            .collect();
        assert_eq!(all, ["b", "c", "d"]);
        let bad: Vec<_> = recent(&db, 10, Some(&["WARN", "ERROR"]))
            .unwrap()
            .into_iter()
            .map(|r| r.message)
            .collect();
        assert_eq!(bad, ["b", "c"]);
        assert_eq!(clear(&db).unwrap(), 4);
        assert_eq!(count(&db).unwrap(), 0);
    }
}
