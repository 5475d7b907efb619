//! Several nodes on one PostgreSQL database: a node's hub tells the others it committed
//! messages (`NOTIFY besedka_messages`, inside the commit, so it is sent when the rows are
//! visible), and each node's [`Listener`] wakes its hub, which then reads the new rows by id.
//! A notification carries no message body. On SQLite (one node) there is nothing to listen to.

use std::time::Duration;

use fallible_iterator::FallibleIterator;

use r2d2_postgres::postgres;

use super::link::Link;
use crate::error::Result;

/// The channel the hubs notify when they commit messages.
pub const CHANNEL: &str = "besedka_messages";

/// The channel a node notifies when it writes a command for the others ([`super::control`]).
pub const CONTROL: &str = "besedka_control";

/// The channel a node notifies when its sessions come, go or move ([`super::presence`]).
pub const PRESENCE: &str = "besedka_presence";

/// `NOTIFY channel` sent by `node`: the payload is the sender's node id (never a message), so
/// a node's own listener can skip what it did itself.
pub(super) fn notify(channel: &str, node: &str) -> String {
    format!("NOTIFY {channel}, '{}'", node.replace('\'', ""))
}

/// What woke a listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Woke {
    /// Another node committed messages.
    pub messages: bool,
    /// Another node's sessions changed (or a node was found gone).
    pub presence: bool,
    /// A console command for every node was written.
    pub control: bool,
}

/// A dedicated connection that listens on [`CHANNEL`].
pub struct Listener {
    /// The store's settings and TLS connector.
    link: Link,
    /// This node's id: its own commits' notifications are skipped.
    node: String,
    client: Option<postgres::Client>,
}

impl Listener {
    pub(super) fn new(link: Link, node: &str) -> Listener {
        Listener {
            link,
            node: node.to_string(),
            client: None,
        }
    }

    /// Waits up to `timeout` for notifications; says which channels had some. Connects (and
    /// after a failure, reconnects) first: both then, since what was said while it was away
    /// is unknown.
    pub fn wait(&mut self, timeout: Duration) -> Result<Woke> {
        let fresh = self.client.is_none();
        if fresh {
            let mut client = self.link.connect()?;
            client.batch_execute(&format!(
                "LISTEN {CHANNEL}; LISTEN {}; LISTEN {}",
                PRESENCE, CONTROL
            ))?;
            self.client = Some(client);
        }
        let mut woke = Woke {
            messages: fresh,
            presence: fresh,
            control: fresh,
        };
        let Some(client) = self.client.as_mut() else {
            return Ok(woke);
        };
        let node = self.node.as_str();
        let mut note = |n: &postgres::Notification| match n.channel() {
            // This node's own doing: it knows already.
            _ if n.payload() == node => {}
            CHANNEL => woke.messages = true,
            CONTROL => woke.control = true,
            _ => woke.presence = true,
        };
        let got = (|| {
            let mut notes = client.notifications();
            let first = notes.timeout_iter(timeout).next()?;
            if let Some(n) = first {
                note(&n);
                // Take what else is there without waiting.
                let mut rest = notes.iter();
                while let Some(n) = rest.next()? {
                    note(&n);
                }
            }
            Ok::<_, postgres::Error>(())
        })();
        // The driver reports a lost connection once, as an error, and after that as "no
        // notification" at once, every time: a listener that missed the error (it came with
        // a notification, in one read) spun on a dead connection, never told the hub of
        // another commit, and lines from the other nodes waited for the hub's once-a-second
        // reread. So the connection itself is asked, too.
        match got {
            Ok(()) if !client.is_closed() => Ok(woke),
            Ok(()) => {
                self.client = None;
                Err(crate::error::Error::DbDown)
            }
            Err(e) => {
                self.client = None;
                Err(e.into())
            }
        }
    }
}
