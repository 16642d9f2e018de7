//! greenroom-control: the control plane of greenroom.
//!
//! For now it owns the streams: a stream is one broadcast with a title and the key its
//! publisher authenticates with. The [`Store`] persists them with sqlx's `Any` driver, so the
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
//!   and never changes; `source_url` and `source_transport` are both set or both `NULL`.

mod error;
mod store;
mod stream;

pub use error::ControlError;
pub use store::{Backend, Store};
pub use stream::{
    MAX_SOURCE_URL_BYTES, MAX_TITLE_CHARS, SourceTransport, Stream, StreamKey, StreamSource,
    StreamStatus, is_stream_id, validate_title,
};
