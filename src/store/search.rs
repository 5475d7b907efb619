//! Full-text search over messages (`messages_fts`, FTS5). The index is filled in batches
//! off the hub ([`index_batch`], run by the janitor), so a message is searchable within
//! seconds of being said, and the hub's commits do not pay for indexing.

use super::{Conn, Dialect};
use rusqlite::params;

use super::messages::{message_columns, message_joins, row_to_message, Message};
use crate::error::Result;

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

/// Why a search found nothing to show.
#[derive(Debug)]
pub enum SearchError {
    /// The query is not valid FTS5 syntax; the text says where.
    Syntax(String),
    Store(crate::Error),
}

/// The newest `limit` messages matching `query` that `viewer` may see (public ones, and
/// private ones they sent or received; `None`: the operator, who sees all), newest first;
/// with `room`, only that room's.
pub fn search(
    c: &Conn,
    viewer: Option<i64>,
    query: &str,
    room: Option<i64>,
    limit: u32,
) -> std::result::Result<Vec<Message>, SearchError> {
    let matching = match c.dialect() {
        // FTS5: words, "a phrase", OR, NOT, pre*.
        Dialect::Sqlite => "FROM messages_fts f JOIN messages m ON m.id = f.rowid",
        // PostgreSQL: web-search syntax (words, "a phrase", or, -word), never an error.
        Dialect::Postgres => {
            "FROM messages m JOIN websearch_to_tsquery('simple', ?1) q
                  ON to_tsvector('simple', m.body) @@ q"
        }
    };
    let filter = match c.dialect() {
        Dialect::Sqlite => "messages_fts MATCH ?1",
        Dialect::Postgres => "TRUE",
    };
    let sql = format!(
        concat!(
            "SELECT ",
            message_columns!(),
            " {} ",
            message_joins!(),
            "WHERE {}
               AND (CAST(?2 AS BIGINT) IS NULL OR m.recipient_id IS NULL
                    OR m.recipient_id = ?2 OR m.author_id = ?2)
               AND (CAST(?4 AS BIGINT) IS NULL OR m.room_id = ?4)
             ORDER BY m.id DESC LIMIT ?3"
        ),
        matching, filter
    );
    let found = c.query(
        &sql,
        &[&query, &viewer, &i64::from(limit), &room],
        row_to_message,
    );
    found.map_err(|e| {
        let text = e.to_string();
        if text.contains("fts5") || text.contains("syntax error") {
            SearchError::Syntax(text)
        } else {
            SearchError::Store(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::messages::{commit, msg};
    use crate::store::{test_db, users};

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
            search(&db, Some(c.id), "fox", None, 20).unwrap().is_empty(),
            "not indexed yet"
        );
        assert_eq!(index_batch(&db, 2).unwrap(), 2);
        assert_eq!(index_batch(&db, 100).unwrap(), 1);
        assert_eq!(index_batch(&db, 100).unwrap(), 0);
        let bodies = |v: Vec<Message>| v.into_iter().map(|m| m.body).collect::<Vec<_>>();
        assert_eq!(
            bodies(search(&db, Some(c.id), "fox", None, 20).unwrap()),
            ["the quick brown fox"]
        );
        assert_eq!(
            bodies(search(&db, Some(b.id), "fox", None, 20).unwrap()),
            ["a secret fox for bob", "the quick brown fox"]
        );
        assert_eq!(
            bodies(search(&db, None, "лиса", None, 20).unwrap()),
            ["Привет, лиса"]
        );
        assert!(matches!(
            search(&db, Some(a.id), "fox AND", None, 20),
            Err(SearchError::Syntax(_))
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
        let lobby = Some(crate::store::rooms::LOBBY);
        assert_eq!(
            bodies(search(&db, Some(c.id), "fox", lobby, 20).unwrap()),
            ["the quick brown fox"]
        );
        let found = search(&db, Some(c.id), "fox", Some(dev.id), 20).unwrap();
        assert_eq!(found[0].room, Some((dev.id, "#dev".to_string())));
        assert_eq!(bodies(found), ["a fox in dev"]);
        // Deleting an indexed message takes it out of the index.
        db.raw()
            .execute(
                "DELETE FROM messages WHERE body = 'the quick brown fox'",
                [],
            )
            .unwrap();
        assert!(search(&db, Some(c.id), "fox", lobby, 20)
            .unwrap()
            .is_empty());
    }
}
