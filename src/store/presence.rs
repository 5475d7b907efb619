//! Several nodes on one PostgreSQL database: who is online where (`nodes`, `presence`).
//! Each node writes its own sessions and a heartbeat; every node reads the others'. On SQLite
//! (one node) these do nothing: the hub's memory is the whole truth.

use super::notify::notify;
use super::notify::PRESENCE as CHANNEL;
use super::{Conn, Dialect};
use crate::error::Result;

/// A node whose heartbeat is older than this is gone (killed, cut off), with its sessions.
const EXPIRY: &str = "5 seconds";

/// A session on another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub node: String,
    /// Where that node listens.
    pub node_addr: String,
    pub conn: i64,
    pub user: i64,
    pub name: String,
    pub room: i64,
    pub room_name: String,
    pub away: Option<String>,
}

/// A change to this node's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Add {
        conn: i64,
        user: i64,
        name: String,
        room: i64,
    },
    Remove {
        conn: i64,
    },
    Move {
        conn: i64,
        room: i64,
    },
    /// `/away` and `/back`: every session of the user on this node.
    Away {
        user: i64,
        away: Option<String>,
    },
}

fn shared(c: &Conn) -> bool {
    c.dialect() == Dialect::Postgres
}

/// Notes that `node` (listening on `addr`) is alive, and forgets nodes that are not; true if
/// any was forgotten (their sessions went with them).
pub fn heartbeat(c: &Conn, node: &str, addr: &str) -> Result<bool> {
    if !shared(c) {
        return Ok(false);
    }
    let now = c.dialect().now();
    c.execute(
        &format!(
            "INSERT INTO nodes (id, addr, started_at) VALUES (?1, ?2, {now})
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()"
        ),
        &[&node, &addr],
    )?;
    let gone = c.execute(
        &format!("DELETE FROM nodes WHERE heartbeat_at < now() - interval '{EXPIRY}'"),
        &[],
    )?;
    if gone > 0 {
        c.batch(&notify(CHANNEL, node))?;
    }
    Ok(gone > 0)
}

/// Writes this node's session changes, in one transaction, and tells the other nodes.
pub fn apply(c: &Conn, node: &str, addr: &str, ops: &[Op]) -> Result<()> {
    if !shared(c) || ops.is_empty() {
        return Ok(());
    }
    heartbeat(c, node, addr)?;
    c.transaction(|c| {
        for op in ops {
            match op {
                Op::Add {
                    conn,
                    user,
                    name,
                    room,
                } => c.execute(
                    "INSERT INTO presence (node_id, conn_id, user_id, name, room_id)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    &[&node, conn, user, name, room],
                )?,
                Op::Remove { conn } => c.execute(
                    "DELETE FROM presence WHERE node_id = ?1 AND conn_id = ?2",
                    &[&node, conn],
                )?,
                Op::Move { conn, room } => c.execute(
                    "UPDATE presence SET room_id = ?3 WHERE node_id = ?1 AND conn_id = ?2",
                    &[&node, conn, room],
                )?,
                Op::Away { user, away } => c.execute(
                    "UPDATE presence SET away = ?3 WHERE node_id = ?1 AND user_id = ?2",
                    &[&node, user, away],
                )?,
            };
        }
        c.batch(&notify(CHANNEL, node))
    })
}

/// The sessions of every other live node.
pub fn others(c: &Conn, node: &str) -> Result<Vec<Remote>> {
    if !shared(c) {
        return Ok(Vec::new());
    }
    c.query(
        "SELECT p.node_id, p.conn_id, p.user_id, p.name, p.room_id, r.name, p.away, n.addr
         FROM presence p JOIN rooms r ON r.id = p.room_id JOIN nodes n ON n.id = p.node_id
         WHERE p.node_id <> ?1",
        &[&node],
        |r| {
            Ok(Remote {
                node: r.get(0)?,
                conn: r.get(1)?,
                user: r.get(2)?,
                name: r.get(3)?,
                room: r.get(4)?,
                room_name: r.get(5)?,
                away: r.get(6)?,
                node_addr: r.get(7)?,
            })
        },
    )
}

/// Every live node: its id, where it listens, and how many sessions it has.
pub fn nodes(c: &Conn) -> Result<Vec<(String, String, i64)>> {
    if !shared(c) {
        return Ok(Vec::new());
    }
    c.query(
        "SELECT n.id, n.addr, count(p.conn_id) FROM nodes n
         LEFT JOIN presence p ON p.node_id = n.id GROUP BY n.id, n.addr ORDER BY n.addr",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// How many sessions `user` has on other nodes than `node`.
pub fn sessions_elsewhere(c: &Conn, node: &str, user: i64) -> Result<usize> {
    if !shared(c) {
        return Ok(0);
    }
    let n: i64 = c.query_one(
        "SELECT count(*) FROM presence WHERE node_id <> ?1 AND user_id = ?2",
        &[&node, &user],
        |r| r.get(0),
    )?;
    Ok(n as usize)
}

/// This node stops: its row goes, and its sessions with it.
pub fn leave(c: &Conn, node: &str) -> Result<()> {
    if !shared(c) {
        return Ok(());
    }
    c.execute("DELETE FROM nodes WHERE id = ?1", &[&node])?;
    c.batch(&notify(CHANNEL, node))
}
