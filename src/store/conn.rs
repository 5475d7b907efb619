//! A connection to the store, whichever backend holds the data: what every store function
//! takes, so the rest of the server never names a database library.
//!
//! Two backends: SQLite (the default, one file) and PostgreSQL (`--db postgres://…`, for
//! several nodes). A store function writes its statement once, in SQLite's dialect with
//! `?N` parameters, and runs it with [`Conn::execute`], [`Conn::query`] and friends: for
//! PostgreSQL the parameters become `$N` (`store::translate`). Where the dialects differ (the clock, upserts,
//! full-text search) the function asks [`Conn::dialect`] and says both, side by side.
//! Borrowed as `&Conn`: PostgreSQL's client needs `&mut`, so it sits in a `RefCell` (a `Conn`
//! is used by one thread at a time).

use std::cell::RefCell;

use r2d2_postgres::postgres;
use r2d2_postgres::PostgresConnectionManager;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use super::translate::to_pg;
use crate::error::{Error, Result};

/// A connection, pooled or owned.
pub enum Conn {
    Sqlite(Lite),
    Postgres(RefCell<Pg>),
}

/// An SQLite connection: borrowed from the pool (sessions, the console), or a connection of
/// its own (the hub, the janitor, the admin CLI, unit tests).
pub enum Lite {
    Pooled(r2d2::PooledConnection<SqliteConnectionManager>),
    Owned(Connection),
}

/// A PostgreSQL client, pooled or owned.
pub enum Pg {
    Pooled(r2d2::PooledConnection<PostgresConnectionManager<super::Tls>>),
    Owned(postgres::Client),
}

impl Pg {
    fn client(&mut self) -> &mut postgres::Client {
        match self {
            Pg::Pooled(c) => c,
            Pg::Owned(c) => c,
        }
    }
}

/// Which SQL a backend speaks, for the statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The current time as the schema's timestamp text (ISO-8601 UTC, to the second).
    pub fn now(self) -> &'static str {
        match self {
            Dialect::Sqlite => "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            Dialect::Postgres => {
                "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            }
        }
    }

    /// The time `offset` from now (`offset` a statement parameter such as `?2`, holding
    /// SQLite's modifier text `+3600 seconds` or `-1 hour`), as timestamp text.
    pub fn now_plus(self, offset: &str) -> String {
        match self {
            Dialect::Sqlite => format!("strftime('%Y-%m-%dT%H:%M:%SZ', 'now', {offset})"),
            Dialect::Postgres => format!(
                "to_char(now() AT TIME ZONE 'UTC' + CAST(CAST({offset} AS text) AS interval), \
                 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            ),
        }
    }
}

/// A statement parameter either backend takes. (Integers go as `i64`: PostgreSQL reads a
/// `u32` as an OID.)
pub trait Value {
    fn lite(&self) -> &dyn rusqlite::ToSql;
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync);
}

impl<T: rusqlite::ToSql + postgres::types::ToSql + Sync> Value for T {
    fn lite(&self) -> &dyn rusqlite::ToSql {
        self
    }
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
        self
    }
}

/// A column value either backend gives.
pub trait Field: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a> {}
impl<T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>> Field for T {}

/// A result row, whichever backend.
pub enum Row<'a> {
    Lite(&'a rusqlite::Row<'a>),
    Pg(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `i` (0-based).
    pub fn get<T: Field>(&self, i: usize) -> Result<T> {
        match self {
            Row::Lite(r) => Ok(r.get(i)?),
            Row::Pg(r) => Ok(r.try_get(i)?),
        }
    }
}

impl Conn {
    /// An owned SQLite connection as a store connection.
    pub fn sqlite(conn: Connection) -> Conn {
        Conn::Sqlite(Lite::Owned(conn))
    }

    /// An owned PostgreSQL client as a store connection.
    pub fn postgres(client: postgres::Client) -> Conn {
        Conn::Postgres(RefCell::new(Pg::Owned(client)))
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection under it, for what only SQLite has (its pragmas); `None` on
    /// PostgreSQL.
    pub(crate) fn lite(&self) -> Option<&Connection> {
        match self {
            Conn::Sqlite(Lite::Pooled(c)) => Some(c),
            Conn::Sqlite(Lite::Owned(c)) => Some(c),
            Conn::Postgres(_) => None,
        }
    }

    /// The SQLite connection, for store functions not yet written for both backends.
    pub(crate) fn sqlite_only(&self) -> Result<&Connection> {
        self.lite().ok_or(Error::Unsupported(
            "this store function is SQLite-only so far",
        ))
    }

    /// The SQLite connection, in unit tests (which run on SQLite in memory).
    #[cfg(test)]
    pub(crate) fn raw(&self) -> &Connection {
        self.lite().expect("an SQLite test database")
    }

    /// Runs a statement; how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Value]) -> Result<u64> {
        match self {
            Conn::Sqlite(_) => {
                let conn = self.lite().ok_or(Error::Stopping)?;
                let mut stmt = conn.prepare_cached(sql)?;
                let n =
                    stmt.execute(rusqlite::params_from_iter(params.iter().map(|p| p.lite())))?;
                Ok(n as u64)
            }
            Conn::Postgres(pg) => {
                let ps: Vec<_> = params.iter().map(|p| p.pg()).collect();
                Ok(pg
                    .borrow_mut()
                    .client()
                    .execute(to_pg(sql)?.as_ref(), &ps)?)
            }
        }
    }

    /// Runs a query; `f` makes a value of each row.
    pub fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn Value],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        match self {
            Conn::Sqlite(_) => {
                let conn = self.lite().ok_or(Error::Stopping)?;
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(params.iter().map(|p| p.lite())))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Lite(r))?);
                }
                Ok(out)
            }
            Conn::Postgres(pg) => {
                let ps: Vec<_> = params.iter().map(|p| p.pg()).collect();
                let rows = pg.borrow_mut().client().query(to_pg(sql)?.as_ref(), &ps)?;
                rows.iter().map(|r| f(&Row::Pg(r))).collect()
            }
        }
    }

    /// The first row's value, if there is a row.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Value],
        f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        Ok(self.query(sql, params, f)?.into_iter().next())
    }

    /// The first row's value; [`Error::NotFound`] if there is none (on either backend: use
    /// [`Conn::query_opt`] where no row is an answer, not a failure).
    pub fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn Value],
        f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, params, f)?.ok_or(Error::NotFound)
    }

    /// Runs one statement once per parameter set, in order, prepared once, and makes a value
    /// of each run's first row (an `INSERT … RETURNING` of a batch: the hub's commit, where
    /// a statement per row would cost the commit rate). A run with no row is
    /// [`Error::NotFound`].
    pub fn query_each<'p, T, const N: usize>(
        &self,
        sql: &str,
        sets: impl IntoIterator<Item = [&'p dyn Value; N]>,
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        match self {
            Conn::Sqlite(_) => {
                let conn = self.lite().ok_or(Error::Stopping)?;
                let mut stmt = conn.prepare_cached(sql)?;
                for set in sets {
                    let mut rows =
                        stmt.query(rusqlite::params_from_iter(set.iter().map(|p| p.lite())))?;
                    let row = rows.next()?.ok_or(Error::NotFound)?;
                    out.push(f(&Row::Lite(row))?);
                }
            }
            Conn::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                let client = pg.client();
                let stmt = client.prepare(to_pg(sql)?.as_ref())?;
                for set in sets {
                    let ps: Vec<_> = set.iter().map(|p| p.pg()).collect();
                    // Not the driver's `query_one`: its "no row" is an error like any other.
                    let rows = client.query(&stmt, &ps)?;
                    let row = rows.first().ok_or(Error::NotFound)?;
                    out.push(f(&Row::Pg(row))?);
                }
            }
        }
        Ok(out)
    }

    /// Runs statements with no parameters and no results (a schema, `BEGIN`).
    pub fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(_) => Ok(self.lite().ok_or(Error::Stopping)?.execute_batch(sql)?),
            Conn::Postgres(pg) => Ok(pg.borrow_mut().client().batch_execute(sql)?),
        }
    }

    /// Runs `f` in one transaction: committed if it returns `Ok`, rolled back otherwise (an
    /// error, a failed `COMMIT`, or a panic unwinding through it: see [`Open`]). On SQLite it
    /// takes the write lock at once (`BEGIN IMMEDIATE`), so it never fails halfway for
    /// another writer.
    pub fn transaction<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        self.batch(match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        })?;
        let open = Open { conn: self };
        let v = f(self)?;
        self.batch("COMMIT")?;
        std::mem::forget(open); // committed: nothing to roll back
        Ok(v)
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
            Conn::Postgres(pg) => pg
                .try_borrow_mut()
                .is_ok_and(|mut pg| pg.client().batch_execute("ROLLBACK").is_ok()),
        };
        if !rolled_back {
            log::warn!("a transaction could not be rolled back; its connection may be unusable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
