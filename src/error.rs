//! The crate's error type.
//!
//! Errors a *client* causes (a wrong password, a bad name) are not errors here: the
//! session answers them with a `! ` line. This type is for what the operator must see:
//! the disk, the database, the network. One exception, [`Error::NotAQuery`]: only the
//! engine can tell a search query it cannot read, and it says so with a database error, so
//! the store turns that into this variant and callers tell it from a real failure.

use std::io;

/// Everything that can go wrong below the protocol.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A statement failed: the file is unreadable, full, corrupt, or locked for too long.
    #[error("database error: {0}")]
    Db(#[source] rusqlite::Error),
    /// A PostgreSQL statement failed, or the server cannot be reached.
    #[error("database error: {}", pg_text(.0))]
    Pg(#[from] r2d2_postgres::postgres::Error),
    /// TLS to PostgreSQL failed: the server's certificate did not verify. The text names the
    /// host and why (`TLS to db.internal: certificate not signed by the CA in sslrootcert`).
    #[error("{0}")]
    DbTls(String),
    /// A PostgreSQL URL's TLS settings cannot be used (`sslmode`, `sslrootcert`): says why.
    #[error("{0}")]
    DbUrl(String),
    /// A connection of its own ([`crate::store::Dedicated`]) has lost the database and has
    /// no new one yet: it said so once, and tries again by itself.
    #[error("the database cannot be reached")]
    DbDown,
    /// A statement that must find a row found none, on either backend.
    #[error("no such row")]
    NotFound,
    /// The backend cannot do this (yet): says what.
    #[error("not supported on this database: {0}")]
    Unsupported(&'static str),
    /// No pooled connection came free in time (every one is busy or the file can't be opened).
    #[error("database pool error: {0}")]
    Pool(#[from] r2d2::Error),
    /// The schema in the file is newer than this binary, or a migration failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// A socket or file operation failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The server is shutting down and takes on no new work.
    #[error("the server is shutting down")]
    Stopping,
    /// argon2 refused to hash or a stored hash is not a PHC string.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A search query the engine cannot read (FTS5's syntax, or a query PostgreSQL finds too
    /// long): the client's mistake, not the database's. The text says why, in the user's
    /// words (no engine internals), ready to follow "Not a search query: ".
    #[error("not a search query: {0}")]
    NotAQuery(String),
}

/// SQLite's "no row" (`query_row` on nothing) is [`Error::NotFound`], as PostgreSQL's is: a
/// caller tells it from a failure the same way on both backends.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Error::NotFound,
            e => Error::Db(e),
        }
    }
}

impl Error {
    /// Whether a statement broke a constraint (a foreign key to a deleted user, say): a
    /// problem with one row, not with the database.
    pub fn is_constraint(&self) -> bool {
        match self {
            Error::Db(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
            }
            // SQLSTATE class 23: integrity constraint violation.
            Error::Pg(e) => e.code().is_some_and(|c| c.code().starts_with("23")),
            _ => false,
        }
    }
}

impl Error {
    /// Whether the connection a statement ran on is of no more use, though another may be:
    /// closed or broken (the server died, the network failed), its server shutting down or
    /// crashed, or its server a standby (a primary demoted: it takes no writes). After a
    /// failover every connection to the old primary ends so.
    pub fn is_connection_lost(&self) -> bool {
        use std::error::Error as _;
        match self {
            Error::DbDown => true,
            Error::Pg(e) => {
                let io = e.source().is_some_and(|s| s.is::<io::Error>());
                let code = e.code().map(|c| c.code());
                e.is_closed()
                    || io
                    // 08: connection exception; 57P01–03: the server shutting down, crashed,
                    // or starting; 25006: read-only transaction (a standby).
                    || code.is_some_and(|c| {
                        c.starts_with("08") || ["57P01", "57P02", "57P03", "25006"].contains(&c)
                    })
            }
            _ => false,
        }
    }
}

/// A PostgreSQL error in one line: the server's own words for what it refused (the driver
/// says only "db error" for those), the driver's for the rest.
fn pg_text(e: &r2d2_postgres::postgres::Error) -> String {
    match e.as_db_error() {
        // Not its severity: "ERROR"/"FATAL" would read as the log's own level.
        Some(db) => db.message().to_string(),
        // The driver's own words ("error connecting to server") leave out why: the cause
        // (connection refused, timed out, no such host) is its source.
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
