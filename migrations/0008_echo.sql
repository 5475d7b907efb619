-- /echo on|off: whether a user's own lines come back to them with time and name, as
-- everyone else's do (on by default: a log of the session then reads right).
ALTER TABLE users ADD COLUMN echo INTEGER NOT NULL DEFAULT 1;
