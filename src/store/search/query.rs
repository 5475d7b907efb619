//! What a search is given, as typed to `/search` or `besedka search`: words and "phrases" for
//! the full-text engine, and filters, `from:NAME`, `in:#ROOM` (or a bare `#ROOM`),
//! `before:DATE` and `after:DATE`. Read here, without the database; the names are looked up
//! by [`super::search`].

/// A search, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// The words and "phrases", as typed, for the engine; empty when only filters are given.
    pub words: String,
    /// `from:NAME`: lines by this user.
    pub from: Option<String>,
    /// `in:#ROOM`: public lines of this room, with its `#`.
    pub room: Option<String>,
    /// `before:DATE`: lines said before this instant (`2026-12-01T10:00:00Z`, UTC).
    pub before: Option<String>,
    /// `after:DATE`: lines said at or after this instant.
    pub after: Option<String>,
}

/// The filters, for the messages that name them.
const FILTERS: &str = "from:NAME, in:#ROOM, before:DATE and after:DATE";
/// The dates a filter takes.
pub const DATE_FORMS: &str = "2026-12-01 or 2026-12-01T10:00 (UTC)";

impl Query {
    /// Reads `text`; the reason it cannot be read otherwise, in the user's words.
    pub fn parse(text: &str) -> Result<Query, String> {
        let mut q = Query::default();
        let mut words: Vec<&str> = Vec::new();
        for token in tokens(text) {
            // A bare #room: the form `/search TEXT #ROOM` took before filters.
            if let Some(room) = token.strip_prefix('#').filter(|r| !r.is_empty()) {
                set(&mut q.room, "in", format!("#{room}"))?;
                continue;
            }
            let Some((name, value)) = filter(token) else {
                words.push(token);
                continue;
            };
            if value.is_empty() {
                return Err(format!("{name}: needs a value, as in {FILTERS}"));
            }
            match name.to_lowercase().as_str() {
                "from" => set(&mut q.from, "from", value.to_string())?,
                "in" => {
                    let room = match value.starts_with('#') {
                        true => value.to_string(),
                        false => format!("#{value}"),
                    };
                    set(&mut q.room, "in", room)?
                }
                "before" => set(&mut q.before, "before", instant(value)?)?,
                "after" => set(&mut q.after, "after", instant(value)?)?,
                _ => {
                    return Err(format!(
                        "there is no filter \"{name}:\"; the filters are {FILTERS} \
                         (put words with \":\" in \"quotes\")"
                    ))
                }
            }
        }
        prefixes(&words)?;
        q.words = words.join(" ");
        if let (Some(after), Some(before)) = (&q.after, &q.before) {
            if after >= before {
                return Err(format!(
                    "after:{} is not earlier than before:{}",
                    shown(after),
                    shown(before)
                ));
            }
        }
        if q.words.is_empty() && q == Query::default() {
            return Err("it is empty; give words, \"a phrase\" or a filter".into());
        }
        Ok(q)
    }

    /// Whether there are words for the engine (without, the filters alone choose the lines).
    pub fn has_words(&self) -> bool {
        !self.words.is_empty()
    }
}

/// Letters a prefix (`word*`) needs at least, and prefixes a search may have at most: the
/// engine gathers every word a prefix matches before the first line comes out, so `a*` or a
/// dozen short prefixes cost in proportion to the whole history; `lor*` costs little.
pub const MIN_PREFIX: usize = 3;
pub const MAX_PREFIXES: usize = 3;

/// Checks the prefixes among the words (outside "phrases").
fn prefixes(words: &[&str]) -> Result<(), String> {
    let mut n = 0;
    for w in words.iter().filter(|w| !w.starts_with('"')) {
        let Some(stem) = w.strip_suffix('*') else {
            continue;
        };
        n += 1;
        let stem = stem.trim_start_matches(['(', '-', '+', '^']);
        if stem.chars().count() < MIN_PREFIX {
            return Err(format!(
                "{w} is too short a prefix; give at least {MIN_PREFIX} letters before the *"
            ));
        }
    }
    if n > MAX_PREFIXES {
        return Err(format!(
            "it has {n} prefixes (word*); {MAX_PREFIXES} at most"
        ));
    }
    Ok(())
}

/// Sets a filter given once; a second one is an error.
fn set(slot: &mut Option<String>, name: &str, value: String) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{name}: is given twice; give it once"));
    }
    *slot = Some(value);
    Ok(())
}

/// The words of `text`: split at white space outside double quotes, so a "phrase with
/// spaces" (or `from:x` inside one) stays one word. An unclosed quote runs to the end, and
/// the engine says so.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && !quoted {
            if let Some(s) = start.take() {
                out.push(&text[s..i]);
            }
            continue;
        }
        start.get_or_insert(i);
        if c == '"' {
            quoted = !quoted;
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

/// `name:value` when a word starts with letters and a colon (outside quotes): a filter.
fn filter(token: &str) -> Option<(&str, &str)> {
    let (name, value) = token.split_once(':')?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic())).then_some((name, value))
}

/// A date as the instant it names, `2026-12-01T10:00:00Z` (the stored times' form, so text
/// order is time order). Takes `2026-12-01`, `2026-12-01T10:00`, `2026-12-01T10:00:00`,
/// with or without a final `Z`; all UTC.
fn instant(value: &str) -> Result<String, String> {
    let bad = || format!("\"{value}\" is not a date; use {DATE_FORMS}");
    let v = value.strip_suffix(['Z', 'z']).unwrap_or(value);
    let (date, time) = match v.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (v, None),
    };
    let num = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, dd] = d[..] else { return Err(bad()) };
    let (y, m, dd) = match (num(y, 4), num(m, 2), num(dd, 2)) {
        (Some(y), Some(m), Some(d)) => (y, m, d),
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&m) || dd == 0 || dd > days_in(y, m) {
        return Err(bad());
    }
    let (h, mi, s) = match time {
        None => (0, 0, 0),
        Some(t) => {
            let t: Vec<&str> = t.split(':').collect();
            let parsed = match t[..] {
                [h, mi] => num(h, 2).zip(num(mi, 2)).map(|(h, mi)| (h, mi, 0)),
                [h, mi, s] => num(h, 2)
                    .zip(num(mi, 2))
                    .zip(num(s, 2))
                    .map(|((h, mi), s)| (h, mi, s)),
                _ => None,
            };
            match parsed {
                Some((h, mi, s)) if h < 24 && mi < 60 && s < 60 => (h, mi, s),
                _ => return Err(bad()),
            }
        }
    };
    Ok(format!("{y:04}-{m:02}-{dd:02}T{h:02}:{mi:02}:{s:02}Z"))
}

fn days_in(y: u32, m: u32) -> u32 {
    match m {
        2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An instant as a user would type it back: `2026-12-01` at midnight, else to the minute
/// or second.
fn shown(at: &str) -> &str {
    at.strip_suffix("T00:00:00Z")
        .or_else(|| at.strip_suffix(":00Z"))
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_phrases_and_filters_are_told_apart() {
        let q = Query::parse(
            "rust \"from:x in a phrase\" from:Bob in:dev after:2026-12-01 before:2026-12-01T10:00",
        )
        .unwrap();
        assert_eq!(q.words, "rust \"from:x in a phrase\"");
        assert_eq!(q.from.as_deref(), Some("Bob"));
        assert_eq!(q.room.as_deref(), Some("#dev"));
        assert_eq!(q.after.as_deref(), Some("2026-12-01T00:00:00Z"));
        assert_eq!(q.before.as_deref(), Some("2026-12-01T10:00:00Z"));
        let q = Query::parse("whale #Sea").unwrap();
        assert_eq!(
            (q.words.as_str(), q.room.as_deref()),
            ("whale", Some("#Sea"))
        );
        let q = Query::parse("FROM:alice").unwrap();
        assert!(!q.has_words() && q.from.as_deref() == Some("alice"));
        assert_eq!(
            Query::parse("after:2024-02-29T23:59:59Z").unwrap().after,
            Some("2024-02-29T23:59:59Z".into())
        );
        // An unclosed quote is the engine's to report.
        assert_eq!(
            Query::parse("\"open from:x").unwrap().words,
            "\"open from:x"
        );
    }

    #[test]
    fn bad_filters_and_dates_are_told_in_words() {
        let forms = DATE_FORMS;
        for (text, why) in [
            (
                "x body:y",
                "there is no filter \"body:\"; the filters are from:NAME, in:#ROOM, \
                 before:DATE and after:DATE (put words with \":\" in \"quotes\")"
                    .to_string(),
            ),
            (
                "x from:",
                "from: needs a value, as in from:NAME, in:#ROOM, before:DATE and after:DATE".into(),
            ),
            ("from:a from:b", "from: is given twice; give it once".into()),
            ("x #a in:#b", "in: is given twice; give it once".into()),
            (
                "x before:2026-13-01",
                format!("\"2026-13-01\" is not a date; use {forms}"),
            ),
            (
                "x after:2023-02-29",
                format!("\"2023-02-29\" is not a date; use {forms}"),
            ),
            (
                "x after:yesterday",
                format!("\"yesterday\" is not a date; use {forms}"),
            ),
            (
                "x before:2026-12-01T24:00",
                format!("\"2026-12-01T24:00\" is not a date; use {forms}"),
            ),
            (
                "x after:2026-12-02 before:2026-12-01T10:00",
                "after:2026-12-02 is not earlier than before:2026-12-01T10:00".into(),
            ),
            (
                "   ",
                "it is empty; give words, \"a phrase\" or a filter".into(),
            ),
        ] {
            assert_eq!(Query::parse(text), Err(why), "{text:?}");
        }
    }
}
