//! The PostgreSQL backend of the store, on a throwaway cluster of this test's own (see
//! `tests/common/pg.rs`): the store functions ported so far do on PostgreSQL what they do on
//! SQLite. Skipped, with the reason printed, when PostgreSQL is not installed outside CI.

mod common;

use besedka::store::{tokens, users, Store};

#[test]
fn accounts_and_tokens_work_on_postgres() {
    let cluster = match common::pg::start() {
        Ok(c) => c,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let url = cluster.database("besedka");
    let store = Store::open_postgres(&url).unwrap();
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

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("token-{}", N.fetch_add(1, Ordering::Relaxed))
}
