//! Operators' commands: `/kick`, `/ban`, `/unban`, `/mute`, `/unmute`. The dispatcher has
//! checked that the user is an operator; the actions themselves (shared with the console) are
//! in [`crate::server::moderation`], which refuses an operator acting on another operator.
//! Success shows as the public announcement every user sees, the operator included.

use crate::server::moderator::{Moderator, Outcome};
use crate::server::protocol::error;
use crate::server::session::{End, Flow, Session};

fn act(s: &mut Session, action: impl FnOnce(&Moderator) -> Outcome) -> Result<Flow, End> {
    let Some(by) = s.login.as_ref().map(|l| l.user.name.clone()) else {
        return Ok(Flow::Continue);
    };
    let outcome = action(&Moderator {
        shared: s.shared,
        by: &by,
        console: false,
    });
    if let Err(e) = outcome {
        s.send(&error(&e));
    }
    Ok(Flow::Continue)
}

pub fn kick(s: &mut Session, args: &str) -> Result<Flow, End> {
    act(s, |m| m.kick(args))
}

pub fn ban(s: &mut Session, args: &str) -> Result<Flow, End> {
    act(s, |m| m.ban(args))
}

pub fn unban(s: &mut Session, args: &str) -> Result<Flow, End> {
    act(s, |m| m.unban(args))
}

pub fn mute(s: &mut Session, args: &str) -> Result<Flow, End> {
    act(s, |m| m.mute(args))
}

pub fn unmute(s: &mut Session, args: &str) -> Result<Flow, End> {
    act(s, |m| m.unmute(args))
}
