//! Logging in: the checks a login passes (the password lock, bans, the session limit),
//! password and token logins, and registration.

use super::{Flow, Login, Method, Session, MAX_FAILURES};
use crate::auth::{self, MIN_PASSWORD_CHARS};
use crate::server::moderation::banned_line;
use crate::server::protocol::{quote, valid_name, NAME_RULE};
use crate::server::refusals::Why;
use crate::server::text;
use crate::store::tokens;
use crate::store::users::{self, name_key, Clash, User};

/// Why a registration was refused, in a word (IRC's `FAIL REGISTER` codes are made from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The name breaks the rule.
    BadName,
    /// `--no-register`.
    Closed,
    /// Past `--register-rate` for the address.
    TooMany,
    Taken,
    /// Too close to an existing name (a look-alike).
    TooClose,
    WeakPassword,
    /// The database failed.
    Unavailable,
    /// The password could not be hashed: the connection is closed.
    Failed,
}

/// A refusal and what the client is told.
#[derive(Debug)]
pub struct Refused {
    pub why: Refusal,
    /// The line protocol's text (`! …`).
    pub text: String,
}

impl Refused {
    fn new(why: Refusal, text: String) -> Refused {
        Refused { why, text }
    }
}

/// The name rule.
fn rule(name: &str) -> Result<(), Refused> {
    if valid_name(name) {
        return Ok(());
    }
    let text = text::invalid_name(&quote(name), NAME_RULE);
    Err(Refused::new(Refusal::BadName, text))
}

/// The password rule for a new password.
fn new_password(password: &str) -> Result<(), Refused> {
    if password.chars().count() >= MIN_PASSWORD_CHARS {
        return Ok(());
    }
    let text = text::password_too_short(MIN_PASSWORD_CHARS);
    Err(Refused::new(Refusal::WeakPassword, text))
}

impl Session<'_> {
    /// Says how long logins stay locked for this address (and account); true if they are.
    pub fn login_locked(&mut self, account: Option<&str>) -> bool {
        let Some((wait, by)) = self.shared.limits.login_locked(self.addr.ip(), account) else {
            return false;
        };
        self.refused(Why::Locked(by));
        self.send(&text::logins_locked(wait));
        true
    }

    /// Refuses a banned user before any password work; true if banned.
    pub fn refuse_if_banned(&mut self, user: &User) -> bool {
        match self.shared.moderation.name_ban(&name_key(&user.name)) {
            Some(ban) => {
                log::info!("{}: refused banned user {}", self.addr, user.name);
                self.send(&banned_line(&ban));
                true
            }
            None => false,
        }
    }

    /// Checks a password for a known user; counts failures (here and across connections) and
    /// closes after too many. `None`: a wrong password, and another try may work (the
    /// interactive dialogue asks again); otherwise where the dialogue goes: logged in,
    /// closed, or back to `Name: ` (`Flow::Continue`) once the password lock holds, since
    /// no password can work until it lifts.
    pub fn check_password(&mut self, user: User, hash: &str, password: &str) -> Option<Flow> {
        let key = name_key(&user.name);
        if self.login_locked(Some(&key)) {
            return Some(Flow::Continue);
        }
        if self.refuse_if_banned(&user) {
            return Some(Flow::Close);
        }
        match self.shared.hasher.verify(password, hash) {
            Ok(true) => {
                self.shared.limits.succeeded(&key);
                Some(self.welcome(user, Method::Password, None))
            }
            Ok(false) => {
                self.failures += 1;
                self.shared.limits.failed(self.addr.ip(), Some(&key));
                log::info!("{}: failed login for {}", self.addr, user.name);
                if self.failures >= MAX_FAILURES {
                    self.send(&text::too_many_failed_attempts());
                    return Some(Flow::Close);
                }
                self.send(&text::wrong_password());
                // This failure may be the one that locks the account or the address.
                self.login_locked(Some(&key)).then_some(Flow::Continue)
            }
            Err(e) => {
                log::warn!("cannot check the password of {}: {e}", user.name);
                self.send(&text::cannot_check_password());
                Some(Flow::Close)
            }
        }
    }

    /// `/login NAME PASSWORD`: the account's lookup and the password check in one place.
    pub fn password_login(&mut self, name: &str, password: &str) -> Flow {
        match self.db(|c| users::find(c, name)) {
            Some(Some((user, hash))) => self
                .check_password(user, &hash, password)
                .unwrap_or(Flow::Continue),
            Some(None) => {
                self.unknown_name(name);
                Flow::Continue
            }
            None => Flow::Continue,
        }
    }

    /// A login attempt with a name no account has: counts against the address.
    pub fn unknown_name(&mut self, name: &str) {
        if self.login_locked(None) {
            return;
        }
        self.shared.limits.failed(self.addr.ip(), None);
        self.send(&text::no_such_user_register(&quote(name)));
    }

    /// Whether a new password is acceptable; says why not.
    pub fn password_ok(&mut self, password: &str) -> bool {
        self.told(new_password(password))
    }

    /// Whether a name follows the rule; says why not.
    pub fn name_ok(&mut self, name: &str) -> bool {
        self.told(rule(name))
    }

    /// Whether this connection may create an account now; says why not.
    pub fn may_register(&mut self) -> bool {
        let may = self.registration_open();
        self.told(may)
    }

    /// Sends a refusal's text; true if there was none.
    fn told(&mut self, check: Result<(), Refused>) -> bool {
        match check {
            Ok(()) => true,
            Err(r) => {
                self.send(&r.text);
                false
            }
        }
    }

    fn registration_open(&mut self) -> Result<(), Refused> {
        if self.shared.config.get().no_register {
            return Err(Refused::new(Refusal::Closed, text::registration_closed()));
        }
        if let Err(wait) = self.shared.limits.may_register(self.addr.ip()) {
            self.refused(Why::Register);
            let text = text::too_many_new_accounts(wait);
            return Err(Refused::new(Refusal::TooMany, text));
        }
        Ok(())
    }

    /// Logs a refusal (at most one line per reason every 10 s).
    fn refused(&self, why: Why) {
        let shared = self.shared;
        shared.refusals.log(&shared.config.get(), self.addr, why);
    }

    /// Creates the account and logs it in, after checking the name, the registration limits
    /// and the password (again, for the interactive path: cheap, and it keeps every check in
    /// one place); says why not.
    pub fn register(&mut self, name: &str, password: &str) -> Flow {
        match self.try_register(name, password) {
            Ok(flow) => flow,
            Err(r) => {
                self.send(&r.text);
                match r.why {
                    Refusal::Failed => Flow::Close,
                    _ => Flow::Continue,
                }
            }
        }
    }

    /// [`Session::register`], with a refusal returned untold (IRC's `REGISTER` tells it as
    /// `FAIL REGISTER CODE`). A store that fails is logged here.
    pub fn try_register(&mut self, name: &str, password: &str) -> Result<Flow, Refused> {
        rule(name)?;
        self.registration_open()?;
        self.name_unused(name)?;
        new_password(password)?;
        let ip = self.addr.ip();
        if let Err(wait) = self.shared.limits.reserve_registration(ip) {
            // Others from this address took the last ones since the check above.
            self.refused(Why::Register);
            let text = text::too_many_new_accounts(wait);
            return Err(Refused::new(Refusal::TooMany, text));
        }
        let hash = match self.shared.hasher.hash(password) {
            Ok(h) => h,
            Err(e) => {
                self.shared.limits.unreserve_registration(ip);
                log::warn!("cannot hash a new password: {e}");
                return Err(Refused::new(Refusal::Failed, text::cannot_register()));
            }
        };
        let created = self.store(|c| users::create(c, name, &hash));
        if !matches!(created, Ok(Some(_))) {
            self.shared.limits.unreserve_registration(ip);
        }
        match created? {
            Some(user) => {
                log::info!("{}: registered {}", self.addr, user.name);
                Ok(self.welcome(user, Method::Registered, None))
            }
            // Someone registered this name, or a look-alike, meanwhile.
            None => self.name_unused(name).map(|()| Flow::Continue),
        }
    }

    /// A store call for a registration: a failure is logged and becomes a refusal.
    fn store<T>(
        &self,
        f: impl FnOnce(&crate::store::Conn) -> crate::error::Result<T>,
    ) -> Result<T, Refused> {
        self.shared.store.conn().and_then(|c| f(&c)).map_err(|e| {
            log::error!("{}: {e}", self.addr);
            Refused::new(Refusal::Unavailable, text::database_unavailable())
        })
    }

    /// No user has this name or one that looks like it. Checked before hashing (argon2 is
    /// too costly to spend on a taken name); the insert still has the final word when two
    /// people register at once.
    fn name_unused(&self, name: &str) -> Result<(), Refused> {
        match self.store(|c| users::clash(c, name))? {
            None => Ok(()),
            Some(Clash::Taken) => Err(Refused::new(Refusal::Taken, text::name_taken(&quote(name)))),
            Some(Clash::TooClose(existing)) => Err(Refused::new(
                Refusal::TooClose,
                text::name_too_close(&existing),
            )),
        }
    }

    /// Whether no user has this name or one that looks like it; says why not.
    pub fn name_free(&mut self, name: &str) -> bool {
        let unused = self.name_unused(name);
        self.told(unused)
    }

    /// A login the transport authenticated (SSH): the same last checks as any login. A
    /// password login gets a token as over telnet; a key login needs none.
    pub fn login_as(&mut self, user: User, method: Method) -> Flow {
        let token = matches!(method, Method::Key).then(String::new);
        self.welcome(user, method, token)
    }

    /// A new session token for the logged-in user (`/token new`), stored; `None` if it
    /// could not be (the client was told).
    pub fn issue_token(&mut self) -> Option<String> {
        let user = self.login.as_ref()?.user.id;
        let (token, hash) = auth::new_token();
        let ttl = self.shared.config.get().token_ttl_days;
        self.db(|c| tokens::insert(c, user, &hash, ttl))?;
        Some(token)
    }

    /// `/token TOKEN`.
    pub fn redeem_token(&mut self, token: &str) -> Flow {
        if self.login_locked(None) {
            return Flow::Continue;
        }
        let hash = auth::token_hash(token);
        match self.db(|c| tokens::redeem(c, &hash)) {
            Some(Some(user)) => self.welcome(user, Method::Token, Some(hash)),
            Some(None) => {
                self.shared.limits.failed(self.addr.ip(), None);
                log::info!("{}: unknown or expired token", self.addr);
                self.send(&text::bad_token());
                Flow::Continue
            }
            None => Flow::Continue,
        }
    }

    /// The last checks before a login counts (bans, the user's session limit), then a new
    /// token for a password login or registration, then the greeting.
    fn welcome(&mut self, user: User, method: Method, token_hash: Option<String>) -> Flow {
        let key = name_key(&user.name);
        if let Some(ban) = self.shared.moderation.ban_on(&key, self.addr.ip()) {
            log::info!("{}: refused banned user {}", self.addr, user.name);
            self.send(&banned_line(&ban));
            return Flow::Close;
        }
        let Some(slot) = self.shared.limits.claim_session(user.id) else {
            let max = self.shared.limits.rules().max_sessions_per_user;
            self.refused(Why::Sessions);
            self.send(&text::too_many_sessions(&user.name, max));
            return Flow::Close;
        };
        // A password login or a registration gets a new token, shown once. Not over IRC: an
        // IRC client keeps the password in its settings and never types /token, and the
        // notice would land in its log files, a credential on disk.
        let (shown, token_hash) = match token_hash {
            Some(hash) => (None, hash),
            None if self.wire.is_irc() => (None, String::new()),
            None => {
                let (token, hash) = auth::new_token();
                let ttl = self.shared.config.get().token_ttl_days;
                if self
                    .db(|c| tokens::insert(c, user.id, &hash, ttl))
                    .is_none()
                {
                    return Flow::Continue;
                }
                (Some(token), hash)
            }
        };
        self.send(&text::hello(&user.name));
        if let Some(token) = shown {
            self.send(&text::your_token(&token));
        }
        self.slot = Some(slot);
        Flow::LoggedIn(Login {
            user,
            method,
            token_hash,
        })
    }
}
