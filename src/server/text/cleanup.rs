//! What operators, the console and the admin CLI are told about removing lines (`/delete`,
//! `/purge`, `purge-lines`).

use super::super::protocol::quote;

/// What a removal of `n` lines of `author`'s was, as operators are told it:
/// `bob removed 12 lines of alice's (purge, 1h)`, `console removed line #40 of alice's
/// (delete)`.
pub fn removed(by: &str, ids: &[i64], author: &str, what: &str) -> String {
    let lines = match ids {
        [one] => format!("line #{one}"),
        _ => format!("{} lines", ids.len()),
    };
    format!("{by} removed {lines} of {author}'s ({what})")
}

/// What a purge's answer says when it left lines (an operator in chat is shown the answer
/// then, besides the announcement).
pub const MORE_LEFT: &str = "More are left";

/// The console's and the CLI's answer to a purge; `more`: older lines of the period are
/// left (at most `bound` go at once).
pub fn purged(n: usize, author: &str, period: &str, more: Option<u32>) -> String {
    let mut text = format!("Removed {n} line(s) of {author}'s from the last {period}.");
    if let Some(bound) = more {
        text.push_str(&format!(
            " {MORE_LEFT}: at most {bound} go at once; run it again to remove the rest."
        ));
    }
    text
}

pub fn deleted(id: i64, author: &str) -> String {
    format!("Removed line #{id} of {author}'s.")
}

pub fn nothing_to_purge(author: &str, period: &str) -> String {
    format!("{author} has no lines left to remove from the last {period}.")
}

pub fn not_a_line_id(typed: &str) -> String {
    format!(
        "{} is not a line's number: operators see them in /history, /search and /mentions as #1234.",
        quote(typed)
    )
}

pub fn no_such_line(id: i64) -> String {
    format!("There is no line #{id} (never, or older than the history keeps).")
}

pub fn already_removed(id: i64, by: &str) -> String {
    format!("Line #{id} was removed already, by {by}.")
}

pub fn not_a_period(typed: &str) -> String {
    format!(
        "{} is not a period: write e.g. 30m, 2h, 7d (the lines said in it are removed).",
        quote(typed)
    )
}

pub fn operators_line(author: &str) -> String {
    format!("{author} is an operator: only the server console can remove their lines.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_read_as_operators_are_told_them() {
        assert_eq!(
            removed("bob", &[3, 4], "alice", "purge, 1h"),
            "bob removed 2 lines of alice's (purge, 1h)"
        );
        assert_eq!(
            removed("console", &[40], "alice", "delete"),
            "console removed line #40 of alice's (delete)"
        );
        assert!(purged(2, "alice", "1h", Some(10_000)).contains("run it again"));
    }
}
