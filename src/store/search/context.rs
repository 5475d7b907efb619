//! `/search -c N`: the lines around a search's hit, where it was said (its room, or the
//! private conversation of its two users), read by index ranges next to the hit's id.

use super::super::messages::{message_columns, message_joins, row_to_message, Message};
use super::super::Conn;
use crate::error::Result;

/// The most lines of context on each side of a hit.
pub const MAX_CONTEXT: u32 = 5;

/// Up to `n` lines before and `n` after `hit`, oldest first, the hit among them. A public
/// hit's neighbours are its room's lines; a private hit's, the lines between its two users
/// (which the viewer, one of them, may see). Private rooms: a hit is only ever in a room its
/// viewer may see, so its room's lines are too.
pub fn context(c: &Conn, hit: &Message, n: u32) -> Result<Vec<Message>> {
    let n = i64::from(n.min(MAX_CONTEXT));
    let side = |before: bool| -> Result<Vec<Message>> {
        let (cmp, order) = if before { ("<", "DESC") } else { (">", "") };
        match (&hit.room, &hit.recipient, hit.author_id) {
            (Some((room, _)), _, _) => c.query(
                &format!(
                    concat!(
                        "SELECT ",
                        message_columns!(),
                        " FROM messages m INDEXED BY messages_room",
                        message_joins!(),
                        "WHERE m.room_id = ?1 AND m.id {} ?2 AND m.removed_by IS NULL
                         ORDER BY m.id {} LIMIT ?3"
                    ),
                    cmp, order
                ),
                &[room, &hit.id, &n],
                row_to_message,
            ),
            // Either way between the two: each direction off the recipient index.
            (None, Some((to, _)), Some(from)) => c.query(
                &format!(
                    concat!(
                        "SELECT ",
                        message_columns!(),
                        " FROM messages m",
                        message_joins!(),
                        "WHERE m.id IN (
                             SELECT id FROM (SELECT id FROM messages INDEXED BY messages_recipient
                                 WHERE recipient_id = ?1 AND author_id = ?2 AND id {cmp} ?3
                                   AND removed_by IS NULL
                                 ORDER BY id {order} LIMIT ?4) a
                             UNION ALL
                             SELECT id FROM (SELECT id FROM messages INDEXED BY messages_recipient
                                 WHERE recipient_id = ?2 AND author_id = ?1 AND id {cmp} ?3
                                   AND removed_by IS NULL
                                 ORDER BY id {order} LIMIT ?4) b)
                         ORDER BY m.id {order} LIMIT ?4"
                    ),
                    cmp = cmp,
                    order = order
                ),
                &[to, &from, &hit.id, &n],
                row_to_message,
            ),
            // A private line whose author's account is gone: no conversation to show.
            _ => Ok(Vec::new()),
        }
    };
    let mut lines = side(true)?;
    lines.reverse();
    lines.push(hit.clone());
    lines.extend(side(false)?);
    Ok(lines)
}
