//! A log throttle: a kind of log line at most once a second, with a count of the rest.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets a kind of log line through at most once a second and counts the rest, so a client
/// cannot flood standard error or the `logs` table with refusals.
#[derive(Default)]
pub struct Quiet(Mutex<(Option<Instant>, u64)>);

impl Quiet {
    /// `Some(n)`: log now, and say that `n` more were left out since the last line.
    pub fn allow(&self) -> Option<u64> {
        let now = Instant::now();
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if st
            .0
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            st.1 += 1;
            return None;
        }
        st.0 = Some(now);
        Some(std::mem::take(&mut st.1))
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
}
