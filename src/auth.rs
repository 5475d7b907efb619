//! Passwords and tokens: how secrets become what the database keeps.
//!
//! Passwords are kept as argon2id PHC strings with the crate's default parameters. argon2 is
//! deliberately expensive (~19 MiB and tens of milliseconds per hash), so at most
//! [`Hasher::new`]'s `parallel` hashes run at once: a crowd of clients logging in queues here
//! instead of eating every core and gigabytes of memory.
//!
//! Tokens are random UUIDv4 strings shown once to their owner; the database keeps only their
//! SHA-256, so a copy of the file lets no one in.

use std::sync::{Condvar, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Shortest password accepted at registration, in characters.
pub const MIN_PASSWORD_CHARS: usize = 6;

/// Runs argon2 with bounded concurrency.
pub struct Hasher {
    /// Hashes that may start now (a counting semaphore), and whether the server is stopping:
    /// then no more start, so shutdown never waits behind a queue of logins.
    permits: Mutex<(usize, bool)>,
    freed: Condvar,
}

impl Hasher {
    /// A hasher that runs at most `parallel` hashes at once.
    pub fn new(parallel: usize) -> Hasher {
        Hasher {
            permits: Mutex::new((parallel.max(1), false)),
            freed: Condvar::new(),
        }
    }

    /// Lets no more hashes start; those waiting give up with [`Error::Stopping`].
    pub fn stop(&self) {
        self.permits.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.freed.notify_all();
    }

    fn with_permit<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        {
            let mut st = self.permits.lock().unwrap_or_else(|p| p.into_inner());
            while st.0 == 0 && !st.1 {
                st = self.freed.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.1 {
                return Err(Error::Stopping);
            }
            st.0 -= 1;
        }
        // Give the permit back even if argon2 panics.
        struct Release<'a>(&'a Hasher);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.permits.lock().unwrap_or_else(|p| p.into_inner()).0 += 1;
                self.0.freed.notify_one();
            }
        }
        let _release = Release(self);
        work()
    }

    /// The argon2id PHC string of `password`, with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String> {
        self.with_permit(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::Hash(e.to_string()))
        })
    }

    /// Whether `password` matches the stored PHC string.
    pub fn verify(&self, password: &str, phc: &str) -> Result<bool> {
        let parsed = PasswordHash::new(phc).map_err(|e| Error::Hash(e.to_string()))?;
        self.with_permit(|| {
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
    }
}

/// A new session token: the text to show the user once, and the hash to store.
pub fn new_token() -> (String, String) {
    let token = uuid::Uuid::new_v4().to_string();
    let hash = token_hash(&token);
    (token, hash)
}

/// The stored form of a token: lowercase hex SHA-256 of its text.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.trim().to_ascii_lowercase().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_argon2id_and_verifies() {
        let h = Hasher::new(1);
        let phc = h.hash("secret1").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("secret1"));
        assert!(h.verify("secret1", &phc).unwrap());
        assert!(!h.verify("secret2", &phc).unwrap());
    }

    #[test]
    fn a_stopped_hasher_refuses_new_work() {
        let h = Hasher::new(1);
        h.stop();
        assert!(matches!(h.hash("secret1"), Err(Error::Stopping)));
    }

    #[test]
    fn malformed_hash_is_an_error_not_a_match() {
        assert!(Hasher::new(1).verify("x", "not-a-phc").is_err());
    }

    #[test]
    fn token_hash_is_sha256_hex_and_case_insensitive() {
        let (token, hash) = new_token();
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&token));
        assert_eq!(token_hash(&token.to_uppercase()), hash);
        assert_ne!(token_hash("other"), hash);
    }
}
