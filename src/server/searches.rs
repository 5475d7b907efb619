//! How many searches run at once: one per user (all their sessions together) and a few on
//! the whole server, so a user who floods `/search` holds at most one search's worth of the
//! machine, and every user together at most [`AT_ONCE`]. A search over the bound is refused
//! at once (the user is told), never queued: a queue would be one more thing to flood.

use std::collections::HashSet;
use std::sync::Mutex;

/// Searches running at once on the server, at most.
pub const AT_ONCE: usize = 4;

/// Which bound refused a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Another session of the same user is searching.
    User,
    /// [`AT_ONCE`] searches are running.
    Server,
}

/// The searches running now, by user.
#[derive(Default)]
pub struct Searches {
    running: Mutex<HashSet<i64>>,
}

/// A running search's place; given back when dropped.
pub struct Permit<'a> {
    searches: &'a Searches,
    user: i64,
}

impl Searches {
    /// A place for `user`'s search, or which bound refuses it.
    pub fn begin(&self, user: i64) -> Result<Permit<'_>, Busy> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.contains(&user) {
            return Err(Busy::User);
        }
        if running.len() >= AT_ONCE {
            return Err(Busy::Server);
        }
        running.insert(user);
        Ok(Permit {
            searches: self,
            user,
        })
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut running = self
            .searches
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        running.remove(&self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_user_and_a_few_in_all() {
        let s = Searches::default();
        let first = s.begin(1).unwrap();
        assert_eq!(s.begin(1).err(), Some(Busy::User));
        let others: Vec<_> = (2..AT_ONCE as i64 + 1)
            .map(|u| s.begin(u).unwrap())
            .collect();
        assert_eq!(s.begin(99).err(), Some(Busy::Server));
        drop(first);
        assert!(s.begin(1).is_ok(), "a finished search gives its place back");
        drop(others);
        assert!(s.begin(99).is_ok());
    }
}
