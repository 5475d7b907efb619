//! All SQL lives here. Everything else asks this module by name ("find a user", "commit these
//! messages") and never writes a statement itself.
//!
//! Functions take a `&Connection` so unit tests can run them on an in-memory database, and so
//! the hub can keep one dedicated connection while sessions borrow from the pool.

pub mod backup;
pub mod bans;
mod conn;
pub mod control;
mod dedicated;
pub mod history;
mod link;
pub mod logs;
pub mod members;
pub mod messages;
pub mod notify;
mod pg;
pub mod presence;
pub mod read_marks;
pub mod removals;
pub mod retention;
pub mod roles;
pub mod rooms;
pub mod search;
pub mod ssh_keys;
mod statements;
pub mod tokens;
mod transaction;
mod translate;
pub mod users;

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_postgres::PostgresConnectionManager;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

pub use conn::{Conn, Dialect, Lite, Pg};
pub use dedicated::{Dedicated, Outage};
pub use link::Tls;

use crate::error::Result;

/// How long a statement waits for another writer before giving up with SQLITE_BUSY.
/// Long enough that an admin CLI command next to a busy server never reports "locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections the pool keeps. Sessions hold one only for a statement or two, so a few serve
/// thousands of clients; the hub has its own and never waits for the pool.
const POOL_SIZE: u32 = 8;

/// Page cache of each pooled connection, in KiB (as SQLite takes it: negative).
const POOL_CACHE_KIB: i64 = -256;

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
        M::up(include_str!("../../migrations/0003_ssh_keys.sql")),
        M::up(include_str!("../../migrations/0004_seen.sql")),
        M::up(include_str!("../../migrations/0005_bell.sql")),
        M::up(include_str!("../../migrations/0006_search.sql")),
        M::up(include_str!("../../migrations/0007_rooms.sql")),
        M::up(include_str!("../../migrations/0008_echo.sql")),
        M::up(include_str!("../../migrations/0009_read_marks.sql")),
        M::up(include_str!("../../migrations/0010_private_rooms.sql")),
        M::up(include_str!("../../migrations/0011_removed_lines.sql")),
        M::up(include_str!("../../migrations/0012_removals.sql")),
    ])
}

/// When a commit is on the disk (`serve --sync`). In WAL mode both survive a crash of the
/// process; only `Full` survives a crash of the machine (power loss), because every commit
/// waits for an fsync. The hub commits a whole batch in one transaction (group commit), so
/// `Full` costs one fsync per batch, not one per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a message is on the disk before anyone sees it.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the last commits may be lost if the machine loses power.
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            _ => Err(format!("{s:?} is not a sync mode: use full or normal")),
        }
    }
}

/// Whether `--db` names a PostgreSQL database (`postgres://…` or `postgresql://…`) rather
/// than an SQLite file.
pub fn is_url(db: &Path) -> bool {
    db.to_str()
        .is_some_and(|p| p.starts_with("postgres://") || p.starts_with("postgresql://"))
}

/// Settings every connection gets, pooled or not.
fn configure(conn: &Connection, sync: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // rusqlite keeps 16 prepared statements a connection; a pooled one serves every kind of
    // session work (about 80 statements in all), so 16 would have it parsing again.
    conn.set_prepared_statement_cache_capacity(statements::CAPACITY);
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = {};",
        sync.pragma()
    ))
}

/// An open database: where it is and a connection pool. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Shown in the startup line and `status`, so the operator knows which file is live (for
    /// PostgreSQL, the URL without its password).
    path: PathBuf,
    pool: Pool,
    /// Given to every SQLite connection, the hub's included.
    sync: Durability,
}

/// The pool of the backend in use.
#[derive(Clone)]
enum Pool {
    Sqlite(r2d2::Pool<SqliteConnectionManager>),
    Postgres {
        pool: r2d2::Pool<PostgresConnectionManager<Tls>>,
        /// For connections outside the pool (the hub's, the listener's), with the pool's
        /// settings and TLS connector. Boxed: it is large.
        link: Box<link::Link>,
    },
}

impl Store {
    /// Opens (creating if needed, mode 0600) the database at `path`, switches it to WAL and
    /// applies pending migrations. WAL is set here, once, before the pool exists: setting it
    /// from every pooled connection's init races and fails with "database is locked".
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with(path, Durability::default())
    }

    /// [`Store::open`] with a chosen durability. A `postgres://` (or `postgresql://`) URL in
    /// place of the path opens PostgreSQL instead ([`Store::open_postgres`]).
    pub fn open_with(path: &Path, sync: Durability) -> Result<Store> {
        if let Some(url) = path.to_str().filter(|_| is_url(path)) {
            return Store::open_postgres(url);
        }
        // Made here, 0600, so no other user of the machine can read it: SQLite would make it
        // 0644 under the usual umask. Its WAL and shared-memory files take its mode.
        crate::private_files::create(path)?;
        let mut conn = Connection::open(path)?;
        configure(&conn, sync)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        migrations().to_latest(&mut conn)?;
        drop(conn);

        let manager = SqliteConnectionManager::file(path).with_init(move |c| {
            configure(c, sync)?;
            // Sessions run point lookups; a small page cache each is plenty, and eight of
            // SQLite's default 2 MB caches would be most of an idle server's memory.
            c.pragma_update(None, "cache_size", POOL_CACHE_KIB)
        });
        Ok(Store {
            path: path.to_path_buf(),
            pool: Pool::Sqlite(pool(manager)?),
            sync,
        })
    }

    /// The file this store works on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Borrows a pooled connection for a short piece of work.
    pub fn conn(&self) -> Result<Conn> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => Conn::Sqlite(Lite::Pooled(pool.get()?)),
            Pool::Postgres { pool, .. } => {
                Conn::Postgres(std::cell::RefCell::new(Pg::Pooled(pool.get()?)))
            }
        })
    }

    /// A connection of its own, outside the pool, for a long-lived owner (the hub).
    pub fn dedicated(&self) -> Result<Conn> {
        match &self.pool {
            Pool::Sqlite(_) => {
                let conn = Connection::open(&self.path)?;
                configure(&conn, self.sync)?;
                Ok(Conn::sqlite(conn))
            }
            Pool::Postgres { link, .. } => Ok(Conn::postgres(link.connect()?)),
        }
    }

    /// A listener for other nodes' commits, on PostgreSQL; `None` on SQLite (one node).
    pub fn listener(&self, node: &str) -> Option<notify::Listener> {
        match &self.pool {
            Pool::Sqlite(_) => None,
            Pool::Postgres { link, .. } => Some(notify::Listener::new((**link).clone(), node)),
        }
    }

    /// The database's size in bytes: the SQLite file and its WAL, or PostgreSQL's
    /// `pg_database_size`.
    pub fn size(&self) -> u64 {
        match &self.pool {
            Pool::Sqlite(_) => {
                let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                let mut wal = self.path.as_os_str().to_owned();
                wal.push("-wal");
                size(&self.path) + size(Path::new(&wal))
            }
            Pool::Postgres { .. } => self
                .conn()
                .and_then(|c| {
                    c.query_one("SELECT pg_database_size(current_database())", &[], |r| {
                        r.get::<i64>(0)
                    })
                })
                .map_or(0, |n| n.max(0) as u64),
        }
    }

    /// The durability in force, as a pooled connection reports it (`PRAGMA synchronous`, or
    /// PostgreSQL's `synchronous_commit`): `full`, `normal`, or why it cannot be read.
    pub fn synchronous(&self) -> String {
        if let Pool::Postgres { .. } = self.pool {
            return match self
                .conn()
                .and_then(|c| c.query_one("SHOW synchronous_commit", &[], |r| r.get::<String>(0)))
            {
                Ok(v) => format!("postgres synchronous_commit={v}"),
                Err(e) => format!("unknown ({e})"),
            };
        }
        let read = self.conn().and_then(|c| {
            Ok(c.sqlite_only()?
                .query_row("PRAGMA synchronous", [], |r| r.get::<_, i64>(0))?)
        });
        match read {
            Ok(0) => "off".into(),
            Ok(1) => "normal".into(),
            Ok(2) => "full".into(),
            Ok(3) => "extra".into(),
            Ok(n) => format!("unknown ({n})"),
            Err(e) => format!("unknown ({e})"),
        }
    }
}

/// A connection pool, for either backend: a few connections, since sessions hold one only
/// for a statement or two; ones opened for a crowd of logins go again once it has passed.
fn pool<M: r2d2::ManageConnection>(manager: M) -> Result<r2d2::Pool<M>>
where
    crate::error::Error: From<r2d2::Error> + From<M::Error>,
{
    let outage = PoolOutage::default();
    Ok(r2d2::Pool::builder()
        .error_handler(Box::new(outage.clone()))
        .event_handler(Box::new(outage))
        .max_size(POOL_SIZE)
        .min_idle(Some(1))
        .idle_timeout(Some(Duration::from_secs(30)))
        .connection_timeout(Duration::from_secs(10))
        .build(manager)?)
}

/// What the pool says while the database is away: once when it cannot make a connection,
/// once when it makes one again (r2d2's own handler logs every failed attempt, several a
/// second). r2d2 reports each dead idle connection it finds on checkout as an error too
/// (after a failover, every one it holds), then replaces them at once: that alone is no
/// outage, so the pool speaks only at an error a second or more after the first with no
/// connection made in between, and counts the outage from the first.
#[derive(Debug, Clone, Default)]
struct PoolOutage(std::sync::Arc<std::sync::Mutex<PoolState>>);

#[derive(Debug, Default)]
struct PoolState {
    /// The first error since a connection was last made.
    first: Option<std::time::Instant>,
    /// The outage was said.
    said: bool,
}

impl<E> r2d2::HandleError<E> for PoolOutage
where
    crate::error::Error: From<E>,
{
    fn handle_error(&self, e: E) {
        let Ok(mut st) = self.0.lock() else { return };
        match st.first {
            None => st.first = Some(std::time::Instant::now()),
            Some(first) if !st.said && first.elapsed() >= std::time::Duration::from_secs(1) => {
                let e: crate::error::Error = e.into();
                log::warn!(target: "besedka::store::pool",
                    "the connection pool cannot reach the database ({e}); trying again by itself");
                st.said = true;
            }
            Some(_) => {}
        }
    }
}

impl r2d2::HandleEvent for PoolOutage {
    fn handle_acquire(&self, _: r2d2::event::AcquireEvent) {
        let Ok(mut st) = self.0.lock() else { return };
        if let (Some(first), true) = (st.first, st.said) {
            log::info!(target: "besedka::store::pool",
                "the connection pool: database reachable again after {:.1} s",
                first.elapsed().as_secs_f64());
        }
        *st = PoolState::default();
    }
}

/// A database as shown to the operator (startup line, logs, errors): a file's path as it is,
/// a PostgreSQL URL without its password.
pub fn shown(db: &Path) -> String {
    if is_url(db) {
        pg::shown_url(&db.to_string_lossy())
    } else {
        db.display().to_string()
    }
}

/// A fresh in-memory database with the schema, for unit tests.
#[cfg(test)]
pub(crate) fn test_db() -> Conn {
    let mut conn = Connection::open_in_memory().expect("in-memory db");
    configure(&conn, Durability::Full).expect("pragmas");
    migrations().to_latest(&mut conn).expect("migrations");
    Conn::sqlite(conn)
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().expect("valid migrations");
    }
}
