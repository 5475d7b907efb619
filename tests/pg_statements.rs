//! Prepared statements on PostgreSQL (`src/store/statements.rs`), on a throwaway cluster of
//! the test's own: each connection prepares a statement once and runs it many times, a
//! replaced connection starts afresh, and a statement gone stale on the server (dropped by
//! `DEALLOCATE ALL`, or its result's columns changed by an `ALTER TABLE` from outside) is
//! prepared again rather than failing the user's line. Skipped, said on stderr, when
//! PostgreSQL is not installed outside CI; under CI that fails.

mod common;

use std::path::Path;

use besedka::store::{users, Conn, Store};
use common::Server;

/// A throwaway cluster and a store on a new database in it, or why not (skip).
fn store() -> Option<(common::pg::Cluster, Store)> {
    let (cluster, url) = common::pg::database_or_skip("besedka")?;
    let store = Store::open_postgres(&url).unwrap();
    Some((cluster, store))
}

/// The server process behind `c`.
fn backend(c: &Conn) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[], |r| r.get(0))
        .unwrap()
}

/// How many times the statement prepared on `c` whose text has `text` in it has run, as the
/// server counts (`pg_prepared_statements` lists the statements of the asking session).
fn runs_of(c: &Conn, text: &str) -> i64 {
    c.query_opt(
        "SELECT generic_plans + custom_plans FROM pg_prepared_statements
         WHERE strpos(statement, ?1) > 0",
        &[&text],
        |r| r.get(0),
    )
    .unwrap()
    .unwrap_or(0)
}

const FIND: &str = "SELECT id, name, password_hash FROM users WHERE name_key";

fn find_alice(c: &Conn) {
    let (u, _) = users::find(c, "Alice").unwrap().expect("alice is there");
    assert_eq!(u.name, "alice");
}

#[test]
fn a_statement_is_prepared_once_per_connection_and_kept_with_it() {
    let Some((_cluster, store)) = store() else {
        return;
    };
    let c = store.conn().unwrap();
    users::create(&c, "alice", "h").unwrap().unwrap();
    for _ in 0..10 {
        find_alice(&c);
    }
    // One statement on the server, run ten times: not ten parses of ten statements (the
    // driver alone closes each statement after its one run, leaving none listed).
    assert_eq!(runs_of(&c, FIND), 10);
    assert!(c.prepared() >= 2, "{} kept", c.prepared());
    let pid = backend(&c);
    drop(c);

    // Back in the pool and borrowed again: its statements went with it. The pool usually
    // hands out the connection returned last, but may have made another meanwhile (it
    // keeps one idle): borrow until it comes, holding the others (at most the pool's 8).
    let mut others = Vec::new();
    let c = loop {
        let c = store.conn().unwrap();
        if backend(&c) == pid {
            break c;
        }
        others.push(c);
        assert!(others.len() < 8, "the pooled connection never came back");
    };
    drop(others);
    find_alice(&c);
    assert_eq!(runs_of(&c, FIND), 11);

    // A connection of its own keeps its own.
    let own = store.dedicated().unwrap();
    find_alice(&own);
    find_alice(&own);
    assert_eq!(runs_of(&own, FIND), 2);
}

#[test]
fn a_stale_or_lost_statement_is_prepared_again() {
    let Some((cluster, store)) = store() else {
        return;
    };
    let c = store.conn().unwrap();
    users::create(&c, "alice", "h").unwrap().unwrap();
    find_alice(&c);

    // Every statement of the session dropped on the server, as a pooler's `DISCARD ALL`
    // would: the next run prepares it again.
    c.batch("DEALLOCATE ALL").unwrap();
    find_alice(&c);
    assert_eq!(runs_of(&c, FIND), 1, "prepared anew");

    // The same inside a transaction, where the failed statement has failed the transaction:
    // it is run again whole.
    c.batch("DEALLOCATE ALL").unwrap();
    let (found, n) = c
        .transaction(|c| Ok((users::find(c, "alice")?, users::count(c)?)))
        .unwrap();
    assert_eq!(
        (found.map(|(u, _)| u.name), n),
        (Some("alice".to_string()), 1)
    );

    // The same on a connection of its own.
    let own = store.dedicated().unwrap();
    find_alice(&own);
    own.batch("DEALLOCATE ALL").unwrap();
    find_alice(&own);

    // The server process of a pooled connection ended from outside: the pool replaces the
    // connection, whose cache starts empty, and nothing fails.
    let pid = backend(&c);
    drop(c);
    let mut observer = cluster.observer("besedka");
    observer
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    let c = store.conn().unwrap();
    assert_ne!(backend(&c), pid, "a new connection");
    find_alice(&c);
    assert_eq!(runs_of(&c, FIND), 1);
}

#[test]
fn a_column_changed_under_a_running_server_costs_no_line() {
    let Some((cluster, url)) = common::pg::database_or_skip("besedka") else {
        return;
    };
    Store::open_postgres(&url).unwrap();
    let server = Server::start_on(Path::new(&url), &[]);
    let (mut alice, _) = server.register("alice", "secret12");
    let (mut bob, _) = server.register("bob", "secret12");
    alice.send("before the change");
    bob.expect("] alice: before the change\r\n");

    // Another node's migration, or a shell: the commit's `RETURNING id, created_at` and the
    // history's reads now give another type, and their cached plans are refused.
    let mut observer = cluster.observer("besedka");
    observer
        .batch_execute("ALTER TABLE messages ALTER COLUMN created_at TYPE varchar(40)")
        .unwrap();
    alice.send("after the change");
    bob.expect("] alice: after the change\r\n");
    // A login reads the history through the pool's statements, prepared before the change.
    let mut again = server.connect();
    again.expect("Name: ");
    again.send("/login bob secret12");
    let seen = again.expect("* In #lobby (");
    assert!(seen.contains("alice: after the change"), "{seen}");
    let stored: i64 = observer
        .query_one("SELECT count(*) FROM messages", &[])
        .unwrap()
        .get(0);
    assert_eq!(stored, 2);
}
