-- besedka schema, version 2: moderation. Bans, mutes and operators, stored so they survive
-- restarts and can be read (and changed) with sqlite3.

-- 'op' users may /kick, /ban, /unban, /mute and /unmute from their chat client.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'op'));

-- One row per ban or mute; at most one per (kind, value): banning again replaces the row.
CREATE TABLE bans (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('name', 'ip', 'mute')),
    -- 'name' and 'mute': the user's name_key; 'ip': an address (203.0.113.7) or a CIDR
    -- range (203.0.113.0/24, 2001:db8:1:2::/64).
    value      TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    expires_at TEXT,                    -- NULL: forever. Expired rows stop applying at once
                                        -- and are deleted by the server's janitor.
    created_by TEXT NOT NULL,           -- an operator's name, or 'server' (console and CLI)
    UNIQUE (kind, value)
);

-- Look-alike names: the UTS #39 confusable skeleton of the lowercased NFKC name, so `alice`,
-- `аlice` (Cyrillic а) and `ΑLICE` (Greek Alpha) share one. A new name whose skeleton is
-- taken is refused. Not unique: users registered before this rule keep their names. Filled
-- for existing rows by the binary when it applies this migration.
ALTER TABLE users ADD COLUMN name_skeleton TEXT;
CREATE INDEX users_skeleton ON users(name_skeleton);
