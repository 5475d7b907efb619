//! Bans, mutes and operators as the running server sees them, and the moderation actions that
//! the console, the admin CLI and operators in chat share.
//!
//! The `bans` table and `users.role` are the truth. [`Moderation`] holds a copy of what is in
//! force, read on every login, every accept and every chat line without touching the
//! database; it is reloaded after each change made through the server and every few seconds
//! by the janitor (so a `besedka ban` from a shell applies within seconds).

use super::text;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use crate::store::Conn;
use ipnet::IpNet;

use super::hub::Event;
use super::protocol::notice;
use super::Shared;
use crate::error::Result;
use crate::store::bans::{self, Ban, Kind};
use crate::store::{roles, users};

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
fn because(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// Who acts, and with what rights.
pub struct Moderator<'a> {
    pub shared: &'a Shared,
    /// Shown in announcements and stored as `created_by`: an operator's name, or [`CONSOLE`].
    pub by: &'a str,
    /// The console and CLI may act on operators; operators may not act on each other.
    pub console: bool,
}

/// The answer for the console (an operator in chat sees the announcement instead), or the
/// error to show.
pub type Outcome = std::result::Result<String, String>;

impl Moderator<'_> {
    fn db<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> std::result::Result<T, String> {
        self.shared.store.conn().and_then(|c| f(&c)).map_err(|e| {
            log::error!("moderation by {}: {e}", self.by);
            "the database is unavailable; nothing was changed".to_string()
        })
    }

    /// The user named, refusing when an operator acts on an operator.
    fn user(&self, name: &str) -> std::result::Result<users::User, String> {
        let (user, _) = self
            .db(|c| users::find(c, name))?
            .ok_or_else(|| format!("No such user: {}", super::protocol::quote(name)))?;
        if !self.console && self.shared.moderation.is_op(&users::name_key(&user.name)) {
            return Err(format!(
                "{} is an operator: only the server console can do that.",
                user.name
            ));
        }
        Ok(user)
    }

    /// Rereads the moderation state, then has the hub disconnect whoever it now keeps out and
    /// announce `text`; returns how many sessions were disconnected.
    fn enforce(&self, text: String) -> std::result::Result<usize, String> {
        self.db(|c| self.shared.moderation.reload(c))?;
        log::info!("moderation: {text}");
        let announce = Some(notice(&text));
        self.shared
            .ask(|tx| Event::Enforce {
                announce,
                reply: Some(tx),
            })
            .map_err(|e| format!("the change is stored, but {e}"))
    }

    /// `ban NAME|ADDRESS|CIDR [DURATION] [REASON]`.
    pub fn ban(&self, args: &str) -> Outcome {
        let req = parse_request(args)?;
        let for_ = for_how_long(req.duration);
        if let Some(net) = parse_net(req.target).filter(|_| self.console) {
            self.db(|c| {
                bans::add(
                    c,
                    Kind::Ip,
                    &net.to_string(),
                    &req.reason,
                    req.duration,
                    self.by,
                )
            })?;
            let n = self.enforce(format!(
                "{} banned an address{for_}{}",
                self.by,
                because(&req.reason)
            ))?;
            return Ok(format!("Banned {net}{for_} ({n} session(s) disconnected)."));
        }
        let user = self.user(req.target)?;
        let key = users::name_key(&user.name);
        self.db(|c| bans::ban_user(c, user.id, &key, &req.reason, req.duration, self.by))?;
        let n = self.enforce(format!(
            "{} banned {}{for_}{}",
            self.by,
            user.name,
            because(&req.reason)
        ))?;
        Ok(format!(
            "Banned {}{for_} ({n} session(s) disconnected).",
            user.name
        ))
    }

    /// `unban NAME|ADDRESS|CIDR`.
    pub fn unban(&self, target: &str) -> Outcome {
        let (kind, value, shown) = match parse_net(target).filter(|_| self.console) {
            Some(net) => (Kind::Ip, net.to_string(), "an address".to_string()),
            None => {
                let (user, _) = self
                    .db(|c| users::find(c, target))?
                    .ok_or_else(|| format!("No such user: {}", super::protocol::quote(target)))?;
                (Kind::Name, users::name_key(&user.name), user.name)
            }
        };
        if !self.db(|c| bans::remove(c, kind, &value))? {
            return Err(format!("{} is not banned.", super::protocol::quote(target)));
        }
        self.enforce(format!("{} unbanned {shown}", self.by))?;
        Ok(format!("Unbanned {}.", super::protocol::quote(target)))
    }

    /// `mute NAME [DURATION] [REASON]`.
    pub fn mute(&self, args: &str) -> Outcome {
        let req = parse_request(args)?;
        let user = self.user(req.target)?;
        let key = users::name_key(&user.name);
        self.db(|c| bans::add(c, Kind::Mute, &key, &req.reason, req.duration, self.by))?;
        let for_ = for_how_long(req.duration);
        self.enforce(format!(
            "{} muted {}{for_}{}",
            self.by,
            user.name,
            because(&req.reason)
        ))?;
        Ok(format!("Muted {}{for_}.", user.name))
    }

    /// `unmute NAME`.
    pub fn unmute(&self, name: &str) -> Outcome {
        let user = self.user(name)?;
        if !self.db(|c| bans::remove(c, Kind::Mute, &users::name_key(&user.name)))? {
            return Err(format!("{} is not muted.", user.name));
        }
        self.enforce(format!("{} unmuted {}", self.by, user.name))?;
        Ok(format!("Unmuted {}.", user.name))
    }

    /// `op NAME` / `deop NAME` (console and CLI only).
    pub fn set_op(&self, name: &str, op: bool) -> Outcome {
        let shown = self
            .db(|c| roles::set(c, name, op))?
            .ok_or_else(|| format!("No such user: {}", super::protocol::quote(name)))?;
        let what = if op {
            "made {} an operator"
        } else {
            "removed {} from the operators"
        };
        self.enforce(format!("{} {}", self.by, what.replace("{}", &shown)))?;
        Ok(format!(
            "{shown} is {}an operator.",
            if op { "now " } else { "no longer " }
        ))
    }

    /// `kick NAME [REASON]`: disconnects every session of NAME, who may come back.
    pub fn kick(&self, args: &str) -> Outcome {
        let (name, reason) = match args.split_once(char::is_whitespace) {
            Some((n, r)) => (n, super::protocol::clean(r.trim())),
            None => (args, String::new()),
        };
        let user = self.user(name)?;
        let told = text::kicked((!self.console).then_some(self.by), &reason);
        let announce = text::kick_announcement(self.by, &user.name, &reason);
        let key = users::name_key(&user.name);
        // Other nodes of the community kick their sessions of the user too.
        self.shared
            .tell_nodes(&crate::store::control::Command::Kick {
                key: key.clone(),
                told: told.clone(),
                announce: announce.clone(),
            });
        let elsewhere = self
            .shared
            .store
            .conn()
            .and_then(|c| {
                crate::store::presence::sessions_elsewhere(&c, &self.shared.node, user.id)
            })
            .unwrap_or(0);
        let n = self
            .shared
            .ask(|reply| Event::Kick {
                key,
                text: told,
                announce,
                reply,
            })
            .map_err(|e| e.to_string())?
            + elsewhere;
        if n == 0 {
            return Err(format!("{} is not online.", user.name));
        }
        log::info!(
            "moderation: {} kicked {}{}",
            self.by,
            user.name,
            because(&reason)
        );
        Ok(format!(
            "Kicked {} ({n} {}).",
            user.name,
            if n == 1 { "session" } else { "sessions" }
        ))
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
