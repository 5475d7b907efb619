-- The last message id each user had been shown when their last session ended: private
-- messages after it are "since your last visit" at the next login. Existing users count as
-- having seen everything so far.
ALTER TABLE users ADD COLUMN seen_id INTEGER NOT NULL DEFAULT 0;
UPDATE users SET seen_id = (SELECT COALESCE(MAX(id), 0) FROM messages);
