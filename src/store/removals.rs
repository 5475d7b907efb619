//! Removing lines (`/delete`, `/purge`, `purge-lines`). A removed line stays in `messages`
//! as a tombstone: its row, id and time kept (so ids and order hold, and the unread counts
//! and `CHATHISTORY` windows around it stay right), its body emptied, `removed_by` and
//! `removed_at` set. Every read of lines for a client leaves tombstones out.
//!
//! Each removal is also a row of `removals` (who, what, which ids), written in the same
//! transaction: a running server reads the rows another process wrote (the admin CLI, another
//! node) and tells its clients, as it tells them of its own at once.

use super::messages::{message_columns, message_joins, row_to_message, Message};
use super::Conn;
use crate::error::Result;

/// Most lines one purge removes: one transaction, and one event for the hub, stay small
/// (the rest waits for the next run, which says so).
pub const MAX_PURGE: u32 = 10_000;

/// Rows of `removals` kept; older ones are deleted as new ones come.
const KEEP: i64 = 1000;

/// A removal: who did it, what it was (as announced), and the lines, in id order (their
/// bodies already empty: only where each was said matters now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub by: String,
    pub what: String,
    pub lines: Vec<Message>,
}

/// Why a line cannot be removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No line has that id (never, or pruned by retention).
    NoSuchLine,
    /// It was removed already, by this operator (or `console`).
    AlreadyRemoved(String),
}

/// Empties the lines `ids` (not removed yet) and writes the `removals` row; returns the
/// lines as they are now.
fn remove(c: &Conn, ids: &[i64], (by, what, node): (&str, &str, &str)) -> Result<Vec<Message>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let now = c.dialect().now();
    let list = id_list(ids);
    // The ids are numbers this module made from the table: safe to write into the text.
    c.execute(
        &format!(
            "UPDATE messages SET body = '', removed_by = ?1, removed_at = {now}
             WHERE id IN ({list}) AND removed_by IS NULL"
        ),
        &[&by],
    )?;
    c.execute(
        &format!(
            "INSERT INTO removals (node_id, removed_by, what, ids, created_at)
             VALUES (?1, ?2, ?3, ?4, {now})"
        ),
        &[&node, &by, &what, &list],
    )?;
    c.execute(
        "DELETE FROM removals WHERE id <= (SELECT max(id) FROM removals) - ?1",
        &[&KEEP],
    )?;
    lines(c, ids)
}

/// `1,2,3`.
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// The lines `ids` as stored, in id order.
fn lines(c: &Conn, ids: &[i64]) -> Result<Vec<Message>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        out.extend(c.query(
            &format!(
                concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages m",
                    message_joins!(),
                    "WHERE m.id IN ({}) ORDER BY m.id"
                ),
                id_list(chunk)
            ),
            &[],
            row_to_message,
        )?);
    }
    Ok(out)
}

/// The line `id` as stored (a tombstone's body is empty), if there is one.
pub fn line(c: &Conn, id: i64) -> Result<Option<Message>> {
    Ok(lines(c, &[id])?.pop())
}

/// `/delete ID`: removes one line, by `by` (an operator's name or `console`), on `node`.
pub fn delete(
    c: &Conn,
    id: i64,
    by: &str,
    node: &str,
) -> Result<std::result::Result<Removal, Refused>> {
    c.transaction(|c| {
        let state: Option<Option<String>> = c.query_opt(
            "SELECT removed_by FROM messages WHERE id = ?1",
            &[&id],
            |r| r.get(0),
        )?;
        match state {
            None => return Ok(Err(Refused::NoSuchLine)),
            Some(Some(who)) => return Ok(Err(Refused::AlreadyRemoved(who))),
            Some(None) => {}
        }
        let lines = remove(c, &[id], (by, "delete", node))?;
        Ok(Ok(Removal {
            by: by.to_string(),
            what: "delete".to_string(),
            lines,
        }))
    })
}

/// A purge: the lines of `author` with an id from `first` on (the first line of the period:
/// [`super::history::first_at`]) not removed yet, the newest [`MAX_PURGE`] of them. One
/// transaction. Returns the removal and whether older lines of the period are left.
pub fn purge(
    c: &Conn,
    author: i64,
    first: i64,
    (by, what, node): (&str, &str, &str),
) -> Result<(Removal, bool)> {
    c.transaction(|c| {
        let mut ids: Vec<i64> = c.query(
            "SELECT id FROM messages INDEXED BY messages_author
             WHERE author_id = ?1 AND id >= ?2 AND removed_by IS NULL
             ORDER BY id DESC LIMIT ?3",
            &[&author, &first, &(i64::from(MAX_PURGE) + 1)],
            |r| r.get(0),
        )?;
        let more = ids.len() > MAX_PURGE as usize;
        ids.truncate(MAX_PURGE as usize);
        ids.reverse();
        let lines = remove(c, &ids, (by, what, node))?;
        Ok((
            Removal {
                by: by.to_string(),
                what: what.to_string(),
                lines,
            },
            more,
        ))
    })
}

/// The newest removal's id (0 if none): where a server starts reading others' removals.
pub fn last_id(c: &Conn) -> Result<i64> {
    c.query_one("SELECT COALESCE(MAX(id), 0) FROM removals", &[], |r| {
        r.get(0)
    })
}

/// The removals written by others than `node` after `after` (at most 100), with the id to
/// read from next time: what the admin CLI or another node removed.
pub fn since(c: &Conn, node: &str, after: i64) -> Result<(Vec<Removal>, i64)> {
    let rows: Vec<(i64, String, String, String, String)> = c.query(
        "SELECT id, node_id, removed_by, what, ids FROM removals WHERE id > ?1 ORDER BY id LIMIT 100",
        &[&after],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let next = rows.last().map_or(after, |r| r.0);
    let mut out = Vec::new();
    for (_, from, by, what, ids) in rows.into_iter().filter(|r| r.1 != node) {
        let ids: Vec<i64> = ids.split(',').filter_map(|i| i.parse().ok()).collect();
        out.push(Removal {
            by,
            what,
            lines: lines(c, &ids)?,
        });
        log::debug!("read a removal written by {from}");
    }
    Ok((out, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::messages::{commit, msg, visible};
    use crate::store::rooms::LOBBY;
    use crate::store::{test_db, users};

    #[test]
    fn a_removed_line_leaves_a_tombstone_and_the_history() {
        let db = test_db();
        let a = users::create(&db, "alice", "h").unwrap().unwrap();
        let mut batch = vec![
            msg(&a, None, "one"),
            msg(&a, None, "two"),
            msg(&a, None, "three"),
        ];
        commit(&db, &mut batch).unwrap();
        let r = delete(&db, batch[1].id, "bob", "n1").unwrap().unwrap();
        assert_eq!(r.lines.len(), 1);
        assert_eq!(r.lines[0].body, "");
        let shown: Vec<String> = visible(&db, LOBBY, None, 10, None)
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(shown, ["one", "three"]);
        assert_eq!(
            delete(&db, batch[1].id, "bob", "n1").unwrap(),
            Err(Refused::AlreadyRemoved("bob".into()))
        );
        assert_eq!(
            delete(&db, 999, "bob", "n1").unwrap(),
            Err(Refused::NoSuchLine)
        );
        // Another process's removal is read by the others, not by the one that wrote it.
        assert!(since(&db, "n1", 0).unwrap().0.is_empty());
        let (others, next) = since(&db, "n2", 0).unwrap();
        assert_eq!((others.len(), next), (1, 1));
        assert_eq!(others[0].lines[0].id, batch[1].id);
    }

    #[test]
    fn a_purge_takes_the_newest_lines_of_its_period_up_to_its_bound() {
        let db = test_db();
        let a = users::create(&db, "alice", "h").unwrap().unwrap();
        let b = users::create(&db, "bob", "h").unwrap().unwrap();
        let mut batch = vec![msg(&a, None, "old"), msg(&b, None, "bob's")];
        batch.extend((0..5).map(|i| msg(&a, Some(&b), &format!("spam {i}"))));
        commit(&db, &mut batch).unwrap();
        let (r, more) = purge(&db, a.id, batch[1].id, ("console", "purge, 1h", "n1")).unwrap();
        assert!(!more);
        assert_eq!(r.lines.len(), 5);
        assert!(r.lines.windows(2).all(|w| w[0].id < w[1].id));
        let left: Vec<String> = visible(&db, LOBBY, Some(b.id), 10, None)
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(left, ["old", "bob's"]);
        let (again, _) = purge(&db, a.id, 0, ("console", "purge, 1h", "n1")).unwrap();
        assert_eq!(again.lines.len(), 1, "only what was left");
    }
}
