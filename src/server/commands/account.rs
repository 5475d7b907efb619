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

pub fn token(s: &mut Session, args: &str) -> Result<Flow, End> {
    Ok(s.redeem_token(args))
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
