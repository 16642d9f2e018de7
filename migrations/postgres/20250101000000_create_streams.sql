-- Streams: one broadcast each, with the key its publisher authenticates with.
-- Times are unix milliseconds; ids and keys are text (portable across SQLite and Postgres).
CREATE TABLE streams (
    id            TEXT    NOT NULL PRIMARY KEY,
    title         TEXT    NOT NULL,
    stream_key    TEXT    NOT NULL UNIQUE,
    status        TEXT    NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'ended')),
    created_at_ms BIGINT  NOT NULL,
    ended_at_ms   BIGINT
);

CREATE INDEX streams_created_at_idx ON streams (created_at_ms DESC, id DESC);
