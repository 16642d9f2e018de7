-- Access passes a channel sells. kind: free (claimed, no payment), one_time (paid once, no
-- end), monthly / yearly (Stripe subscriptions). scope: the whole channel, or the streams
-- listed in pass_streams. stripe_price_id is the price new buyers pay; Stripe prices are
-- immutable, so repricing makes a new one (pass_prices keeps every price ever used, so an
-- existing subscriber's price is still known).
CREATE TABLE passes (
    id                TEXT   NOT NULL PRIMARY KEY,
    channel_id        TEXT   NOT NULL REFERENCES channels (id),
    name              TEXT   NOT NULL,
    kind              TEXT   NOT NULL CHECK (kind IN ('free', 'one_time', 'monthly', 'yearly')),
    scope             TEXT   NOT NULL CHECK (scope IN ('channel', 'streams')),
    amount_minor      BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency          TEXT   NOT NULL,
    stripe_product_id TEXT,
    stripe_price_id   TEXT,
    active            BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at_ms     BIGINT NOT NULL,
    updated_at_ms     BIGINT NOT NULL
);

CREATE INDEX passes_channel_idx ON passes (channel_id, created_at_ms);

CREATE TABLE pass_streams (
    pass_id   TEXT NOT NULL REFERENCES passes (id),
    stream_id TEXT NOT NULL REFERENCES streams (id),
    PRIMARY KEY (pass_id, stream_id)
);

CREATE INDEX pass_streams_stream_idx ON pass_streams (stream_id);

CREATE TABLE pass_prices (
    stripe_price_id TEXT   NOT NULL PRIMARY KEY,
    pass_id         TEXT   NOT NULL REFERENCES passes (id),
    amount_minor    BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency        TEXT   NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    retired_at_ms   BIGINT
);

-- One Stripe Checkout session greenroom opened: for a pass, a token pack or a tip. Its id is
-- in the session's metadata and client_reference_id, so webhooks find it.
CREATE TABLE checkouts (
    id                TEXT   NOT NULL PRIMARY KEY,
    account_id        TEXT   NOT NULL REFERENCES accounts (id),
    purpose           TEXT   NOT NULL CHECK (purpose IN ('pass', 'tokens', 'tip')),
    pass_id           TEXT   REFERENCES passes (id),
    stream_id         TEXT   REFERENCES streams (id),
    token_pack        TEXT,
    tokens            BIGINT,
    amount_minor      BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency          TEXT   NOT NULL,
    fee_minor         BIGINT NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
    message           TEXT,
    stripe_session_id TEXT   UNIQUE,
    status            TEXT   NOT NULL CHECK (status IN ('open', 'completed', 'expired')),
    created_at_ms     BIGINT NOT NULL,
    completed_at_ms   BIGINT
);

CREATE INDEX checkouts_account_idx ON checkouts (account_id, created_at_ms DESC);

-- Access grants: who may watch what, from when to when. A pass grant covers the pass's scope;
-- a token grant (pass_id NULL) covers stream_id. expires_at_ms NULL = no end; a revoked grant
-- stays as history. stripe_state_ms is the Stripe event time of the last subscription state
-- applied, so older events arriving late change nothing.
CREATE TABLE grants (
    id                       TEXT   NOT NULL PRIMARY KEY,
    account_id               TEXT   NOT NULL REFERENCES accounts (id),
    channel_id               TEXT   NOT NULL REFERENCES channels (id),
    pass_id                  TEXT   REFERENCES passes (id),
    stream_id                TEXT   REFERENCES streams (id),
    source                   TEXT   NOT NULL CHECK (source IN ('free', 'purchase', 'subscription', 'tokens', 'comp')),
    checkout_id              TEXT   UNIQUE,
    stripe_subscription_id   TEXT   UNIQUE,
    stripe_payment_intent_id TEXT,
    stripe_price_id          TEXT,
    starts_at_ms             BIGINT NOT NULL,
    expires_at_ms            BIGINT,
    revoked_at_ms            BIGINT,
    revoke_reason            TEXT,
    stripe_state_ms          BIGINT,
    created_at_ms            BIGINT NOT NULL
);

CREATE INDEX grants_account_idx ON grants (account_id, created_at_ms DESC);
CREATE INDEX grants_payment_intent_idx ON grants (stripe_payment_intent_id);
-- A free pass is claimed once per account; tokens buy a stream once per account.
CREATE UNIQUE INDEX grants_free_pass_idx ON grants (account_id, pass_id) WHERE source = 'free';
CREATE UNIQUE INDEX grants_tokens_stream_idx ON grants (account_id, stream_id) WHERE source = 'tokens';

-- Every Stripe event processed, once: the event id is the key.
CREATE TABLE stripe_events (
    event_id       TEXT   NOT NULL PRIMARY KEY,
    event_type     TEXT   NOT NULL,
    created_s      BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    outcome        TEXT   NOT NULL
);

-- Refunds seen for a payment, kept so a refund that arrives before the payment's own event
-- still revokes what that payment buys.
CREATE TABLE stripe_refunds (
    payment_intent_id TEXT   NOT NULL PRIMARY KEY,
    amount_refunded   BIGINT NOT NULL,
    refunded_at_ms    BIGINT NOT NULL
);

-- Tips: amount, platform fee and message; 'pending' until Stripe says paid.
CREATE TABLE tips (
    id                       TEXT   NOT NULL PRIMARY KEY,
    stream_id                TEXT   NOT NULL REFERENCES streams (id),
    channel_id               TEXT   NOT NULL REFERENCES channels (id),
    account_id               TEXT   NOT NULL REFERENCES accounts (id),
    checkout_id              TEXT   NOT NULL UNIQUE REFERENCES checkouts (id),
    amount_minor             BIGINT NOT NULL CHECK (amount_minor > 0),
    currency                 TEXT   NOT NULL,
    fee_minor                BIGINT NOT NULL CHECK (fee_minor >= 0),
    message                  TEXT,
    status                   TEXT   NOT NULL CHECK (status IN ('pending', 'paid', 'refunded')),
    stripe_payment_intent_id TEXT,
    created_at_ms            BIGINT NOT NULL,
    paid_at_ms               BIGINT
);

CREATE INDEX tips_stream_idx ON tips (stream_id, created_at_ms DESC);
