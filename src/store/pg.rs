//! Opening a PostgreSQL database (`--db postgres://…`): the connection settings, the
//! migrations in `migrations/postgres/`, and the URL as the operator is shown it.

use std::path::PathBuf;

use r2d2_postgres::postgres;

use super::link::Link;
use super::{pool, Durability, Pool, Store};
use crate::error::Result;

impl Store {
    /// Opens a PostgreSQL database (`postgres://user[:password]@host[:port]/db`, with
    /// libpq's `sslmode` and `sslrootcert`: see [`Link`]) and applies pending migrations
    /// (`migrations/postgres/`), under an advisory lock so two nodes starting at once do not
    /// both run them.
    pub fn open_postgres(url: &str) -> Result<Store> {
        let mut link = Link::parse(url)?;
        let config = link.config_mut();
        // PostgreSQL's notices ("already exists, skipping") are not for the operator.
        let options = match config.get_options() {
            Some(o) => format!("{o} -c client_min_messages=warning"),
            None => "-c client_min_messages=warning".to_string(),
        };
        config.options(&options);
        let mut client = link.connect()?;
        pg_migrate(&mut client)?;
        drop(client);
        Ok(Store {
            path: PathBuf::from(shown_url(url)),
            pool: Pool::Postgres {
                pool: pool(link.manager())?,
                link: Box::new(link),
            },
            sync: Durability::Full,
        })
    }
}

/// PostgreSQL's migrations, embedded; applied in order, each once (`schema_migrations`).
const PG_MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_search.sql"),
    include_str!("../../migrations/postgres/0003_presence.sql"),
    include_str!("../../migrations/postgres/0004_control.sql"),
    include_str!("../../migrations/postgres/0005_echo_unread_private_removed.sql"),
    include_str!("../../migrations/postgres/0006_removals.sql"),
];

fn pg_migrate(client: &mut postgres::Client) -> Result<()> {
    let mut tx = client.transaction()?;
    // One node at a time; the others wait here, then find nothing left to do.
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7377); \
         CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    let done: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )?
        .get(0);
    for (i, sql) in PG_MIGRATIONS.iter().enumerate().skip(done as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations VALUES ($1, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))",
            &[&(i as i32 + 1)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// A PostgreSQL URL as shown to the operator: without its password.
pub(super) fn shown_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_postgres_url_is_shown_without_its_password() {
        assert_eq!(
            super::shown_url("postgres://chat:s3cret@db.example:5432/besedka"),
            "postgres://chat@db.example:5432/besedka"
        );
        assert_eq!(
            super::shown_url("postgres://chat@127.0.0.1/besedka"),
            "postgres://chat@127.0.0.1/besedka"
        );
    }
}
