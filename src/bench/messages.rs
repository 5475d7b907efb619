//! The message phase: the first S clients send M lines each, everyone reads, on the
//! driver's one thread.
//!
//! Flat out, senders are held to a window of lines in flight (sent but not yet delivered to
//! everyone, as far as the count of deliveries tells): otherwise they outrun the readers and
//! the server's per-client backlogs overflow, and the run measures the bench, not the server.
//! Under `--rate`, line g (round-robin over senders) is due g/R seconds after the start.
//! A line is stamped just before it is written, and a sender writes only once the kernel has
//! taken all its earlier lines: time queued in the bench stays out of the latency, time
//! queued in the server (and in the socket buffers) is in it.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use super::client::Change;
use super::driver::{Driver, TICK};
use super::line::format_bench;

/// The phase ends when nothing was delivered or sent for this long.
pub const STALL: Duration = Duration::from_secs(10);
/// Lines one sender queues per turn when flat out: small, so senders take turns with the
/// reading.
const BURST: u32 = 16;

/// What the senders do.
pub struct Load {
    pub senders: usize,
    pub messages: u32,
    /// Lines a second across all senders; `None`: as fast as the window allows.
    pub rate: Option<f64>,
    /// Bytes a line's text is padded to (without its line end).
    pub size: usize,
    /// What each line starts with before its text: nothing for the line protocol,
    /// `PRIVMSG #lobby :` for IRC.
    pub prefix: Vec<u8>,
    /// Lines sent but not yet delivered everywhere, at most.
    pub window: u64,
    /// Clients in the senders' room (the senders included): each line goes to all of them
    /// but its sender.
    pub audience: usize,
}

/// How the message phase went.
pub struct Outcome {
    pub sent: u64,
    /// Bench-clock time of the first send, in ns.
    pub start_ns: u64,
    /// It ended because nothing moved for [`STALL`], not because all was delivered.
    pub stalled: bool,
    /// Clients whose connection ended during the phase, and the first one's reason.
    pub disconnected: u64,
    pub first_disconnect: Option<String>,
}

impl Driver {
    /// One turn of every sender whose queue is empty: up to [`BURST`] lines each that are
    /// due (under `--rate`) and fit in the window, stamped now and written at once.
    fn send_turn(&mut self, load: &Load, st: &mut Senders, out: &mut Outcome) -> Turn {
        let now_ns = self.now_ns();
        let audience = load.audience as u64;
        let senders = st.seq.len() as u64;
        let mut turn = Turn::default();
        for (s, next) in st.seq.iter_mut().enumerate() {
            let c = &mut self.clients[s];
            if !c.is_open() || c.pending() || *next >= load.messages {
                continue;
            }
            st.line.clear();
            for _ in 0..BURST {
                if *next >= load.messages {
                    break;
                }
                if let Some(rate) = load.rate {
                    let g = u64::from(*next) * senders + s as u64;
                    let due = st.start_ns + (g as f64 * 1e9 / rate) as u64;
                    if due > now_ns {
                        turn.next_due = Some(turn.next_due.map_or(due, |d| d.min(due)));
                        break;
                    }
                }
                if in_flight(out.sent, self.tally.received, audience) >= load.window {
                    break;
                }
                st.line.extend_from_slice(&load.prefix);
                let from = st.line.len();
                format_bench(self.tally.run, s as u32, *next, now_ns, &mut st.line);
                let pad = load.size.saturating_sub(st.line.len() - from);
                st.line.resize(st.line.len() + pad, b'x');
                st.line.extend_from_slice(b"\r\n");
                *next += 1;
                out.sent += 1;
            }
            if st.line.is_empty() {
                continue;
            }
            turn.sent = true;
            if let Err(e) = c.send(&st.line) {
                c.close(format!("write failed: {e}"));
                out.disconnected += 1;
                let why = format!("{}: {}", self.clients[s].name, self.reason(s));
                out.first_disconnect.get_or_insert(why);
            }
            let c = &self.clients[s];
            turn.more |= load.rate.is_none() && *next < load.messages && !c.pending();
            self.rearm(s);
        }
        turn
    }

    /// The message phase: the first `load.senders` clients send, everyone reads, until all
    /// expected deliveries arrived or nothing moved for [`STALL`]. `tick` runs every 100 ms.
    pub fn run(
        &mut self,
        load: &Load,
        bar: &ProgressBar,
        tick: &mut dyn FnMut(),
    ) -> Result<Outcome, String> {
        let n = self.clients.len() as u64;
        let senders = load.senders.min(self.clients.len());
        let audience = load.audience as u64;
        let expected = senders as u64 * u64::from(load.messages) * audience.saturating_sub(1);
        let total_lines = senders as u64 * u64::from(load.messages);
        for c in &mut self.clients {
            c.expect_senders(senders);
        }
        let start_ns = self.now_ns();
        let mut st = Senders {
            seq: vec![0; senders],
            line: Vec::with_capacity((load.prefix.len() + load.size + 64) * BURST as usize),
            start_ns,
        };
        let mut out = Outcome {
            sent: 0,
            start_ns,
            stalled: false,
            disconnected: 0,
            first_disconnect: None,
        };
        let mut last_move = Instant::now();
        let mut last_tick = Instant::now();
        let mut received = 0;
        while self.tally.received < expected && out.disconnected < n {
            let turn = self.send_turn(load, &mut st, &mut out);
            if turn.sent {
                last_move = Instant::now();
            }
            let in_window = in_flight(out.sent, self.tally.received, audience) < load.window;
            let timeout = match (turn.more && in_window, turn.next_due) {
                (true, _) => Duration::ZERO,
                (false, Some(due)) => Duration::from_nanos(due.saturating_sub(self.now_ns())),
                (false, None) => TICK,
            };
            let (mut closed, mut first) = (0, None);
            self.poll(timeout.min(TICK), &mut |key, change| {
                if change == Change::Closed {
                    closed += 1;
                    first.get_or_insert(key);
                }
            })?;
            out.disconnected += closed;
            if let (Some(key), None) = (first, &out.first_disconnect) {
                out.first_disconnect =
                    Some(format!("{}: {}", self.clients[key].name, self.reason(key)));
            }
            if self.tally.received > received {
                received = self.tally.received;
                last_move = Instant::now();
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                bar.set_position(self.tally.received);
                bar.set_message(format!("(sent {}/{total_lines})", out.sent));
                tick();
            }
            // Under --rate a quiet spell may just be the wait for the next line's time.
            let waiting_for_clock = turn.next_due.is_some() && in_window;
            if !waiting_for_clock && last_move.elapsed() >= STALL {
                out.stalled = true;
                break;
            }
        }
        bar.set_position(self.tally.received);
        Ok(out)
    }
}

/// The senders' state in the message phase.
struct Senders {
    /// Per sender, the next sequence number.
    seq: Vec<u32>,
    /// The lines of the current burst.
    line: Vec<u8>,
    /// When the phase started: `--rate` schedules from here.
    start_ns: u64,
}

/// What a send turn did.
#[derive(Default)]
struct Turn {
    sent: bool,
    /// Some sender could send more right now (flat out, queue empty, lines left).
    more: bool,
    /// Under `--rate`, the earliest time a waiting line is due.
    next_due: Option<u64>,
}

/// Lines sent but not yet delivered to all `audience - 1` other clients in the senders' room
/// (as far as the count of deliveries tells).
fn in_flight(sent: u64, received: u64, audience: u64) -> u64 {
    sent - (received / audience.saturating_sub(1).max(1)).min(sent)
}
