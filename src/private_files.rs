//! Files only the server can read: the database (argon2 hashes, token hashes, every private
//! message) and the log file are created mode 0600 whatever the umask, and `serve` refuses a
//! database that other users of the machine can read or write, as PostgreSQL refuses a data
//! directory open to others. The directory they are in is the operator's business.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Read and write for the owner only.
const PRIVATE: u32 = 0o600;

/// Group and others' read and write bits: what makes a file shared. (Their execute bit
/// gives away nothing of a file's contents.)
const SHARED: u32 = 0o066;

/// Creates `path` empty, mode 0600, unless it exists; whether it made it.
///
/// For SQLite: it opens the empty file as a new database, and makes the WAL and
/// shared-memory files with the database file's mode. Left to itself it would create the
/// database 0644 under the usual umask.
pub fn create(path: &Path) -> io::Result<bool> {
    match create_new(path, OpenOptions::new().write(true)) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Opens `path` for appending, created mode 0600 if missing (an existing file keeps its
/// mode: the operator may have chosen it).
pub fn open_append(path: &Path) -> io::Result<File> {
    match create_new(path, OpenOptions::new().append(true)) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().append(true).open(path)
        }
        made => made,
    }
}

/// Creates a new file 0600. The umask applies to the mode given at creation, so that alone
/// could leave the owner without write (umask 0277): the mode is set again on the open file.
fn create_new(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = options.create_new(true).mode(PRIVATE).open(path)?;
    file.set_permissions(Permissions::from_mode(PRIVATE))?;
    Ok(file)
}

/// The one-line refusal if the SQLite database `db`, or the WAL or shared-memory file beside
/// it (left by a crash, or made when the database was still open to others), can be read or
/// written by other users of this machine. A PostgreSQL URL is not a file: never refused.
pub fn refuse_shared_db(db: &Path) -> Result<(), String> {
    let text = db.to_string_lossy();
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return Ok(());
    }
    for path in [db.to_path_buf(), beside(db, "-wal"), beside(db, "-shm")] {
        // A file that is missing, or cannot be looked at, is SQLite's to report.
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & SHARED != 0 {
            let how = if mode & 0o044 != 0 { "read" } else { "written" };
            return Err(format!(
                "{p} can be {how} by other users of this machine (mode {mode:04o}); run chmod \
                 600 {p}, or pass --allow-shared-db if that is what you want",
                p = path.display()
            ));
        }
    }
    Ok(())
}

/// `db` with `suffix` added to its file name, as SQLite names its WAL (`-wal`) and
/// shared-memory (`-shm`) files.
fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_file_made_here_is_0600_and_an_existing_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        drop(open_append(&log).unwrap());
        assert_eq!(mode(&log), 0o600);
        let theirs = dir.path().join("b.log");
        fs::write(&theirs, "x\n").unwrap();
        fs::set_permissions(&theirs, Permissions::from_mode(0o640)).unwrap();
        drop(open_append(&theirs).unwrap());
        assert_eq!(mode(&theirs), 0o640, "the operator's choice stays");
        assert!(create(&dir.path().join("c.db")).unwrap());
        assert!(!create(&dir.path().join("c.db")).unwrap(), "made once");
    }

    #[test]
    fn only_read_or_write_for_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        assert_eq!(refuse_shared_db(&db), Ok(()), "no file yet");
        fs::write(&db, "").unwrap();
        for (bits, refused) in [
            (0o600, false),
            (0o700, false),
            (0o711, false),
            (0o620, true),
        ] {
            fs::set_permissions(&db, Permissions::from_mode(bits)).unwrap();
            assert_eq!(refuse_shared_db(&db).is_err(), refused, "{bits:o}");
        }
        let url = Path::new("postgres://u@127.0.0.1:1/db");
        assert_eq!(refuse_shared_db(url), Ok(()));
    }
}
