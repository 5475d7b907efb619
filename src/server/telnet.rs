//! Bytes in, lines out: the only place that knows telnet.
//!
//! A [`LineReader`] turns a client's byte stream into lines. It accepts `\n`, `\r\n`, `\r\0`
//! and a bare `\r` as line ends; consumes telnet commands (`IAC IAC` is a literal 0xFF,
//! 3-byte option negotiation, `IAC SB … IAC SE` subnegotiation) so none reach a name, a
//! password or the chat; and bounds a line's length without buffering the excess.

use std::io::{self, Read};

pub const IAC: u8 = 255;
pub const DONT: u8 = 254;
pub const DO: u8 = 253;
pub const WONT: u8 = 252;
pub const WILL: u8 = 251;
pub const SB: u8 = 250;
pub const SE: u8 = 240;
/// RFC 856 binary transmission: without it inetutils telnet sends typed Cyrillic as commands.
pub const BINARY: u8 = 0;
/// RFC 857 echo: the server "will echo" around password prompts, so the client stops echoing.
pub const ECHO: u8 = 1;

/// Bytes read from the socket at once: a few chat lines. Ten thousand idle clients each hold
/// one, so it is sized for a line, not for bulk input (a longer line just takes more reads).
const READ_BUF: usize = 512;

/// Longest subnegotiation (`IAC SB … IAC SE`) kept track of; past it the rest is taken as
/// data again, so a client that never sends `IAC SE` cannot make the server discard all input.
const MAX_SUB: usize = 512;

/// Sent at connect: we will send and would like to receive 8-bit data.
pub const OFFER: [u8; 6] = [IAC, WILL, BINARY, IAC, DO, BINARY];
/// Before a password prompt: the client stops showing what is typed.
pub const ECHO_OFF: [u8; 3] = [IAC, WILL, ECHO];
/// After the password line: the client echoes again.
pub const ECHO_ON: [u8; 3] = [IAC, WONT, ECHO];

/// One unit of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// A complete line, without its line end. Not yet checked for UTF-8.
    Line(Vec<u8>),
    /// A line longer than the limit; its bytes were discarded up to the line end.
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    /// The previous byte was `\r`: a following `\n` or `\0` belongs to the same line end.
    AfterCr,
    Iac,
    /// `IAC WILL|WONT|DO|DONT`, waiting for the option byte.
    Option(u8),
    /// Inside a subnegotiation, this many bytes in.
    Sub(usize),
    SubIac(usize),
}

/// Reads lines from a client.
pub struct LineReader<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    state: State,
    /// The line being assembled, at most `max_line` bytes.
    line: Vec<u8>,
    max_line: usize,
    /// The current line went past `max_line`; the rest of it is being skipped.
    overflow: bool,
    /// The client has sent a telnet negotiation: it is a telnet client, not `nc`.
    telnet: bool,
    /// Refusals of options we don't support, to be sent by the owner of the write side.
    replies: Vec<u8>,
    /// We offered BINARY at connect, so the client's agreement needs no answer.
    offered: bool,
    /// Options already refused, WILLs (0..256) then DOs (256..512): each is refused once, so
    /// the answers owed to a client are bounded however much it negotiates.
    refused: [u64; 8],
    /// The last line ended in a bare `\n`. inetutils telnet in binary mode does that, and its
    /// local echo then leaves the cursor mid-row; see [`LineReader::needs_cr`].
    bare_lf: bool,
}

impl<R: Read> LineReader<R> {
    /// `offered`: whether the telnet offer ([`OFFER`]) was sent at connect.
    pub fn new(inner: R, max_line: usize, offered: bool) -> Self {
        LineReader {
            inner,
            buf: vec![0; READ_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            state: State::Data,
            line: Vec::new(),
            max_line,
            overflow: false,
            telnet: false,
            replies: Vec::new(),
            offered,
            refused: [0; 8],
            bare_lf: false,
        }
    }

    /// The byte source, to change how it reads (the login deadline).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Whether the client's cursor is likely left mid-row by its own echo of the last line
    /// end (a telnet client that sent a bare `\n`): the owner then sends a `\r`.
    pub fn needs_cr(&self) -> bool {
        self.telnet && self.bare_lf
    }

    /// Whether the client has spoken telnet (answered or sent a negotiation).
    pub fn is_telnet(&self) -> bool {
        self.telnet
    }

    /// The client is a telnet client before it has said so (SSH's line editor, whose first
    /// bytes may still be on their way when the first prompt goes out).
    pub fn assume_telnet(&mut self) {
        self.telnet = true;
    }

    /// Negotiation answers owed to the client; empty for a client that never negotiated.
    pub fn take_replies(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.replies)
    }

    /// The next line, or `None` at end of input. A partial last line is returned as a line.
    pub fn read_line(&mut self) -> io::Result<Option<Input>> {
        loop {
            while self.start < self.end {
                let b = self.buf[self.start];
                self.start += 1;
                if let Some(input) = self.feed(b) {
                    return Ok(Some(input));
                }
            }
            let n = match self.inner.read(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(self.finish_line_at_eof());
            }
            self.start = 0;
            self.end = n;
        }
    }

    fn finish_line_at_eof(&mut self) -> Option<Input> {
        (self.overflow || !self.line.is_empty()).then(|| self.end_line())
    }

    fn end_line(&mut self) -> Input {
        if std::mem::take(&mut self.overflow) {
            self.line.clear();
            Input::TooLong
        } else {
            Input::Line(std::mem::take(&mut self.line))
        }
    }

    fn push(&mut self, b: u8) {
        if self.line.len() < self.max_line {
            self.line.push(b);
        } else {
            self.overflow = true;
        }
    }

    fn feed(&mut self, b: u8) -> Option<Input> {
        match self.state {
            State::AfterCr if b == b'\n' || b == 0 => {
                self.state = State::Data;
                None
            }
            State::Data | State::AfterCr => {
                self.state = State::Data;
                match b {
                    IAC => self.state = State::Iac,
                    b'\r' => {
                        self.state = State::AfterCr;
                        self.bare_lf = false;
                        return Some(self.end_line());
                    }
                    b'\n' => {
                        self.bare_lf = true;
                        return Some(self.end_line());
                    }
                    _ => self.push(b),
                }
                None
            }
            State::Iac => {
                self.state = State::Data;
                match b {
                    IAC => self.push(IAC),
                    WILL | WONT | DO | DONT => self.state = State::Option(b),
                    SB => {
                        self.telnet = true;
                        self.state = State::Sub(0);
                    }
                    _ => {} // NOP, BRK, AO, GA, …: two-byte commands carry nothing for us.
                }
                None
            }
            State::Option(cmd) => {
                self.state = State::Data;
                self.telnet = true;
                self.answer(cmd, b);
                None
            }
            State::Sub(n) if n >= MAX_SUB => {
                self.state = State::Data;
                self.feed(b)
            }
            State::Sub(n) => {
                self.state = if b == IAC {
                    State::SubIac(n + 1)
                } else {
                    State::Sub(n + 1)
                };
                None
            }
            State::SubIac(n) => {
                self.state = if b == SE {
                    State::Data
                } else {
                    State::Sub(n + 1)
                };
                None
            }
        }
    }

    /// Refuses what we don't support, once per option. Answers to our own offers (BINARY,
    /// ECHO) and refusals get no reply, so negotiation can never loop.
    fn answer(&mut self, cmd: u8, opt: u8) {
        let (slot, reply) = match (cmd, opt) {
            (WILL | DO, BINARY) if self.offered => return,
            (DO, ECHO) => return,
            (WILL, _) => (usize::from(opt), DONT),
            (DO, _) => (256 + usize::from(opt), WONT),
            _ => return,
        };
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        if self.refused[word] & bit == 0 {
            self.refused[word] |= bit;
            self.replies.extend_from_slice(&[IAC, reply, opt]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Input> {
        let mut r = LineReader::new(input, max, true);
        std::iter::from_fn(|| r.read_line().unwrap()).collect()
    }

    fn line(s: &str) -> Input {
        Input::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn all_line_ends() {
        assert_eq!(
            lines(b"a\nb\r\nc\r\0d\re", 100),
            [line("a"), line("b"), line("c"), line("d"), line("e")]
        );
    }

    #[test]
    fn crlf_split_across_reads_is_one_line_end() {
        // A reader that returns one byte per read.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let mut r = LineReader::new(Trickle(b"a\r\n\r\nb"), 100, true);
        let got: Vec<_> = std::iter::from_fn(|| r.read_line().unwrap()).collect();
        assert_eq!(got, [line("a"), line(""), line("b")]);
    }

    #[test]
    fn telnet_commands_are_consumed() {
        let input = [
            &[IAC, DO, BINARY][..],
            b"al",
            &[IAC, SB, 31, 0, 80, IAC, IAC, 0, 24, IAC, SE],
            b"ice",
            &[IAC, 241], // NOP
            b"\r\n",
        ]
        .concat();
        let mut r = LineReader::new(&input[..], 100, true);
        assert!(!r.is_telnet());
        assert_eq!(r.read_line().unwrap(), Some(line("alice")));
        assert!(r.is_telnet());
        assert!(r.take_replies().is_empty(), "DO BINARY answers our offer");
    }

    #[test]
    fn iac_iac_is_a_data_byte() {
        assert_eq!(
            lines(&[b'a', IAC, IAC, b'\n'], 100),
            [Input::Line(vec![b'a', IAC])]
        );
    }

    #[test]
    fn unsupported_options_are_refused_once() {
        let mut r = LineReader::new(
            &[IAC, WILL, 31, IAC, DO, 3, IAC, WONT, 31, b'\n'][..],
            10,
            true,
        );
        r.read_line().unwrap();
        assert_eq!(r.take_replies(), [IAC, DONT, 31, IAC, WONT, 3]);
    }

    #[test]
    fn only_a_telnet_client_with_bare_lf_needs_a_cr() {
        let mut r = LineReader::new(
            &[IAC, DO, BINARY, b'a', b'\n', b'b', b'\r', b'\n'][..],
            10,
            true,
        );
        r.read_line().unwrap();
        assert!(r.needs_cr());
        r.read_line().unwrap();
        assert!(!r.needs_cr());
        let mut plain = LineReader::new(&b"a\n"[..], 10, true);
        plain.read_line().unwrap();
        assert!(!plain.needs_cr());
    }

    #[test]
    fn each_option_is_refused_once_so_answers_stay_bounded() {
        let flood: Vec<u8> = (0..10_000)
            .flat_map(|_| [IAC, WILL, 31])
            .chain([b'\n'])
            .collect();
        let mut r = LineReader::new(&flood[..], 10, true);
        r.read_line().unwrap();
        assert_eq!(r.take_replies(), [IAC, DONT, 31]);
    }

    #[test]
    fn binary_is_refused_when_it_was_not_offered() {
        let mut r = LineReader::new(&[IAC, DO, BINARY, b'\n'][..], 10, false);
        r.read_line().unwrap();
        assert_eq!(r.take_replies(), [IAC, WONT, BINARY]);
    }

    #[test]
    fn an_endless_subnegotiation_gives_way_to_data() {
        let mut input = vec![IAC, SB, 24];
        input.extend(std::iter::repeat_n(b'x', MAX_SUB + 10));
        input.extend_from_slice(b"\nhello\n");
        let got = lines(&input, 100);
        assert_eq!(got.last(), Some(&line("hello")));
    }

    #[test]
    fn plain_client_is_not_telnet() {
        let mut r = LineReader::new(&b"bob\n"[..], 10, true);
        r.read_line().unwrap();
        assert!(!r.is_telnet());
        assert!(r.take_replies().is_empty());
    }

    #[test]
    fn long_lines_are_reported_and_skipped() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\nok\n");
        assert_eq!(lines(&input, 8), [Input::TooLong, line("ok")]);
        assert_eq!(lines(b"12345678\n", 8), [line("12345678")]);
        assert_eq!(lines(b"123456789", 8), [Input::TooLong]);
    }
}
