//! Logging in and out: `/register`, `/login`, `/token`, `/logout`, `/quit`.

use super::name_and_rest;
use crate::server::session::{End, Flow, Session};
use crate::server::text;
use crate::store::tokens;

pub fn register(s: &mut Session, args: &str) -> Result<Flow, End> {
    let (name, password) = name_and_rest(args);
    Ok(s.register(name, password))
}

pub fn login(s: &mut Session, args: &str) -> Result<Flow, End> {
    let (name, password) = name_and_rest(args);
    Ok(s.password_login(name, password))
}

/// `/token TOKEN` logs in; once logged in, `/token new` issues a new token and shows it
/// (an IRC client is shown none at login, nor is anyone who logged in with a key; a bot
/// or a script asks for one).
pub fn token(s: &mut Session, args: &str) -> Result<Flow, End> {
    if s.login.is_none() {
        return Ok(s.redeem_token(args));
    }
    if args != "new" {
        s.send(&text::usage("/token new"));
        return Ok(Flow::Continue);
    }
    if let Some(token) = s.issue_token() {
        s.send(&text::your_token(&token));
    }
    Ok(Flow::Continue)
}

pub fn logout(s: &mut Session, _: &str) -> Result<Flow, End> {
    if let Some(hash) = s.login.as_ref().map(|l| l.token_hash.clone()) {
        if s.db(|c| tokens::revoke(c, &hash)).is_none() {
            return Ok(Flow::Continue);
        }
    }
    s.send(&text::logged_out());
    Ok(Flow::Close)
}

pub fn quit(s: &mut Session, _: &str) -> Result<Flow, End> {
    s.send(&text::bye());
    Ok(Flow::Close)
}
