//! What lines look like: the name rule, cleaning of chat text, and rendering of server lines.
//!
//! Every server line starts with a mark that tells its kind: `* ` a notice, `! ` an error,
//! `[TIME] ` a chat line; prompts end in `: ` and have no line end. Lines end in `\r\n`.

use crate::store::messages::{Kind, Message};

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// The name rule, as shown to users who break it.
pub const NAME_RULE: &str = "1-32 characters: letters (any script), digits, '_', '-' and '.'";

/// Checks a name's NFKC form (what is stored) against [`NAME_RULE`].
pub fn valid_name(name: &str) -> bool {
    let name = crate::store::users::normalize(name);
    let n = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&n)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Client input quoted in an error: [`clean`]ed, and cut to 32 characters.
pub fn quote(input: &str) -> String {
    let clean = clean(input);
    match clean.char_indices().nth(32) {
        Some((at, _)) => format!("{}…", &clean[..at]),
        None => clean,
    }
}

/// Bidirectional controls: embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069)
/// and the direction marks (U+200E, U+200F, U+061C). They make a terminal show text in another
/// order than it was typed ("Trojan Source", CVE-2021-42574). Zero-width joiners are not here:
/// emoji need them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `* TEXT\r\n`
pub fn notice(text: &str) -> String {
    format!("* {text}\r\n")
}

/// `! TEXT\r\n`
pub fn error(text: &str) -> String {
    format!("! {text}\r\n")
}

/// Removes what could drive another user's terminal: C0 controls except tab, DEL, C1
/// controls, bidirectional controls, and the whole escape sequences (CSI, OSC, DCS, …) that ESC or a C1 introducer
/// starts. Trailing whitespace goes too, so a line of only controls comes out empty.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => out.push(c),
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                _ => {} // a two-character sequence such as ESC c (reset): both dropped
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// Skips a control sequence's parameters up to and including its final byte.
fn skip_csi(chars: &mut impl Iterator<Item = char>) {
    for c in chars {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
    }
}

/// Skips a control string (OSC, DCS, …) up to its terminator: BEL, ST or ESC \.
fn skip_string(chars: &mut std::iter::Peekable<impl Iterator<Item = char>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

/// A chat line as a client sees it. Live lines show the time only (`[HH:MM:SS]`), history
/// shows the date too (`[YYYY-MM-DD HH:MM:SS]`). Times are UTC.
pub fn chat_line(m: &Message, with_date: bool) -> String {
    // created_at is "YYYY-MM-DDTHH:MM:SSZ".
    let at = m.created_at.get(..19).unwrap_or(&m.created_at);
    let time = if with_date {
        at.replacen('T', " ", 1)
    } else {
        at.get(11..).unwrap_or(at).to_string()
    };
    match (&m.recipient, m.kind) {
        (Some((_, to)), _) => format!("[{time}] {} -> {to}: {}\r\n", m.author_name, m.body),
        (None, Kind::Me) => format!("[{time}] * {} {}\r\n", m.author_name, m.body),
        (None, Kind::Say) => format!("[{time}] {}: {}\r\n", m.author_name, m.body),
    }
}

/// Which line ids go in front of the chat lines a client is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ids {
    /// `#1234 `: an operator's `/history`, `/search` and `/mentions`, for `/delete`.
    pub shown: bool,
    /// `\u{1}1234 `: the web page's, which it reads and does not show (it takes a removed
    /// line out of its log by its id). Only the web way in gets it: a terminal would show it.
    pub hidden: bool,
}

/// The web page's hidden id in front of a line (see [`Ids::hidden`]).
pub fn hidden_id(id: i64) -> String {
    format!("\u{1}{id} ")
}

/// `line` with the ids `ids` asks for in front.
fn with_ids(id: i64, line: String, ids: Ids) -> String {
    match (ids.hidden, ids.shown) {
        (false, false) => line,
        (true, false) => hidden_id(id) + &line,
        (false, true) => format!("#{id} {line}"),
        (true, true) => format!("{}#{id} {line}", hidden_id(id)),
    }
}

/// History as chat lines with dates, oldest first, in at most `budget` bytes: the oldest
/// lines are left out when the rest would not fit, so a long history can never overflow the
/// client's backlog and get it disconnected.
pub fn history_lines(msgs: &[Message], budget: usize, ids: Ids) -> String {
    fit(
        msgs.iter()
            .map(|m| with_ids(m.id, chat_line(m, true), ids))
            .collect(),
        budget,
    )
}

/// Lines found across rooms (`/search`, `/mentions`): as [`history_lines`], with each public
/// line's room after its date: `[2026-11-24 14:33:53] #rust alice: hi`.
pub fn found_lines(msgs: &[Message], budget: usize, ids: Ids) -> String {
    fit(
        msgs.iter()
            .map(|m| with_ids(m.id, found_line(m), ids))
            .collect(),
        budget,
    )
}

/// A line with its date and, if public, its room (see [`found_lines`]).
pub fn found_line(m: &Message) -> String {
    let line = chat_line(m, true);
    match (&m.room, line.find("] ")) {
        (Some((_, room)), Some(at)) => format!("{}{room} {}", &line[..at + 2], &line[at + 2..]),
        _ => line,
    }
}

/// Hits with the lines around them (`/search -c N`), oldest first: each group as
/// [`found_lines`] with its hit marked `> `, groups apart by a `--` line (as `grep -C`); two
/// groups that share lines are shown as one.
pub fn found_in_context(groups: &[Vec<Message>], hits: &[i64], budget: usize, ids: Ids) -> String {
    let mut merged: Vec<Vec<&Message>> = Vec::new();
    for group in groups {
        let last = merged.last_mut().and_then(|m| m.last().map(|l| l.id));
        match (merged.last_mut(), group.first()) {
            (Some(prev), Some(first)) if prev.iter().any(|m| m.id == first.id) => {
                let last = last.unwrap_or(i64::MAX);
                prev.extend(group.iter().filter(|m| m.id > last));
            }
            _ => merged.push(group.iter().collect()),
        }
    }
    let mut lines = Vec::new();
    for (i, group) in merged.iter().enumerate() {
        if i > 0 {
            lines.push("--\r\n".to_string());
        }
        for m in group {
            let mark = if hits.contains(&m.id) { "> " } else { "  " };
            let shown = Ids {
                hidden: false,
                ..ids
            };
            let line = format!("{mark}{}", with_ids(m.id, found_line(m), shown));
            lines.push(match ids.hidden {
                true => hidden_id(m.id) + &line,
                false => line,
            });
        }
    }
    fit(lines, budget)
}

/// How many of the newest `lines` fit in `budget` bytes together.
pub fn newest_that_fit(lines: &[String], budget: usize) -> usize {
    let mut size = 0;
    lines
        .iter()
        .rev()
        .take_while(|l| {
            size += l.len();
            size <= budget
        })
        .count()
}

/// The newest `lines` that fit in `budget` bytes, with a note of how many were left out.
fn fit(lines: Vec<String>, budget: usize) -> String {
    let keep = newest_that_fit(&lines, budget);
    let mut out = String::with_capacity(budget.min(1 << 20));
    if keep < lines.len() {
        out.push_str(&notice(&format!(
            "{} older message(s) left out: too long to send at once.",
            lines.len() - keep
        )));
    }
    for l in &lines[lines.len() - keep..] {
        out.push_str(l);
    }
    out
}

/// `* Online (N): a, b`
/// The name keys a line mentions: each word (letters of any script, digits, `_`, `-`), with
/// a leading `@` dropped. Whether a word is a user's name is for the caller to say.
pub fn mentioned_keys(body: &str) -> impl Iterator<Item = String> + '_ {
    body.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '@'))
        .map(|w| w.trim_start_matches('@'))
        .filter(|w| !w.is_empty() && w.chars().count() <= 32)
        .map(|w| {
            // The hub runs this on every public line: ASCII (most words) is its own NFKC
            // form, so only the rest pays for normalization.
            if w.is_ascii() {
                w.to_ascii_lowercase()
            } else {
                crate::store::users::name_key(&crate::store::users::normalize(w))
            }
        })
}

/// `* LABEL (N): a, b` (`In #lobby`, `Online`); when `names` are fewer than `total`, says
/// how many more.
pub fn online_line(label: &str, total: usize, names: &[String]) -> String {
    let more = total.saturating_sub(names.len());
    if more == 0 {
        notice(&format!("{label} ({total}): {}", names.join(", ")))
    } else {
        notice(&format!(
            "{label} ({total}): {}, and {more} more (/who lists everyone)",
            names.join(", ")
        ))
    }
}

/// Longest room name after its `#`, in characters.
pub const MAX_ROOM_CHARS: usize = 32;

/// The room name rule after the `#`, as shown to users who break it.
pub const ROOM_RULE: &str = "1-32 letters (any script), digits, '_' and '-'";

/// A room name as typed (`#Rust`), NFKC-normalized, if it keeps [`ROOM_RULE`].
pub fn room_name(typed: &str) -> Option<String> {
    let name = crate::store::users::normalize(typed);
    let rest = name.strip_prefix('#')?;
    let n = rest.chars().count();
    ((1..=MAX_ROOM_CHARS).contains(&n)
        && rest
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-')))
    .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "alice",
            "Борис",
            "a_b-c.d",
            "x",
            &"n".repeat(32),
            "李小龍",
            "user42",
            "e\u{301}x", // NFKC composes it: "éx"
            "ａｌｉｃｅ",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "a:b",
            &"n".repeat(33),
            "tab\there",
            "/who",
            "a\u{202E}b",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn room_names() {
        for ok in [
            "#lobby",
            "#Rust",
            "#раст",
            "#a_b-c",
            "#x",
            &format!("#{}", "n".repeat(32)),
        ] {
            assert!(room_name(ok).is_some(), "{ok}");
        }
        assert_eq!(room_name("#ｒｕｓｔ").as_deref(), Some("#rust"));
        for bad in [
            "lobby",
            "#",
            "##x",
            "#a b",
            "#a.b",
            &format!("#{}", "n".repeat(33)),
            "#a\u{202E}",
        ] {
            assert!(room_name(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn clean_strips_controls_and_escape_sequences() {
        assert_eq!(clean("plain text"), "plain text");
        assert_eq!(clean("tab\tkept"), "tab\tkept");
        assert_eq!(clean("\u{1b}[2J\u{1b}[1;31mred\u{1b}[0m"), "red");
        assert_eq!(clean("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(
            clean("a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b"),
            "alinkb"
        );
        assert_eq!(clean("bell\u{7}\u{8}del\u{7f}"), "belldel");
        assert_eq!(clean("c1\u{9b}31mcsi\u{85}nel"), "c1csinel");
        assert_eq!(clean("esc\u{1b}cchar"), "escchar");
        assert_eq!(clean("\u{1b}[2J  \u{7}"), "");
        assert_eq!(clean("Привет, мир"), "Привет, мир");
        assert_eq!(
            clean("a\u{202E}b\u{2066}c\u{2069}\u{200E}\u{200F}\u{61C}d"),
            "abcd"
        );
        // Joiners stay: a family emoji is three code points joined by ZWJ.
        assert_eq!(clean("👩\u{200D}👧"), "👩\u{200D}👧");
    }

    #[test]
    fn quotes_are_clean_and_short() {
        assert_eq!(quote("bad\u{1b}[31mname"), "badname");
        assert_eq!(quote(&"x".repeat(40)), format!("{}…", "x".repeat(32)));
    }

    #[test]
    fn history_fits_its_budget_by_dropping_the_oldest() {
        let msgs: Vec<Message> = (0..3)
            .map(|i| Message {
                id: i,
                created_at: "2026-11-24T14:33:53Z".into(),
                author_id: None,
                author_name: "a".into(),
                recipient: None,
                room: None,
                kind: Kind::Say,
                body: format!("m{i}"),
                removed: false,
            })
            .collect();
        let line = chat_line(&msgs[0], true).len();
        let all = history_lines(&msgs, 3 * line, Ids::default());
        assert_eq!(all.matches("] a: m").count(), 3);
        let two = history_lines(&msgs, 2 * line + 1, Ids::default());
        assert!(two.starts_with("* 1 older message(s) left out"), "{two}");
        assert!(!two.contains("m0") && two.contains("m1") && two.ends_with("m2\r\n"));
        let mut in_rust = msgs[0].clone();
        in_rust.room = Some((2, "#rust".into()));
        assert_eq!(
            found_lines(&[in_rust], 1000, Ids::default()),
            "[2026-11-24 14:33:53] #rust a: m0\r\n"
        );
    }

    #[test]
    fn ids_go_in_front_as_asked() {
        let m = Message {
            id: 42,
            created_at: "2026-11-24T14:33:53Z".into(),
            author_id: None,
            author_name: "a".into(),
            recipient: None,
            room: None,
            kind: Kind::Say,
            body: "hi".into(),
            removed: false,
        };
        let ms = std::slice::from_ref(&m);
        let line = "[2026-11-24 14:33:53] a: hi\r\n";
        assert_eq!(history_lines(ms, 100, Ids::default()), line);
        let shown = Ids {
            shown: true,
            hidden: false,
        };
        assert_eq!(history_lines(ms, 100, shown), format!("#42 {line}"));
        let hidden = Ids {
            shown: false,
            hidden: true,
        };
        assert_eq!(found_lines(ms, 100, hidden), format!("\u{1}42 {line}"));
        let both = Ids {
            shown: true,
            hidden: true,
        };
        assert_eq!(
            found_in_context(&[vec![m.clone()]], &[42], 100, both),
            format!("\u{1}42 > #42 {line}")
        );
    }

    #[test]
    fn chat_lines() {
        let mut m = Message {
            id: 1,
            created_at: "2026-11-24T14:33:53Z".into(),
            author_id: Some(1),
            author_name: "alice".into(),
            recipient: None,
            room: Some((1, "#lobby".into())),
            kind: Kind::Say,
            body: "hi".into(),
            removed: false,
        };
        assert_eq!(chat_line(&m, false), "[14:33:53] alice: hi\r\n");
        assert_eq!(chat_line(&m, true), "[2026-11-24 14:33:53] alice: hi\r\n");
        m.kind = Kind::Me;
        assert_eq!(chat_line(&m, false), "[14:33:53] * alice hi\r\n");
        m.recipient = Some((2, "bob".into()));
        assert_eq!(chat_line(&m, false), "[14:33:53] alice -> bob: hi\r\n");
    }
}
