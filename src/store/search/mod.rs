//! Search over messages: words and "phrases" through the full-text index, and the filters
//! of [`Query`] (author, room, dates). On SQLite the index is FTS5 (`messages_fts`), filled
//! in batches off the hub ([`index_batch`], run by the janitor), so a message is searchable
//! within seconds of being said and the hub's commits do not pay for indexing; on PostgreSQL
//! a GIN index on each body's `tsvector`.
//!
//! A search's cost does not grow with the history: it walks the matches newest first and
//! stops at its limit (FTS5 in `rowid` order, never ranking or sorting every match), with
//! the filters applied in the same statement; dates become id bounds (ids and times grow
//! together), so `before:` and `after:` narrow the walk itself.

mod context;
mod query;
mod reasons;

pub use context::{context, MAX_CONTEXT};
pub use query::{Query, DATE_FORMS};

use std::fmt::Write;

use super::conn::Value;
use super::{rooms, users, Conn, Dialect};
use rusqlite::params;

use super::messages::{message_columns, message_joins, row_to_message, Message};
use crate::error::{Error, Result};
/// Adds up to `max` messages not yet indexed, in one transaction; returns how many.
pub fn index_batch(c: &Conn, max: u32) -> Result<usize> {
    // PostgreSQL keeps its own index (a GIN index on the text's tsvector) as rows come.
    let Some(conn) = c.lite() else {
        return Ok(0);
    };
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let last: i64 = tx.query_row("SELECT last_id FROM fts_state WHERE id = 1", [], |r| {
        r.get(0)
    })?;
    let n = tx.execute(
        "INSERT INTO messages_fts(rowid, body)
         SELECT id, body FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2",
        params![last, max],
    )?;
    if n > 0 {
        tx.execute(
            "UPDATE fts_state SET last_id =
                 (SELECT MAX(id) FROM (SELECT id FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2))
             WHERE id = 1",
            params![last, max],
        )?;
    }
    tx.commit()?;
    Ok(n)
}

/// The newest `limit` messages matching `q` that `viewer` may see (public ones, and private
/// ones they sent or received; `None`: the operator, who sees all), newest first. What the
/// engine cannot read, and a user or room that does not exist, is [`Error::NotAQuery`] with
/// the reason in the user's words.
pub fn search(c: &Conn, viewer: Option<i64>, q: &Query, limit: u32) -> Result<Vec<Message>> {
    run(c, viewer, q, limit).map_err(|e| match reasons::not_a_query(&e, &q.words) {
        Some(why) => Error::NotAQuery(why),
        None => e,
    })
}

/// What the filters name, looked up.
struct Found {
    author: Option<i64>,
    room: Option<i64>,
    /// The ids the dates allow: `lo <= id < hi`.
    lo: i64,
    hi: i64,
}

fn resolve(c: &Conn, q: &Query, viewer: Option<i64>) -> Result<Found> {
    let author = match &q.from {
        Some(name) => match users::find(c, name)? {
            Some((user, _)) => Some(user.id),
            None => return Err(Error::NotAQuery(format!("there is no user \"{name}\""))),
        },
        None => None,
    };
    let room = match &q.room {
        // A room this viewer may not see (invite-only) is told as one that does not exist.
        Some(name) => {
            let seen = match (rooms::find(c, name)?, viewer) {
                (Some(room), Some(v)) => {
                    crate::store::members::may_see(c, room.id, v)?.then_some(room.id)
                }
                (room, _) => room.map(|r| r.id),
            };
            match seen {
                Some(id) => Some(id),
                None => return Err(Error::NotAQuery(format!("there is no room \"{name}\""))),
            }
        }
        None => None,
    };
    let lo = match &q.after {
        Some(at) => first_id_at(c, at)?,
        None => 0,
    };
    let hi = match &q.before {
        Some(at) => first_id_at(c, at)?,
        None => i64::MAX,
    };
    Ok(Found {
        author,
        room,
        lo,
        hi,
    })
}

/// The first message id said at or after `at` (one past the last id if none): a binary
/// search over the ids, each step one primary-key lookup, so about 23 lookups at 5M
/// messages and no index on the time. Ids are handed out in commit order and stamped with
/// the commit's time, so time grows with the id; the exact times are checked again by the
/// search itself.
fn first_id_at(c: &Conn, at: &str) -> Result<i64> {
    let last = super::messages::last_id(c)?;
    let first_from = |id: i64| -> Result<Option<(i64, String)>> {
        c.query_opt(
            "SELECT id, created_at FROM messages WHERE id >= ?1 ORDER BY id LIMIT 1",
            &[&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    };
    // The smallest x whose first message at or after it is at or after `at` (or is none).
    let (mut lo, mut hi) = (0, last + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match first_from(mid)? {
            Some((_, created)) if created.as_str() < at => lo = mid + 1,
            _ => hi = mid,
        }
    }
    Ok(first_from(lo)?.map_or(last + 1, |(id, _)| id))
}

/// A statement being written, with its parameters numbered as they are added.
struct Sql<'a> {
    text: String,
    args: Vec<&'a dyn Value>,
}

impl<'a> Sql<'a> {
    fn new(text: &str) -> Sql<'a> {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }
    /// The next parameter, `?N`, bound to `v`.
    fn arg(&mut self, v: &'a dyn Value) -> &mut Self {
        self.args.push(v);
        let _ = write!(self.text, "?{}", self.args.len());
        self
    }
}

/// Which rows a search walks, newest first. Ordered for ties: the full-text walk first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Walk {
    /// The full-text index's matches, in `rowid` order (FTS5) or the planner's (PostgreSQL).
    Matches,
    /// One author's lines (`messages_author`), each checked against the words.
    Author,
    /// One room's lines (`messages_room`), each checked against the words.
    Room,
    /// No words: the messages themselves, by whichever index the filters name.
    Messages,
}

/// Matches or lines counted at most when choosing the walk.
const PROBE: i64 = 10_000;

/// The cheapest walk on SQLite: the full-text matches, unless a filter's index holds fewer
/// rows than the words match (`from:` a quiet user with a common word). Each count stops at
/// [`PROBE`] rows, so choosing costs at most a few thousand index steps; a walk of the
/// matches stops at the limit, and a filter's walk checks each of its rows against the
/// index by rowid.
fn choose(c: &Conn, q: &Query, f: &Found) -> Result<Walk> {
    if !q.has_words() {
        return Ok(Walk::Messages);
    }
    if c.dialect() == Dialect::Postgres || (f.author.is_none() && f.room.is_none()) {
        return Ok(Walk::Matches);
    }
    let count = |sql: &str, key: &dyn Value| -> Result<i64> {
        c.query_one(
            &format!("SELECT count(*) FROM ({sql} AND rowid >= ?2 AND rowid < ?3 LIMIT ?4)"),
            &[key, &f.lo, &f.hi, &PROBE],
            |r| r.get(0),
        )
    };
    let mut best = (
        count(
            "SELECT 1 FROM messages_fts WHERE messages_fts MATCH ?1",
            &q.words.as_str(),
        )?,
        Walk::Matches,
    );
    if let Some(author) = f.author {
        let n = count(
            "SELECT 1 FROM messages INDEXED BY messages_author WHERE author_id = ?1",
            &author,
        )?;
        best = best.min((n, Walk::Author));
    }
    if let Some(room) = f.room {
        let n = count(
            "SELECT 1 FROM messages INDEXED BY messages_room WHERE room_id = ?1",
            &room,
        )?;
        best = best.min((n, Walk::Room));
    }
    Ok(best.1)
}

fn run(c: &Conn, viewer: Option<i64>, q: &Query, limit: u32) -> Result<Vec<Message>> {
    let f = resolve(c, q, viewer)?;
    let walk = choose(c, q, &f)?;
    let lite = c.dialect() == Dialect::Sqlite;
    let words = q.words.as_str();
    let limit = i64::from(limit);
    let mut sql = Sql::new(concat!("SELECT ", message_columns!(), " "));
    // The walk: which rows come first, and the column they come in the order of.
    let key = match (walk, lite) {
        (Walk::Matches, true) => {
            // CROSS JOIN: the index is walked first, in rowid order, and the LIMIT stops it.
            sql.push("FROM messages_fts f CROSS JOIN messages m ON m.id = f.rowid")
                .push(message_joins!())
                .push("WHERE messages_fts MATCH ")
                .arg(&words);
            "f.rowid"
        }
        (Walk::Matches, false) => {
            // Web-search syntax (words, "a phrase", or, -word): no syntax errors, only limits
            // (see `reasons`). The planner walks the id index backwards for a common word and
            // reads the GIN index for a rare one.
            sql.push("FROM messages m")
                .push(message_joins!())
                .push("WHERE to_tsvector('simple', m.body) @@ websearch_to_tsquery('simple', ")
                .arg(&words)
                .push(")");
            "m.id"
        }
        (Walk::Author | Walk::Room, _) => {
            let index = match walk {
                Walk::Author => "messages_author",
                _ => "messages_room",
            };
            sql.push(&format!("FROM messages m INDEXED BY {index}"))
                .push(message_joins!())
                .push("WHERE EXISTS (SELECT 1 FROM messages_fts WHERE messages_fts MATCH ")
                .arg(&words)
                .push(" AND rowid = m.id)");
            "m.id"
        }
        (Walk::Messages, _) => {
            sql.push("FROM messages m")
                .push(message_joins!())
                .push("WHERE TRUE");
            "m.id"
        }
    };
    if let Some(after) = &q.after {
        sql.push(&format!(" AND {key} >= ")).arg(&f.lo);
        sql.push(" AND m.created_at >= ").arg(after);
    }
    if let Some(before) = &q.before {
        sql.push(&format!(" AND {key} < ")).arg(&f.hi);
        sql.push(" AND m.created_at < ").arg(before);
    }
    if let Some(author) = &f.author {
        sql.push(" AND m.author_id = ").arg(author);
    }
    if let Some(room) = &f.room {
        sql.push(" AND m.room_id = ").arg(room);
    }
    if let Some(viewer) = &viewer {
        // What this user may see: public lines, and private ones they sent or received.
        sql.push(" AND (m.recipient_id IS NULL OR m.recipient_id = ")
            .arg(viewer)
            .push(" OR m.author_id = ")
            .arg(viewer)
            .push(")");
        // And a public line's room is one they may see: open, or invite-only with them a
        // member (store::members).
        sql.push(" AND (m.room_id IS NULL OR m.room_id NOT IN (SELECT id FROM rooms WHERE private")
            .push(" AND id NOT IN (SELECT room_id FROM room_members WHERE user_id = ")
            .arg(viewer)
            .push(")))");
    }
    // A removed line (a tombstone) is nobody's to find.
    sql.push(" AND m.removed_by IS NULL");
    sql.push(&format!(" ORDER BY {key} DESC LIMIT "))
        .arg(&limit);
    c.query(&sql.text, &sql.args, row_to_message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::messages::{commit, msg};
    use crate::store::{test_db, users};

    /// A search of `text` as typed, the filters read.
    fn search(db: &Conn, viewer: Option<i64>, text: &str, limit: u32) -> Result<Vec<Message>> {
        let q = Query::parse(text).map_err(Error::NotAQuery)?;
        super::search(db, viewer, &q, limit)
    }

    fn say(db: &Conn, author: &users::User, to: Option<&users::User>, body: &str) {
        commit(db, &mut [msg(author, to, body)]).unwrap();
    }

    #[test]
    fn finds_what_a_user_may_see_once_indexed_and_reports_bad_syntax() {
        let db = test_db();
        let a = users::create(&db, "alice", "h").unwrap().unwrap();
        let b = users::create(&db, "bob", "h").unwrap().unwrap();
        let c = users::create(&db, "carol", "h").unwrap().unwrap();
        say(&db, &a, None, "the quick brown fox");
        say(&db, &a, Some(&b), "a secret fox for bob");
        say(&db, &c, None, "Привет, лиса");
        assert!(
            search(&db, Some(c.id), "fox", 20).unwrap().is_empty(),
            "not indexed yet"
        );
        assert_eq!(index_batch(&db, 2).unwrap(), 2);
        assert_eq!(index_batch(&db, 100).unwrap(), 1);
        assert_eq!(index_batch(&db, 100).unwrap(), 0);
        let bodies = |v: Vec<Message>| v.into_iter().map(|m| m.body).collect::<Vec<_>>();
        assert_eq!(
            bodies(search(&db, Some(c.id), "fox", 20).unwrap()),
            ["the quick brown fox"]
        );
        assert_eq!(
            bodies(search(&db, Some(b.id), "fox", 20).unwrap()),
            ["a secret fox for bob", "the quick brown fox"]
        );
        assert_eq!(
            bodies(search(&db, None, "лиса", 20).unwrap()),
            ["Привет, лиса"]
        );
        assert!(matches!(
            search(&db, Some(a.id), "fox AND", 20),
            Err(Error::NotAQuery(_))
        ));
        // A room filter: the same word said in another room is not found in #lobby.
        let crate::store::rooms::Opened::Created(dev) =
            crate::store::rooms::open(&db, "#dev", c.id, 5, 100).unwrap()
        else {
            panic!("#dev not made");
        };
        let mut in_dev = msg(&c, None, "a fox in dev");
        in_dev.room = Some((dev.id, dev.name.clone()));
        commit(&db, &mut [in_dev]).unwrap();
        index_batch(&db, 100).unwrap();
        assert_eq!(
            bodies(search(&db, Some(c.id), "fox in:#lobby", 20).unwrap()),
            ["the quick brown fox"]
        );
        let found = search(&db, Some(c.id), "fox in:#dev", 20).unwrap();
        assert_eq!(found[0].room, Some((dev.id, "#dev".to_string())));
        assert_eq!(bodies(found), ["a fox in dev"]);
        // Deleting an indexed message takes it out of the index.
        db.raw()
            .execute(
                "DELETE FROM messages WHERE body = 'the quick brown fox'",
                [],
            )
            .unwrap();
        assert!(search(&db, Some(c.id), "fox in:#lobby", 20)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_query_fts5_cannot_read_is_told_in_words_and_a_broken_database_is_not() {
        let db = test_db();
        let why = |q: &str| match search(&db, None, q, 20) {
            Err(Error::NotAQuery(why)) => why,
            other => panic!("{q:?}: {:?}", other.map(|v| v.len())),
        };
        let syntax = "use words, \"a phrase\", OR, NOT, or pre*";
        let punctuation = |p: &str| {
            format!("\"{p}\" cannot stand outside quotes; put words with punctuation in \"quotes\"")
        };
        for (query, reason) in [
            ("\"unclosed", "a quote (\") is not closed".to_string()),
            ("lab AND", "AND needs a word on each side".into()),
            ("NOT lab", "NOT needs a word on each side".into()),
            ("a OR OR b", "OR needs a word on each side".into()),
            ("(lab", "a bracket \"(\" is not closed".into()),
            ("lab -", format!("it ends too soon; {syntax}")),
            ("don't", punctuation("'")),
            ("hello, world", punctuation(",")),
            (
                "lab:x",
                "there is no filter \"lab:\"; the filters are from:NAME, in:#ROOM, before:DATE \
                 and after:DATE (put words with \":\" in \"quotes\")"
                    .into(),
            ),
            (
                "a-b",
                "\":\" and \"-\" filter by column here; put words with them in \"quotes\"".into(),
            ),
            ("*x", "\"*\" goes at the end of a word (pre*)".into()),
            ("NEAR(a b, x)", "NEAR(a b, N) wants a number for N".into()),
            (
                &format!("{}x{}", "(".repeat(300), ")".repeat(300)),
                "it has too many brackets inside each other".into(),
            ),
        ] {
            let got = why(query);
            assert_eq!(got, reason, "{query:?}");
            assert!(!got.contains("fts5") && !got.contains("database"), "{got}");
        }
        // Valid queries find nothing, without an error.
        for query in [
            "lab",
            "\"a phrase\"",
            "pre*",
            "a OR b",
            "a NOT b",
            "\"body:lab\"",
            "é",
        ] {
            assert!(search(&db, None, query, 20).is_ok(), "{query:?}");
        }
        // A database that fails is a database error, whatever the query.
        db.raw().execute_batch("DROP TABLE messages_fts").unwrap();
        match search(&db, None, "lab", 20) {
            Err(Error::Db(_)) => {}
            other => panic!("{:?}", other.map(|v| v.len())),
        }
    }
}
