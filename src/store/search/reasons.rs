//! Why the engine could not read a search's words, in the user's words.

use crate::error::Error;

/// Why the engine could not read `query`, in the user's words; `None` if `e` is a real
/// database failure. The statement around the query is fixed (and tested), so an error that
/// only a query can cause is the query's fault.
pub(super) fn not_a_query(e: &Error, query: &str) -> Option<String> {
    match e {
        // FTS5 reports every query error as SQLITE_ERROR with one of these texts (checked in
        // the tests below); a busy, full or corrupt database has other codes.
        Error::Db(rusqlite::Error::SqliteFailure(f, Some(text)))
            if f.extended_code == rusqlite::ffi::SQLITE_ERROR =>
        {
            fts5_reason(text, query)
        }
        // websearch_to_tsquery reads any text, but has limits: a NUL byte (22021), a query
        // over 1 MB (54000, "value is too big in tsquery"), or so many words that its parser
        // runs out of stack (54001).
        Error::Pg(p) => match p.code().map(|c| c.code()) {
            Some("22021") => Some("it contains a character that cannot be searched for".into()),
            Some("54000" | "54001") => Some("it is too long".into()),
            _ => None,
        },
        _ => None,
    }
}

/// Words, "a phrase", OR, NOT, pre*: FTS5's syntax, in one line.
const FTS5_SYNTAX: &str = "use words, \"a phrase\", OR, NOT, or pre*";

/// FTS5's error text, told as what is wrong with the query; `None` if it is no query error.
fn fts5_reason(text: &str, query: &str) -> Option<String> {
    if text == "unterminated string" {
        return Some("a quote (\") is not closed".into());
    }
    if let Some(near) = text
        .strip_prefix("fts5: syntax error near \"")
        .and_then(|t| t.strip_suffix('"'))
    {
        // Near "": the query ended where FTS5 wanted more; its last word is to blame.
        let ended = near.is_empty();
        let culprit = if ended {
            query.split_whitespace().last().unwrap_or("")
        } else {
            near
        };
        let unclosed = query.matches('(').count() > query.matches(')').count();
        return Some(match culprit {
            "AND" | "OR" | "NOT" => format!("{culprit} needs a word on each side"),
            _ if ended && unclosed => "a bracket \"(\" is not closed".into(),
            "" => format!("it is empty; {FTS5_SYNTAX}"),
            _ if ended => format!("it ends too soon; {FTS5_SYNTAX}"),
            // A punctuation mark, as FTS5 quotes it (cut, should it ever quote more).
            mark => format!(
                "\"{}\" cannot stand outside quotes; put words with punctuation in \"quotes\"",
                mark.chars().take(8).collect::<String>()
            ),
        });
    }
    // `word:` and `-word` are FTS5's column filters, and messages have one column.
    if text.starts_with("no such column: ") {
        return Some(
            "\":\" and \"-\" filter by column here; put words with them in \"quotes\"".into(),
        );
    }
    if text.starts_with("unknown special query: ") {
        return Some("\"*\" goes at the end of a word (pre*)".into());
    }
    if text.starts_with("expected integer, got ") {
        return Some("NEAR(a b, N) wants a number for N".into());
    }
    if text == "fts5: parser stack overflow" {
        return Some("it has too many brackets inside each other".into());
    }
    // Any other FTS5 complaint: still the query's fault, said without FTS5's words.
    text.starts_with("fts5: ")
        .then(|| format!("the search engine cannot read it; {FTS5_SYNTAX}"))
}
