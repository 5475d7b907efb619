-- /bell on|off: whether a mention rings the terminal bell for this user (on by default).
ALTER TABLE users ADD COLUMN bell INTEGER NOT NULL DEFAULT 1;
