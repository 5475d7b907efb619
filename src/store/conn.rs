//! A connection to the store, whichever backend holds the data: what every store function
//! takes, so the rest of the server never names a database library.
//!
//! Today the one backend is SQLite; the PostgreSQL backend (issue 11) adds a variant here, and
//! each store function then says its statement for each backend side by side. Borrowed as
//! `&Conn`: a backend whose client needs `&mut` keeps it in a `RefCell` (a `Conn` is used by
//! one thread at a time).

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

/// A connection, pooled or owned.
pub enum Conn {
    Sqlite(Lite),
}

/// An SQLite connection: borrowed from the pool (sessions, the console), or a connection of
/// its own (the hub, the janitor, the admin CLI, unit tests).
pub enum Lite {
    Pooled(r2d2::PooledConnection<SqliteConnectionManager>),
    Owned(Connection),
}

impl Conn {
    /// The SQLite connection under it.
    pub(crate) fn lite(&self) -> &Connection {
        match self {
            Conn::Sqlite(Lite::Pooled(c)) => c,
            Conn::Sqlite(Lite::Owned(c)) => c,
        }
    }

    /// An owned SQLite connection as a store connection.
    pub fn sqlite(conn: Connection) -> Conn {
        Conn::Sqlite(Lite::Owned(conn))
    }
}
