//! What one address or one user may make the server spend, counted across connections.
//!
//! - per address (an IPv4 address, or an IPv6 /64): connections open at once, new connections
//!   a minute, failed logins and new accounts in a sliding window;
//! - per account: failed logins in the same window (the password lock);
//! - per user: sessions at once, and one token bucket for the lines all of them send.
//!
//! Addresses in `--allow-ip` ranges are counted but never refused by the per-address rules;
//! so is loopback (127.0.0.0/8, `::1`), unless `--limit-loopback`: a class on one machine,
//! everyone on `telnet 127.0.0.1`, is many people behind one address. A reverse proxy on the
//! same machine that is not a `--trusted-proxy` would make every client it brings look like
//! loopback, so the first sign of one ([`Limits::unnamed_proxy_seen`]) ends the exemption.
//! One mutex guards it all; every method holds it for a few map operations and never across
//! I/O, a sleep or a database call.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;

pub use super::bucket::Bucket;

/// The per-address and per-account rules; `besedka serve`'s options.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Connections open at once from one address.
    pub max_per_ip: usize,
    /// New connections a minute from one address.
    pub connect_rate: u32,
    /// Failed logins for one account within `window` before it is locked.
    pub max_failures_per_user: u32,
    /// Failed logins (any kind) from one address within `window` before it is locked.
    pub max_failures_per_ip: u32,
    /// The failed-login window.
    pub window: Duration,
    /// New accounts an hour from one address.
    pub register_rate: u32,
    /// Sessions at once for one user.
    pub max_sessions_per_user: usize,
    /// Lines a second a user's sessions may send together (bursts of twice that).
    pub max_rate: u32,
    /// Ranges exempt from the per-address rules.
    pub allow: Vec<IpNet>,
    /// Loopback is held to the per-address rules too (`--limit-loopback`); otherwise it is
    /// exempt, until a proxy on this machine is seen that is not a trusted one.
    pub limit_loopback: bool,
}

/// Why a new connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_per_ip` connections are open already.
    TooMany,
    /// Over `connect_rate` this minute: how long until one more fits.
    TooFast(Duration),
}

/// Which count locks logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// The account's failed logins (`max_failures_per_user`).
    Account,
    /// The address's failed logins (`max_failures_per_ip`).
    Address,
}

/// Whether `ip` is this machine's own: 127.0.0.0/8, `::1`, or either IPv4-mapped.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Addresses remembered at most when they have no open connection; past it the idle ones are
/// forgotten (an attacker with many addresses then only loses us their windows, never memory).
const MAX_IDLE_ADDRS: usize = 100_000;

/// How often stale entries are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// The address the per-address rules count: IPv4 as is, IPv6 by its /64 (one home or one
/// server usually holds a whole /64), an IPv4-mapped IPv6 address as IPv4.
pub fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6([s[0], s[1], s[2], s[3], 0, 0, 0, 0].into())
            }
        },
    }
}

/// The times of the last few events, at most as many as the limit needs.
#[derive(Default, Debug)]
struct Window(VecDeque<Instant>);

impl Window {
    fn forget_before(&mut self, now: Instant, span: Duration) {
        while self
            .0
            .front()
            .is_some_and(|t| now.duration_since(*t) >= span)
        {
            self.0.pop_front();
        }
    }

    /// How long until one more event fits under `limit` in `span`; zero if it fits now.
    fn wait(&mut self, now: Instant, span: Duration, limit: u32) -> Duration {
        self.forget_before(now, span);
        if self.0.len() < limit as usize {
            return Duration::ZERO;
        }
        let oldest = self.0[self.0.len() - limit as usize];
        (oldest + span).saturating_duration_since(now)
    }

    fn push(&mut self, now: Instant, limit: u32) {
        self.0.push_back(now);
        while self.0.len() > limit.max(1) as usize {
            self.0.pop_front();
        }
    }
}

#[derive(Default, Debug)]
struct Addr {
    open: usize,
    connects: Window,
    failures: Window,
    registrations: Window,
}

impl Addr {
    fn idle(&self) -> bool {
        self.open == 0
            && self.connects.0.is_empty()
            && self.failures.0.is_empty()
            && self.registrations.0.is_empty()
    }
}

struct UserState {
    sessions: usize,
    /// Shared with each session's slot, so pacing a line takes only this user's lock.
    bucket: Arc<Mutex<Bucket>>,
}

#[derive(Default)]
struct State {
    addrs: HashMap<IpAddr, Addr>,
    /// Failed logins per account (name key); only real accounts get an entry.
    accounts: HashMap<String, Window>,
    users: HashMap<i64, UserState>,
    swept: Option<Instant>,
}

pub struct Limits {
    /// Replaced whole by a reload ([`Limits::set_rules`]); what is counted stays.
    rules: std::sync::RwLock<Arc<Rules>>,
    state: Mutex<State>,
    /// Loopback is exempt now: `!limit_loopback` until [`Limits::unnamed_proxy_seen`].
    loopback_exempt: AtomicBool,
    /// An unnamed proxy on this machine was seen (and reported) already.
    proxy_seen: AtomicBool,
}

/// What [`Limits::unnamed_proxy_seen`] found the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loopback {
    /// Loopback was exempt by default and is held to the per-address rules from now on.
    NoLongerExempt,
    /// It was held to them already (`--limit-loopback`): the proxy's clients share them.
    Limited,
    /// `--allow-ip` exempts it: the proxy's clients stay unlimited.
    Allowed,
}

/// A claimed session slot for a user; frees it when dropped.
pub struct SessionSlot<'a> {
    limits: &'a Limits,
    user_id: i64,
    bucket: Arc<Mutex<Bucket>>,
}

impl SessionSlot<'_> {
    /// Takes a token from the user's shared bucket; returns how long to wait before sending.
    pub fn pace(&self) -> Duration {
        self.bucket.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Takes `lines` more tokens for a line that costs more than one (a search). Nothing
    /// waits now: the debt is paid by the user's next lines, which [`SessionSlot::pace`]
    /// holds back until it is.
    pub fn charge(&self, lines: u32) {
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let _ = bucket.take_n(f64::from(lines));
    }
}

impl Drop for SessionSlot<'_> {
    fn drop(&mut self) {
        let mut st = self.limits.lock();
        if let Some(u) = st.users.get_mut(&self.user_id) {
            u.sessions -= 1;
            if u.sessions == 0 {
                st.users.remove(&self.user_id);
            }
        }
    }
}

impl Limits {
    pub fn new(rules: Rules) -> Limits {
        Limits {
            loopback_exempt: AtomicBool::new(!rules.limit_loopback),
            proxy_seen: AtomicBool::new(false),
            rules: std::sync::RwLock::new(Arc::new(rules)),
            state: Mutex::new(State::default()),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<Rules> {
        // Written only by a whole-value store, so a poisoned lock still holds whole rules.
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A reload: new rules for the next check. What was counted (connections open, recent
    /// connects, failures, registrations) stays and is measured against the new numbers.
    /// `--limit-loopback` may be turned on or off; an exemption ended by an unnamed proxy
    /// stays ended until a restart.
    pub fn set_rules(&self, rules: Rules) {
        let exempt = !rules.limit_loopback && !self.proxy_seen.load(Ordering::Relaxed);
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
        self.loopback_exempt.store(exempt, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `ip` is exempt from the per-address rules (`--allow-ip`, or loopback while it
    /// is exempt).
    pub fn exempt(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.rules().allow.iter().any(|net| net.contains(&ip))
            || (self.loopback_exempt.load(Ordering::Relaxed) && ip.is_loopback())
    }

    /// Whether loopback is exempt now by default (not counting `--allow-ip`).
    pub fn loopback_exempt(&self) -> bool {
        self.loopback_exempt.load(Ordering::Relaxed)
    }

    /// A connection from this machine said it brings someone else's (a forwarding header, a
    /// PROXY header) while loopback is no trusted proxy: a proxy here the operator has not
    /// named. Ends loopback's exemption for good (until a restart); returns what that
    /// changed the first time, `None` after (one report is enough).
    pub fn unnamed_proxy_seen(&self) -> Option<Loopback> {
        if self.proxy_seen.swap(true, Ordering::Relaxed) {
            return None;
        }
        let was = self.loopback_exempt.swap(false, Ordering::Relaxed);
        Some(if self.exempt(std::net::Ipv4Addr::LOCALHOST.into()) {
            Loopback::Allowed
        } else if was {
            Loopback::NoLongerExempt
        } else {
            Loopback::Limited
        })
    }

    /// A new connection from `ip`: counts it, or says why it is refused. Every admitted
    /// connection must be [`released`](Limits::release) when it ends.
    pub fn admit(&self, ip: IpAddr) -> Result<(), Refusal> {
        let now = Instant::now();
        let exempt = self.exempt(ip);
        let mut st = self.lock();
        if st
            .swept
            .is_none_or(|t| now.duration_since(t) >= SWEEP_EVERY)
        {
            st.swept = Some(now);
            self.sweep(&mut st, now);
        }
        let a = st.addrs.entry(group(ip)).or_default();
        if !exempt {
            if a.open >= self.rules().max_per_ip {
                return Err(Refusal::TooMany);
            }
            let wait = a.connects.wait(now, MINUTE, self.rules().connect_rate);
            if !wait.is_zero() {
                return Err(Refusal::TooFast(wait));
            }
            a.connects.push(now, self.rules().connect_rate);
        }
        a.open += 1;
        Ok(())
    }

    /// A connection from `ip` ended.
    pub fn release(&self, ip: IpAddr) {
        if let Some(a) = self.lock().addrs.get_mut(&group(ip)) {
            a.open = a.open.saturating_sub(1);
        }
    }

    /// Forgets what no rule needs any more, and bounds what idle addresses may hold.
    fn sweep(&self, st: &mut State, now: Instant) {
        let window = self.rules().window;
        st.addrs.retain(|_, a| {
            a.connects.forget_before(now, MINUTE);
            a.failures.forget_before(now, window);
            a.registrations.forget_before(now, HOUR);
            !a.idle()
        });
        st.accounts.retain(|_, w| {
            w.forget_before(now, window);
            !w.0.is_empty()
        });
        let idle = st.addrs.values().filter(|a| a.open == 0).count();
        if idle > MAX_IDLE_ADDRS {
            log::warn!("tracking {idle} addresses without a connection: forgetting them");
            st.addrs.retain(|_, a| a.open > 0);
        }
    }

    /// How long logins from `ip` (for `account`, a name key, when the name exists) stay
    /// refused, and by which count (the longer wait's); `None` if a try is allowed now.
    pub fn login_locked(&self, ip: IpAddr, account: Option<&str>) -> Option<(Duration, Lock)> {
        let now = Instant::now();
        let exempt = self.exempt(ip);
        let mut st = self.lock();
        let mut locked = (Duration::ZERO, Lock::Address);
        if !exempt {
            if let Some(a) = st.addrs.get_mut(&group(ip)) {
                locked.0 =
                    a.failures
                        .wait(now, self.rules().window, self.rules().max_failures_per_ip);
            }
        }
        if let Some(w) = account.and_then(|k| st.accounts.get_mut(k)) {
            let wait = w.wait(now, self.rules().window, self.rules().max_failures_per_user);
            if wait > locked.0 {
                locked = (wait, Lock::Account);
            }
        }
        (!locked.0.is_zero()).then_some(locked)
    }

    /// A failed login from `ip`: a wrong password for `account`, or (`None`) an unknown name
    /// or token.
    pub fn failed(&self, ip: IpAddr, account: Option<&str>) {
        let m = &super::metrics::METRICS;
        super::metrics::inc(if account.is_some() {
            &m.failures[0]
        } else {
            &m.failures[1]
        });
        let now = Instant::now();
        let exempt = self.exempt(ip);
        let mut st = self.lock();
        if !exempt {
            st.addrs
                .entry(group(ip))
                .or_default()
                .failures
                .push(now, self.rules().max_failures_per_ip);
        }
        if let Some(key) = account {
            st.accounts
                .entry(key.to_string())
                .or_default()
                .push(now, self.rules().max_failures_per_user);
        }
    }

    /// A successful password login resets the account's count (not the address's: logging in
    /// to one's own account must not buy more guesses at others).
    pub fn succeeded(&self, account: &str) {
        self.lock().accounts.remove(account);
    }

    /// Whether `ip` may create an account now: `Err` with how long until it may.
    pub fn may_register(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.exempt(ip) {
            return Ok(());
        }
        let now = Instant::now();
        let mut st = self.lock();
        let a = st.addrs.entry(group(ip)).or_default();
        let wait = a.registrations.wait(now, HOUR, self.rules().register_rate);
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    /// Takes one of `ip`'s registrations for this hour: the check and the count under one
    /// lock, so registrations racing each other cannot all pass the check before any is
    /// counted (the hash between them takes a while). `Err` with how long until one is left.
    /// [`Limits::unreserve_registration`] gives it back if no account was made.
    pub fn reserve_registration(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.exempt(ip) {
            return Ok(());
        }
        let now = Instant::now();
        let mut st = self.lock();
        let w = &mut st.addrs.entry(group(ip)).or_default().registrations;
        let wait = w.wait(now, HOUR, self.rules().register_rate);
        if !wait.is_zero() {
            return Err(wait);
        }
        w.push(now, self.rules().register_rate);
        Ok(())
    }

    /// A reserved registration made no account (the name was taken meanwhile, the database
    /// failed): it does not count.
    pub fn unreserve_registration(&self, ip: IpAddr) {
        if self.exempt(ip) {
            return;
        }
        if let Some(a) = self.lock().addrs.get_mut(&group(ip)) {
            a.registrations.0.pop_back();
        }
    }

    /// Claims one of `user_id`'s session slots; `None` when all are taken.
    pub fn claim_session(&self, user_id: i64) -> Option<SessionSlot<'_>> {
        let mut st = self.lock();
        let u = st.users.entry(user_id).or_insert_with(|| UserState {
            sessions: 0,
            bucket: Arc::new(Mutex::new(Bucket::new(self.rules().max_rate))),
        });
        if u.sessions >= self.rules().max_sessions_per_user {
            return None;
        }
        u.sessions += 1;
        Some(SessionSlot {
            limits: self,
            user_id,
            bucket: u.bucket.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            max_per_ip: 2,
            connect_rate: 3,
            max_failures_per_user: 2,
            max_failures_per_ip: 3,
            window: Duration::from_millis(300),
            register_rate: 1,
            max_sessions_per_user: 2,
            max_rate: 10,
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            limit_loopback: true,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_is_grouped_by_64_and_mapped_v4_is_v4() {
        assert_eq!(group(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(group(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(group(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn connections_at_once_and_per_minute() {
        let l = Limits::new(rules());
        let a = ip("192.0.2.1");
        assert_eq!(l.admit(a), Ok(()));
        assert_eq!(l.admit(a), Ok(()));
        assert_eq!(l.admit(a), Err(Refusal::TooMany));
        l.release(a);
        assert_eq!(l.admit(a), Ok(()), "third connection this minute");
        l.release(a);
        let Err(Refusal::TooFast(wait)) = l.admit(a) else {
            panic!("a fourth connection this minute is admitted");
        };
        assert!(wait > Duration::from_secs(59) && wait <= MINUTE, "{wait:?}");
        // Another /64 is another address; an allowed range is never refused.
        assert_eq!(l.admit(ip("2001:db8::1")), Ok(()));
        for _ in 0..10 {
            assert_eq!(l.admit(ip("10.1.2.3")), Ok(()));
        }
    }

    #[test]
    fn the_password_lock_counts_across_connections_and_expires() {
        let l = Limits::new(rules());
        let a = ip("192.0.2.1");
        assert_eq!(l.login_locked(a, Some("alice")), None);
        l.failed(a, Some("alice"));
        l.failed(ip("192.0.2.9"), Some("alice"));
        assert_eq!(
            l.login_locked(a, Some("alice")).map(|(_, by)| by),
            Some(Lock::Account)
        );
        assert_eq!(l.login_locked(a, Some("bob")), None);
        l.failed(a, None);
        assert_eq!(
            l.login_locked(a, Some("bob")),
            None,
            "2 of 3 from this address"
        );
        l.failed(a, None);
        assert_eq!(
            l.login_locked(a, Some("bob")).map(|(_, by)| by),
            Some(Lock::Address)
        );
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(l.login_locked(a, Some("alice")), None, "window passed");
        l.failed(a, Some("alice"));
        l.succeeded("alice");
        assert_eq!(l.login_locked(ip("192.0.2.9"), Some("alice")), None);
    }

    #[test]
    fn registrations_per_address() {
        let l = Limits::new(rules());
        let a = ip("192.0.2.1");
        assert_eq!(l.may_register(a), Ok(()));
        assert_eq!(l.reserve_registration(a), Ok(()));
        let wait = l.may_register(a).unwrap_err();
        assert!(wait > Duration::from_secs(3599) && wait <= HOUR, "{wait:?}");
        assert!(
            l.reserve_registration(a).is_err(),
            "the check and the count are one step"
        );
        l.unreserve_registration(a);
        assert_eq!(
            l.may_register(a),
            Ok(()),
            "a registration that made no account does not count"
        );
        assert_eq!(l.may_register(ip("10.0.0.1")), Ok(()));
        assert_eq!(l.may_register(ip("::ffff:10.0.0.1")), Ok(()));
    }

    #[test]
    fn loopback_is_exempt_until_an_unnamed_proxy_is_seen() {
        let l = Limits::new(Rules {
            limit_loopback: false,
            ..rules()
        });
        for lo in ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"] {
            assert!(l.exempt(ip(lo)), "{lo}");
        }
        assert!(!l.exempt(ip("192.0.2.1")));
        for _ in 0..5 {
            assert_eq!(l.reserve_registration(ip("127.0.0.1")), Ok(()));
        }
        assert_eq!(l.unnamed_proxy_seen(), Some(Loopback::NoLongerExempt));
        assert_eq!(l.unnamed_proxy_seen(), None, "reported once");
        assert!(!l.exempt(ip("127.0.0.1")) && !l.loopback_exempt());
        assert_eq!(l.reserve_registration(ip("127.0.0.1")), Ok(()));
        assert!(l.reserve_registration(ip("127.0.0.1")).is_err());
        // Held to the rules already, or exempt by --allow-ip: the report says so.
        assert_eq!(
            Limits::new(rules()).unnamed_proxy_seen(),
            Some(Loopback::Limited)
        );
        let allowed = Limits::new(Rules {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            ..rules()
        });
        assert_eq!(allowed.unnamed_proxy_seen(), Some(Loopback::Allowed));
        assert!(allowed.exempt(ip("127.0.0.1")));
    }

    #[test]
    fn sessions_per_user_and_a_shared_bucket() {
        let l = Limits::new(rules());
        let one = l.claim_session(7).unwrap();
        let two = l.claim_session(7).unwrap();
        assert!(l.claim_session(7).is_none());
        drop(two);
        let _two = l.claim_session(7).unwrap();
        // 10 a second, bursts of 20, shared by both sessions.
        let waits: Vec<Duration> = (0..21)
            .map(|i| if i % 2 == 0 { one.pace() } else { _two.pace() })
            .collect();
        assert!(waits[..20].iter().all(|w| w.is_zero()));
        assert!(waits[20] > Duration::from_millis(50), "{:?}", waits[20]);
    }
}
