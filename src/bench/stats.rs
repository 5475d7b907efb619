//! What the receivers count: deliveries, lines out of order, and latencies in a histogram.
//!
//! A million deliveries is a normal run, and a long one has far more, so latencies are not
//! kept one by one: a log-linear histogram keeps them to within 1/128 (under 0.8 %) in a
//! fixed 58 KiB, whatever the count.

/// Bits of a value's mantissa a bucket keeps: 128 buckets per power of two.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for any `u64`: values below `SUB` exactly, then 57 powers of two.
const BUCKETS: usize = ((64 - SUB_BITS + 1) as usize) * SUB as usize;

/// Latencies in nanoseconds.
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let top = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = top - SUB_BITS;
    let mantissa = (v >> shift) - SUB;
    ((u64::from(shift) + 1) * SUB + mantissa) as usize
}

/// The middle of a bucket's range.
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let low = (SUB + i % SUB) << shift;
    low + (1u64 << shift) / 2
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the smallest recorded value that `q` of all values
    /// are at or below, to the histogram's precision. 0 when nothing was recorded.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        if rank == self.total {
            return self.max; // known exactly
        }
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value(i).min(self.max);
            }
        }
        self.max
    }
}

/// Everything the receivers count in one run.
pub struct Tally {
    /// This run's id: lines of other runs (replayed history) are not counted.
    pub run: u32,
    pub received: u64,
    /// Lines whose sequence number did not increase for that sender at that receiver.
    pub out_of_order: u64,
    /// A sender's own lines coming back to it (the server should not echo them).
    pub own_lines: u64,
    /// Lines that reached a client in a quiet room (`--rooms`): the server leaked a line
    /// out of its room. Not counted as received.
    pub misrouted: u64,
    /// `! ` lines after login (a refused line, a mute), and the first one's text.
    pub errors: u64,
    pub first_error: Option<String>,
    pub latency: Histogram,
    /// When the last delivery arrived, on the bench clock (ns).
    pub last_ns: u64,
}

impl Tally {
    pub fn new(run: u32) -> Tally {
        Tally {
            run,
            received: 0,
            out_of_order: 0,
            own_lines: 0,
            misrouted: 0,
            errors: 0,
            first_error: None,
            latency: Histogram::default(),
            last_ns: 0,
        }
    }

    pub fn record(&mut self, latency_ns: u64, now_ns: u64) {
        self.received += 1;
        self.latency.record(latency_ns);
        self.last_ns = self.last_ns.max(now_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_precise() {
        let mut last = 0;
        for v in (0..1_000_000u64).step_by(7).chain([u64::MAX / 3, u64::MAX]) {
            let b = bucket(v);
            assert!(b >= last && b < BUCKETS, "{v}");
            last = b;
            let mid = value(b);
            let err = mid.abs_diff(v) as f64 / v.max(1) as f64;
            assert!(err <= 1.0 / SUB as f64, "{v} -> {mid}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_run() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let near = |got: u64, want: u64| got.abs_diff(want) as f64 / want as f64 <= 0.01;
        assert!(near(h.quantile(0.5), 5_000_000), "{}", h.quantile(0.5));
        assert!(near(h.quantile(0.99), 9_900_000), "{}", h.quantile(0.99));
        assert_eq!(h.quantile(1.0), 10_000_000);
        assert_eq!(h.max(), 10_000_000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }
}
