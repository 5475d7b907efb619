//! A connection to the store, whichever backend holds the data: what every store function
//! takes, so the rest of the server never names a database library.
//!
//! Two backends: SQLite (the default, one file) and PostgreSQL (`--db postgres://…`, for
//! several nodes). A store function writes its statement once, in SQLite's dialect with
//! `?N` parameters, and runs it with [`Conn::execute`], [`Conn::query`] and friends: for
//! PostgreSQL the parameters become `$N` (`store::translate`). Where the dialects differ (the clock, upserts,
//! full-text search) the function asks [`Conn::dialect`] and says both, side by side.
//! Borrowed as `&Conn`: PostgreSQL's client needs `&mut`, so it sits in a `RefCell` (a `Conn`
//! is used by one thread at a time). On PostgreSQL each connection keeps the statements it
//! prepared (`store::statements`): a statement costs one trip to the server, not two.

use std::cell::RefCell;

use r2d2_postgres::postgres;
use r2d2_postgres::PostgresConnectionManager;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use super::statements::{self, Statements};
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

/// A PostgreSQL client, pooled or owned, each with the statements prepared on it.
pub enum Pg {
    /// Its statements are kept in the pool's storage for this connection, so they outlive
    /// the borrow and go with the connection when the pool drops it.
    Pooled(r2d2::PooledConnection<PostgresConnectionManager<super::Tls>>),
    Owned(postgres::Client, Statements),
}

impl Pg {
    /// `f` with the client and its statements.
    pub(super) fn with<R>(
        &mut self,
        f: impl FnOnce(&mut postgres::Client, &mut Statements) -> R,
    ) -> R {
        match self {
            Pg::Owned(c, s) => f(c, s),
            Pg::Pooled(c) => {
                // Taken out for the call: the storage and the client are both behind the
                // pooled handle's `&mut`. (A panic in `f` loses them: the server closes the
                // statements with the connection or when their handles drop.)
                let mut s = r2d2::PooledConnection::extensions_mut(c)
                    .remove::<Statements>()
                    .unwrap_or_default();
                let r = f(c, &mut s);
                r2d2::PooledConnection::extensions_mut(c).insert(s);
                r
            }
        }
    }

    fn client(&mut self) -> &mut postgres::Client {
        match self {
            Pg::Pooled(c) => c,
            Pg::Owned(c, _) => c,
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
/// `u32` as an OID.) [`Array`] is PostgreSQL's alone.
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

/// A list bound as one PostgreSQL array parameter (`unnest(CAST(?1 AS bigint[]))`): a batch
/// of any size in one statement whose text does not change with the size, so it is prepared
/// once. SQLite has no arrays: bound there, it is an error.
pub struct Array<T>(pub Vec<T>);

impl<T: postgres::types::ToSql + Sync> Value for Array<T> {
    fn lite(&self) -> &dyn rusqlite::ToSql {
        &NoArrays
    }
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
        &self.0
    }
}

struct NoArrays;

impl rusqlite::ToSql for NoArrays {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Err(rusqlite::Error::ToSqlConversionFailure(
            "an array parameter is for PostgreSQL only".into(),
        ))
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
        Conn::Postgres(RefCell::new(Pg::Owned(client, Statements::default())))
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
                pg.borrow_mut().with(|client, cache| {
                    statements::run(client, cache, sql, |c, stmt| c.execute(stmt, &ps))
                })
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
                let rows = pg.borrow_mut().with(|client, cache| {
                    statements::run(client, cache, sql, |c, stmt| c.query(stmt, &ps))
                })?;
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
            Conn::Postgres(_) => {
                for set in sets {
                    // Not the driver's `query_one`: its "no row" is an error like any other.
                    let rows = self.query(sql, &set, |r| f(r))?;
                    out.push(rows.into_iter().next().ok_or(Error::NotFound)?);
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

    /// How many prepared statements this connection keeps (0 on SQLite, whose cache is
    /// rusqlite's): for tests and diagnostics.
    pub fn prepared(&self) -> usize {
        match self {
            Conn::Sqlite(_) => 0,
            Conn::Postgres(pg) => pg.borrow_mut().with(|_, cache| cache.len()),
        }
    }
}
