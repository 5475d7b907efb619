-- Each removal of lines (/delete, /purge, purge-lines): who, what and which ids, in order.
-- The lines themselves are tombstones in `messages` (0011). A running server reads the rows
-- that another process wrote (the admin CLI, another node) to tell its clients: a web page
-- takes the lines out of its log, an IRC client gets REDACT. The newest 1,000 are kept.
CREATE TABLE removals (
    id         INTEGER PRIMARY KEY,
    node_id    TEXT NOT NULL,       -- who wrote it: a node's id, or 'cli'
    removed_by TEXT NOT NULL,       -- an operator's name, or 'console'
    what       TEXT NOT NULL,       -- as announced: 'delete', 'purge, 1h'
    ids        TEXT NOT NULL,       -- the lines' ids, comma-separated
    created_at TEXT NOT NULL
);
