-- Rooms (talker style: a session is in one room at a time). `#lobby` is room 1 and always
-- exists; every public message said before rooms were added was said there.
CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,                      -- as first typed, with its '#': #Rust
    name_key   TEXT NOT NULL UNIQUE,               -- Unicode lowercase, as user names: #rust
    topic      TEXT NOT NULL DEFAULT '',           -- /topic; '' for none
    created_at TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL -- NULL: the server (#lobby)
);
-- /join's per-user creation limit counts a user's recent rooms.
CREATE INDEX rooms_created_by ON rooms(created_by, created_at);
INSERT INTO rooms (id, name, name_key, created_at)
VALUES (1, '#lobby', '#lobby', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

-- The room a public message was said in; NULL for a private message.
ALTER TABLE messages ADD COLUMN room_id INTEGER REFERENCES rooms(id);
UPDATE messages SET room_id = 1 WHERE recipient_id IS NULL;
-- A room's history (login, /history, /join) straight off an index. It replaces the index of
-- all public rows: one index more per row cut the hub's commit rate by about a tenth, and what
-- still reads public rows across rooms (/mentions, retention's floor) walks the table from
-- its newest row, which costs the number of private rows in between, bounded by the rate
-- limit.
CREATE INDEX messages_room ON messages(room_id, id) WHERE room_id IS NOT NULL;
DROP INDEX messages_public;

-- The room a user was last in, where their next login starts; NULL: #lobby.
ALTER TABLE users ADD COLUMN room_id INTEGER REFERENCES rooms(id) ON DELETE SET NULL;
