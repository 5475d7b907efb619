//! Bans, mutes and operators as the running server sees them, and how bans and durations read
//! and are written. The actions (ban, mute, kick, op) are in [`super::moderator`].
//!
//! The `bans` table and `users.role` are the truth. [`Moderation`] holds a copy of what is in
//! force, read on every login, every accept and every chat line without touching the
//! database; it is reloaded after each change made through the server and every few seconds
//! by the janitor (so a `besedka ban` from a shell applies within seconds).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;

use super::text;
use crate::error::Result;
use crate::store::bans::{self, Ban, Kind};
use crate::store::{roles, Conn};

/// Longest timed ban or mute; longer ones are refused (leave the duration out for forever).
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// The name operators' actions are announced under when they come from the console or CLI.
pub const CONSOLE: &str = "server";

#[derive(Default, PartialEq, Debug)]
struct Snapshot {
    names: HashMap<String, Ban>,
    nets: Vec<(IpNet, Ban)>,
    mutes: HashMap<String, Ban>,
    ops: HashSet<String>,
}

/// What is in force now.
#[derive(Default)]
pub struct Moderation(RwLock<Snapshot>);

/// Now, in the schema's timestamp format, to compare with `expires_at`.
fn now_text() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn in_force(ban: &Ban, now: &str) -> bool {
    ban.expires_at.as_deref().is_none_or(|t| t > now)
}

impl Moderation {
    /// Reads what is in force from the database; returns whether it changed.
    pub fn reload(&self, conn: &Conn) -> Result<bool> {
        let mut snap = Snapshot::default();
        for ban in bans::active(conn)? {
            match ban.kind {
                Kind::Name => {
                    snap.names.insert(ban.value.clone(), ban);
                }
                Kind::Mute => {
                    snap.mutes.insert(ban.value.clone(), ban);
                }
                Kind::Ip => match parse_net(&ban.value) {
                    Some(net) => snap.nets.push((net, ban)),
                    None => log::warn!("ignoring an ip ban on {:?}: not an address", ban.value),
                },
            }
        }
        snap.ops = roles::ops(conn)?.into_iter().collect();
        let mut cur = self.0.write().unwrap_or_else(|p| p.into_inner());
        let changed = *cur != snap;
        *cur = snap;
        Ok(changed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The ban on a user (by name key) in force now.
    pub fn name_ban(&self, key: &str) -> Option<Ban> {
        // The clock is read only when there is a row: the common case is none.
        self.read()
            .names
            .get(key)
            .filter(|b| in_force(b, &now_text()))
            .cloned()
    }

    /// The ban on an address in force now.
    pub fn ip_ban(&self, ip: IpAddr) -> Option<Ban> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let now = now_text();
        self.read()
            .nets
            .iter()
            .find(|(net, b)| net.contains(&ip) && in_force(b, &now))
            .map(|(_, b)| b.clone())
    }

    /// The ban that keeps this user or this address out, if any.
    pub fn ban_on(&self, key: &str, ip: IpAddr) -> Option<Ban> {
        self.name_ban(key).or_else(|| self.ip_ban(ip))
    }

    /// The mute on a user in force now.
    pub fn mute(&self, key: &str) -> Option<Ban> {
        // The clock is read only when there is a row: the common case is none.
        self.read()
            .mutes
            .get(key)
            .filter(|b| in_force(b, &now_text()))
            .cloned()
    }

    pub fn is_op(&self, key: &str) -> bool {
        self.read().ops.contains(key)
    }

    /// The accounts banned now (IRC's ban list), oldest ban first.
    pub fn name_bans(&self) -> Vec<Ban> {
        let now = now_text();
        let mut out: Vec<Ban> = self
            .read()
            .names
            .values()
            .filter(|b| in_force(b, &now))
            .cloned()
            .collect();
        out.sort_by(|a, b| (&a.created_at, &a.value).cmp(&(&b.created_at, &b.value)));
        out
    }

    /// Bans and mutes held (expired ones go at the next reload): names, addresses, mutes.
    pub fn counts(&self) -> [usize; 3] {
        let s = self.read();
        [s.names.len(), s.nets.len(), s.mutes.len()]
    }
}

/// What a banned user or address is told ([`text::banned`]).
pub fn banned_line(ban: &Ban) -> String {
    text::banned(ban.expires_at.as_deref(), &ban.reason)
}

/// What a muted user is told when they try to speak ([`text::muted`]).
pub fn muted_line(mute: &Ban) -> String {
    text::muted(mute.expires_at.as_deref())
}

/// An address (`203.0.113.7`, `2001:db8::1`) or a range (`203.0.113.0/24`).
pub fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .ok()
}

/// `TARGET [DURATION] [REASON…]`, as typed after `ban` or `mute`.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub target: &'a str,
    /// `None`: forever.
    pub duration: Option<Duration>,
    pub reason: String,
}

/// Parses `TARGET [DURATION] [REASON…]`. The word after the target is a duration when it
/// reads as one (`30m`, `2h`, `7d`, `1w`); everything else is the reason.
pub fn parse_request(args: &str) -> std::result::Result<Request<'_>, String> {
    let mut words = args.split_whitespace();
    let target = words.next().ok_or("a name is missing")?;
    let rest: Vec<&str> = words.collect();
    let (duration, reason) = match rest.first().map(|w| humantime::parse_duration(w)) {
        Some(Ok(d)) if d.is_zero() => return Err("a duration must be more than 0".into()),
        Some(Ok(d)) if d > MAX_DURATION => {
            return Err("durations go up to 10 years; leave it out for a permanent one".into())
        }
        Some(Ok(d)) => (Some(d), &rest[1..]),
        _ => (None, &rest[..]),
    };
    let reason = super::protocol::clean(&reason.join(" "));
    Ok(Request {
        target,
        duration,
        reason,
    })
}

/// A duration as operators type it: `1d`, `2h 30m`, `45s`.
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [
        (s / 86_400, "d"),
        (s / 3600 % 24, "h"),
        (s / 60 % 60, "m"),
        (s % 60, "s"),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() {
        "0s".into()
    } else {
        text.join(" ")
    }
}

/// ` for 1h` or nothing.
pub fn for_how_long(d: Option<Duration>) -> String {
    d.map(|d| format!(" for {}", short(d))).unwrap_or_default()
}

/// `: REASON` or nothing.
pub(super) fn because(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(expires_at: Option<&str>, reason: &str) -> Ban {
        Ban {
            kind: Kind::Name,
            value: "bob".into(),
            reason: reason.into(),
            created_at: "2026-11-24T12:00:00Z".into(),
            expires_at: expires_at.map(String::from),
            created_by: "server".into(),
        }
    }

    #[test]
    fn ban_lines() {
        assert_eq!(
            banned_line(&ban(Some("2026-12-01T12:00:00Z"), "spam")),
            "! You are banned until 2026-12-01 12:00 UTC: spam.\r\n"
        );
        assert_eq!(
            banned_line(&ban(None, "spam.")),
            "! You are banned: spam.\r\n"
        );
        assert_eq!(banned_line(&ban(None, "")), "! You are banned.\r\n");
        assert_eq!(
            muted_line(&ban(Some("2026-12-01T12:00:00Z"), "")),
            "! You are muted until 2026-12-01 12:00 UTC.\r\n"
        );
    }

    #[test]
    fn requests() {
        let r = parse_request("bob 1h spam and flood").unwrap();
        assert_eq!(r.target, "bob");
        assert_eq!(r.duration, Some(Duration::from_secs(3600)));
        assert_eq!(r.reason, "spam and flood");
        let r = parse_request("bob spam").unwrap();
        assert_eq!((r.duration, r.reason.as_str()), (None, "spam"));
        assert_eq!(
            parse_request("bob 7d").unwrap().duration,
            Some(Duration::from_secs(7 * 86_400))
        );
        assert!(parse_request("bob 20000d").is_err());
        assert!(parse_request("").is_err());
    }

    #[test]
    fn durations_read_as_typed() {
        assert_eq!(short(Duration::from_secs(86_400)), "1d");
        assert_eq!(short(Duration::from_secs(9000)), "2h 30m");
        assert_eq!(short(Duration::from_secs(45)), "45s");
    }

    #[test]
    fn addresses_and_ranges() {
        assert_eq!(
            parse_net("203.0.113.7").unwrap().to_string(),
            "203.0.113.7/32"
        );
        assert_eq!(
            parse_net("203.0.113.7/24").unwrap().to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            parse_net("2001:db8::1/64").unwrap().to_string(),
            "2001:db8::/64"
        );
        assert_eq!(parse_net("bob"), None);
    }

    #[test]
    fn expired_bans_do_not_apply() {
        let m = Moderation::default();
        {
            let mut s = m.0.write().unwrap();
            s.names
                .insert("old".into(), ban(Some("2000-01-01T00:00:00Z"), ""));
            s.names.insert("bob".into(), ban(None, ""));
            s.nets
                .push((parse_net("10.0.0.0/8").unwrap(), ban(None, "")));
        }
        assert!(m.name_ban("old").is_none());
        assert!(m.name_ban("bob").is_some());
        assert!(m.ip_ban("10.1.2.3".parse().unwrap()).is_some());
        assert!(m.ip_ban("::ffff:10.1.2.3".parse().unwrap()).is_some());
        assert!(m.ip_ban("11.0.0.1".parse().unwrap()).is_none());
    }
}
