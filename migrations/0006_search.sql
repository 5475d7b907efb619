-- /search: a full-text index of message bodies (FTS5, external content: the text stays in
-- `messages`). New messages are indexed in batches off the hub (the janitor, every 2 s):
-- an insert trigger would have cut the hub's commit rate by two thirds. `fts_state` says
-- how far the index goes; deletes of indexed rows are mirrored by a trigger.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    body,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE fts_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    last_id INTEGER NOT NULL
);
INSERT INTO messages_fts(rowid, body) SELECT id, body FROM messages;
INSERT INTO fts_state VALUES (1, (SELECT COALESCE(MAX(id), 0) FROM messages));
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.id <= (SELECT last_id FROM fts_state WHERE id = 1)
BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
