-- Accounts of creators and viewers. The email is stored lowercased and unique. The password
-- hash is an argon2id PHC string, NULL for accounts that only sign in through a trusted
-- external identity provider (external_subject).
CREATE TABLE accounts (
    id               TEXT   NOT NULL PRIMARY KEY,
    email            TEXT   NOT NULL UNIQUE,
    password_hash    TEXT,
    display_name     TEXT   NOT NULL,
    role             TEXT   NOT NULL CHECK (role IN ('viewer', 'creator')),
    external_subject TEXT   UNIQUE,
    created_at_ms    BIGINT NOT NULL
);

-- Page sessions and API tokens. Only the SHA-256 of a token is stored; the token itself is
-- shown once. A session expires; an API token lasts until revoked.
CREATE TABLE account_tokens (
    token_hash    TEXT   NOT NULL PRIMARY KEY,
    id            TEXT   NOT NULL UNIQUE,
    account_id    TEXT   NOT NULL REFERENCES accounts (id),
    kind          TEXT   NOT NULL CHECK (kind IN ('session', 'api')),
    name          TEXT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT,
    revoked_at_ms BIGINT
);

CREATE INDEX account_tokens_account_idx ON account_tokens (account_id, created_at_ms DESC);
