//! History as IRC clients read it: tagged `PRIVMSG`s inside a `batch` (`chathistory`, or
//! `draft/chathistory-targets` for `CHATHISTORY TARGETS`).

use super::{privmsg, Caps, SERVER};
use crate::store::messages::Message;

/// Lines of history for a client that reads IRC with `caps`: `PRIVMSG`s with their tags
/// inside a `chathistory` batch for `target` when it asked for `batch` (and `server-time`,
/// without which old lines would look new); the newest that fit in `budget` bytes.
/// `None`: the client cannot tell history from live lines; the caller shows it as notices.
pub fn history(caps: Caps, target: &str, msgs: &[Message], budget: usize) -> Option<String> {
    if !caps.has(Caps::SERVER_TIME) {
        return None;
    }
    let lines: Vec<String> = msgs
        .iter()
        .map(|m| {
            let room = m.room.as_ref().map_or(target, |r| r.1.as_str());
            privmsg(m, room, caps)
        })
        .collect();
    let keep = crate::server::protocol::newest_that_fit(&lines, budget);
    let lines = &lines[lines.len() - keep..];
    Some(batch(caps, "chathistory", target, lines))
}

/// `lines` inside a batch of `kind` for `target` (each line tagged `batch=`), when `caps`
/// has `batch` (`target` empty: a batch type without one); as they are otherwise. A batch's name is unique on the connection: one per
/// call, from a counter.
pub fn batch(caps: Caps, kind: &str, target: &str, lines: &[String]) -> String {
    if !caps.has(Caps::BATCH) {
        return lines.concat();
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut out = match target {
        "" => format!(":{SERVER} BATCH +{id} {kind}\r\n"),
        _ => format!(":{SERVER} BATCH +{id} {kind} {target}\r\n"),
    };
    for line in lines {
        match line.strip_prefix('@') {
            Some(tagged) => out.push_str(&format!("@batch={id};{tagged}")),
            None => out.push_str(&format!("@batch={id} {line}")),
        }
    }
    out.push_str(&format!(":{SERVER} BATCH -{id}\r\n"));
    out
}

/// `CHATHISTORY`'s answer: `msgs` (oldest first) as `PRIVMSG`s with the tags `caps` asked
/// for, inside a `chathistory` batch for `target` when it asked for `batch`, whatever else
/// it asked for (the spec wants no capability enforced). At most `budget` bytes of lines:
/// from the newest back when `newest` (a page backwards), else from the oldest on, so the
/// next page starts where this one ended.
pub fn chathistory(
    caps: Caps,
    target: &str,
    msgs: &[Message],
    budget: usize,
    newest: bool,
) -> String {
    let lines: Vec<String> = msgs
        .iter()
        .map(|m| {
            let room = m.room.as_ref().map_or(target, |r| r.1.as_str());
            privmsg(m, room, caps)
        })
        .collect();
    let mut size = 0;
    let mut fits = |l: &String| {
        size += l.len();
        size <= budget
    };
    let lines = if newest {
        let keep = lines.iter().rev().take_while(|l| fits(l)).count();
        &lines[lines.len() - keep..]
    } else {
        let keep = lines.iter().take_while(|l| fits(l)).count();
        &lines[..keep]
    };
    batch(caps, "chathistory", target, lines)
}

/// `CHATHISTORY TARGETS`' answer: `CHATHISTORY TARGETS name time` for each `(name, stored
/// time)`, inside a `draft/chathistory-targets` batch when the client asked for `batch`.
pub fn targets(caps: Caps, list: &[(String, String)]) -> String {
    let lines: Vec<String> = list
        .iter()
        .map(|(name, at)| {
            let at = super::server_time(at);
            format!(":{SERVER} CHATHISTORY TARGETS {name} {at}\r\n")
        })
        .collect();
    batch(caps, "draft/chathistory-targets", "", &lines)
}
