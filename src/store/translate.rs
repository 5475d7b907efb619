//! A statement written in SQLite's dialect, as PostgreSQL takes it: `?N` parameters become
//! `$N`, and SQLite's index hints (`INDEXED BY name`, `NOT INDEXED`) are left out
//! (PostgreSQL's planner picks its own). Quoted text (`'…'`, `"…"`) and comments (`-- …`,
//! `/* … */`) are copied as they are: a `?` in them is not a parameter.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// Where the reader is in a statement.
#[derive(Clone, Copy, PartialEq, Eq)]
enum In {
    Code,
    /// `'…'` text; `''` inside reads as leaving and entering again, which copies it whole.
    Text,
    /// `"…"`, a quoted name.
    Name,
    /// `-- …` to the end of the line.
    Line,
    /// `/* … */`, nested as PostgreSQL nests them: how deep.
    Block(u32),
}

/// `sql` for PostgreSQL. A bare `?` (SQLite's next-parameter) is refused: PostgreSQL's
/// parameters are numbered, and guessing the number would hide a statement's bug.
pub(super) fn to_pg(sql: &str) -> Result<Cow<'_, str>> {
    if !sql.contains('?') && !sql.contains("INDEXED") {
        return Ok(Cow::Borrowed(sql));
    }
    let b = sql.as_bytes();
    // Bytes, copied whole: only ASCII is ever changed or dropped, so the text stays UTF-8.
    let mut out = Vec::with_capacity(b.len());
    let mut state = In::Code;
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let c = b[i];
        match state {
            In::Code => {
                if let Some(skip) = hint(rest) {
                    i += skip;
                    continue;
                }
                match c {
                    b'\'' => state = In::Text,
                    b'"' => state = In::Name,
                    b'-' if rest.starts_with(b"--") => state = In::Line,
                    b'/' if rest.starts_with(b"/*") => {
                        out.extend_from_slice(b"/*");
                        i += 2;
                        state = In::Block(1);
                        continue;
                    }
                    b'?' => {
                        let digits = rest[1..].iter().take_while(|d| d.is_ascii_digit()).count();
                        if digits == 0 {
                            return Err(Error::Unsupported(
                                "a bare ? parameter in a statement (number it: ?1, ?2, …)",
                            ));
                        }
                        out.push(b'$');
                        i += 1;
                        continue;
                    }
                    _ => {}
                }
            }
            In::Text if c == b'\'' => state = In::Code,
            In::Name if c == b'"' => state = In::Code,
            In::Line if c == b'\n' => state = In::Code,
            In::Block(depth) if rest.starts_with(b"*/") || rest.starts_with(b"/*") => {
                let closes = rest.starts_with(b"*/");
                out.extend_from_slice(&b[i..i + 2]);
                i += 2;
                state = match (closes, depth) {
                    (true, 1) => In::Code,
                    (true, d) => In::Block(d - 1),
                    (false, d) => In::Block(d + 1),
                };
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    // Only whole UTF-8 sequences were copied, and only ASCII left out.
    Ok(Cow::Owned(String::from_utf8(out).unwrap_or_else(|e| {
        String::from_utf8_lossy(e.as_bytes()).into()
    })))
}

/// How many bytes of SQLite's index hint start `rest` (` NOT INDEXED`, ` INDEXED BY name`).
fn hint(rest: &[u8]) -> Option<usize> {
    if rest.starts_with(b" NOT INDEXED") {
        return Some(b" NOT INDEXED".len());
    }
    let name = rest.strip_prefix(b" INDEXED BY ")?;
    let len = name
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    Some(b" INDEXED BY ".len() + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(sql: &str) -> String {
        to_pg(sql).unwrap().into_owned()
    }

    #[test]
    fn index_hints_are_left_out() {
        assert_eq!(
            pg("SELECT id FROM messages INDEXED BY messages_room WHERE a = ?1"),
            "SELECT id FROM messages WHERE a = $1"
        );
        assert_eq!(
            pg("SELECT 1 FROM messages m NOT INDEXED WHERE 1"),
            "SELECT 1 FROM messages m WHERE 1"
        );
        assert_eq!(
            pg("SELECT ' INDEXED BY x', 1 -- NOT INDEXED ?\n FROM t INDEXED BY x_y"),
            "SELECT ' INDEXED BY x', 1 -- NOT INDEXED ?\n FROM t"
        );
    }

    #[test]
    fn parameters_become_dollars_outside_quotes_and_comments() {
        assert_eq!(
            pg("SELECT ?1, '?', ?12 WHERE a = '?x' AND b = 'it''s ?'"),
            "SELECT $1, '?', $12 WHERE a = '?x' AND b = 'it''s ?'"
        );
        assert_eq!(
            pg(r#"SELECT "odd?name" FROM t WHERE x = ?2"#),
            r#"SELECT "odd?name" FROM t WHERE x = $2"#
        );
        assert_eq!(
            pg("SELECT ?1 -- is it? yes\n, ?2 /* a ? /* nested ? */ still ? */ , ?3"),
            "SELECT $1 -- is it? yes\n, $2 /* a ? /* nested ? */ still ? */ , $3"
        );
        assert_eq!(pg("SELECT 'é?', ?1 -- ж?"), "SELECT 'é?', $1 -- ж?");
        assert!(matches!(to_pg("SELECT 1"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn a_bare_question_mark_is_refused() {
        for sql in [
            "SELECT ? FROM t",
            "SELECT ?1, ? FROM t",
            "SELECT a FROM t WHERE b = ?",
            "SELECT '?' -- ?\n WHERE a = ?",
            "SELECT 1 /* ? */ WHERE a = ?a",
        ] {
            let err = to_pg(sql).unwrap_err().to_string();
            assert!(err.contains("a bare ? parameter"), "{sql}: {err}");
        }
        // Inside text or a comment it is only a character.
        assert!(to_pg("SELECT '?' -- ?\n /* ? */").is_ok());
    }
}
