//! Operators' commands: `/kick`, `/ban`, `/unban`, `/mute`, `/unmute`, `/delete`, `/purge`. The dispatcher has
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

/// `/delete ID`: the operator sees the announcement every operator gets.
pub fn delete(s: &mut Session, args: &str) -> Result<Flow, End> {
    act(s, |m| m.delete(args))
}

/// `/purge NAME PERIOD`: the announcement, and the answer too when lines are left (at most
/// so many go at once).
pub fn purge(s: &mut Session, args: &str) -> Result<Flow, End> {
    let Some(by) = s.login.as_ref().map(|l| l.user.name.clone()) else {
        return Ok(Flow::Continue);
    };
    let outcome = Moderator {
        shared: s.shared,
        by: &by,
        console: false,
    }
    .purge(args);
    match outcome {
        Ok(answer) if answer.contains(crate::server::text::MORE_LEFT) => {
            s.send(&crate::server::protocol::notice(&answer))
        }
        Ok(_) => {}
        Err(e) => s.send(&error(&e)),
    }
    Ok(Flow::Continue)
}
