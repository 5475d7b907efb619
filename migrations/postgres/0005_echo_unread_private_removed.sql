-- SQLite's 0008 to 0011 in one step: /echo, unread markers, invite-only rooms, removed
-- lines (see those files for the why of each).
ALTER TABLE users ADD COLUMN echo BOOLEAN NOT NULL DEFAULT TRUE;
CREATE TABLE read_marks (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    room_id BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    last_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
ALTER TABLE rooms ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE room_members (
    room_id  BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members(user_id);
ALTER TABLE messages ADD COLUMN removed_by TEXT;
ALTER TABLE messages ADD COLUMN removed_at TEXT;
