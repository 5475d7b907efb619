//! Who is inside, and the two budgets at the door: connections that have not logged in yet
//! (*pending*), and logged-in sessions (`--max-clients`).
//!
//! A pending connection costs the server a worker, a descriptor and a login deadline, and
//! proves nothing; so pending connections have a budget of their own, server-wide
//! (`--max-pending`) and per address (`--max-pending-per-ip`), and can never take a
//! logged-in user's place. When the server-wide budget is full a new connection still gets
//! in: the oldest pending connection of the address holding the most is dropped to make room,
//! as OpenSSH's `MaxStartups` drops pending connections. An attacker holding the door must
//! then keep reconnecting, which `--connect-rate` makes slow, while an address with one
//! connection (a person) is never the one dropped as long as any address holds more.
//!
//! One mutex guards it; every method holds it for a few map operations (the eviction scans
//! the pending connections, at most `--max-pending` of them, only when the budget is full).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::limits::group;
use super::socket::ConnId;

/// The budgets.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Logged-in sessions at once.
    pub max_clients: usize,
    /// Connections not logged in yet, at once, server-wide.
    pub max_pending: usize,
    /// Connections not logged in yet, at once, from one address (IPv6: one /64).
    pub max_pending_per_ip: usize,
    /// How long a connection has to log in, from its first byte.
    pub login_timeout: Duration,
}

/// Why the door stays shut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shut {
    /// `max_clients` users are logged in.
    Full,
    /// `max_pending_per_ip` connections from this address are logging in.
    PendingPerAddress,
}

/// What budgets a pending connection counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// The server-wide budget and its address's: an ordinary client.
    Address,
    /// The server-wide budget only: a trusted proxy's connection that has not said yet whom it
    /// brings.
    Server,
    /// Neither: an address in `--allow-ip` (a bouncer logging many users in), never dropped.
    Exempt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Pending,
    LoggedIn,
    /// Dropped from the pending budget for a newcomer (or refused once its real address was
    /// known): no longer counted, its socket cut; it stays listed until it leaves, for the
    /// address [`Door::leave`] returns.
    Dropped,
}

#[derive(Debug)]
struct Entry {
    /// The address the per-address budget counts (see [`group`]); the client's real one once
    /// a trusted proxy has said it.
    addr: IpAddr,
    share: Share,
    since: Instant,
    stage: Stage,
    /// The address the per-address limits ([`super::limits`]) count this connection
    /// against, if they do yet: released by the caller when it leaves.
    counted: Option<IpAddr>,
}

#[derive(Default)]
struct State {
    conns: HashMap<ConnId, Entry>,
    /// Pending connections per address (those that count against their address).
    pending_per_addr: HashMap<IpAddr, usize>,
    /// Connections per trusted proxy that have not said yet whom they bring.
    unsettled: HashMap<IpAddr, usize>,
    pending: usize,
    sessions: usize,
}

impl State {
    /// The per-address count a connection counts in, if any.
    fn count_of(&mut self, share: Share) -> Option<&mut HashMap<IpAddr, usize>> {
        match share {
            Share::Address => Some(&mut self.pending_per_addr),
            Share::Server => Some(&mut self.unsettled),
            Share::Exempt => None,
        }
    }

    fn unpend(&mut self, addr: IpAddr, share: Share) {
        if share != Share::Exempt {
            self.pending -= 1;
        }
        if let Some(counts) = self.count_of(share) {
            if let Some(n) = counts.get_mut(&addr) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&addr);
                }
            }
        }
    }

    fn pend(&mut self, addr: IpAddr, share: Share) {
        if share != Share::Exempt {
            self.pending += 1;
        }
        if let Some(counts) = self.count_of(share) {
            *counts.entry(addr).or_default() += 1;
        }
    }

    /// The pending connection to drop for a newcomer from `addr`: the oldest one of the
    /// address that would hold the most (the newcomer's own counted as admitted).
    fn victim(&self, addr: IpAddr) -> Option<ConnId> {
        // Connections a trusted proxy has not yet said whom they bring count as its own, so
        // a flood of stalled ones through it is dropped before a person elsewhere.
        let held = |e: &Entry| match e.share {
            Share::Address => {
                self.pending_per_addr.get(&e.addr).copied().unwrap_or(0)
                    + usize::from(e.addr == addr)
            }
            Share::Server => self.unsettled.get(&e.addr).copied().unwrap_or(0),
            Share::Exempt => 0,
        };
        self.conns
            .iter()
            .filter(|(_, e)| e.stage == Stage::Pending && e.share != Share::Exempt)
            .max_by(|(ia, a), (ib, b)| {
                // Most held first; among those the oldest (the smaller `since` wins).
                held(a)
                    .cmp(&held(b))
                    .then(b.since.cmp(&a.since))
                    .then(ib.cmp(ia))
            })
            .map(|(id, _)| *id)
    }

    fn drop_pending(&mut self, conn: ConnId) {
        if let Some(e) = self.conns.get_mut(&conn) {
            if e.stage == Stage::Pending {
                e.stage = Stage::Dropped;
                let (addr, share) = (e.addr, e.share);
                self.unpend(addr, share);
            }
        }
    }

    fn pending_from(&self, addr: IpAddr) -> usize {
        self.pending_per_addr.get(&addr).copied().unwrap_or(0)
    }
}

pub struct Door {
    /// Replaced by a reload ([`Door::set_budget`]).
    budget: std::sync::RwLock<Budget>,
    state: Mutex<State>,
}

impl Door {
    pub fn new(budget: Budget) -> Door {
        Door {
            budget: std::sync::RwLock::new(budget),
            state: Mutex::new(State::default()),
        }
    }

    pub fn budget(&self) -> Budget {
        // Written only by a whole-value store, so a poisoned lock still holds a whole value.
        *self.budget.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A reload: new budgets for the next connection and login. Nobody inside is cut for
    /// a lower one; newcomers wait (or are refused) until the counts fall below it.
    pub fn set_budget(&self, budget: Budget) {
        *self.budget.write().unwrap_or_else(|p| p.into_inner()) = budget;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new connection `conn` from `ip` wants in, pending, counted as `share` says;
    /// `counted`: the address the per-address limits counted it against, if any.
    /// `Ok(Some(victim))`: it is in, and `victim`, an older pending connection, is out of the
    /// budget and must be cut by the caller. Every connection let in must
    /// [`leave`](Door::leave).
    pub fn enter(
        &self,
        conn: ConnId,
        ip: IpAddr,
        share: Share,
        counted: Option<IpAddr>,
        now: Instant,
    ) -> Result<Option<ConnId>, Shut> {
        let addr = group(ip);
        let mut st = self.lock();
        if st.sessions >= self.budget().max_clients {
            return Err(Shut::Full);
        }
        if share == Share::Address && st.pending_from(addr) >= self.budget().max_pending_per_ip {
            return Err(Shut::PendingPerAddress);
        }
        let victim = if share != Share::Exempt && st.pending >= self.budget().max_pending {
            st.victim(addr)
        } else {
            None
        };
        if let Some(v) = victim {
            st.drop_pending(v);
        }
        st.pend(addr, share);
        st.conns.insert(
            conn,
            Entry {
                addr,
                share,
                since: now,
                stage: Stage::Pending,
                counted,
            },
        );
        Ok(victim)
    }

    /// A trusted proxy said who `conn` really is: from now on it counts against `ip`'s
    /// pending budget as `share` says, and the per-address limits counted it against `ip`.
    /// `Ok(false)` if `conn` was dropped meanwhile; refused (and dropped) when `ip` holds its
    /// share already. In both cases the caller releases `ip` from the limits.
    pub fn moved(&self, conn: ConnId, ip: IpAddr, share: Share) -> Result<bool, Shut> {
        let addr = group(ip);
        let mut st = self.lock();
        let Some(e) = st.conns.get(&conn) else {
            return Ok(false);
        };
        if e.stage != Stage::Pending {
            return Ok(false);
        }
        let (old, was) = (e.addr, e.share);
        st.unpend(old, was);
        if share == Share::Address && st.pending_from(addr) >= self.budget().max_pending_per_ip {
            // Out of the budget already (unpended above).
            if let Some(e) = st.conns.get_mut(&conn) {
                e.stage = Stage::Dropped;
            }
            return Err(Shut::PendingPerAddress);
        }
        st.pend(addr, share);
        if let Some(e) = st.conns.get_mut(&conn) {
            e.addr = addr;
            e.share = share;
            e.counted = Some(ip);
        }
        Ok(true)
    }

    /// `conn` logged in: it leaves the pending budget and takes a session's place, if one is
    /// free. False (and `conn` stays pending) when `max_clients` users are in, or when `conn`
    /// was dropped from the budget meanwhile.
    pub fn logged_in(&self, conn: ConnId) -> bool {
        let mut st = self.lock();
        let full = st.sessions >= self.budget().max_clients;
        let Some(e) = st.conns.get_mut(&conn) else {
            return false;
        };
        match e.stage {
            Stage::LoggedIn => return true,
            Stage::Dropped => return false,
            Stage::Pending if full => return false,
            Stage::Pending => e.stage = Stage::LoggedIn,
        }
        let (addr, share) = (e.addr, e.share);
        st.unpend(addr, share);
        st.sessions += 1;
        true
    }

    /// `conn` ended (or was never served); returns the address the per-address limits
    /// counted it against, for the caller to release. Nothing if it is not in.
    pub fn leave(&self, conn: ConnId) -> Option<IpAddr> {
        let mut st = self.lock();
        let e = st.conns.remove(&conn)?;
        match e.stage {
            Stage::LoggedIn => st.sessions -= 1,
            Stage::Pending => st.unpend(e.addr, e.share),
            Stage::Dropped => {}
        }
        e.counted
    }

    /// When `conn`'s login deadline passes: `--login-timeout` after it came in, whatever it
    /// sent or withheld since. `None` if it is not in.
    pub fn deadline(&self, conn: ConnId) -> Option<Instant> {
        let st = self.lock();
        st.conns
            .get(&conn)
            .map(|e| e.since + self.budget().login_timeout)
    }

    /// Whether `conn` is still in the budget (a pending connection dropped for a newcomer is
    /// not). The server asks `logged_in`, which answers the same; the tests ask this.
    #[cfg(test)]
    fn holds(&self, conn: ConnId) -> bool {
        self.lock()
            .conns
            .get(&conn)
            .is_some_and(|e| e.stage != Stage::Dropped)
    }

    /// (logged-in sessions, pending connections).
    pub fn counts(&self) -> (usize, usize) {
        let st = self.lock();
        (st.sessions, st.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn door(max_clients: usize, max_pending: usize, per_ip: usize) -> Door {
        Door::new(Budget {
            max_clients,
            max_pending,
            max_pending_per_ip: per_ip,
            login_timeout: Duration::from_secs(60),
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn pending_connections_have_their_own_budget_per_address() {
        let d = door(10, 100, 2);
        let t = Instant::now();
        assert_eq!(
            d.enter(1, ip("192.0.2.1"), Share::Address, None, t),
            Ok(None)
        );
        assert_eq!(
            d.enter(2, ip("192.0.2.1"), Share::Address, None, t),
            Ok(None)
        );
        assert_eq!(
            d.enter(3, ip("192.0.2.1"), Share::Address, None, t),
            Err(Shut::PendingPerAddress)
        );
        // A proxy not yet heard, and other addresses, are not held back by this one's share.
        assert_eq!(
            d.enter(4, ip("192.0.2.1"), Share::Server, None, t),
            Ok(None)
        );
        assert_eq!(
            d.enter(5, ip("192.0.2.2"), Share::Address, None, t),
            Ok(None)
        );
        // Logging in frees the pending place.
        assert!(d.logged_in(1));
        assert_eq!(
            d.enter(6, ip("192.0.2.1"), Share::Address, None, t),
            Ok(None)
        );
        assert_eq!(d.counts(), (1, 4));
        d.leave(1);
        d.leave(6);
        assert_eq!(d.counts(), (0, 3));
    }

    #[test]
    fn a_proxy_that_has_not_said_whom_it_brings_holds_as_one_address() {
        let d = door(10, 4, 2);
        let t = Instant::now();
        let later = |ms| t + Duration::from_millis(ms);
        // A person logging in directly, then three stalled connections through a proxy.
        d.enter(1, ip("192.0.2.9"), Share::Address, None, later(0))
            .unwrap();
        for (conn, ms) in [(2, 1), (3, 2), (4, 3)] {
            d.enter(conn, ip("10.0.0.1"), Share::Server, None, later(ms))
                .unwrap();
        }
        // Full: the proxy's oldest goes, not the person (older, but alone).
        assert_eq!(
            d.enter(5, ip("192.0.2.5"), Share::Address, None, later(4)),
            Ok(Some(2))
        );
        assert!(d.holds(1));
    }

    #[test]
    fn allowed_addresses_count_against_no_pending_budget_and_are_never_dropped() {
        let d = door(10, 2, 1);
        let t = Instant::now();
        for conn in 1..=5 {
            let r = d.enter(conn, ip("192.0.2.1"), Share::Exempt, None, t);
            assert_eq!(r, Ok(None));
        }
        assert_eq!(d.counts(), (0, 0));
        d.enter(6, ip("192.0.2.6"), Share::Address, None, t)
            .unwrap();
        d.enter(7, ip("192.0.2.7"), Share::Address, None, t)
            .unwrap();
        // Full: the newcomer drops an ordinary pending connection, not an allowed one.
        assert_eq!(
            d.enter(8, ip("192.0.2.8"), Share::Address, None, t),
            Ok(Some(6))
        );
        assert!((1..=5).all(|c| d.holds(c)));
    }

    #[test]
    fn a_full_pending_budget_drops_the_oldest_of_the_address_holding_most() {
        let d = door(10, 4, 3);
        let t = Instant::now();
        let later = |ms| t + Duration::from_millis(ms);
        // A person from .9, then an attacker's three from .1.
        d.enter(1, ip("192.0.2.9"), Share::Address, None, later(0))
            .unwrap();
        d.enter(2, ip("192.0.2.1"), Share::Address, None, later(1))
            .unwrap();
        d.enter(3, ip("192.0.2.1"), Share::Address, None, later(2))
            .unwrap();
        d.enter(4, ip("192.0.2.1"), Share::Address, None, later(3))
            .unwrap();
        // A newcomer from a third address gets in; the attacker's oldest goes.
        assert_eq!(
            d.enter(5, ip("192.0.2.5"), Share::Address, None, later(4)),
            Ok(Some(2))
        );
        assert!(!d.holds(2) && d.holds(1));
        // The attacker reconnects: one of its own goes again, never the person's.
        assert_eq!(
            d.enter(6, ip("192.0.2.1"), Share::Address, None, later(5)),
            Ok(Some(3))
        );
        assert_eq!(d.counts(), (0, 4));
        // Leaving after being dropped changes no count.
        d.leave(2);
        assert_eq!(d.counts(), (0, 4));
        assert!(!d.logged_in(3), "a dropped connection cannot log in");
    }

    #[test]
    fn logged_in_sessions_are_bounded_by_max_clients_and_never_dropped() {
        let d = door(1, 1, 5);
        let t = Instant::now();
        d.enter(1, ip("192.0.2.1"), Share::Address, None, t)
            .unwrap();
        assert!(d.logged_in(1));
        // The server is full: new connections are told so at the door.
        assert_eq!(
            d.enter(2, ip("192.0.2.2"), Share::Address, None, t),
            Err(Shut::Full)
        );
        d.leave(1);
        d.enter(2, ip("192.0.2.2"), Share::Address, None, t)
            .unwrap();
        // A full pending budget drops a pending connection, never a session.
        let d = door(5, 1, 5);
        d.enter(1, ip("192.0.2.1"), Share::Address, None, t)
            .unwrap();
        assert!(d.logged_in(1));
        d.enter(2, ip("192.0.2.2"), Share::Address, None, t)
            .unwrap();
        assert_eq!(
            d.enter(3, ip("192.0.2.3"), Share::Address, None, t),
            Ok(Some(2))
        );
        assert!(d.holds(1) && !d.holds(2));
        assert_eq!(d.counts(), (1, 1));
        // Two pending race for the last place: the second is refused at login.
        let d = door(1, 5, 5);
        d.enter(1, ip("192.0.2.1"), Share::Address, None, t)
            .unwrap();
        d.enter(2, ip("192.0.2.2"), Share::Address, None, t)
            .unwrap();
        assert!(d.logged_in(1));
        assert!(!d.logged_in(2));
    }

    #[test]
    fn a_proxied_connection_moves_to_its_real_address() {
        let d = door(10, 10, 1);
        let t = Instant::now();
        // The proxy is exempt until it says whom it brings.
        d.enter(1, ip("10.0.0.1"), Share::Server, None, t).unwrap();
        d.enter(2, ip("10.0.0.1"), Share::Server, None, t).unwrap();
        assert_eq!(d.moved(1, ip("192.0.2.1"), Share::Address), Ok(true));
        assert_eq!(
            d.moved(2, ip("192.0.2.1"), Share::Address),
            Err(Shut::PendingPerAddress)
        );
        assert!(!d.holds(2));
        assert_eq!(d.counts(), (0, 1));
        assert_eq!(d.moved(3, ip("192.0.2.3"), Share::Address), Ok(false));
        assert_eq!(d.deadline(1), Some(t + Duration::from_secs(60)));
        // The limits' address goes back to whoever releases it.
        assert_eq!(d.leave(1), Some(ip("192.0.2.1")));
        assert_eq!(d.leave(2), None);
        d.enter(4, ip("192.0.2.4"), Share::Address, Some(ip("192.0.2.4")), t)
            .unwrap();
        assert_eq!(d.leave(4), Some(ip("192.0.2.4")));
    }
}
