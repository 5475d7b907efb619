//! Full-text search over messages (`messages_fts`, FTS5). The index is filled in batches
//! off the hub ([`index_batch`], run by the janitor), so a message is searchable within
//! seconds of being said, and the hub's commits do not pay for indexing.

use super::{Conn, Dialect};
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

/// The newest `limit` messages matching `query` that `viewer` may see (public ones, and
/// private ones they sent or received; `None`: the operator, who sees all), newest first;
/// with `room`, only that room's. A query the engine cannot read is
/// [`Error::NotAQuery`], with the reason in the user's words.
pub fn search(
    c: &Conn,
    viewer: Option<i64>,
    query: &str,
    room: Option<i64>,
    limit: u32,
) -> Result<Vec<Message>> {
    let matching = match c.dialect() {
        // FTS5: words, "a phrase", OR, NOT, pre*.
        Dialect::Sqlite => "FROM messages_fts f JOIN messages m ON m.id = f.rowid",
        // PostgreSQL: web-search syntax (words, "a phrase", or, -word): no syntax errors,
        // only limits (see `not_a_query`).
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
    c.query(
        &sql,
        &[&query, &viewer, &i64::from(limit), &room],
        row_to_message,
    )
    .map_err(|e| match not_a_query(&e, query) {
        Some(why) => Error::NotAQuery(why),
        None => e,
    })
}

/// Why the engine could not read `query`, in the user's words; `None` if `e` is a real
/// database failure. The statement around the query is fixed (and tested), so an error that
/// only a query can cause is the query's fault.
fn not_a_query(e: &Error, query: &str) -> Option<String> {
    match e {
        // FTS5 reports every query error as SQLITE_ERROR with one of these texts (checked in
        // the tests below); a busy, full or corrupt database has other codes.
        Error::Db(rusqlite::Error::SqliteFailure(f, Some(text)))
            if f.extended_code == rusqlite::ffi::SQLITE_ERROR =>
        {
            fts5_reason(text, query)
        }
        // websearch_to_tsquery reads any text, but has limits: a NUL byte (22021), a query
        // over 1 MB (54000, "value is too big in tsquery"), or so many words that its parser
        // runs out of stack (54001).
        Error::Pg(p) => match p.code().map(|c| c.code()) {
            Some("22021") => Some("it contains a character that cannot be searched for".into()),
            Some("54000" | "54001") => Some("it is too long".into()),
            _ => None,
        },
        _ => None,
    }
}

/// Words, "a phrase", OR, NOT, pre*: FTS5's syntax, in one line.
const FTS5_SYNTAX: &str = "use words, \"a phrase\", OR, NOT, or pre*";

/// FTS5's error text, told as what is wrong with the query; `None` if it is no query error.
fn fts5_reason(text: &str, query: &str) -> Option<String> {
    if text == "unterminated string" {
        return Some("a quote (\") is not closed".into());
    }
    if let Some(near) = text
        .strip_prefix("fts5: syntax error near \"")
        .and_then(|t| t.strip_suffix('"'))
    {
        // Near "": the query ended where FTS5 wanted more; its last word is to blame.
        let ended = near.is_empty();
        let culprit = if ended {
            query.split_whitespace().last().unwrap_or("")
        } else {
            near
        };
        let unclosed = query.matches('(').count() > query.matches(')').count();
        return Some(match culprit {
            "AND" | "OR" | "NOT" => format!("{culprit} needs a word on each side"),
            _ if ended && unclosed => "a bracket \"(\" is not closed".into(),
            "" => format!("it is empty; {FTS5_SYNTAX}"),
            _ if ended => format!("it ends too soon; {FTS5_SYNTAX}"),
            // A punctuation mark, as FTS5 quotes it (cut, should it ever quote more).
            mark => format!(
                "\"{}\" cannot stand outside quotes; put words with punctuation in \"quotes\"",
                mark.chars().take(8).collect::<String>()
            ),
        });
    }
    // `word:` and `-word` are FTS5's column filters, and messages have one column.
    if text.starts_with("no such column: ") {
        return Some(
            "\":\" and \"-\" filter by column here; put words with them in \"quotes\"".into(),
        );
    }
    if text.starts_with("unknown special query: ") {
        return Some("\"*\" goes at the end of a word (pre*)".into());
    }
    if text.starts_with("expected integer, got ") {
        return Some("NEAR(a b, N) wants a number for N".into());
    }
    if text == "fts5: parser stack overflow" {
        return Some("it has too many brackets inside each other".into());
    }
    // Any other FTS5 complaint: still the query's fault, said without FTS5's words.
    text.starts_with("fts5: ")
        .then(|| format!("the search engine cannot read it; {FTS5_SYNTAX}"))
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

    #[test]
    fn a_query_fts5_cannot_read_is_told_in_words_and_a_broken_database_is_not() {
        let db = test_db();
        let why = |q: &str| match search(&db, None, q, None, 20) {
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
                "\":\" and \"-\" filter by column here; put words with them in \"quotes\"".into(),
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
            "body:lab",
            "é",
        ] {
            assert!(search(&db, None, query, None, 20).is_ok(), "{query:?}");
        }
        // A database that fails is a database error, whatever the query.
        db.raw().execute_batch("DROP TABLE messages_fts").unwrap();
        match search(&db, None, "lab", None, 20) {
            Err(Error::Db(_)) => {}
            other => panic!("{:?}", other.map(|v| v.len())),
        }
    }
}
