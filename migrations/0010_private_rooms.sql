-- Invite-only rooms: listed to, joined by, and read (history, search) by their members
-- only. The creator and operators make a room private and invite or uninvite people.
ALTER TABLE rooms ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
CREATE TABLE room_members (
    room_id    INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_by   TEXT NOT NULL,      -- who invited them (a name, or "console")
    added_at   TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX room_members_user ON room_members(user_id);
