//! greenroom-control: the control plane of greenroom.
//!
//! It owns the streams and their recordings: a stream is one broadcast with a title and the key
//! its publisher authenticates with; a [`Recording`] is one live session of a stream kept as an
//! HLS replay (its files live in storage under [`Recording::storage_prefix`]). The [`Store`] persists them with sqlx's `Any` driver, so the
//! same code runs on SQLite (the default, one file in the data directory, WAL journal) and on
//! Postgres (`DATABASE_URL=postgres://...`). Migrations are embedded in the binary (one set per
//! backend, `migrations/sqlite` and `migrations/postgres`) and run when the store opens.
//!
//! Invariants:
//! - a stream id is 16 lowercase base32 characters; a stream key is `sk_` followed by 32
//!   URL-safe characters, both from the operating system's CSPRNG;
//! - a stream key is only ever compared in constant time and never printed by `Debug`;
//! - a stream's stored status is `created` or `ended`; `ended` is final. Whether a created
//!   stream is idle or live is not stored: the WebRTC engine knows it;
//! - times are unix milliseconds (`BIGINT`), ids and keys `TEXT`, on both backends;
//! - a stream's source (an RTSP URL the server pulls, and `tcp`/`udp`) is set at creation
//!   and never changes; `source_url` and `source_transport` are both set or both `NULL`;
//! - booleans are `BIGINT` 0/1 on both backends;
//! - a stream records each live session unless its `record` is off; its recording retention
//!   is `NULL` (the server's default) or 1 to 3650 days, checked before anything is stored;
//! - a recording id has the shape of a stream id and comes from the same generator; a
//!   recording belongs to one existing stream, started while the stream had not ended;
//! - a recording's status is `recording`, then `ready` or `failed`; both are final, and
//!   finishing, failing or reporting progress for a final recording changes nothing;
//! - a recording with an `expires_at_ms` may be deleted once that time has passed, whatever
//!   its status; one without is kept until deleted;
//! - `variants` is stored comma-separated, so a rendition name is 1 to 32 characters from
//!   `A-Z a-z 0-9 _ - .`; durations, sizes and segment counts are never negative;
//! - money is an append-only ledger in integer minor units ([`ledger`], [`money`]): a
//!   transfer's legs sum to zero and are posted in one database transaction, at most once per
//!   idempotency key; an account's balance is the sum of its entries and never goes below zero
//!   unless the account stands for the outside world, also under concurrent spends (each leg
//!   is a conditional `UPDATE`); entries are never updated or deleted; fees are computed in
//!   integers (basis points, rounded half up) so fee + payee always equals the amount;
//! - a playback token ([`playback_token`]) is checked with the signing key alone (HMAC-SHA256,
//!   constant-time), names one stream and one right and expires; a Stripe webhook
//!   ([`stripe_signature`]) is accepted only with a matching `v1` signature whose timestamp is
//!   within the tolerance;
//! - an account's email is unique case-insensitively; its password is stored only as an
//!   argon2id hash; its tokens (page sessions that expire, API tokens until revoked) only as
//!   SHA-256 digests, and a wrong email and a wrong password get the same answer.

pub mod account;
mod error;
pub mod ledger;
pub mod money;
pub mod playback_token;
mod recording;
mod store;
mod stream;
pub mod stripe_signature;

pub use account::{Account, IssuedToken, Role, TokenKind};
pub use error::ControlError;
pub use ledger::{LedgerEntry, Posted, Transfer, TransferKind, TransferLeg};
pub use recording::{MAX_VARIANT_NAME_BYTES, Recording, RecordingStatus};
pub use store::{Backend, Store};
pub use stream::{
    MAX_RECORDING_RETENTION_DAYS, MAX_SOURCE_URL_BYTES, MAX_TITLE_CHARS,
    MIN_RECORDING_RETENTION_DAYS, NewStream, SourceTransport, Stream, StreamKey, StreamSource,
    StreamStatus, is_stream_id, validate_recording_retention_days, validate_title,
};
