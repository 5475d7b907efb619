//! Transactions on either backend: `BEGIN` (SQLite's `BEGIN IMMEDIATE`), the work, `COMMIT`;
//! rolled back on an error or a panic; on PostgreSQL run once more when a prepared statement
//! inside it was stale (`store::statements`).

use super::conn::{Conn, Dialect};
use super::statements;
use crate::error::Result;

impl Conn {
    /// Runs `f` in one transaction: committed if it returns `Ok`, rolled back otherwise (an
    /// error, a failed `COMMIT`, or a panic unwinding through it: see [`Open`]). On SQLite it
    /// takes the write lock at once (`BEGIN IMMEDIATE`), so it never fails halfway for
    /// another writer. On PostgreSQL, a prepared statement found stale inside it (see
    /// `store::statements`) fails the transaction, which is then run once more, from the
    /// start, with its statements prepared again: so `f` may run twice, and must do nothing
    /// but through `c` (it is rolled back in between).
    pub fn transaction<T>(&self, f: impl FnMut(&Conn) -> Result<T>) -> Result<T> {
        let begin = match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        self.transaction_between(begin, "COMMIT", f)
    }

    /// [`Conn::transaction`], begun by the statements `begin` and ended by `commit` (which
    /// must end in `BEGIN…` and `COMMIT`): what else they carry costs no trip of its own.
    pub fn transaction_between<T>(
        &self,
        begin: &str,
        commit: &str,
        mut f: impl FnMut(&Conn) -> Result<T>,
    ) -> Result<T> {
        match self.attempt(begin, commit, &mut f) {
            Err(e) if statements::stale(&e) => {
                log::debug!("a transaction met a stale prepared statement ({e}); once more");
                self.attempt(begin, commit, &mut f)
            }
            done => done,
        }
    }

    fn attempt<T>(
        &self,
        begin: &str,
        commit: &str,
        f: &mut impl FnMut(&Conn) -> Result<T>,
    ) -> Result<T> {
        self.batch(begin)?;
        let open = Open { conn: self };
        self.inside(true);
        let v = f(self)?;
        self.batch(commit)?;
        std::mem::forget(open); // committed: nothing to roll back
        self.inside(false);
        Ok(v)
    }

    /// Tells the statement cache whether a transaction is open (a stale statement is then
    /// not retried alone).
    fn inside(&self, open: bool) {
        if let Conn::Postgres(pg) = self {
            if let Ok(mut pg) = pg.try_borrow_mut() {
                pg.with(|_, cache| cache.in_transaction = open);
            }
        }
    }
}

/// A transaction begun and not yet committed: dropping it rolls it back.
///
/// What makes `?` and a panic inside [`Conn::transaction`] safe, as rusqlite's own
/// `Transaction` does. Without it a pooled connection went back to the pool still inside
/// the transaction when a panic was caught further up (a session worker catches its job's
/// panic): on SQLite it kept the write lock, and every other writer (the hub, each batch)
/// waited out the busy timeout; the next borrower's `BEGIN` failed, or on PostgreSQL
/// carried on inside the old transaction and committed its half-written rows.
struct Open<'a> {
    conn: &'a Conn,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        // Not `batch`: a panic here, while another unwinds, would abort the process. A
        // PostgreSQL client still borrowed (a panic inside its own call) is left as it is.
        let rolled_back = match self.conn {
            Conn::Sqlite(_) => self
                .conn
                .lite()
                .is_some_and(|c| c.execute_batch("ROLLBACK").is_ok()),
            Conn::Postgres(pg) => pg.try_borrow_mut().is_ok_and(|mut pg| {
                pg.with(|client, cache| {
                    cache.in_transaction = false;
                    client.batch_execute("ROLLBACK").is_ok()
                })
            }),
        };
        if !rolled_back {
            log::warn!("a transaction could not be rolled back; its connection may be unusable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn a_failed_transaction_leaves_nothing() {
        let db = crate::store::test_db();
        let r: Result<()> = db.transaction(|c| {
            c.execute(
                "INSERT INTO logs (created_at, level, target, message) VALUES ('t', 'info', 'x', 'y')",
                &[],
            )?;
            Err(Error::Stopping)
        });
        assert!(r.is_err());
        let n: i64 = db
            .query_one("SELECT count(*) FROM logs", &[], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    /// A bug that panics inside a transaction, caught further up (a session worker catches
    /// its job's panic), must not hand the pooled connection back still inside `BEGIN
    /// IMMEDIATE`: the next writer would wait out the busy timeout, or find itself inside a
    /// transaction it did not begin.
    #[test]
    fn a_panic_inside_a_transaction_rolls_back_before_the_connection_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("besedka.db");
        let store = crate::store::Store::open(&path).unwrap();
        let insert =
            "INSERT INTO logs (created_at, level, target, message) VALUES ('t', 'info', 'x', ?1)";
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let c = store.conn().unwrap();
            let _: Result<()> = c.transaction(|c| {
                c.execute(insert, &[&"half-written"])?;
                panic!("a bug in the middle of a transaction");
            });
        }));
        assert!(caught.is_err(), "the panic went through");

        let started = std::time::Instant::now();
        let c = store.conn().unwrap();
        c.transaction(|c| c.execute(insert, &[&"whole"]))
            .expect("the next transaction on the pool");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "the next transaction waited {:?} for the lock",
            started.elapsed()
        );
        drop(c);
        let fresh = rusqlite::Connection::open(&path).unwrap();
        let mut stmt = fresh
            .prepare("SELECT message FROM logs ORDER BY id")
            .unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, ["whole"], "the half-written row is gone");
    }
}
