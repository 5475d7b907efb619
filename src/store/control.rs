//! Several nodes on one PostgreSQL database: console commands that concern the whole
//! community, written by the node they were typed into and carried out by the others. On
//! SQLite (one node) nothing is written.

use serde::{Deserialize, Serialize};

use super::notify::CONTROL as CHANNEL;
use super::{Conn, Dialect};
use crate::error::Result;

/// Rows kept; older ones are deleted as new ones come.
const KEEP: i64 = 1000;

/// What the other nodes are to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `* [server] TEXT` to everyone, or to one room.
    Say {
        text: String,
        room: Option<i64>,
    },
    /// Disconnect every session of a user (by name key), telling them `told` and the rest
    /// `announce`.
    Kick {
        key: String,
        told: String,
        announce: String,
    },
    /// Stop, or start again, serving new connections.
    Pause,
    Resume,
    /// Every account was deleted: disconnect everyone with `text`.
    DisconnectAll {
        text: String,
    },
}

/// Writes a command for the other nodes and tells them.
pub fn publish(c: &Conn, node: &str, command: &Command) -> Result<()> {
    if c.dialect() != Dialect::Postgres {
        return Ok(());
    }
    let json = serde_json::to_string(command).unwrap_or_default();
    let sql = format!(
        "INSERT INTO control (node_id, command, created_at) VALUES (?1, ?2, {})",
        c.dialect().now()
    );
    c.transaction(|c| {
        c.execute(&sql, &[&node, &json])?;
        c.execute(
            "DELETE FROM control WHERE id <= (SELECT max(id) FROM control) - ?1",
            &[&KEEP],
        )?;
        c.batch(&super::notify::notify(CHANNEL, node))
    })
}

/// The newest command's id (0 if none): where a node starts reading.
pub fn last_id(c: &Conn) -> Result<i64> {
    if c.dialect() != Dialect::Postgres {
        return Ok(0);
    }
    c.query_one("SELECT COALESCE(MAX(id), 0) FROM control", &[], |r| {
        r.get(0)
    })
}

/// Commands after `after`, in order, with their ids: `None` for this node's own (or one it
/// cannot read), which it only moves past.
pub fn since(c: &Conn, node: &str, after: i64) -> Result<Vec<(i64, Option<Command>)>> {
    if c.dialect() != Dialect::Postgres {
        return Ok(Vec::new());
    }
    let rows = c.query(
        "SELECT id, node_id, command FROM control WHERE id > ?1 ORDER BY id",
        &[&after],
        |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<String>(2)?)),
    )?;
    Ok(rows
        .into_iter()
        .map(|(id, from, json)| {
            let command = (from != node)
                .then(|| serde_json::from_str(&json).ok())
                .flatten();
            (id, command)
        })
        .collect())
}
