//! Connections that outlive the database's primary: a long-lived owner's connection of its
//! own ([`Dedicated`]: the hub's, the janitor's, the log writer's) and what every connection
//! holder says while the database is away ([`Outage`]: those, the pool, the listener).
//!
//! After a failover every connection to the old primary is closed (or, to a primary demoted,
//! refuses writes). A `Dedicated` drops such a connection at the failure and makes a new one
//! on the next use, through the same URL, so a multi-host URL with
//! `target_session_attrs=read-write` finds the new primary; attempts are spaced by a bounded
//! back-off. Its holder says once that the database cannot be reached and once that it can
//! again, with how long it was away; in between its work fails at once with
//! [`Error::DbDown`], which callers leave unsaid.

use std::time::{Duration, Instant};

use super::{Conn, Store};
use crate::error::{Error, Result};

/// The first wait between two attempts to reach the database; it doubles up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(100);
/// The longest wait between two attempts: a node resumes within this of the new primary.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Whether the database is away for one holder of a connection, since when, and when to try
/// again; says so once at each change.
#[derive(Debug)]
pub struct Outage {
    /// Who holds the connection, as the log says it ("the hub").
    who: &'static str,
    /// The log target of its lines (the log writer's must not feed the log table).
    target: &'static str,
    /// Since when the database is away, if it is.
    since: Option<Instant>,
    /// No attempt before this.
    next_try: Option<Instant>,
    wait: Duration,
}

impl Outage {
    pub fn new(who: &'static str, target: &'static str) -> Outage {
        Outage {
            who,
            target,
            since: None,
            next_try: None,
            wait: FIRST_WAIT,
        }
    }

    /// A connection was lost or could not be made: said if it begins an outage; the next
    /// attempt waits longer, up to [`MAX_WAIT`].
    pub fn failed(&mut self, e: &Error) {
        let now = Instant::now();
        match self.since {
            None => {
                log::warn!(target: self.target,
                    "{} cannot reach the database ({e}); trying again by itself", self.who);
                self.since = Some(now);
                // The first new connection is tried at the next use.
                self.next_try = None;
                self.wait = FIRST_WAIT;
            }
            Some(_) => {
                self.next_try = Some(now + self.wait);
                self.wait = (self.wait * 2).min(MAX_WAIT);
            }
        }
    }

    /// The database answered: said if it ends an outage.
    pub fn reached(&mut self) {
        if let Some(since) = self.since.take() {
            log::info!(target: self.target,
                "{}: database reachable again after {:.1} s", self.who,
                since.elapsed().as_secs_f64());
        }
        self.next_try = None;
        self.wait = FIRST_WAIT;
    }

    /// Whether the database is away.
    pub fn down(&self) -> bool {
        self.since.is_some()
    }

    /// How long to wait before the next attempt (zero: now).
    pub fn wait(&self) -> Duration {
        self.next_try.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        })
    }
}

/// A connection of its own, outside the pool, for a long-lived owner; replaced when lost.
pub struct Dedicated {
    store: Store,
    conn: Option<Conn>,
    outage: Outage,
}

impl Dedicated {
    /// The first connection, made now: a database that cannot be reached at startup is the
    /// caller's error. `who` and `target` as in [`Outage`].
    pub fn open(store: &Store, who: &'static str, target: &'static str) -> Result<Dedicated> {
        Ok(Dedicated {
            conn: Some(store.dedicated()?),
            store: store.clone(),
            outage: Outage::new(who, target),
        })
    }

    /// Runs `f` on the connection, a new one first if the last was lost (when the back-off
    /// allows). A lost connection is dropped and said once; `f` then fails, and every use
    /// until a new connection is had fails at once, with [`Error::DbDown`]. Any other error
    /// is `f`'s own, and the connection stays.
    pub fn run<T>(&mut self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        if self.conn.is_none() {
            if !self.outage.wait().is_zero() {
                return Err(Error::DbDown);
            }
            match self.store.dedicated() {
                Ok(c) => self.conn = Some(c),
                Err(e) => {
                    self.outage.failed(&e);
                    return Err(Error::DbDown);
                }
            }
        }
        let conn = self.conn.as_ref().ok_or(Error::DbDown)?;
        match f(conn) {
            Err(e) if e.is_connection_lost() => {
                self.conn = None;
                self.outage.failed(&e);
                Err(Error::DbDown)
            }
            r => {
                self.outage.reached();
                r
            }
        }
    }

    /// Whether the database is away for this connection.
    pub fn down(&self) -> bool {
        self.outage.down()
    }
}

/// Bounds on how long a connection waits on a database machine that died without a word
/// (no reset: the machine is off, the network gone), where the URL sets none: the driver's
/// defaults wait minutes to hours, during which a node's hub or listener would hang.
/// - `connect_timeout` 5 s per host, so a multi-host URL moves on to the next host;
/// - TCP keepalives after 10 s idle, every 5 s, 3 unanswered: an idle listener's connection
///   to a dead machine is found dead within about 25 s;
/// - `tcp_user_timeout` 15 s: a statement sent to a dead machine fails then.
pub(super) fn dead_peer_defaults(config: &mut r2d2_postgres::postgres::Config) {
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    // The driver's own default idle time: two hours.
    if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
        config.keepalives_idle(Duration::from_secs(10));
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(Duration::from_secs(5));
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(3);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(15));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_said_once_and_its_attempts_are_spaced_and_bounded() {
        let mut o = Outage::new("the test", "besedka::test");
        assert!(!o.down() && o.wait().is_zero());
        o.failed(&Error::DbDown);
        assert!(o.down());
        assert!(
            o.wait().is_zero(),
            "the first new connection is tried at once"
        );
        let mut last = Duration::ZERO;
        for _ in 0..10 {
            o.failed(&Error::DbDown);
            let w = o.wait();
            assert!(w >= last.saturating_sub(Duration::from_millis(5)) && w <= MAX_WAIT);
            last = w;
        }
        assert!(last > MAX_WAIT / 2, "it grew to the bound: {last:?}");
        o.reached();
        assert!(!o.down() && o.wait().is_zero());
    }

    #[test]
    fn dead_peers_are_bounded_where_the_url_says_nothing() {
        let mut c: r2d2_postgres::postgres::Config =
            "postgres://u@h/db?connect_timeout=2".parse().unwrap();
        dead_peer_defaults(&mut c);
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(10));
        assert_eq!(c.get_tcp_user_timeout(), Some(&Duration::from_secs(15)));
    }
}
