//! All SQL lives here. Everything else asks this module by name ("find a user", "commit these
//! messages") and never writes a statement itself.
//!
//! Functions take a `&Connection` so unit tests can run them on an in-memory database, and so
//! the hub can keep one dedicated connection while sessions borrow from the pool.

pub mod bans;
pub mod logs;
pub mod messages;
pub mod retention;
pub mod roles;
pub mod tokens;
pub mod users;

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

use crate::error::Result;

/// The current time as the schema's timestamp text (ISO-8601 UTC, second precision).
/// Kept in SQL so every timestamp comes from one clock and one format.
pub(crate) const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')";

/// How long a statement waits for another writer before giving up with SQLITE_BUSY.
/// Long enough that an admin CLI command next to a busy server never reports "locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections the pool keeps. Sessions hold one only for a statement or two, so a few serve
/// thousands of clients; the hub has its own and never waits for the pool.
const POOL_SIZE: u32 = 8;

/// The schema, embedded in the binary. The list only grows: a released file is never edited.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/0001_init.sql")),
        M::up_with_hook(
            include_str!("../../migrations/0002_moderation.sql"),
            |tx: &rusqlite::Transaction| {
                users::fill_skeletons(tx)?;
                Ok(())
            },
        ),
    ])
}

/// Settings every connection gets, pooled or not.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
}

/// An open database: its path and a connection pool. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Shown in the startup line and `status`, so the operator knows which file is live.
    path: PathBuf,
    pool: r2d2::Pool<SqliteConnectionManager>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, switches it to WAL and applies
    /// pending migrations. WAL is set here, once, before the pool exists: setting it from
    /// every pooled connection's init races and fails with "database is locked".
    pub fn open(path: &Path) -> Result<Store> {
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        migrations().to_latest(&mut conn)?;
        drop(conn);

        let manager = SqliteConnectionManager::file(path).with_init(|c| configure(c));
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            // r2d2's own errors go to the log, which must not recurse into the DB sink.
            .build(manager)?;
        Ok(Store {
            path: path.to_path_buf(),
            pool,
        })
    }

    /// The file this store works on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Borrows a pooled connection for a short piece of work.
    pub fn conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>> {
        Ok(self.pool.get()?)
    }

    /// A connection of its own, outside the pool, for a long-lived owner (the hub).
    pub fn dedicated(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path)?;
        configure(&conn)?;
        Ok(conn)
    }
}

/// A fresh in-memory database with the schema, for unit tests.
#[cfg(test)]
pub(crate) fn test_db() -> Connection {
    let mut conn = Connection::open_in_memory().expect("in-memory db");
    configure(&conn).expect("pragmas");
    migrations().to_latest(&mut conn).expect("migrations");
    conn
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().expect("valid migrations");
    }
}
