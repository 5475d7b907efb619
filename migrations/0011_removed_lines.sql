-- Removed lines (/delete, purge-lines): the row stays as a tombstone, so ids and order
-- hold, with its body emptied and who removed it and when; history, search and replay
-- leave tombstones out.
ALTER TABLE messages ADD COLUMN removed_by TEXT;
ALTER TABLE messages ADD COLUMN removed_at TEXT;
-- The search index follows a body that changes (emptied by a removal) once indexed.
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages
WHEN old.id <= (SELECT last_id FROM fts_state WHERE id = 1)
BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
END;
