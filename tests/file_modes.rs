//! Files only the server can read: the database, its WAL and shared-memory files and
//! `--log-file` are made 0600 whatever the umask, by `serve` and by the admin CLI; `serve`
//! refuses a database file others can read or write, unless told it is meant.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, Server, WAIT};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The besedka binary, run with this umask.
fn besedka_with_umask(umask: libc::mode_t) -> Command {
    let mut cmd = Command::new(bin());
    // SAFETY: umask(2) is async-signal-safe and touches nothing but the child's own mask.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask);
            Ok(())
        });
    }
    cmd
}

/// `path` with `suffix` added, as SQLite names its WAL and shared-memory files.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Runs `serve` on `db`, expecting it to refuse: its exit code and standard error.
fn refused(db: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--no-console", "--db"])
        .arg(db)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started on {}", db.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

/// A database a server has run on and left (stopped hard, so its WAL and shared-memory
/// files stay, as after a crash).
fn used_database(dir: &Path) -> PathBuf {
    let db = dir.join("besedka.db");
    let server = Server::start_on(&db, &[]);
    drop(server.register("alice", "secret12"));
    server.kill();
    db
}

#[test]
fn serve_makes_the_database_its_wal_and_shm_and_the_log_file_0600() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("besedka.db");
    let log = dir.path().join("besedka.log");
    let server = Server::launch(
        besedka_with_umask(0o022),
        &db,
        &["--log-file", log.to_str().unwrap()],
    );
    drop(server.register("alice", "secret12"));
    for path in [db.clone(), beside(&db, "-wal"), beside(&db, "-shm"), log] {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[test]
fn the_admin_cli_makes_the_database_0600_even_under_umask_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("besedka.db");
    let out = besedka_with_umask(0)
        .arg("--db")
        .arg(&db)
        .args(["ban", "203.0.113.7"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&db), 0o600);
}

#[test]
fn serve_refuses_a_database_others_can_read_or_write_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let db = used_database(dir.path());
    let shown = db.display();

    chmod(&db, 0o644);
    let (code, err) = refused(&db, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!(
            "besedka: {shown} can be read by other users of this machine (mode 0644); run \
             chmod 600 {shown}, or pass --allow-shared-db if that is what you want\n"
        )
    );
    chmod(&db, 0o620);
    let (code, err) = refused(&db, &[("BESEDKA_ALLOW_SHARED_DB", "0")]);
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with(&format!(
            "besedka: {shown} can be written by other users of this machine (mode 0620); "
        )),
        "{err}"
    );

    // Meant: the flag, or its variable, lets it through.
    chmod(&db, 0o644);
    let server = Server::start_on(&db, &["--allow-shared-db"]);
    server.login("alice", "secret12");
    server.kill();
    let mut cmd = Command::new(bin());
    cmd.env("BESEDKA_ALLOW_SHARED_DB", "1");
    let server = Server::launch(cmd, &db, &[]);
    server.login("alice", "secret12");
}

#[test]
fn serve_refuses_a_wal_or_shm_file_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = used_database(dir.path());
    for suffix in ["-wal", "-shm"] {
        let file = beside(&db, suffix);
        assert_eq!(mode(&file), 0o600, "{suffix} as the server left it");
        chmod(&file, 0o644);
        let (code, err) = refused(&db, &[]);
        assert_eq!(code, Some(1));
        let shown = file.display();
        assert!(
            err.starts_with(&format!(
                "besedka: {shown} can be read by other users of this machine (mode 0644); run \
                 chmod 600 {shown}, or pass --allow-shared-db"
            )),
            "{err}"
        );
        chmod(&file, 0o600);
    }
    // Put right, it opens.
    Server::start_on(&db, &[]).login("alice", "secret12");
}
