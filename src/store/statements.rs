//! The statements prepared on one PostgreSQL connection, by their text, so a statement is
//! parsed once per connection and then costs one trip to the server, not two.
//!
//! The driver (`postgres`) has no cache of its own: handed the text, it sends a parse, waits
//! for the answer, then sends the execute (and closes the statement after it). Here a
//! connection keeps what it prepared ([`Statements`]): a pooled one in the pool's storage
//! for that connection, a dedicated one beside its client (`store::conn`). A connection
//! replaced (broken, then made again by the pool or the hub) starts with an empty cache, as
//! its server process knows none of the old one's statements.
//!
//! A cached statement can go stale on the server: its result's columns changed under it (an
//! `ALTER TABLE … ALTER COLUMN … TYPE` from another node's migration or a shell: "cached plan
//! must not change result type"), or it is gone (`DEALLOCATE ALL`, `DISCARD ALL`, as a
//! pooler such as PgBouncer may send). Then the cache is emptied and the statement prepared
//! again and run once more; inside a transaction the transaction has failed with it, so
//! `Conn::transaction` runs the whole of it again instead ([`stale`]).

use std::collections::HashMap;

use r2d2_postgres::postgres::{self, error::SqlState, Client, Statement};

use super::translate::to_pg;
use crate::error::{Error, Result};

/// Statements kept per connection (SQLite's connections keep as many in rusqlite's cache).
/// Every statement the server writes is a constant text
/// (about 80 of them, each connection using a few dozen; a batch of any size is one text,
/// `unnest` of arrays), so this holds the working set with room to spare. The bound is for
/// what it does not foresee: a statement whose text came to vary with its input would
/// otherwise fill the node's memory and, worse, the server's (a prepared statement keeps its
/// plan in that connection's server process until closed) with one entry per variant.
pub(super) const CAPACITY: usize = 128;

/// One connection's prepared statements, by their text as the store writes it (SQLite's
/// dialect: the translation to PostgreSQL's is done once, when a statement is prepared).
#[derive(Default)]
pub struct Statements {
    by_sql: HashMap<String, Kept>,
    /// Counts uses, to find the least recently used statement when full.
    clock: u64,
    /// Inside `Conn::transaction`: a stale statement fails the transaction, which is retried
    /// whole, not the statement alone.
    pub(super) in_transaction: bool,
}

struct Kept {
    statement: Statement,
    used: u64,
}

impl Statements {
    /// The statement for `sql`, prepared on `client` now if it is not yet; and whether it was
    /// (a statement prepared this moment cannot be stale).
    fn get(&mut self, client: &mut Client, sql: &str) -> Result<(Statement, bool)> {
        self.clock += 1;
        if let Some(kept) = self.by_sql.get_mut(sql) {
            kept.used = self.clock;
            return Ok((kept.statement.clone(), false));
        }
        let statement = client.prepare(to_pg(sql)?.as_ref())?;
        if self.by_sql.len() >= CAPACITY {
            // Dropping the driver's last handle on a statement closes it on the server.
            let oldest = self
                .by_sql
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(s, _)| s.clone());
            if let Some(sql) = oldest {
                self.by_sql.remove(&sql);
            }
        }
        self.by_sql.insert(
            sql.to_string(),
            Kept {
                statement: statement.clone(),
                used: self.clock,
            },
        );
        Ok((statement, true))
    }

    /// How many statements are kept.
    pub fn len(&self) -> usize {
        self.by_sql.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sql.is_empty()
    }
}

/// Runs `f` on the statement for `sql`, prepared once per connection. A cached statement the
/// server no longer takes as it was ([`stale`]) empties the cache (what made one stale may
/// have made others so), and outside a transaction is prepared again and run once more.
pub(super) fn run<T>(
    client: &mut Client,
    cache: &mut Statements,
    sql: &str,
    mut f: impl FnMut(&mut Client, &Statement) -> std::result::Result<T, postgres::Error>,
) -> Result<T> {
    let (statement, fresh) = cache.get(client, sql)?;
    match f(client, &statement) {
        Ok(v) => Ok(v),
        Err(e) if !fresh && is_stale(&e) => {
            cache.by_sql.clear();
            if cache.in_transaction {
                return Err(e.into());
            }
            log::debug!("a prepared statement went stale ({e}); preparing it again");
            let (statement, _) = cache.get(client, sql)?;
            Ok(f(client, &statement)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `e` is a cached statement gone stale, which preparing it again mends.
pub(super) fn stale(e: &Error) -> bool {
    matches!(e, Error::Pg(e) if is_stale(e))
}

fn is_stale(e: &postgres::Error) -> bool {
    // By code, not by message (the server may speak another language): "prepared statement
    // … does not exist" is 26000; "cached plan must not change result type" is 0A000, which
    // other refusals ("not supported") share. Those fail again the same way when tried once
    // more, and a failed statement changed nothing, so the second try is safe.
    matches!(
        e.code(),
        Some(c) if *c == SqlState::INVALID_SQL_STATEMENT_NAME || *c == SqlState::FEATURE_NOT_SUPPORTED
    )
}
