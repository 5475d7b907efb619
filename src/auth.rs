//! Passwords and tokens: how secrets become what the database keeps.
//!
//! Passwords are kept as argon2id PHC strings with the crate's default parameters. argon2 is
//! deliberately expensive (~19 MiB and tens of milliseconds per hash), so hashes run on a
//! small pool of their own ([`Hasher`]), one thread per core: a crowd of clients logging in
//! queues there instead of eating every core. Running them on the session threads instead
//! left each thread's malloc arena holding a freed 19 MiB block: 30 logins grew the server
//! from 17 MB to 560 MB.
//!
//! Tokens are random UUIDv4 strings shown once to their owner; the database keeps only their
//! SHA-256, so a copy of the file lets no one in.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use threadpool::ThreadPool;

use crate::error::{Error, Result};

/// Shortest password accepted at registration, in characters.
pub const MIN_PASSWORD_CHARS: usize = 6;

/// Runs argon2 on its own threads, `parallel` at a time.
pub struct Hasher {
    pool: ThreadPool,
    /// Set at shutdown: queued hashes are skipped, so shutdown never waits behind a queue of
    /// logins.
    stopping: Arc<AtomicBool>,
}

impl Hasher {
    /// A hasher with `parallel` threads.
    pub fn new(parallel: usize) -> Hasher {
        Hasher {
            pool: threadpool::Builder::new()
                .num_threads(parallel.max(1))
                .thread_name("argon2".into())
                .build(),
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Skips every hash not started yet (they fail with [`Error::Stopping`]) and joins the
    /// hashing threads once the running ones finish.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.pool.join();
    }

    /// Runs `work` on a hashing thread and waits for its result.
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Error::Stopping);
        }
        let (tx, rx) = mpsc::channel();
        let stopping = self.stopping.clone();
        self.pool.execute(move || {
            let result = if stopping.load(Ordering::SeqCst) {
                Err(Error::Stopping)
            } else {
                work()
            };
            let _ = tx.send(result);
        });
        // A panic in argon2 drops the sender; the pool replaces the thread.
        rx.recv()
            .unwrap_or_else(|_| Err(Error::Hash("the hashing thread failed".into())))
    }

    /// The argon2id PHC string of `password`, with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_string();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::Hash(e.to_string()))
        })
    }

    /// Whether `password` matches the stored PHC string.
    pub fn verify(&self, password: &str, phc: &str) -> Result<bool> {
        PasswordHash::new(phc).map_err(|e| Error::Hash(e.to_string()))?;
        let (password, phc) = (password.to_string(), phc.to_string());
        self.run(move || {
            let parsed = PasswordHash::new(&phc).map_err(|e| Error::Hash(e.to_string()))?;
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

/// Whether two secrets (a bearer token) are equal, in time that does not depend on where
/// they differ: their SHA-256 digests are compared in full.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cret", "s3creT"));
        assert!(!same_secret("", "s3cret"));
    }

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
        // The FIPS 180-2 test vector: SHA-256("abc"); tokens are compared trimmed, in lowercase.
        assert_eq!(
            token_hash(" ABC "),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let (token, hash) = new_token();
        assert_eq!(hash.len(), 64);
        assert!(hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(hash, token);
        assert_eq!(token_hash(&token.to_uppercase()), hash);
        assert_ne!(token_hash("other"), hash);
    }
}
