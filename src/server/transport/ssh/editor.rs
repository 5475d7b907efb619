//! Line editing for SSH clients, on the server's side.
//!
//! An SSH client's terminal is in raw mode: every key comes to the server as it is typed,
//! and nothing is shown unless the server echoes it. The editor sits between the SSH channel
//! and the session (which speaks the telnet line protocol, as for every transport):
//!
//! - keys in: printable text is added to the line and echoed; Backspace removes one character
//!   (a whole UTF-8 character: one Cyrillic letter, one press); Ctrl-U clears the line;
//!   Enter sends it; Ctrl-C, and Ctrl-D on an empty line, send `/quit`; Up and Down recall
//!   the session's earlier lines ([`History`]: those typed with the echo on, so never a
//!   password), the line being typed kept for when Down comes back to it; other escape
//!   sequences (Left, Right, Ctrl-Up…) are dropped.
//! - lines out: the line being typed (and the prompt it follows) is erased, the incoming text
//!   written, and the prompt and typed text drawn again below it, so incoming chat never
//!   tears what the user is writing.
//! - passwords: the session asks telnet clients to stop echoing (`IAC WILL ECHO`) before a
//!   password prompt and to echo again after (`IAC WONT ECHO`); the editor acts as that telnet
//!   client, so a password is never echoed. It says it speaks telnet at the start
//!   ([`Editor::hello`]), and drops every other telnet command from the output.

use super::history::History;
use crate::server::telnet::{BINARY, DO, DONT, ECHO, IAC, SB, SE, WILL, WONT};

/// Erases the terminal's current line: carriage return, then erase to the end of the line.
const ERASE_LINE: &[u8] = b"\r\x1b[K";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Text,
    /// After ESC.
    Esc,
    /// Inside a CSI or SS3 sequence (after `ESC [` or `ESC O`), until its final byte; true
    /// while no parameter came (Up is `ESC [ A`; `ESC [ 1 ; 5 A`, Ctrl-Up, is not).
    Seq(bool),
    /// After a carriage return: a following `\n` or `\0` belongs to it.
    AfterCr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    Text,
    Iac,
    /// `IAC WILL|WONT|DO|DONT`, waiting for the option.
    Option(u8),
    /// Inside `IAC SB … IAC SE`.
    Sub,
    SubIac,
}

pub struct Editor {
    /// What the user has typed of the current line.
    line: String,
    /// Bytes of a character not yet complete (UTF-8 split across packets).
    partial: Vec<u8>,
    /// The session's current unfinished output line (a prompt such as `Name: `), shown
    /// below incoming lines until the user presses Enter.
    prompt: Vec<u8>,
    /// Output after the last line end, not shown yet: the start of a line whose rest is in
    /// the next read, or, if nothing follows for a moment, a prompt ([`Editor::settle`]).
    pending: Vec<u8>,
    /// Typed text is shown (false while a password is asked for).
    echo: bool,
    key: Key,
    out: Out,
    /// Longest line accepted; more keys are refused with a bell.
    max_line: usize,
    /// The lines sent, for Up and Down.
    history: History,
}

/// What one step of the editor produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// To the session (complete lines, `\r\n`-terminated).
    pub session: Vec<u8>,
    /// To the user's terminal.
    pub terminal: Vec<u8>,
}

impl Editor {
    pub fn new(max_line: usize) -> Editor {
        Editor {
            line: String::new(),
            partial: Vec::new(),
            prompt: Vec::new(),
            pending: Vec::new(),
            echo: true,
            key: Key::Text,
            out: Out::Text,
            max_line,
            history: History::default(),
        }
    }

    /// What the editor sends the session first: it is a telnet client that agrees to binary
    /// mode, so the session treats it as one (and asks it to stop echoing for passwords).
    pub fn hello() -> &'static [u8] {
        &[IAC, DO, BINARY, IAC, WILL, BINARY]
    }

    /// Keys typed by the user.
    pub fn keys(&mut self, bytes: &[u8]) -> Step {
        let mut step = Step::default();
        for &b in bytes {
            match (self.key, b) {
                (Key::Esc, b'[' | b'O') => self.key = Key::Seq(true),
                (Key::Esc, _) => self.key = Key::Text,
                (Key::Seq(plain), 0x40..=0x7e) => {
                    self.key = Key::Text;
                    match b {
                        b'A' if plain => self.recall(true, &mut step.terminal),
                        b'B' if plain => self.recall(false, &mut step.terminal),
                        _ => {}
                    }
                }
                (Key::Seq(_), _) => self.key = Key::Seq(false),
                (Key::AfterCr, b'\n' | 0) => self.key = Key::Text,
                (_, b'\r' | b'\n') => {
                    self.key = if b == b'\r' { Key::AfterCr } else { Key::Text };
                    self.enter(&mut step);
                }
                (_, 0x1b) => self.key = Key::Esc,
                (_, 0x03) => self.quit(&mut step),
                (_, 0x04) if self.line.is_empty() => self.quit(&mut step),
                (_, 0x7f | 0x08) => {
                    self.key = Key::Text;
                    self.partial.clear();
                    self.history.stop();
                    if self.line.pop().is_some() && self.echo {
                        step.terminal.extend_from_slice(b"\x08 \x08");
                    }
                }
                (_, 0x15) => {
                    self.key = Key::Text;
                    self.line.clear();
                    self.partial.clear();
                    self.history.stop();
                    self.redraw(&mut step.terminal);
                }
                (_, 0x00..=0x1f) => self.key = Key::Text, // other controls: ignored
                (_, _) => {
                    self.key = Key::Text;
                    self.partial.push(b);
                    match std::str::from_utf8(&self.partial) {
                        Ok(c) => {
                            if self.line.len() + c.len() > self.max_line {
                                step.terminal.push(0x07);
                            } else {
                                self.history.stop();
                                self.line.push_str(c);
                                if self.echo {
                                    step.terminal.extend_from_slice(c.as_bytes());
                                }
                            }
                            self.partial.clear();
                        }
                        Err(e) if e.error_len().is_some() || self.partial.len() >= 4 => {
                            self.partial.clear(); // not UTF-8: dropped
                        }
                        Err(_) => {} // incomplete: wait for the rest
                    }
                }
            }
        }
        step
    }

    fn enter(&mut self, step: &mut Step) {
        step.session.extend_from_slice(self.line.as_bytes());
        step.session.extend_from_slice(b"\r\n");
        // After a password the session ends the line itself (it does for telnet clients,
        // whose Enter it asked not to echo).
        if self.echo {
            step.terminal.extend_from_slice(b"\r\n");
            self.history.push(&self.line);
        } else {
            self.history.stop(); // a password is neither kept nor replaced by a recall
        }
        self.line.clear();
        self.partial.clear();
        self.prompt.clear();
    }

    fn quit(&mut self, step: &mut Step) {
        self.line.clear();
        step.terminal.extend_from_slice(b"\r\n");
        step.session.extend_from_slice(b"/quit\r\n");
        self.prompt.clear();
    }

    /// Up (`back`) or Down: the earlier or later line in place of the one typed, or a bell
    /// when there is none (or the echo is off: a password is typed blind, with no recall).
    fn recall(&mut self, back: bool, terminal: &mut Vec<u8>) {
        let line = match (self.echo, back) {
            (false, _) => None,
            (true, true) => self.history.up(&self.line).map(str::to_string),
            (true, false) => self.history.down(),
        };
        match line {
            Some(line) => {
                self.line = line;
                self.partial.clear();
                self.redraw(terminal);
            }
            None => terminal.push(0x07),
        }
    }

    /// Erases the current terminal line and draws the prompt and the typed text again.
    fn redraw(&self, terminal: &mut Vec<u8>) {
        terminal.extend_from_slice(ERASE_LINE);
        terminal.extend_from_slice(&self.prompt);
        if self.echo {
            terminal.extend_from_slice(self.line.as_bytes());
        }
    }

    /// Output from the session: returns what to write to the terminal.
    pub fn output(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut text = Vec::with_capacity(bytes.len());
        for &b in bytes {
            self.out = match (self.out, b) {
                (Out::Text, IAC) => Out::Iac,
                (Out::Text, _) => {
                    text.push(b);
                    Out::Text
                }
                (Out::Iac, IAC) => {
                    text.push(IAC);
                    Out::Text
                }
                (Out::Iac, WILL | WONT | DO | DONT) => Out::Option(b),
                (Out::Iac, SB) => Out::Sub,
                (Out::Iac, _) => Out::Text,
                (Out::Option(cmd), opt) => {
                    if opt == ECHO {
                        // The session will echo (it won't: it means "you stop echoing").
                        match cmd {
                            WILL => self.echo = false,
                            WONT => self.echo = true,
                            _ => {}
                        }
                    }
                    Out::Text
                }
                (Out::Sub, IAC) => Out::SubIac,
                (Out::Sub, _) => Out::Sub,
                (Out::SubIac, SE) => Out::Text,
                (Out::SubIac, _) => Out::Sub,
            };
        }
        self.pending.extend_from_slice(&text);
        match self.pending.iter().rposition(|&b| b == b'\n') {
            Some(end) => {
                let tail = self.pending.split_off(end + 1);
                let lines = std::mem::replace(&mut self.pending, tail);
                self.draw(&lines)
            }
            None => Vec::new(),
        }
    }

    /// Whether output waits for the rest of its line (or to be taken for a prompt).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Nothing more came for a moment: the unfinished output is a prompt (`Name: `). It is
    /// drawn, and kept below incoming lines until the user presses Enter. (Taken for a
    /// prompt at once, the start of a line split across two reads was erased by the rest
    /// of it and drawn again under every later line.)
    pub fn settle(&mut self) -> Vec<u8> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let mut terminal = Vec::with_capacity(self.prompt.len() + self.pending.len() + 16);
        if self.shown() {
            terminal.extend_from_slice(ERASE_LINE);
        }
        self.prompt.append(&mut self.pending);
        terminal.extend_from_slice(&self.prompt);
        if self.echo {
            terminal.extend_from_slice(self.line.as_bytes());
        }
        terminal
    }

    /// Whole lines from the session, written above the prompt and what is being typed,
    /// which are drawn again below them.
    fn draw(&self, lines: &[u8]) -> Vec<u8> {
        let mut terminal = Vec::with_capacity(lines.len() + self.prompt.len() + 16);
        if self.shown() {
            terminal.extend_from_slice(ERASE_LINE);
        }
        terminal.extend_from_slice(lines);
        terminal.extend_from_slice(&self.prompt);
        if self.echo {
            terminal.extend_from_slice(self.line.as_bytes());
        }
        terminal
    }

    /// Something is on the terminal's current line: the prompt, or typed text.
    fn shown(&self) -> bool {
        !self.prompt.is_empty() || (self.echo && !self.line.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(e: &mut Editor, keys: &str) -> Step {
        e.keys(keys.as_bytes())
    }

    #[test]
    fn typed_text_is_echoed_and_sent_on_enter() {
        let mut e = Editor::new(100);
        let s = typed(&mut e, "hi\r");
        assert_eq!(s.terminal, b"hi\r\n");
        assert_eq!(s.session, b"hi\r\n");
        // \r\n from the client is one Enter.
        let s = e.keys(b"a\r\nb\r\n");
        assert_eq!(s.session, b"a\r\nb\r\n");
    }

    #[test]
    fn backspace_removes_a_whole_cyrillic_letter() {
        let mut e = Editor::new(100);
        typed(&mut e, "при");
        let s = e.keys(&[0x7f]);
        assert_eq!(s.terminal, b"\x08 \x08");
        let s = typed(&mut e, "\r");
        assert_eq!(String::from_utf8(s.session).unwrap(), "пр\r\n");
        // A letter split across two packets is one letter.
        let bytes = "ж".as_bytes();
        assert!(e.keys(&bytes[..1]).terminal.is_empty());
        assert_eq!(e.keys(&bytes[1..]).terminal, bytes);
    }

    #[test]
    fn left_and_right_are_dropped_and_ctrl_u_clears() {
        let mut e = Editor::new(100);
        let s = e.keys(b"ab\x1b[D\x1b[Cc\x1bOD\x1b[1;5A");
        assert_eq!(s.terminal, b"abc", "Ctrl-Up (with parameters) is not Up");
        let s = e.keys(&[0x15]);
        assert_eq!(s.terminal, ERASE_LINE);
        assert_eq!(e.keys(b"x\r").session, b"x\r\n");
    }

    #[test]
    fn ctrl_c_and_ctrl_d_on_an_empty_line_quit() {
        let mut e = Editor::new(100);
        assert_eq!(e.keys(&[0x03]).session, b"/quit\r\n");
        let mut e = Editor::new(100);
        assert!(
            e.keys(b"a\x04").session.is_empty(),
            "Ctrl-D mid-line does nothing"
        );
        let mut e = Editor::new(100);
        assert_eq!(e.keys(&[0x04]).session, b"/quit\r\n");
    }

    #[test]
    fn a_line_arriving_mid_typing_keeps_the_typed_text() {
        let mut e = Editor::new(100);
        assert!(e.output(b"Name: ").is_empty(), "not yet: it may be half a line");
        assert_eq!(e.settle(), b"Name: ");
        typed(&mut e, "ali");
        let out = e.output(b"* bob joined\r\n");
        assert_eq!(out, b"\r\x1b[K* bob joined\r\nName: ali");
        assert_eq!(typed(&mut e, "ce\r").session, b"alice\r\n");
    }

    #[test]
    fn passwords_are_not_echoed_and_telnet_commands_are_not_shown() {
        let mut e = Editor::new(100);
        e.output(&[IAC, WILL, ECHO, b'P', b'w', b':', b' ']);
        assert_eq!(e.settle(), b"Pw: ");
        let s = typed(&mut e, "secret\r");
        assert!(s.terminal.is_empty(), "nothing of the password is shown");
        assert_eq!(s.session, b"secret\r\n");
        e.output(&[IAC, WONT, ECHO]);
        assert_eq!(typed(&mut e, "x").terminal, b"x");
        // Split across chunks, and the binary-mode offer.
        assert!(e.output(&[IAC]).is_empty());
        assert!(e.output(&[WILL, BINARY]).is_empty());
    }

    #[test]
    fn a_line_split_across_two_reads_is_drawn_whole_and_leaves_no_prompt() {
        let mut e = Editor::new(100);
        assert_eq!(e.output(b"[06:14:19] bob: hi\r\n[06"), b"[06:14:19] bob: hi\r\n");
        assert!(e.has_pending());
        let out = e.output(b":14:20] i4: i4-93\r\n");
        assert_eq!(out, b"[06:14:20] i4: i4-93\r\n", "no erase, nothing lost");
        assert!(!e.has_pending());
        assert!(e.settle().is_empty());
        // Typed text stays below the lines, with no leftover prompt before it.
        typed(&mut e, "ok");
        assert_eq!(e.output(b"[06:14:21] a: b\r\n"), b"\r\x1b[K[06:14:21] a: b\r\nok");
    }

    /// Up's and Down's keys, as terminals send them (CSI, and SS3 in application mode).
    const UP: &[u8] = b"\x1b[A";
    const DOWN: &[u8] = b"\x1bOB";

    #[test]
    fn up_and_down_recall_earlier_lines_and_keep_the_unfinished_one() {
        let mut e = Editor::new(100);
        assert_eq!(e.output(b"> "), b"");
        assert_eq!(e.settle(), b"> ");
        assert_eq!(e.keys(UP).terminal, b"\x07", "nothing to recall yet");
        typed(&mut e, "first\r");
        typed(&mut e, "second\r");
        typed(&mut e, "draf");
        // Each recall redraws the line: erased, then the prompt and the recalled text.
        assert_eq!(e.keys(UP).terminal, b"\r\x1b[Ksecond");
        assert_eq!(e.keys(UP).terminal, b"\r\x1b[Kfirst");
        assert_eq!(e.keys(UP).terminal, b"\x07", "the oldest");
        assert_eq!(e.keys(DOWN).terminal, b"\r\x1b[Ksecond");
        assert_eq!(e.keys(DOWN).terminal, b"\r\x1b[Kdraf", "the unfinished line is back");
        assert_eq!(e.keys(DOWN).terminal, b"\x07");
        assert_eq!(typed(&mut e, "t\r").session, b"draft\r\n");
        // A recalled line is sent as it is, or edited first (an edit makes it the line typed).
        e.keys(UP);
        e.keys(UP);
        assert_eq!(e.keys(b"\r").session, b"second\r\n");
        e.keys(UP);
        let s = e.keys(b"\x7f!\x1b[A");
        assert_eq!(s.terminal, b"\x08 \x08!\r\x1b[Ksecond", "Up from the edited line");
        assert_eq!(e.keys(DOWN).terminal, b"\r\x1b[Ksecon!");
    }

    #[test]
    fn a_password_is_not_kept_and_up_does_nothing_while_the_echo_is_off() {
        let mut e = Editor::new(100);
        typed(&mut e, "alice\r");
        e.output(&[IAC, WILL, ECHO]);
        let s = e.keys(UP);
        assert_eq!(s.terminal, b"\x07", "no recall into a password");
        assert_eq!(typed(&mut e, "secret\r").session, b"secret\r\n");
        e.output(&[IAC, WONT, ECHO]);
        assert_eq!(e.keys(UP).terminal, b"\r\x1b[Kalice", "the name, not the password");
        assert_eq!(e.keys(UP).terminal, b"\x07");
    }

    #[test]
    fn the_line_length_is_bounded() {
        let mut e = Editor::new(3);
        let s = typed(&mut e, "abcd");
        assert_eq!(s.terminal, b"abc\x07");
        assert_eq!(typed(&mut e, "\r").session, b"abc\r\n");
    }
}
