//! Which database a test's servers use. [`on_each_backend`] runs a test's body twice: on
//! SQLite (a file in a temp dir, the default) and on PostgreSQL (a fresh database in one
//! throwaway cluster per test binary, stopped when the binary exits). Outside CI, without
//! PostgreSQL installed, the second run is skipped, said on stderr ([`super::skip`]); under
//! CI the test fails.

use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use r2d2_postgres::postgres::{Client, NoTls};

use super::pg::Cluster;

thread_local! {
    /// This test's servers run on PostgreSQL.
    static ON_POSTGRES: Cell<bool> = const { Cell::new(false) };
}

/// The cluster every PostgreSQL run of this test binary shares, or why there is none.
fn cluster() -> &'static Result<Cluster, String> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let c = super::pg::start();
        if c.is_ok() {
            // Statics are not dropped: stop the cluster and delete it when the test binary exits.
            extern "C" fn stop() {
                if let Some(Ok(c)) = CLUSTER_REF.get() {
                    c.stop_and_remove();
                }
            }
            // SAFETY: registering a plain function to run at exit.
            unsafe { libc::atexit(stop) };
        }
        c
    })
}

/// The same cluster, for the exit hook.
static CLUSTER_REF: OnceLock<&'static Result<Cluster, String>> = OnceLock::new();

/// Runs `body` on SQLite, then on PostgreSQL.
pub fn on_each_backend(body: impl Fn()) {
    body();
    let c = cluster();
    let _ = CLUSTER_REF.set(c);
    match c {
        Ok(_) => {
            eprintln!("-- the same on PostgreSQL");
            ON_POSTGRES.with(|p| p.set(true));
            body();
            ON_POSTGRES.with(|p| p.set(false));
        }
        Err(why) => super::skip("the run on PostgreSQL", why),
    }
}

/// A new database's URL when this test runs on PostgreSQL; `None` on SQLite.
pub fn fresh_database() -> Option<String> {
    if !ON_POSTGRES.with(|p| p.get()) {
        return None;
    }
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    match cluster() {
        Ok(c) => Some(c.database(&name)),
        Err(why) => panic!("no PostgreSQL for this run: {why}"),
    }
}

/// A client of the test's PostgreSQL database, if `db` is one.
pub fn client(db: &Path) -> Option<Client> {
    let url = db.to_str().filter(|d| d.starts_with("postgres://"))?;
    Some(Client::connect(url, NoTls).unwrap())
}
