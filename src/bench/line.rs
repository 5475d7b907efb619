//! The bench line: what a sender writes and a receiver reads back out of the chat line the
//! server makes of it (`[HH:MM:SS] bench3: #b 5f2a 2 17 1234567 xxxx`).
//!
//! It carries the run (so lines of an earlier run, replayed as history, are not counted),
//! the sender's index, its sequence number and the send time in nanoseconds on the bench's
//! clock: sender and receivers are one process, so one clock, and no clock sync is needed.

/// What comes between the sender's name and the fields.
pub const MARK: &[u8] = b": #b ";

/// The fields of a bench line.
#[derive(Debug, PartialEq, Eq)]
pub struct BenchLine {
    pub run: u32,
    pub sender: u32,
    pub seq: u32,
    pub sent_ns: u64,
}

/// The text of a bench line, without its padding: `#b RUN SENDER SEQ NANOS ` (RUN in hex).
pub fn format_bench(run: u32, sender: u32, seq: u32, sent_ns: u64, out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "#b {run:x} {sender} {seq} {sent_ns} ");
}

/// Parses `RUN SENDER SEQ NANOS…` (what follows the mark).
pub fn parse_bench(s: &[u8]) -> Option<BenchLine> {
    let mut fields = s.split(|&b| b == b' ');
    let run = u32::from_str_radix(std::str::from_utf8(fields.next()?).ok()?, 16).ok()?;
    let sender = decimal(fields.next()?)?;
    let seq = decimal(fields.next()?)?;
    let sent_ns = decimal(fields.next()?)?;
    Some(BenchLine {
        run,
        sender: u32::try_from(sender).ok()?,
        seq: u32::try_from(seq).ok()?,
        sent_ns,
    })
}

fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bench_line_round_trips() {
        let mut out = Vec::new();
        format_bench(0xbeef, 3, 17, 123_456_789, &mut out);
        out.extend_from_slice(b"xxxx");
        assert_eq!(
            parse_bench(&out[b"#b ".len()..]),
            Some(BenchLine {
                run: 0xbeef,
                sender: 3,
                seq: 17,
                sent_ns: 123_456_789
            })
        );
        assert_eq!(parse_bench(b"zz 1 2 3"), None);
        assert_eq!(parse_bench(b"1 2 3"), None);
        assert_eq!(parse_bench(b"1 2 -3 4"), None);
    }
}
