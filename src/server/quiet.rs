//! A log throttle: a kind of log line at most once a period, with a count of the rest.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets a kind of log line through at most once a period (a second by default) and counts
/// the rest, so a client cannot flood standard error or the `logs` table.
pub struct Quiet {
    every: Duration,
    /// When the last line went through, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Default for Quiet {
    fn default() -> Quiet {
        Quiet::every(Duration::from_secs(1))
    }
}

impl Quiet {
    /// At most one line every `every`.
    pub fn every(every: Duration) -> Quiet {
        Quiet {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(n)`: log now, and say that `n` more were left out since the last line.
    pub fn allow(&self) -> Option<u64> {
        self.allow_since().map(|(n, _)| n)
    }

    /// As [`Quiet::allow`], with the time since the last line that went through (`None` for
    /// the first).
    pub fn allow_since(&self) -> Option<(u64, Option<Duration>)> {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let since = st.0.map(|t| now.duration_since(t));
        if since.is_some_and(|s| s < self.every) {
            st.1 += 1;
            return None;
        }
        st.0 = Some(now);
        Some((std::mem::take(&mut st.1), since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_lets_one_line_a_second_through() {
        let q = Quiet::default();
        assert_eq!(q.allow(), Some(0));
        assert_eq!(q.allow(), None);
        assert_eq!(q.allow(), None);
    }

    #[test]
    fn the_next_line_after_the_period_counts_those_held_back() {
        let q = Quiet::every(Duration::from_millis(50));
        assert_eq!(q.allow_since(), Some((0, None)));
        assert_eq!(q.allow_since(), None);
        assert_eq!(q.allow_since(), None);
        std::thread::sleep(Duration::from_millis(60));
        let (held, since) = q.allow_since().unwrap();
        assert_eq!(held, 2);
        assert!(since.unwrap() >= Duration::from_millis(50));
    }
}
