-- besedka schema, version 1. Applied once by the binary at start (PRAGMA user_version).
-- Timestamps are ISO-8601 UTC text, e.g. 2026-11-24T14:33:53Z, so sqlite3 shows them as-is
-- and text order is time order.

-- Accounts. One user may be logged in from several connections at once.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, even after a purge
    name          TEXT NOT NULL,                     -- as the user first typed it
    name_key      TEXT NOT NULL UNIQUE,              -- Unicode lowercase of name: Alice = alice, Борис = борис
    password_hash TEXT NOT NULL,                     -- argon2id PHC string, never the password
    created_at    TEXT NOT NULL
);

-- Session tokens ("/token ..."). Only a SHA-256 of each token is kept.
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,               -- lowercase hex SHA-256 of the token text
    created_at   TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX tokens_user ON tokens(user_id);

-- Every chat line, in delivery order (id order is the order every client saw).
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    created_at   TEXT NOT NULL,
    author_id    INTEGER REFERENCES users(id) ON DELETE SET NULL, -- history outlives the account
    author_name  TEXT NOT NULL,
    -- NULL: public. Otherwise a private message, deleted together with its recipient so it
    -- can never reach a later user who registers the same name.
    recipient_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL DEFAULT 'say' CHECK (kind IN ('say', 'me')), -- 'me' is a /me action
    body         TEXT NOT NULL
);
-- History at login reads the newest N public rows, and the newest N private rows to or from
-- one user, each straight off an index, however many rows of other kinds lie between.
CREATE INDEX messages_public ON messages(id) WHERE recipient_id IS NULL;
CREATE INDEX messages_recipient ON messages(recipient_id, id) WHERE recipient_id IS NOT NULL;
CREATE INDEX messages_private_author ON messages(author_id, id) WHERE recipient_id IS NOT NULL;
-- For ON DELETE SET NULL when a user goes.
CREATE INDEX messages_author ON messages(author_id);

-- The server's own log records (written by the log sink).
CREATE TABLE logs (
    id         INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    level      TEXT NOT NULL,
    target     TEXT NOT NULL,
    message    TEXT NOT NULL
);
