//! The lines an SSH session sent, for Up and Down in the line editor ([`super::editor`]).
//!
//! Bounded twice, by lines and by bytes, since every SSH session keeps its own: a hundred
//! lines of the longest `--max-line` would be 200 KiB a session. Only lines typed with the
//! echo on are kept (the editor never hands it a password).

use std::collections::VecDeque;

/// Lines kept per session.
pub const MAX_LINES: usize = 100;

/// Bytes kept per session, all lines together; the oldest go first.
pub const MAX_BYTES: usize = 16 * 1024;

/// Earlier lines, oldest first, and where Up and Down are among them.
#[derive(Debug, Default)]
pub struct History {
    lines: VecDeque<String>,
    bytes: usize,
    /// The line shown, while browsing (an index into `lines`).
    at: Option<usize>,
    /// The unfinished line the user was typing when they pressed Up, given back when Down
    /// goes past the newest line.
    draft: String,
}

impl History {
    /// Keeps a line that was sent; ends browsing. Empty lines, and a repeat of the newest,
    /// are not kept (Up would only show the same line twice).
    pub fn push(&mut self, line: &str) {
        self.stop();
        if line.is_empty() || self.lines.back().is_some_and(|l| l == line) {
            return;
        }
        self.bytes += line.len();
        self.lines.push_back(line.to_string());
        while self.lines.len() > MAX_LINES || self.bytes > MAX_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len(),
                None => break,
            }
        }
    }

    /// The line was edited (or sent, or given up): it is the user's own again, and the
    /// next Up starts from the newest line.
    pub fn stop(&mut self) {
        self.at = None;
        self.draft.clear();
    }

    /// Up: the line before the one shown, or `None` at the oldest (nothing changes). The
    /// first Up keeps `current` to give back later.
    pub fn up(&mut self, current: &str) -> Option<&str> {
        let i = match self.at {
            None if self.lines.is_empty() => return None,
            None => {
                self.draft = current.to_string();
                self.lines.len() - 1
            }
            Some(0) => return None,
            Some(i) => i - 1,
        };
        self.at = Some(i);
        self.lines.get(i).map(String::as_str)
    }

    /// Down: the line after the one shown, past the newest the line kept at the first Up;
    /// `None` when not browsing (nothing changes).
    pub fn down(&mut self) -> Option<String> {
        let i = self.at?;
        if i + 1 < self.lines.len() {
            self.at = Some(i + 1);
            return self.lines.get(i + 1).cloned();
        }
        let draft = std::mem::take(&mut self.draft);
        self.stop();
        Some(draft)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_and_down_walk_the_lines_and_give_back_the_draft() {
        let mut h = History::default();
        assert_eq!(h.up("x"), None, "nothing yet");
        assert_eq!(h.down(), None);
        h.push("one");
        h.push("two");
        h.push("two"); // a repeat is one entry
        h.push("");
        assert_eq!(h.up("draft"), Some("two"));
        assert_eq!(h.up("two"), Some("one"));
        assert_eq!(h.up("one"), None, "the oldest");
        assert_eq!(h.down().as_deref(), Some("two"));
        assert_eq!(h.down().as_deref(), Some("draft"));
        assert_eq!(h.down(), None, "back at the draft: nothing below");
    }

    #[test]
    fn it_is_bounded_by_lines_and_by_bytes() {
        let mut h = History::default();
        for i in 0..MAX_LINES + 10 {
            h.push(&i.to_string());
        }
        assert_eq!(h.lines.len(), MAX_LINES);
        assert_eq!(h.lines.front().map(String::as_str), Some("10"));
        // Four fit (with their first letter, 4 bytes under the bound); a fifth pushes one out.
        let long = "x".repeat(MAX_BYTES / 4 - 2);
        for c in ['a', 'b', 'c', 'd', 'e'] {
            h.push(&format!("{c}{long}"));
        }
        assert!(h.bytes <= MAX_BYTES, "{}", h.bytes);
        assert_eq!(h.bytes, h.lines.iter().map(String::len).sum::<usize>());
        assert!(h.lines.front().is_some_and(|l| l.starts_with('b')));
    }
}
