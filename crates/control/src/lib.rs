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
//! - commerce ([`pass`], [`grant`], [`checkout`], [`tip`], [`wallet`], [`stripe_event`]): a
//!   free pass costs 0 and has no Stripe ids, a paid one 1 to 1,000,000 major units with
//!   them; its kind and currency never change, every price it was sold at stays in its price
//!   history and a grant keeps the price it was bought at; a free pass is claimed once per
//!   account and tokens buy a stream once per account (unique indexes, so racing claims and
//!   enrolments make one grant and one spend);
//! - a Stripe event is applied once per event id: its `stripe_events` row is inserted in the
//!   same transaction as its state changes, and its ledger movements use keys derived from
//!   the payment (`payment:{intent}`, `invoice:{id}`, `refund:{intent}`), so a redelivery
//!   changes nothing and completes what a crash interrupted; events may come in any order (a
//!   subscription state older than the applied one changes nothing, an invoice only moves an
//!   expiry forward, a refund seen before its payment revokes what the payment buys);
//! - a full refund revokes every grant bought with the payment, marks its tip refunded and
//!   reverses its ledger movement; tokens are taken back only as far as the wallet holds
//!   them (a wallet never goes below zero), the shortfall noted in the memo;
//! - a playback token ([`playback_token`]) is checked with the signing key alone (HMAC-SHA256,
//!   constant-time), names one stream and one right and expires; a Stripe webhook
//!   ([`stripe_signature`]) is accepted only with a matching `v1` signature whose timestamp is
//!   within the tolerance;
//! - an account's email is unique case-insensitively; its password is stored only as an
//!   argon2id hash; its tokens (page sessions that expire, API tokens until revoked) only as
//!   SHA-256 digests, and a wrong email and a wrong password get the same answer;
//! - a [`Channel`] belongs to one creator account and an account has at most one; its handle
//!   is stored lowercase (3 to 30 of `a-z 0-9 _`, not reserved) and unique, both enforced by
//!   unique constraints so concurrent creates cannot break them;
//! - a stream's lifecycle ([`StreamState`]) is derived from `status`, `scheduled_at_ms`,
//!   `started_at_ms` and `cancelled_at_ms`; `started_at_ms` is set once (first publish),
//!   `cancelled_at_ms` only on a stream that never started; every transition (schedule,
//!   cancel, end, first publish) is one conditional `UPDATE`, so of two racing transitions
//!   that exclude each other exactly one wins and the other gets `InvalidTransition`;
//! - only a paid stream has a token price; access, price, replay access days, description
//!   and schedule are checked before anything is stored.

pub mod account;
pub mod channel;
pub mod checkout;
mod error;
pub mod external_identity;
pub mod grant;
pub mod ics;
pub mod ledger;
pub mod money;
pub mod pass;
pub mod playback_token;
mod recording;
mod store;
mod stream;
pub mod stripe_client;
pub mod stripe_event;
pub mod stripe_signature;
pub mod tip;
pub mod wallet;

pub use account::{Account, IssuedToken, Role, TokenKind};
pub use channel::{Channel, ChannelUpdate, normalize_handle};
pub use checkout::{Checkout, CheckoutPurpose, CheckoutStatus, NewCheckout};
pub use error::ControlError;
pub use external_identity::{ExternalClaims, ExternalIdentity, IdentityConfig, IdentityKey};
pub use grant::{CompTarget, Grant, GrantSource};
pub use ledger::{LedgerEntry, Posted, Transfer, TransferKind, TransferLeg};
pub use pass::{NewPass, Pass, PassKind, PassPrice, PassScope, StripeIds};
pub use recording::{MAX_VARIANT_NAME_BYTES, Recording, RecordingStatus};
pub use store::{Backend, Store};
pub use stream::{
    MAX_DESCRIPTION_CHARS, MAX_PRICE_TOKENS, MAX_RECORDING_RETENTION_DAYS, MAX_REPLAY_ACCESS_DAYS,
    MAX_SCHEDULE_AHEAD_MS, MAX_SOURCE_URL_BYTES, MAX_TITLE_CHARS, MIN_RECORDING_RETENTION_DAYS,
    MIN_REPLAY_ACCESS_DAYS, NewStream, SourceTransport, Stream, StreamAccess, StreamKey,
    StreamSettingsUpdate, StreamSource, StreamState, StreamStatus, is_stream_id,
    validate_recording_retention_days, validate_title,
};
pub use stripe_client::{
    CheckoutLine, CheckoutMode, CheckoutSessionRequest, CreatedSession, Interval, StripeClient,
};
pub use stripe_event::{EventChange, EventOutcome, EventStatus, StripeEvent, StripeObject};
pub use tip::{Tip, TipStatus};
pub use wallet::TokenPack;
