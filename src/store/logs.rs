//! The `logs` table: the server's log records, written by the logging sink.

use super::{Conn, Dialect};

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
    c.transaction(|c| {
        for r in records {
            c.execute(
                "INSERT INTO logs (created_at, level, target, message) VALUES (?1, ?2, ?3, ?4)",
                &[&r.created_at, &r.level, &r.target, &r.message],
            )?;
        }
        c.execute(
            "DELETE FROM logs WHERE id <= (SELECT max(id) FROM logs) - ?1",
            &[&MAX_ROWS],
        )?;
        Ok(())
    })
}

/// The last `limit` records, oldest first; with `levels`, only records of those levels.
pub fn recent(c: &Conn, limit: u32, levels: Option<&[&str]>) -> Result<Vec<Record>> {
    let levels = levels.map(|l| l.join(","));
    let find = match c.dialect() {
        Dialect::Sqlite => "instr",
        Dialect::Postgres => "strpos",
    };
    let sql = format!(
        "SELECT created_at, level, target, message FROM logs
         WHERE CAST(?2 AS TEXT) IS NULL OR {find}(',' || ?2 || ',', ',' || level || ',') > 0
         ORDER BY id DESC LIMIT ?1"
    );
    let mut out = c.query(&sql, &[&i64::from(limit), &levels], |r| {
        Ok(Record {
            created_at: r.get(0)?,
            level: r.get(1)?,
            target: r.get(2)?,
            message: r.get(3)?,
        })
    })?;
    out.reverse();
    Ok(out)
}

/// `DELETE FROM logs`; returns how many records were removed.
pub fn clear(c: &Conn) -> Result<usize> {
    Ok(c.execute("DELETE FROM logs", &[])? as usize)
}

/// How many records are stored.
pub fn count(c: &Conn) -> Result<i64> {
    c.query_one("SELECT count(*) FROM logs", &[], |r| r.get(0))
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
