-- Several nodes: who is online where. Each node keeps a row with a heartbeat (every second)
-- and a row per session of its own; a node whose heartbeat is older than a few seconds is
-- deleted by the others, and its sessions with it.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,                 -- random, per process start
    addr         TEXT NOT NULL,                    -- where it listens, for the console
    started_at   TEXT NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE presence (
    node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    conn_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    room_id BIGINT NOT NULL REFERENCES rooms(id),
    away    TEXT,
    PRIMARY KEY (node_id, conn_id)
);
