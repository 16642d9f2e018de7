-- Recordings: each live session of a stream is kept as an HLS replay, unless the stream's
-- `record` is 0. `recording_retention_days` NULL = the server's default retention.
ALTER TABLE streams ADD COLUMN record BIGINT NOT NULL DEFAULT 1;
ALTER TABLE streams ADD COLUMN recording_retention_days BIGINT
    CHECK (recording_retention_days BETWEEN 1 AND 3650);

-- One row per recorded session. A recording starts as 'recording' and becomes 'ready' or
-- 'failed' (both final). Times are unix milliseconds; `variants` lists the rendition names,
-- comma-separated ("1080p,720p"); `expires_at_ms` NULL = kept until deleted.
CREATE TABLE recordings (
    id            TEXT    NOT NULL PRIMARY KEY,
    stream_id     TEXT    NOT NULL REFERENCES streams (id),
    status        TEXT    NOT NULL CHECK (status IN ('recording', 'ready', 'failed')),
    started_at_ms BIGINT  NOT NULL,
    ended_at_ms   BIGINT,
    duration_ms   BIGINT  NOT NULL DEFAULT 0,
    size_bytes    BIGINT  NOT NULL DEFAULT 0,
    segments      BIGINT  NOT NULL DEFAULT 0,
    variants      TEXT    NOT NULL DEFAULT '',
    has_thumbnail BIGINT  NOT NULL DEFAULT 0,
    expires_at_ms BIGINT
);

CREATE INDEX recordings_stream_started_idx ON recordings (stream_id, started_at_ms DESC);
CREATE INDEX recordings_expires_at_idx ON recordings (expires_at_ms);
