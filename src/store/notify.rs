//! Several nodes on one PostgreSQL database: a node's hub tells the others it committed
//! messages (`NOTIFY besedka_messages`, inside the commit, so it is sent when the rows are
//! visible), and each node's [`Listener`] wakes its hub, which then reads the new rows by id.
//! A notification carries no message body. On SQLite (one node) there is nothing to listen to.

use std::time::Duration;

use fallible_iterator::FallibleIterator;

use r2d2_postgres::postgres::{self, NoTls};

use crate::error::Result;

/// The channel the hubs notify and listen on.
pub const CHANNEL: &str = "besedka_messages";

/// A dedicated connection that listens on [`CHANNEL`].
pub struct Listener {
    config: postgres::Config,
    client: Option<postgres::Client>,
}

impl Listener {
    pub(super) fn new(config: postgres::Config) -> Listener {
        Listener {
            config,
            client: None,
        }
    }

    /// Waits up to `timeout` for a notification; true if one (or more) came. Connects (and
    /// after a failure, reconnects) first: a `true` then too, since what was said while it
    /// was away is unknown.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool> {
        let fresh = self.client.is_none();
        if fresh {
            let mut client = self.config.connect(NoTls)?;
            client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
            self.client = Some(client);
        }
        let Some(client) = self.client.as_mut() else {
            return Ok(fresh);
        };
        let got = {
            let mut notes = client.notifications();
            let first = notes.timeout_iter(timeout).next();
            if let Ok(Some(_)) = first {
                // Take what else is there without waiting.
                let mut rest = notes.iter();
                while let Ok(Some(_)) = rest.next() {}
            }
            first
        };
        match got {
            Ok(Some(_)) => Ok(true),
            Ok(None) => Ok(fresh),
            Err(e) => {
                self.client = None;
                Err(e.into())
            }
        }
    }
}
