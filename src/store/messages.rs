//! The `messages` table: the chat history, public and private.

use super::conn::{Array, Row, Value};
use super::users::User;
use super::{Conn, Dialect};
use crate::error::Result;

/// What kind of line a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A plain line: `NAME: TEXT`.
    Say,
    /// An action, `/me TEXT`: `* NAME TEXT`.
    Me,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Say => "say",
            Kind::Me => "me",
        }
    }
    fn parse(s: &str) -> Kind {
        if s == "me" {
            Kind::Me
        } else {
            Kind::Say
        }
    }
}

/// A message, stored or about to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// 0 until committed; then its place in the one order every client sees.
    pub id: i64,
    /// Empty until committed.
    pub created_at: String,
    pub author_id: Option<i64>,
    pub author_name: String,
    /// `Some` for a private message: the recipient's id and name.
    pub recipient: Option<(i64, String)>,
    /// `Some` for a public message: the room's id and name.
    pub room: Option<(i64, String)>,
    pub kind: Kind,
    /// Empty once removed.
    pub body: String,
    /// Removed (`/delete`, a purge): a tombstone, which reads for clients leave out.
    pub removed: bool,
}

/// The transaction lock every node's commit takes first (PostgreSQL): nodes commit one at a
/// time, so ids are handed out in commit order, and a node that has read up to an id never
/// sees a smaller one appear later.
const SERIALIZE: &str = "SELECT pg_advisory_xact_lock(7378)";

/// What a message binds beside its own fields: recipient id, room id, kind.
type Derived<'a> = (Option<i64>, Option<i64>, &'a str);

/// A message's values for the insert, in column order.
fn row_values<'a>((m, d): (&'a Message, &'a Derived<'a>)) -> [&'a dyn Value; 6] {
    [&m.author_id, &m.author_name, &d.0, &d.1, &d.2, &m.body]
}

impl Message {
    /// A message by `author`, not yet committed: private to `to`, or public in `room` (its
    /// id; the name is filled in when a message is read back from the store).
    pub fn new(
        author: &User,
        to: Option<&User>,
        room: Option<i64>,
        kind: Kind,
        body: String,
    ) -> Message {
        Message {
            id: 0,
            created_at: String::new(),
            author_id: Some(author.id),
            author_name: author.name.clone(),
            recipient: to.map(|u| (u.id, u.name.clone())),
            room: room.filter(|_| to.is_none()).map(|r| (r, String::new())),
            kind,
            body,
            removed: false,
        }
    }
}

/// Commits `batch` in one transaction and fills in each message's `id` and `created_at`.
/// All or nothing: on error nothing is stored and the messages must not be shown.
pub fn commit(c: &Conn, batch: &mut [Message]) -> Result<()> {
    commit_from(c, batch, "")
}

/// [`commit`] by the node `node`, whose own listener then skips the notification (it has the
/// rows already): the payload is the node's id, never a message.
pub fn commit_from(c: &Conn, batch: &mut [Message], node: &str) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    // The values each row binds that are not fields of the message as they stand.
    let derived: Vec<Derived> = batch
        .iter()
        .map(|m| {
            (
                m.recipient.as_ref().map(|r| r.0),
                m.room.as_ref().map(|r| r.0),
                m.kind.as_str(),
            )
        })
        .collect();
    let row = row_values;
    let now = c.dialect().now();
    let mut stored: Vec<(i64, String)> = match c.dialect() {
        // One prepared statement, run per row: SQLite is in-process, a row costs no trip.
        Dialect::Sqlite => {
            let sql = format!(
                "INSERT INTO messages (created_at, author_id, author_name, recipient_id, room_id, kind, body)
                 VALUES ({now}, ?1, ?2, ?3, ?4, ?5, ?6) RETURNING id, created_at"
            );
            c.transaction(|c| {
                let sets = batch.iter().zip(&derived).map(row);
                c.query_each(&sql, sets, |r| Ok((r.get(0)?, r.get(1)?)))
            })?
        }
        // Every trip to the server counts: the lock with the BEGIN, the whole batch in one
        // INSERT, the NOTIFY with the COMMIT. Three trips whatever the batch's size: the
        // batch goes as one array per column, so the INSERT's text is the same for every
        // size and is prepared once per connection (`store::statements`). `ORDER BY i`:
        // the ids are drawn in the batch's order.
        Dialect::Postgres => {
            let sql = format!(
                "INSERT INTO messages (created_at, author_id, author_name, recipient_id, room_id, kind, body)
                 SELECT {now}, a, n, r, rm, k, b
                 FROM unnest(CAST(?1 AS bigint[]), CAST(?2 AS text[]), CAST(?3 AS bigint[]),
                             CAST(?4 AS bigint[]), CAST(?5 AS text[]), CAST(?6 AS text[]))
                      WITH ORDINALITY AS t(a, n, r, rm, k, b, i)
                 ORDER BY i
                 RETURNING id, created_at"
            );
            let authors = Array(batch.iter().map(|m| m.author_id).collect());
            let names = Array(batch.iter().map(|m| m.author_name.as_str()).collect());
            let recipients = Array(derived.iter().map(|d| d.0).collect());
            let rooms = Array(derived.iter().map(|d| d.1).collect());
            let kinds = Array(derived.iter().map(|d| d.2).collect());
            let bodies = Array(batch.iter().map(|m| m.body.as_str()).collect());
            let params: [&dyn Value; 6] = [&authors, &names, &recipients, &rooms, &kinds, &bodies];
            let told = super::notify::notify(super::notify::CHANNEL, node);
            c.transaction_between(
                &format!("BEGIN; {SERIALIZE}"),
                &format!("{told}; COMMIT"),
                |c| c.query(&sql, &params, |r| Ok((r.get(0)?, r.get(1)?))),
            )?
        }
    };
    // Ids are handed out in the order of the rows; RETURNING's order is not promised.
    stored.sort_unstable_by_key(|(id, _)| *id);
    for (m, (id, at)) in batch.iter_mut().zip(stored) {
        m.id = id;
        m.created_at = at;
    }
    Ok(())
}

/// The columns [`row_to_message`] reads, in its order: `m` is `messages`, `r` the recipient
/// and `rm` the room (both left-joined by [`message_joins`]). Every query that makes
/// [`Message`]s selects these.
macro_rules! message_columns {
    () => {
        "m.id, m.created_at, m.author_id, m.author_name, m.recipient_id, r.name, m.kind, m.body, \
         m.room_id, rm.name, m.removed_by"
    };
}
pub(crate) use message_columns;

/// The joins [`message_columns`] needs, after `FROM messages m ...`.
macro_rules! message_joins {
    () => {
        " LEFT JOIN users r ON r.id = m.recipient_id LEFT JOIN rooms rm ON rm.id = m.room_id "
    };
}
pub(crate) use message_joins;

/// [`visible`]'s statement: ?1 the user (-1: none), ?2 the limit, ?3 the id to stay below,
/// ?4 the room.
const VISIBLE: &str = concat!(
    "SELECT ",
    message_columns!(),
    "
         FROM (
             SELECT id FROM (SELECT id FROM messages INDEXED BY messages_room
                             WHERE room_id = ?4 AND id < ?3 AND removed_by IS NULL
                             ORDER BY id DESC LIMIT ?2) a
             UNION
             SELECT id FROM (SELECT id FROM messages INDEXED BY messages_recipient
                             WHERE recipient_id = ?1 AND id < ?3 AND removed_by IS NULL
                             ORDER BY id DESC LIMIT ?2) b
             UNION
             SELECT id FROM (SELECT id FROM messages INDEXED BY messages_private_author
                             WHERE author_id = ?1 AND recipient_id IS NOT NULL AND id < ?3
                               AND removed_by IS NULL
                             ORDER BY id DESC LIMIT ?2) c
         ) v
         JOIN messages m ON m.id = v.id",
    message_joins!(),
    "ORDER BY m.id DESC LIMIT ?2"
);

/// The last `limit` messages of `room`, with the private ones to or from `viewer` if given,
/// oldest first. `before` limits it to messages older than that id. Removed lines
/// (tombstones: [`super::removals`]) are left out, here and in every read for a client.
///
/// Three index-driven scans of at most `limit` rows each, merged: the cost does not depend
/// on how many rows of other kinds (other rooms, someone's private flood) lie in between.
pub fn visible(
    c: &Conn,
    room: i64,
    viewer: Option<i64>,
    limit: u32,
    before: Option<i64>,
) -> Result<Vec<Message>> {
    let mut out = c.query(
        VISIBLE,
        &[
            &viewer.unwrap_or(-1),
            &i64::from(limit),
            &before.unwrap_or(i64::MAX),
            &room,
        ],
        row_to_message,
    )?;
    out.reverse();
    Ok(out)
}

/// Private messages to `user_id` from others with `after < id <= upto`, oldest first, at most
/// `limit` (the newest of them), and how many there are in all.
pub fn private_since(
    c: &Conn,
    user_id: i64,
    after: i64,
    upto: i64,
    limit: u32,
) -> Result<(Vec<Message>, i64)> {
    // Not from themselves (a NULL author, a deleted account, counts as another).
    let not_self = match c.dialect() {
        Dialect::Sqlite => "m.author_id IS NOT ?1",
        Dialect::Postgres => "m.author_id IS DISTINCT FROM ?1",
    };
    let total: i64 = c.query_one(
        &format!(
            "SELECT count(*) FROM messages m
             WHERE m.recipient_id = ?1 AND {not_self} AND m.id > ?2 AND m.id <= ?3
               AND m.removed_by IS NULL"
        ),
        &[&user_id, &after, &upto],
        |r| r.get(0),
    )?;
    let sql = format!(
        concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages m",
            message_joins!(),
            "WHERE m.recipient_id = ?1 AND {} AND m.id > ?2 AND m.id <= ?3
               AND m.removed_by IS NULL
             ORDER BY m.id DESC LIMIT ?4"
        ),
        not_self
    );
    let mut out = c.query(
        &sql,
        &[&user_id, &after, &upto, &i64::from(limit)],
        row_to_message,
    )?;
    out.reverse();
    Ok((out, total))
}

/// The last `limit` public messages of every room, newest first (for `/mentions`, which
/// filters them). Walks the table from its newest row (no index: the planner must not sort
/// a room index's rows instead).
pub fn recent_public(c: &Conn, limit: u32) -> Result<Vec<Message>> {
    c.query(
        concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages m NOT INDEXED",
            message_joins!(),
            "WHERE m.room_id IS NOT NULL AND m.removed_by IS NULL ORDER BY m.id DESC LIMIT ?1"
        ),
        &[&i64::from(limit)],
        row_to_message,
    )
}

/// Messages with `after < id < before`, in id order, at most `limit`: what other nodes
/// committed since this node's watermark. Tombstones included (they move the watermark);
/// the hub delivers the others.
pub fn between(c: &Conn, after: i64, before: i64, limit: u32) -> Result<Vec<Message>> {
    c.query(
        concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages m",
            message_joins!(),
            "WHERE m.id > ?1 AND m.id < ?2 ORDER BY m.id LIMIT ?3"
        ),
        &[&after, &before, &i64::from(limit)],
        row_to_message,
    )
}

/// The id of the newest message (0 if none): where the hub's watermark starts.
pub fn last_id(c: &Conn) -> Result<i64> {
    c.query_one("SELECT COALESCE(MAX(id), 0) FROM messages", &[], |r| {
        r.get(0)
    })
}

/// The last `limit` messages of every kind, private ones included, oldest first (for the
/// operator's `besedka history`).
pub fn recent(c: &Conn, limit: u32) -> Result<Vec<Message>> {
    let mut out = c.query(
        concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages m",
            message_joins!(),
            "WHERE m.removed_by IS NULL ORDER BY m.id DESC LIMIT ?1"
        ),
        &[&i64::from(limit)],
        row_to_message,
    )?;
    out.reverse();
    Ok(out)
}

pub(crate) fn row_to_message(r: &Row<'_>) -> Result<Message> {
    let recipient_id: Option<i64> = r.get(4)?;
    let recipient_name: Option<String> = r.get(5)?;
    let room_id: Option<i64> = r.get(8)?;
    let room_name: Option<String> = r.get(9)?;
    Ok(Message {
        id: r.get(0)?,
        created_at: r.get(1)?,
        author_id: r.get(2)?,
        author_name: r.get(3)?,
        recipient: recipient_id.zip(recipient_name),
        kind: Kind::parse(&r.get::<String>(6)?),
        body: r.get(7)?,
        room: room_id.zip(room_name),
        removed: r.get::<Option<String>>(10)?.is_some(),
    })
}

/// How many messages are stored.
pub fn count(c: &Conn) -> Result<i64> {
    c.query_one("SELECT count(*) FROM messages", &[], |r| r.get(0))
}

/// A message from `author` (to `to`, if private), for tests of the store.
#[cfg(test)]
pub(crate) fn msg(
    author: &super::users::User,
    to: Option<&super::users::User>,
    body: &str,
) -> Message {
    Message::new(
        author,
        to,
        Some(super::rooms::LOBBY),
        Kind::Say,
        body.into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rooms::LOBBY;
    use crate::store::{test_db, users};

    #[test]
    fn commit_assigns_increasing_ids_and_times() {
        let db = test_db();
        let a = users::create(&db, "alice", "h").unwrap().unwrap();
        let mut batch = vec![msg(&a, None, "one"), msg(&a, None, "two")];
        commit(&db, &mut batch).unwrap();
        assert!(batch[0].id > 0 && batch[1].id == batch[0].id + 1);
        assert_eq!(batch[0].created_at.len(), "2026-01-01T00:00:00Z".len());
        assert_eq!(count(&db).unwrap(), 2);
    }

    #[test]
    fn private_messages_are_visible_to_their_two_users_only() {
        let db = test_db();
        let a = users::create(&db, "alice", "h").unwrap().unwrap();
        let b = users::create(&db, "bob", "h").unwrap().unwrap();
        let c = users::create(&db, "carol", "h").unwrap().unwrap();
        let mut batch = vec![msg(&a, None, "hi all"), msg(&a, Some(&b), "psst")];
        commit(&db, &mut batch).unwrap();
        let bodies = |u: &users::User| -> Vec<String> {
            visible(&db, LOBBY, Some(u.id), 10, None)
                .unwrap()
                .into_iter()
                .map(|m| m.body)
                .collect()
        };
        assert_eq!(bodies(&a), ["hi all", "psst"]);
        assert_eq!(bodies(&b), ["hi all", "psst"]);
        assert_eq!(bodies(&c), ["hi all"]);
        let psst = &visible(&db, LOBBY, Some(b.id), 10, None).unwrap()[1];
        assert_eq!(psst.recipient, Some((b.id, "bob".to_string())));
    }

    #[test]
    fn history_outlives_the_author_but_not_the_recipient() {
        let db = test_db();
        let a = users::create(&db, "alice", "h").unwrap().unwrap();
        let b = users::create(&db, "bob", "h").unwrap().unwrap();
        let mut batch = vec![msg(&a, None, "public"), msg(&b, Some(&a), "secret")];
        commit(&db, &mut batch).unwrap();
        db.raw()
            .execute("DELETE FROM users WHERE id = ?1", [a.id])
            .unwrap();
        let rows: Vec<(Option<i64>, String)> = db
            .raw()
            .prepare("SELECT author_id, body FROM messages ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [(None, "public".to_string())]);
    }

    #[test]
    fn history_skips_other_peoples_private_rows_by_index() {
        let db = test_db();
        let a = users::create(&db, "alice", "h").unwrap().unwrap();
        let b = users::create(&db, "bob", "h").unwrap().unwrap();
        let c = users::create(&db, "carol", "h").unwrap().unwrap();
        let mut batch = vec![msg(&c, None, "old public"), msg(&b, Some(&a), "to alice")];
        batch.extend((0..200).map(|i| msg(&b, Some(&b), &format!("noise {i}"))));
        batch.push(msg(&a, Some(&b), "from alice"));
        batch.extend((0..200).map(|i| msg(&b, Some(&b), &format!("noise {i}"))));
        commit(&db, &mut batch).unwrap();
        let bodies: Vec<String> = visible(&db, LOBBY, Some(a.id), 5, None)
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(bodies, ["old public", "to alice", "from alice"]);
        // The plan of the very statement visible() runs reads each of the three partial
        // indexes and never scans the table itself.
        let plan: Vec<String> = db
            .raw()
            .prepare(&format!("EXPLAIN QUERY PLAN {VISIBLE}"))
            .unwrap()
            .query_map(rusqlite::params![a.id, 5, i64::MAX, LOBBY], |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for index in [
            "messages_room",
            "messages_recipient",
            "messages_private_author",
        ] {
            assert!(plan.iter().any(|p| p.contains(index)), "{index}: {plan:?}");
        }
        assert!(
            !plan.iter().any(|p| p.starts_with("SCAN")
                && (p.contains("messages") || p == "SCAN m")
                && !p.contains("USING")),
            "a full scan of messages: {plan:?}"
        );
    }

    #[test]
    fn visible_returns_the_newest_oldest_first_and_pages_back() {
        let db = test_db();
        let a = users::create(&db, "alice", "h").unwrap().unwrap();
        let mut batch: Vec<_> = (0..5).map(|i| msg(&a, None, &i.to_string())).collect();
        commit(&db, &mut batch).unwrap();
        let last2: Vec<_> = visible(&db, LOBBY, Some(a.id), 2, None).unwrap();
        assert_eq!(
            last2.iter().map(|m| &m.body[..]).collect::<Vec<_>>(),
            ["3", "4"]
        );
        let before: Vec<_> = visible(&db, LOBBY, Some(a.id), 2, Some(last2[0].id)).unwrap();
        assert_eq!(
            before.iter().map(|m| &m.body[..]).collect::<Vec<_>>(),
            ["1", "2"]
        );
    }
}
