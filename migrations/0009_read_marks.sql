-- Unread markers: the newest line of each room a user has been shown (by any of their
-- sessions, on any node). Written by the hub when a session leaves a room; read at login
-- ("Since your last visit: …"), by /unread and when joining a room.
CREATE TABLE read_marks (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    last_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id)
) WITHOUT ROWID;
-- (Counting a room's lines after a mark walks messages_room from the mark, not the table.)
