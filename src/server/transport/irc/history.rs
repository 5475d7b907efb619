//! IRCv3 `draft/chathistory`: `CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN target …
//! limit` and `CHATHISTORY TARGETS`, read on the session's own thread from the messages
//! table (`store::history`), never on the hub.
//!
//! A channel is readable only while the session is in it; a nick is the private lines
//! between the asking user and that account, nobody else's. A message is referred to by
//! `msgid=ID` (its `messages.id`, as the `msgid` tag gives it) or `timestamp=…` (server-time's
//! format); times are turned into ids first, so every read is a window of ids.

use crate::store::members;
use super::channels::Channels;
use super::message::Message;
use crate::server::session::{End as Gone, Flow, Session};
use crate::server::wire;
use crate::store::history::{self, Conversation, End};
use crate::store::users;

/// Messages one `CHATHISTORY` returns at most (`CHATHISTORY=` in ISUPPORT); a larger limit
/// is taken as this. The reply is also cut to half of `--max-backlog` bytes.
pub const MAX_LIMIT: u32 = 100;

/// A message reference.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ref {
    /// `msgid=ID`.
    Id(i64),
    /// `timestamp=YYYY-MM-DDThh:mm:ss.sssZ`: the second as stored (`…:ssZ`) and the
    /// fraction past it, in nanoseconds (stored times have none).
    Time { secs: String, nanos: u32 },
}

impl Ref {
    fn parse(p: &str) -> Option<Ref> {
        if let Some(id) = p.strip_prefix("msgid=") {
            return id.parse().ok().filter(|&id| id > 0).map(Ref::Id);
        }
        let t = p.strip_prefix("timestamp=")?.strip_suffix('Z')?;
        let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
        let shape = secs.len() == 19
            && secs.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                10 => b == b'T',
                13 | 16 => b == b':',
                _ => b.is_ascii_digit(),
            });
        if !shape || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let nanos = format!("{frac:0<9}").parse().ok()?;
        Some(Ref::Time {
            secs: format!("{secs}Z"),
            nanos,
        })
    }

    /// `(after, before)`: messages after the reference have ids above `after`, those before
    /// it ids below `before` (a message's own id is neither).
    fn bounds(&self, c: &crate::store::Conn) -> crate::error::Result<(i64, i64)> {
        match self {
            Ref::Id(id) => Ok((*id, *id)),
            // A stored time is its second's start: it is after `secs.nanos` only from the
            // next second on, and before it up to `secs` itself when there is a fraction.
            Ref::Time { secs, nanos } => Ok((
                history::first_at(c, secs, true)? - 1,
                history::first_at(c, secs, *nanos > 0)?,
            )),
        }
    }
}

/// `CHATHISTORY`.
pub fn chathistory(s: &mut Session, chans: &Channels, m: &Message) -> Result<Flow, Gone> {
    let sub = m.param(0).unwrap_or("").to_ascii_uppercase();
    let args = m.params.get(1..).unwrap_or(&[]);
    // Everything this session said before is stored first: its own line, already echoed
    // to it, is in the answer (the hub commits what is staged before it answers).
    let _ = s.shared.ask(|done| crate::server::hub::Event::Barrier { done });
    let want = match sub.as_str() {
        "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "TARGETS" => 3,
        "BETWEEN" => 4,
        _ => {
            let shown = if sub.is_empty() { "*" } else { &sub };
            fail(s, "INVALID_PARAMS", shown, "Unknown command");
            return Ok(Flow::Continue);
        }
    };
    if args.len() != want {
        let why = if args.len() < want {
            "Insufficient parameters"
        } else {
            "Too many parameters"
        };
        fail(s, "INVALID_PARAMS", &sub, why);
        return Ok(Flow::Continue);
    }
    let limit = match args[want - 1].parse::<u32>() {
        Ok(n) if n > 0 => n.min(MAX_LIMIT),
        _ => {
            let context = format!("{sub} {}", args[want - 1]);
            fail(s, "INVALID_PARAMS", &context, "The limit is a number from 1 up");
            return Ok(Flow::Continue);
        }
    };
    let mut refs = Vec::new();
    for p in &args[if sub == "TARGETS" { 0 } else { 1 }..want - 1] {
        match Ref::parse(p) {
            Some(r) => refs.push(r),
            None if *p == "*" && sub == "LATEST" => {}
            None => {
                let why = "Not a message reference (msgid=ID or timestamp=YYYY-MM-DDThh:mm:ss.sssZ)";
                fail(s, "INVALID_PARAMS", &format!("{sub} {p}"), why);
                return Ok(Flow::Continue);
            }
        }
    }
    if sub == "TARGETS" {
        targets(s, chans, &refs, limit);
        return Ok(Flow::Continue);
    }
    let target = args[0];
    let Some((conv, name)) = conversation(s, chans, target) else {
        let context = format!("{sub} {target}");
        fail(s, "INVALID_TARGET", &context, "Messages could not be retrieved");
        return Ok(Flow::Continue);
    };
    let read = s.shared.store.conn().and_then(|c| {
        let mut bounds = Vec::new();
        for r in &refs {
            bounds.push(r.bounds(&c)?);
        }
        let w = |after, before, limit, end| history::window(&c, conv, after, before, limit, end);
        Ok(match (sub.as_str(), bounds.as_slice()) {
            ("LATEST", []) => (w(0, i64::MAX, limit, End::Newest)?, true),
            ("LATEST", [(after, _)]) => (w(*after, i64::MAX, limit, End::Newest)?, true),
            ("BEFORE", [(_, before)]) => (w(0, *before, limit, End::Newest)?, true),
            ("AFTER", [(after, _)]) => (w(*after, i64::MAX, limit, End::Oldest)?, false),
            // Half before the reference, the rest from it on (itself included).
            ("AROUND", [(_, at)]) => {
                let mut out = w(0, *at, limit / 2, End::Newest)?;
                let rest = limit - out.len() as u32;
                out.extend(w(*at - 1, i64::MAX, rest, End::Oldest)?);
                (out, false)
            }
            // Forwards or backwards in time, as the two references stand.
            ("BETWEEN", [(a_after, a_before), (b_after, b_before)]) => {
                if a_after < b_before {
                    (w(*a_after, *b_before, limit, End::Oldest)?, false)
                } else {
                    (w(*b_after, *a_before, limit, End::Newest)?, true)
                }
            }
            _ => (Vec::new(), false),
        })
    });
    match read {
        Ok((msgs, newest)) => {
            let budget = s.shared.config.get().max_backlog / 2;
            let out = wire::chathistory(s.wire.caps(), &name, &msgs, budget, newest);
            s.send_bytes(out.into_bytes());
        }
        Err(e) => {
            log::error!("{}: CHATHISTORY {sub} {target}: {e}", s.addr);
            let context = format!("{sub} {target}");
            fail(s, "MESSAGE_ERROR", &context, "Messages could not be retrieved: the database is unavailable. Try again.");
        }
    }
    Ok(Flow::Continue)
}

/// The conversation `target` names for this session, and its name as the batch gives it:
/// a channel the session is in, or an account (the private lines with it).
fn conversation(s: &mut Session, chans: &Channels, target: &str) -> Option<(Conversation, String)> {
    let me = s.login.as_ref()?.user.id;
    if target.starts_with('#') {
        let room = chans.get(target)?.clone();
        // (Taken off an invite-only room's members since it joined: not any more.)
        if !s.db(|c| members::may_see(c, room.id, me))? {
            return None;
        }
        return Some((Conversation::Room(room.id), room.name));
    }
    let (other, _) = s.db(|c| users::find(c, &users::normalize(target)))??;
    Some((Conversation::Private { me, other: other.id }, other.name))
}

/// `CHATHISTORY TARGETS a b limit`: the session's channels and the accounts it exchanged
/// private lines with, whose latest message is between the two times, by that message.
fn targets(s: &mut Session, chans: &Channels, refs: &[Ref], limit: u32) {
    let [a, b] = refs else { return };
    let (Ref::Time { secs: sa, nanos: na }, Ref::Time { secs: sb, nanos: nb }) = (a, b) else {
        fail(s, "INVALID_PARAMS", "TARGETS", "TARGETS takes two timestamps");
        return;
    };
    let forward = (sa, na) <= (sb, nb);
    let (lo, hi) = if forward { (a, b) } else { (b, a) };
    let Some(me) = s.login.as_ref().map(|l| l.user.id) else { return };
    let rooms: Vec<i64> = chans.rooms().map(|r| r.id).collect();
    let read = s.shared.store.conn().and_then(|c| {
        let hidden = members::hidden_from(&c, me)?;
        let rooms: Vec<i64> = rooms.into_iter().filter(|r| !hidden.contains(r)).collect();
        let (after, _) = lo.bounds(&c)?;
        let (_, before) = hi.bounds(&c)?;
        history::latest(&c, me, &rooms, after, before)
    });
    match read {
        Ok(mut found) => {
            found.sort_by_key(|l| l.id);
            let n = found.len().min(limit as usize);
            let kept = if forward { &found[..n] } else { &found[found.len() - n..] };
            let list: Vec<(String, String)> =
                kept.iter().map(|l| (l.name.clone(), l.created_at.clone())).collect();
            let out = wire::targets(s.wire.caps(), &list);
            s.send_bytes(out.into_bytes());
        }
        Err(e) => {
            log::error!("{}: CHATHISTORY TARGETS: {e}", s.addr);
            fail(s, "MESSAGE_ERROR", "TARGETS *", "Messages could not be retrieved: the database is unavailable. Try again.");
        }
    }
}

fn fail(s: &mut Session, code: &str, context: &str, why: &str) {
    s.send_bytes(wire::fail("CHATHISTORY", code, context, why).into_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_ids_or_server_times() {
        assert_eq!(Ref::parse("msgid=42"), Some(Ref::Id(42)));
        assert_eq!(Ref::parse("msgid=0"), None);
        assert_eq!(Ref::parse("msgid=abc"), None);
        assert_eq!(
            Ref::parse("timestamp=2026-12-01T06:05:57.250Z"),
            Some(Ref::Time {
                secs: "2026-12-01T06:05:57Z".into(),
                nanos: 250_000_000
            })
        );
        assert_eq!(
            Ref::parse("timestamp=2026-12-01T06:05:57Z"),
            Some(Ref::Time {
                secs: "2026-12-01T06:05:57Z".into(),
                nanos: 0
            })
        );
        for bad in ["timestamp=2026-12-01 06:05:57Z", "timestamp=yesterday", "*", "57"] {
            assert_eq!(Ref::parse(bad), None, "{bad}");
        }
    }
}
