-- A creator's channel: one per account, addressed by its @handle (stored lowercase, 3 to 30
-- characters from a-z 0-9 _). stripe_account_id is the creator's Stripe Connect account
-- (acct_...) that receives tips and sales, NULL until the creator connects one.
CREATE TABLE channels (
    id                TEXT   NOT NULL PRIMARY KEY,
    account_id        TEXT   NOT NULL UNIQUE REFERENCES accounts (id),
    handle            TEXT   NOT NULL UNIQUE,
    display_name      TEXT   NOT NULL,
    bio               TEXT   NOT NULL DEFAULT '',
    stripe_account_id TEXT,
    created_at_ms     BIGINT NOT NULL
);

-- Streams may belong to a channel (streams an operator makes with the admin token need not).
-- Lifecycle: `status` stays 'created' or 'ended' (final); a stream with scheduled_at_ms that
-- has never gone live (started_at_ms NULL) is "scheduled"; cancelled_at_ms marks an ended
-- stream that was cancelled before it ever went live. "live" is what the engine sees.
ALTER TABLE streams ADD COLUMN channel_id TEXT REFERENCES channels (id);
ALTER TABLE streams ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE streams ADD COLUMN scheduled_at_ms BIGINT;
ALTER TABLE streams ADD COLUMN started_at_ms BIGINT;
ALTER TABLE streams ADD COLUMN cancelled_at_ms BIGINT;
-- 'free': anyone may watch, no token; 'paid': watching needs a grant (a pass covering the
-- stream, or tokens spent on it) and a playback token.
ALTER TABLE streams ADD COLUMN access TEXT NOT NULL DEFAULT 'free' CHECK (access IN ('free', 'paid'));
-- Price in wallet tokens for enrolling in this one stream; NULL = not sold for tokens.
ALTER TABLE streams ADD COLUMN price_tokens BIGINT CHECK (price_tokens > 0);
-- Days after the stream ends during which grant holders may watch its replays; NULL = as long
-- as the recording is kept.
ALTER TABLE streams ADD COLUMN replay_access_days BIGINT CHECK (replay_access_days BETWEEN 1 AND 3650);

CREATE INDEX streams_channel_idx ON streams (channel_id, created_at_ms DESC);
CREATE INDEX streams_scheduled_idx ON streams (scheduled_at_ms);
