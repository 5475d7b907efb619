//! A token bucket: the pace of one user's lines (all their sessions together) and of one
//! connection's before login.

use std::time::{Duration, Instant};

/// A token bucket: `rate` a second on average, bursts of `2 × rate`. A caller takes a token
/// even when none is left (the count goes negative) and sleeps for the debt, outside any lock.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(rate: u32) -> Bucket {
        let rate = f64::from(rate.max(1));
        Bucket {
            rate,
            tokens: 2.0 * rate,
            last: Instant::now(),
        }
    }

    /// Takes one token; returns how long the caller must wait before using it.
    pub fn take(&mut self) -> Duration {
        self.take_n(1.0)
    }

    /// Takes `n` tokens at once (a line that costs as much as `n` lines); returns how long
    /// the caller must wait before using them.
    pub fn take_n(&mut self, n: f64) -> Duration {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(2.0 * self.rate);
        self.last = now;
        self.tokens -= n;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}
