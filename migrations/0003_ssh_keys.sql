-- SSH public keys tied to accounts: `ssh alice@HOST` with one of these logs in as alice.
CREATE TABLE ssh_keys (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    algorithm    TEXT NOT NULL,                 -- ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, …
    public_key   TEXT NOT NULL,                 -- the key as in authorized_keys, without comment
    fingerprint  TEXT NOT NULL UNIQUE,          -- SHA256:…, as `ssh-keygen -l` prints it
    comment      TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    last_used_at TEXT
);
CREATE INDEX ssh_keys_user ON ssh_keys(user_id);
