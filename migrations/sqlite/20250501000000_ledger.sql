-- Money is an append-only ledger (DESIGN decision 6). Every movement is a transfer whose legs
-- sum to zero; each leg is a row of ledger_entries, never updated or deleted. An account's
-- balance is the sum of its entries; ledger_accounts keeps that sum beside the account so a
-- spend can check and move it in one conditional UPDATE, and it can go below zero only for
-- accounts that stand for the outside world (allow_negative = 1: the payment provider).
CREATE TABLE ledger_accounts (
    account        TEXT   NOT NULL PRIMARY KEY,
    currency       TEXT   NOT NULL,
    balance_minor  BIGINT NOT NULL DEFAULT 0,
    allow_negative BIGINT NOT NULL DEFAULT 0 CHECK (allow_negative IN (0, 1)),
    CHECK (allow_negative = 1 OR balance_minor >= 0)
);

CREATE TABLE ledger_entries (
    id              TEXT   NOT NULL PRIMARY KEY,
    transfer_id     TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    account         TEXT   NOT NULL REFERENCES ledger_accounts (account),
    amount_minor    BIGINT NOT NULL CHECK (amount_minor <> 0),
    currency        TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    memo            TEXT,
    created_at_ms   BIGINT NOT NULL
);

-- One transfer per idempotency key, one leg per account in it.
CREATE UNIQUE INDEX ledger_entries_idempotency_idx ON ledger_entries (idempotency_key, account);
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account, created_at_ms DESC, id DESC);
CREATE INDEX ledger_entries_transfer_idx ON ledger_entries (transfer_id);
