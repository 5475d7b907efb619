//! Several nodes on one PostgreSQL database: lines committed by other nodes reach this
//! node's clients, in the one order of `messages.id`.
//!
//! Commits are serialized across nodes (a transaction lock, taken first), so ids are handed
//! out in commit order and a row with a smaller id than one already read never appears later.
//! The hub reads what others committed after its watermark, by id, when told (`NOTIFY`,
//! through the listener thread), once a second in case a notification was lost, and before
//! delivering each of its own batches (all that precedes the batch is committed by then). On
//! SQLite there is one node, and nothing to read.

use crate::store::messages;

use super::Hub;

/// Rows read at a time.
const CATCH_UP: u32 = 1000;

impl Hub {
    /// Replaces the hub's database connection after a failure that may have been the
    /// connection's own (the database restarted); keeps the old one if no new one can be had.
    pub(super) fn reconnect(&mut self) {
        match self.store.dedicated() {
            Ok(db) => self.db = db,
            Err(e) => log::warn!("cannot reconnect to the database: {e}"),
        }
    }

    /// Delivers what other nodes committed after the watermark and before `before` (all,
    /// if `None`), in id order.
    pub(super) fn catch_up(&mut self, before: Option<i64>) {
        if !self.shared_db {
            return;
        }
        loop {
            let rows =
                messages::between(&self.db, self.last_id, before.unwrap_or(i64::MAX), CATCH_UP);
            match rows {
                Ok(rows) => {
                    let n = rows.len();
                    self.deliver(&rows, None);
                    if n < CATCH_UP as usize {
                        return;
                    }
                }
                Err(e) => {
                    log::error!("cannot read other nodes' messages: {e}");
                    self.reconnect();
                    return;
                }
            }
        }
    }
}
