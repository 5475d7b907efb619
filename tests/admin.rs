//! The admin CLI, run next to a live server on the same database, and the echo server.

mod common;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{bin, Server};

fn besedka(db: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("BESEDKA_DB", db)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn cli_reads_and_changes_a_live_servers_database() {
    let server = Server::start(&["--max-clients", "3"]);
    let (mut a, _) = server.register("alice", "secret1");
    let (mut b, _) = server.register("Борис", "secret1");
    let mut again = server.login("alice", "secret1"); // alice now has 2 tokens
                                                      // A fourth connection is refused: a WARN record for `logs --level warn` below.
    assert!(server
        .connect()
        .expect_closed()
        .contains("! Server is full"));
    a.send("hello from alice");
    b.expect("alice: hello from alice\r\n");
    b.send("/msg alice just for you");
    a.expect("Борис -> alice: just for you\r\n");

    let users = stdout(&besedka(&server.db, &["users"]));
    let lines: Vec<&str> = users.lines().collect();
    assert_eq!(lines.len(), 2, "{users}");
    assert!(
        lines[0].starts_with("alice ") && lines[0].ends_with("2 token(s)"),
        "{users}"
    );
    assert!(
        lines[1].starts_with("Борис ") && lines[1].ends_with("1 token(s)"),
        "{users}"
    );

    let history = stdout(&besedka(&server.db, &["history", "-n", "1"]));
    assert!(
        history
            .trim_end()
            .ends_with("] Борис -> alice: just for you"),
        "{history}"
    );
    assert_eq!(history.lines().count(), 1);
    let history = stdout(&besedka(&server.db, &["history"]));
    assert!(
        history.contains("] #lobby alice: hello from alice"),
        "{history}"
    );
    // Each line with its id first, for the console's `delete ID`.
    assert!(
        history.starts_with('#') && history.lines().all(|l| l.contains(" [")),
        "{history}"
    );
    // One room's lines: public ones only, of that room.
    let lobby = stdout(&besedka(&server.db, &["history", "--room", "lobby"]));
    assert!(
        lobby.contains("] #lobby alice: hello from alice"),
        "{lobby}"
    );
    assert!(!lobby.contains("just for you"), "{lobby}");
    let o = besedka(&server.db, &["history", "--room", "#nowhere"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no such room: #nowhere"),
        "{o:?}"
    );

    // --db works as well as the environment.
    let o = Command::new(bin())
        .args(["logs", "-n", "3", "--db"])
        .arg(&server.db)
        .output()
        .unwrap();
    assert_eq!(stdout(&o).lines().count(), 3);
    server.expect_log("alice logged in");
    let logs = stdout(&besedka(
        &server.db,
        &["logs", "-n", "100", "--level", "info"],
    ));
    assert!(
        logs.contains(" INFO  ") && logs.contains("registered alice"),
        "{logs}"
    );
    // At warn and worse: the refusal is listed, the info records are not. (The log sink writes
    // to the table asynchronously: wait for it, bounded.)
    server.expect_log("the server is full (--max-clients 3)");
    let start = std::time::Instant::now();
    let warnings = loop {
        let w = stdout(&besedka(&server.db, &["logs", "--level", "warn"]));
        if w.contains("the server is full") || start.elapsed() > common::WAIT {
            break w;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        warnings.contains(" WARN  ") && warnings.contains(": the server is full (--max-clients 3)"),
        "{warnings}"
    );
    assert!(!warnings.contains(" INFO "), "{warnings}");

    // A change names the file it went to.
    let file = server.db.display();
    let cleared = stdout(&besedka(&server.db, &["clear-logs"]));
    assert!(
        cleared.starts_with("Removed ")
            && cleared.ends_with(&format!(" log records from {file}.\n")),
        "{cleared}"
    );

    let purged = stdout(&besedka(&server.db, &["purge-auth"]));
    assert_eq!(
        purged,
        format!("Removed 2 users and 3 tokens from {file}.\n")
    );
    assert_eq!(
        stdout(&besedka(&server.db, &["users"])).trim_end(),
        "No users."
    );
    // History stays.
    assert!(stdout(&besedka(&server.db, &["history"])).contains("alice: hello from alice"));
    // The running server tells a session of a purged account, and disconnects it.
    assert!(a
        .expect_closed()
        .ends_with("* Your account was removed by the server operator.\r\n"));
    // The live server refuses the old accounts (on a connection it has room for once it has
    // counted the purged sessions' ends: --max-clients 3).
    again.expect_closed();
    b.expect_closed();
    let mut c = server.connect_when_room();
    c.send("/login alice secret1");
    c.expect("! No such user: alice");
}

#[test]
fn a_session_whose_account_is_purged_from_the_shell_is_told_and_disconnected() {
    common::backend::on_each_backend(|| {
        let server = Server::start(&[]);
        let (mut talker, _) = server.register("alice", "secret1");
        let (mut reader, _) = server.register("bob", "secret1");
        talker.expect("* bob joined\r\n");
        let purged = stdout(&besedka(&server.db, &["purge-auth"]));
        assert!(
            purged.starts_with("Removed 2 users and 2 tokens"),
            "{purged}"
        );
        // alice speaks at once: the line is not stored, and she learns why, not that the
        // server failed.
        talker.send("after the purge");
        let got = talker.expect_closed();
        assert!(
            got.ends_with("* Your account was removed by the server operator.\r\n"),
            "{got:?}"
        );
        assert!(!got.contains("! "), "{got:?}");
        // bob only reads: the server finds out by itself within a few seconds.
        let got = reader.expect_closed();
        assert!(
            got.ends_with("* Your account was removed by the server operator.\r\n"),
            "{got:?}"
        );
        assert_eq!(server.count("messages"), 0);
        let log = server.stderr.lock().unwrap().clone();
        assert!(!log.contains("ERROR"), "{log}");
    });
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let o = besedka(&db, &["logs", "-n", "many"]);
    assert_eq!(o.status.code(), Some(2), "usage error");
    let o = besedka(&db, &["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    let o = besedka(Path::new("/nonexistent-dir/x.db"), &["ban", "203.0.113.7"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("besedka: cannot open database /nonexistent-dir/x.db"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// `besedka ARGS` run in `dir` with the default `--db` (`besedka.db` there).
fn besedka_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("BESEDKA_DB")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn only_useradd_and_ban_create_a_database_and_every_change_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.db");
    // Reading, or changing what is not there, on a path with no database: refused, no file.
    for args in [
        &["users"][..],
        &["history"],
        &["history", "--room", "lobby"],
        &["logs"],
        &["search", "whale"],
        &["bans"],
        &["purge-auth"],
        &["clear-logs"],
        &["unban", "bob"],
        &["ban", "bob", "1h"],
        &["mute", "bob"],
        &["unmute", "bob"],
        &["op", "bob"],
        &["deop", "bob"],
    ] {
        let o = besedka(&typo, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            format!(
                "besedka: no database at {} (serve creates it)\n",
                typo.display()
            ),
            "{args:?}"
        );
        assert!(o.stdout.is_empty(), "{args:?}: {o:?}");
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    // The default besedka.db, from a directory that has none.
    let o = besedka_in(dir.path(), &["users"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "besedka: no database at besedka.db (serve creates it)\n"
    );
    assert!(!dir.path().join("besedka.db").exists());

    // useradd creates one, and says so; the next change names the file only.
    let mut add = Command::new(bin())
        .args(["useradd", "zoe"])
        .current_dir(dir.path())
        .env_remove("BESEDKA_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"secret1\n").unwrap();
    let o = add.wait_with_output().unwrap();
    assert_eq!(
        stdout(&o),
        "Created user zoe in besedka.db, a new database.\n"
    );
    let o = besedka_in(dir.path(), &["op", "zoe"]);
    assert_eq!(stdout(&o), "zoe is now an operator in besedka.db.\n");
    let o = besedka_in(dir.path(), &["users"]);
    assert!(stdout(&o).starts_with("zoe "), "{o:?}");
    assert!(
        stdout(&o).trim_end().ends_with("0 token(s)  operator"),
        "{o:?}"
    );
    // So does an address ban.
    let o = besedka(&typo, &["ban", "203.0.113.0/24", "1h"]);
    assert_eq!(
        stdout(&o),
        format!(
            "Banned 203.0.113.0/24 for 1h in {}, a new database.\n",
            typo.display()
        )
    );
    assert_eq!(
        stdout(&besedka(&typo, &["history"])).trim_end(),
        "No messages."
    );
    assert_eq!(
        stdout(&besedka(&typo, &["purge-auth"])),
        format!("Removed 0 users and 0 tokens from {}.\n", typo.display())
    );
}

#[test]
fn echo_server_serves_two_clients_at_once_each_on_its_own_thread() {
    let mut child = Command::new(bin())
        .args(["echo", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.starts_with("besedka echo listening on 127.0.0.1:"),
        "{first}"
    );
    let addr: std::net::SocketAddr = first
        .trim_end()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let mut one = TcpStream::connect(addr).unwrap();
    let mut two = TcpStream::connect(addr).unwrap();
    for s in [&one, &two] {
        s.set_read_timeout(Some(common::WAIT)).unwrap();
    }
    // Both connected at once; each gets its own bytes back.
    two.write_all("второй\n".as_bytes()).unwrap();
    one.write_all(b"first\n").unwrap();
    let mut buf = [0u8; 64];
    let n = one.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"first\n");
    let n = two.read(&mut buf).unwrap();
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), "второй\n");
    drop((one, two));
    // Each thread logs when its client has gone: wait (bounded) for both, then stop it.
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let start = std::time::Instant::now();
    let mut log = String::new();
    while !(log.contains("thread echo-1 done") && log.contains("thread echo-2 done")) {
        let left = common::WAIT.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => log.push_str(&(line + "\n")),
            Err(e) => panic!("the echo threads never ended ({e}); log:\n{log}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains("served by thread echo-1"), "{log}");
    assert!(log.contains("served by thread echo-2"), "{log}");
}

#[test]
fn a_db_option_after_the_reason_names_the_database_not_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (default, other) = (dir.path().join("default.db"), dir.path().join("other.db"));
    // BESEDKA_DB names one database, --db after the reason another: --db wins, and the reason
    // is the words before it.
    let o = besedka(
        &default,
        &[
            "ban",
            "203.0.113.9",
            "1d",
            "spam",
            "words",
            "--db",
            other.to_str().unwrap(),
        ],
    );
    assert!(
        stdout(&o).starts_with("Banned 203.0.113.9/32 for 1d in "),
        "{o:?}"
    );
    assert!(other.exists() && !default.exists());
    let bans = stdout(&besedka(&other, &["bans"]));
    assert!(bans.contains("by server: spam words\n"), "{bans}");
}

#[test]
fn a_backup_taken_during_a_flood_is_consistent_and_holds_what_came_before_it() {
    let server = Server::start(&["--max-rate", "10000"]);
    let (mut talker, _) = server.register("talker", "secret12");
    let (mut reader, _) = server.register("reader", "secret12");
    talker.send("first");
    reader.expect("talker: first");
    // A flood of lines from before the backup until after it (bounded: 20,000 lines, 20 s).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            for i in 0..20_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed)
                    || start.elapsed() > std::time::Duration::from_secs(20)
                {
                    break;
                }
                talker.send(&format!("flood line {i}"));
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            talker
        })
    };
    reader.expect("talker: flood line 20");
    let live = server.sql();
    let max_id = |c: &rusqlite::Connection| -> i64 {
        c.query_row("SELECT coalesce(max(id), 0) FROM messages", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let before = max_id(&live);
    assert!(before >= 1);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let o = besedka(&server.db, &["backup", copy.to_str().unwrap()]);
    let said = stdout(&o);
    assert!(
        said.starts_with(&format!(
            "Backed up {} to {}: 2 user(s), ",
            server.db.display(),
            copy.display()
        )) && said.ends_with(" message(s); the integrity check passed.\n"),
        "{said}"
    );
    // The flood went on past the copy: lines were committed while it was taken.
    let copied = max_id(&rusqlite::Connection::open(&copy).unwrap());
    assert!(copied >= before, "{copied} < {before}");
    let start = std::time::Instant::now();
    while max_id(&live) <= copied {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the flood stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut talker = flood.join().unwrap();
    talker.send("last");
    reader.expect("talker: last");
    // The copy opens, passes the check, and holds every message committed before it began.
    let c = rusqlite::Connection::open(&copy).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let kept: i64 = c
        .query_row(
            "SELECT count(*) FROM messages WHERE id <= ?1",
            [before],
            |r| r.get(0),
        )
        .unwrap();
    let live_before: i64 = live
        .query_row(
            "SELECT count(*) FROM messages WHERE id <= ?1",
            [before],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, live_before);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&copy).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // A backup never replaces a file.
    let o = besedka(&server.db, &["backup", copy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("exists already; name a new file"),
        "{o:?}"
    );
}

#[test]
fn completions_and_the_man_page_name_every_subcommand() {
    let help = Command::new(bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    // The subcommands, as --help lists them (two-space indent, then the name).
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 15, "{commands:?}");
    for shell in ["bash", "zsh", "fish"] {
        let o = Command::new(bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        let text = stdout(&o);
        // As a whole word: "man" is in "command", "ban" in "unban".
        let words: std::collections::HashSet<&str> = text
            .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-'))
            .collect();
        for c in &commands {
            assert!(words.contains(c), "{shell} completions lack {c}");
        }
    }
    let o = Command::new(bin()).arg("man").output().unwrap();
    let page = stdout(&o);
    assert!(
        page.starts_with(".ie") && page.contains(".TH besedka 1"),
        "{page}"
    );
    // roff escapes each hyphen: the page lists besedka\-purge\-auth(1) and so on.
    for c in &commands {
        let listed = format!("besedka\\-{}(1)", c.replace('-', "\\-"));
        assert!(page.contains(&listed), "man lacks {listed}");
    }
    // And --dir writes those pages, each with its options.
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(bin())
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    for c in &commands {
        let page = std::fs::read_to_string(dir.path().join(format!("besedka-{c}.1")))
            .unwrap_or_else(|e| panic!("no page for {c}: {e}"));
        assert!(page.contains(".TH besedka-"), "{c}");
    }
    let serve = std::fs::read_to_string(dir.path().join("besedka-serve.1")).unwrap();
    assert!(
        serve.contains("max\\-clients"),
        "serve's page lists its options"
    );
    assert!(!dir.path().join("besedka-help.1").exists());
}

/// Each subcommand's --help lists the global --db and --log-level only where they mean
/// something; they are still accepted everywhere.
#[test]
fn subcommands_list_only_the_options_they_use() {
    let help = |args: &[&str]| {
        let o = Command::new(bin())
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
        stdout(&o)
    };
    for sub in [
        &["echo"][..],
        &["completions"],
        &["man"],
        &["bench"],
        &["config", "check"],
    ] {
        assert!(!help(sub).contains("--db"), "{sub:?} lists --db");
    }
    for sub in [
        &["completions"][..],
        &["gen-cert"],
        &["backup"],
        &["config", "check"],
    ] {
        assert!(
            !help(sub).contains("--log-level"),
            "{sub:?} lists --log-level"
        );
    }
    for sub in ["serve", "users", "ban", "backup", "gen-cert", "history"] {
        assert!(help(&[sub]).contains("--db <DB>"), "{sub} lacks --db");
    }
    assert!(help(&["serve"]).contains("--log-level"));
    assert!(help(&["serve"]).contains("SQLite file or postgres:// URL"));
    // Hidden, not refused: a shell alias that always passes --db still works.
    let o = Command::new(bin())
        .args(["--db", "x.db", "completions", "bash"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
}
