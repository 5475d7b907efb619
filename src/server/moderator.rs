//! What the console, the CLI and operators do to users and addresses: ban, unban, mute, kick,
//! op. Each action is stored, announced to everyone, logged with who did it, and carried out
//! by the hub on the sessions it concerns. What is in force, and how bans read, is in
//! [`super::moderation`].

use super::hub::Event;
use super::moderation::{because, for_how_long, parse_net, parse_request};
use super::protocol::notice;
use super::shared::Shared;
use super::text;
use crate::error::Result;
use crate::store::bans::{self, Kind};
use crate::store::{roles, users, Conn};

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
        // Counted before the other nodes hear of it: they may remove the user's presence rows
        // before this node could count them (and it would then say the user is not online).
        let elsewhere = self
            .shared
            .store
            .conn()
            .and_then(|c| {
                crate::store::presence::sessions_elsewhere(&c, &self.shared.node, user.id)
            })
            .unwrap_or(0);
        // Other nodes of the community kick their sessions of the user too.
        self.shared
            .tell_nodes(&crate::store::control::Command::Kick {
                key: key.clone(),
                told: told.clone(),
                announce: announce.clone(),
            });
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
