//! A consistent copy of a live SQLite database (`besedka backup FILE`), with SQLite's online
//! backup API: the pages are copied inside one read transaction of the WAL database, so the
//! copy is the database as it was at one commit, while the server goes on writing. `cp` of a
//! live WAL database is not that: the file and its WAL are copied at different moments.
//! PostgreSQL has its own tools (`pg_dump`).

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// What a backup holds, read back from the copy.
#[derive(Debug, PartialEq, Eq)]
pub struct Copied {
    pub users: i64,
    pub messages: i64,
}

/// How long a backup waits for the database to let it read (a checkpoint in progress).
const BUSY: Duration = Duration::from_secs(10);

/// Copies the database `db` to the new file `to` (mode 0600; an existing file is refused,
/// so a backup never replaces another), checks the copy (`PRAGMA integrity_check`) and says
/// what it holds. The error is one line in the operator's words; a half-made copy is removed.
pub fn backup(db: &Path, to: &Path) -> Result<Copied, String> {
    if to.exists() {
        return Err(format!(
            "{} exists already; name a new file (a backup never replaces one)",
            to.display()
        ));
    }
    let made = copy(db, to).and_then(|()| check(to));
    if made.is_err() {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = to.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
    made
}

fn copy(db: &Path, to: &Path) -> Result<(), String> {
    let src = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot read {}: {e}", db.display()))?;
    src.busy_timeout(BUSY)
        .map_err(|e| format!("cannot read {}: {e}", db.display()))?;
    crate::private_files::create(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let mut dst =
        Connection::open(to).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    let backup =
        Backup::new(&src, &mut dst).map_err(|e| format!("cannot back up {}: {e}", db.display()))?;
    let start = Instant::now();
    loop {
        // Every page in one step: one read transaction, so one consistent state.
        match backup.step(-1) {
            Ok(StepResult::Done) => break,
            Ok(StepResult::Busy | StepResult::Locked) if start.elapsed() < BUSY => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(_) => {
                return Err(format!(
                    "{} stayed busy for {} s; try again",
                    db.display(),
                    BUSY.as_secs()
                ))
            }
            Err(e) => return Err(format!("cannot back up {}: {e}", db.display())),
        }
    }
    drop(backup);
    // One file, no WAL beside it, to move and keep as it is; the server puts it back in WAL
    // mode when it opens it.
    dst.pragma_update(None, "journal_mode", "DELETE")
        .map_err(|e| format!("cannot write {}: {e}", to.display()))
}

fn check(to: &Path) -> Result<Copied, String> {
    let c = Connection::open_with_flags(to, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open the copy {}: {e}", to.display()))?;
    let fail = |e: rusqlite::Error| format!("cannot check the copy {}: {e}", to.display());
    let verdict: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(fail)?;
    if verdict != "ok" {
        return Err(format!(
            "the copy {} fails SQLite's integrity check: {verdict}",
            to.display()
        ));
    }
    let count = |table: &str| {
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(fail)
    };
    Ok(Copied {
        users: count("users")?,
        messages: count("messages")?,
    })
}
