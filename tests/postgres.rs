//! The PostgreSQL backend of the store, on a throwaway cluster of this test's own (see
//! `tests/common/pg.rs`): the store functions ported so far do on PostgreSQL what they do on
//! SQLite. Skipped, said on stderr, when PostgreSQL is not installed outside CI; under CI that
//! fails.

mod common;

use std::time::Duration;

use besedka::store::messages::{self, Kind, Message};
use besedka::store::retention::{self, Policy};
use besedka::store::rooms::{self, Opened, LOBBY};
use besedka::store::{bans, logs, roles, search, ssh_keys, tokens, users, Store};

/// A throwaway cluster and a store on a new database in it, or why not (skip).
fn store() -> Option<(common::pg::Cluster, Store)> {
    let (cluster, url) = common::pg::database_or_skip("besedka")?;
    let store = Store::open_postgres(&url).unwrap();
    Some((cluster, store))
}

fn say(author: &users::User, to: Option<&users::User>, room: Option<i64>, body: &str) -> Message {
    Message::new(author, to, room, Kind::Say, body.into())
}

#[test]
fn rooms_messages_moderation_keys_logs_and_retention_work_on_postgres() {
    let Some((_cluster, store)) = store() else {
        return;
    };
    let c = store.conn().unwrap();
    let alice = users::create(&c, "alice", "h").unwrap().unwrap();
    let bob = users::create(&c, "bob", "h").unwrap().unwrap();

    // Rooms.
    assert_eq!(rooms::of_user(&c, alice.id).unwrap().name, "#lobby");
    let Opened::Created(rust) = rooms::open(&c, "#Rust", alice.id, 2, 10).unwrap() else {
        panic!("not made");
    };
    assert!(
        matches!(rooms::open(&c, "#rust", bob.id, 2, 10).unwrap(), Opened::Found(r) if r.id == rust.id)
    );
    rooms::open(&c, "#two", alice.id, 2, 10).unwrap();
    assert_eq!(
        rooms::open(&c, "#three", alice.id, 2, 10).unwrap(),
        Opened::TooManyForUser
    );
    rooms::set_current(&c, alice.id, rust.id).unwrap();
    rooms::set_topic(&c, rust.id, "borrowck").unwrap();
    assert_eq!(rooms::of_user(&c, alice.id).unwrap().topic, "borrowck");
    let (listed, total) = rooms::list(&c, None, 2).unwrap();
    assert_eq!((listed.len(), total), (2, 3));

    // Messages: ids in commit order, history per room with one's private messages.
    let mut batch = vec![
        say(&alice, None, Some(LOBBY), "in the lobby"),
        say(&alice, None, Some(rust.id), "in rust"),
        say(&bob, Some(&alice), None, "psst"),
    ];
    messages::commit(&c, &mut batch).unwrap();
    assert!(batch[0].id < batch[1].id && batch[1].id < batch[2].id);
    assert_eq!(batch[0].created_at.len(), 20);
    assert_eq!(messages::last_id(&c).unwrap(), batch[2].id);
    let seen: Vec<String> = messages::visible(&c, rust.id, Some(alice.id), 10, None)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(seen, ["in rust", "psst"]);
    let in_rust = messages::visible(&c, rust.id, None, 10, None).unwrap();
    assert_eq!(in_rust[0].room, Some((rust.id, "#Rust".to_string())));
    let (missed, n) = messages::private_since(&c, alice.id, 0, batch[2].id, 10).unwrap();
    assert_eq!((missed.len(), n), (1, 1));
    assert_eq!(missed[0].recipient, Some((alice.id, "alice".to_string())));
    assert_eq!(messages::recent_public(&c, 10).unwrap().len(), 2);
    assert_eq!(messages::recent(&c, 10).unwrap().len(), 3);
    assert_eq!(messages::count(&c).unwrap(), 3);
    let carol = users::create(&c, "carol", "h").unwrap().unwrap();
    let found = |viewer: &users::User, q: &str, room: Option<i64>| -> Vec<String> {
        let mut q = search::Query::parse(q).unwrap();
        q.room = room.map(|r| if r == LOBBY { "#lobby" } else { "#Rust" }.to_string());
        search::search(&c, Some(viewer.id), &q, 20)
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect()
    };
    assert_eq!(found(&alice, "rust", None), ["in rust"]);
    assert_eq!(found(&alice, "in", Some(LOBBY)), ["in the lobby"]);
    assert_eq!(
        found(&alice, "psst", None),
        ["psst"],
        "her own private message"
    );
    assert!(found(&carol, "psst", None).is_empty(), "another pair's");
    assert_eq!(
        search::index_batch(&c, 100).unwrap(),
        0,
        "PostgreSQL indexes as rows come"
    );

    // Moderation and operators.
    let ban = bans::ban_user(
        &c,
        bob.id,
        "bob",
        "spam",
        Some(Duration::from_secs(3600)),
        "alice",
    )
    .unwrap();
    assert!(ban.expires_at.is_some_and(|t| t > ban.created_at));
    bans::add(&c, bans::Kind::Ip, "203.0.113.0/24", "", None, "server").unwrap();
    assert_eq!(bans::active(&c).unwrap().len(), 2);
    assert!(bans::remove(&c, bans::Kind::Ip, "203.0.113.0/24").unwrap());
    assert_eq!(bans::delete_expired(&c).unwrap(), 0);
    assert_eq!(
        roles::set(&c, "ALICE", true).unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(roles::ops(&c).unwrap(), ["alice"]);

    // SSH keys.
    assert_eq!(
        ssh_keys::add(&c, alice.id, "ssh-ed25519", "AAAA", "SHA256:x", "laptop").unwrap(),
        ssh_keys::Added::Added
    );
    assert_eq!(
        ssh_keys::add(&c, bob.id, "ssh-ed25519", "AAAA", "SHA256:x", "").unwrap(),
        ssh_keys::Added::Taken
    );
    assert_eq!(
        ssh_keys::owner(&c, "SHA256:x").unwrap().map(|u| u.id),
        Some(alice.id)
    );
    ssh_keys::touch(&c, "SHA256:x").unwrap();
    assert!(ssh_keys::list(&c, alice.id).unwrap()[0]
        .last_used_at
        .is_some());
    assert!(ssh_keys::remove(&c, alice.id, "SHA256:x").unwrap());

    // Logs.
    let record = |level: &str| logs::Record {
        created_at: "2026-11-28T10:00:00Z".into(),
        level: level.into(),
        target: "t".into(),
        message: format!("a {level} record"),
    };
    logs::insert(&c, &[record("info"), record("warn")]).unwrap();
    assert_eq!(logs::recent(&c, 10, Some(&["warn"])).unwrap().len(), 1);
    assert_eq!(logs::recent(&c, 10, None).unwrap().len(), 2);
    assert_eq!(logs::clear(&c).unwrap(), 2);

    // Retention keeps each room's newest lines.
    let policy = Policy {
        days: None,
        messages: Some(0),
        keep_public: 1,
    };
    retention::prune(&c, &policy).unwrap();
    let left: Vec<String> = messages::recent(&c, 10)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(
        left,
        ["in the lobby", "in rust"],
        "each room's newest line stays"
    );
}

#[test]
fn accounts_and_tokens_work_on_postgres() {
    let Some((cluster, store)) = store() else {
        return;
    };
    let url = cluster.url("besedka");
    // A second node opening the same database finds the schema there already.
    let again = Store::open_postgres(&url).unwrap();
    assert!(
        again
            .path()
            .display()
            .to_string()
            .starts_with("postgres://besedka@127.0.0.1:"),
        "{}",
        again.path().display()
    );
    let c = store.conn().unwrap();

    let alice = users::create(&c, "Alice", "hash-a")
        .unwrap()
        .expect("created");
    assert_eq!(
        users::create(&c, "ALICE", "x").unwrap(),
        None,
        "taken in any case"
    );
    assert_eq!(
        users::create(&c, "аlice", "x").unwrap(),
        None,
        "a look-alike"
    );
    assert_eq!(
        users::clash(&c, "аlice").unwrap(),
        Some(users::Clash::TooClose("Alice".into()))
    );
    let (found, hash) = users::find(&c, "alice").unwrap().unwrap();
    assert_eq!(
        (found.id, found.name.as_str(), hash.as_str()),
        (alice.id, "Alice", "hash-a")
    );
    let bob = users::create(&c, "Борис", "hash-b").unwrap().unwrap();
    assert_eq!(users::count(&c).unwrap(), 2);
    assert!(users::bell(&c, bob.id).unwrap());
    users::set_bell(&c, bob.id, false).unwrap();
    assert!(!users::bell(&c, bob.id).unwrap());
    users::mark_seen(&c, &[(bob.id, 7), (alice.id, 3)]).unwrap();
    users::mark_seen(&c, &[(bob.id, 5)]).unwrap();
    assert_eq!(users::seen(&c, bob.id).unwrap(), Some(7), "never goes back");

    tokens::insert(&c, alice.id, "hash-of-token", 30).unwrap();
    assert_eq!(
        tokens::redeem(&c, "hash-of-token").unwrap().map(|u| u.id),
        Some(alice.id)
    );
    assert_eq!(tokens::redeem(&c, "another").unwrap(), None);
    let listed = users::list(&c).unwrap();
    assert_eq!(listed[0].name, "Alice");
    assert_eq!(listed[0].tokens, 1);
    assert!(!listed[0].op);
    assert!(listed[0].created_at.ends_with('Z') && listed[0].created_at.len() == 20);
    for _ in 0..tokens::MAX_PER_USER + 5 {
        tokens::insert(&c, bob.id, &uuid_like(), 30).unwrap();
    }
    assert_eq!(tokens::count(&c).unwrap(), 1 + tokens::MAX_PER_USER);
    assert!(tokens::revoke(&c, "hash-of-token").unwrap());
    assert_eq!(
        tokens::revoke_user(&c, bob.id).unwrap(),
        tokens::MAX_PER_USER as usize
    );

    let purged = users::purge_all(&c).unwrap();
    assert_eq!((purged.users, purged.tokens), (2, 0));
}

/// A panic caught further up (a session worker catches its job's) must not hand the pooled
/// client back inside the transaction: the next borrower's `BEGIN` would only warn, and its
/// `COMMIT` would commit the half-written rows too.
#[test]
fn a_panic_inside_a_transaction_rolls_back_on_postgres() {
    let Some((cluster, store)) = store() else {
        return;
    };
    let insert =
        "INSERT INTO logs (created_at, level, target, message) VALUES ('t', 'info', 'x', ?1)";
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let c = store.conn().unwrap();
        let _: besedka::Result<()> = c.transaction(|c| {
            c.execute(insert, &[&"half-written"])?;
            panic!("a bug in the middle of a transaction");
        });
    }));
    assert!(caught.is_err(), "the panic went through");
    store
        .conn()
        .unwrap()
        .transaction(|c| c.execute(insert, &[&"whole"]))
        .expect("the next transaction on the pool");

    let other = Store::open_postgres(&cluster.url("besedka")).unwrap();
    let rows = other
        .conn()
        .unwrap()
        .query("SELECT message FROM logs ORDER BY id", &[], |r| {
            r.get::<String>(0)
        })
        .unwrap();
    assert_eq!(rows, ["whole"], "the half-written row is gone");
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("token-{}", N.fetch_add(1, Ordering::Relaxed))
}

#[test]
fn the_password_in_a_database_url_is_shown_nowhere() {
    let Some((_cluster, url)) = common::pg::database_or_skip("besedka") else {
        return;
    };
    // The throwaway cluster trusts loopback, so any password logs in.
    let with_password = url.replacen("postgres://besedka@", "postgres://besedka:s3cret-pw@", 1);
    assert_ne!(with_password, url);
    let mut child = std::process::Command::new(common::bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--no-console", "--db"])
        .arg(&with_password)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    // The log's own "listening on" record follows the startup line: read the log up to it
    // (on a thread, so a server that never writes it fails the test instead of hanging it).
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            log.push_str(&line);
            log.push('\n');
            if line.contains("listening on") {
                break;
            }
        }
        let _ = tx.send(log);
    });
    let log = rx.recv_timeout(common::WAIT).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.contains(&format!("(db: {url})")), "{first}");
    assert!(!first.contains("s3cret-pw"), "{first}");
    assert!(log.contains("listening on"), "{log}");
    assert!(!log.contains("s3cret-pw"), "{log}");
    // A database that cannot be opened is named without it too.
    let (server, _) = with_password.rsplit_once('/').unwrap();
    let wrong = format!("{server}/no_such_database");
    let out = std::process::Command::new(common::bin())
        .args(["users", "--db", &wrong])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot open database postgres://besedka@"),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw"), "{err}");
}

/// "No row" is [`besedka::Error::NotFound`] on both backends (PostgreSQL's used to come back
/// as an SQLite error): from a store function, `query_one` and a batch run (`query_each`);
/// `query_opt` answers `None`, and a real failure is not taken for it.
#[test]
fn no_row_is_not_found_on_each_backend() {
    common::backend::on_each_backend(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = match common::backend::fresh_database() {
            Some(url) => Store::open_postgres(&url).unwrap(),
            None => Store::open(&dir.path().join("besedka.db")).unwrap(),
        };
        let c = store.conn().unwrap();
        let not_found = |r: &besedka::Result<i64>| matches!(r, Err(besedka::Error::NotFound));
        let room = rooms::by_id(&c, 999).map(|r| r.id);
        assert!(not_found(&room), "{room:?}");
        let sql = "SELECT id FROM users WHERE name = ?1";
        let one = c.query_one(sql, &[&"nobody"], |r| r.get::<i64>(0));
        assert!(not_found(&one), "{one:?}");
        let each = c
            .query_each(sql, [[&"nobody" as &_]], |r| r.get::<i64>(0))
            .map(|v| v.len() as i64);
        assert!(not_found(&each), "{each:?}");
        assert_eq!(
            c.query_opt(sql, &[&"nobody"], |r| r.get::<i64>(0)).unwrap(),
            None
        );
        let broken = c.query_one("SELECT id FROM no_such_table", &[], |r| r.get::<i64>(0));
        assert!(broken.is_err() && !not_found(&broken), "{broken:?}");
    });
}
