use thiserror::Error;

/// Errors of the control plane. Each names the stream, the recording or the operation it
/// concerns.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No stream has this id.
    #[error("stream {id} not found")]
    StreamNotFound { id: String },
    /// The stream exists but has ended; it cannot be published to or watched any more.
    #[error("stream {id} has ended")]
    StreamEnded { id: String },
    /// The key presented for a stream is missing or wrong.
    #[error("wrong or missing stream key for stream {id}")]
    InvalidStreamKey { id: String },
    /// A title is empty or too long.
    #[error("invalid title: {reason}")]
    InvalidTitle { reason: String },
    /// A stream's source is not an `rtsp://`/`rtsps://` URL with a host, or its transport is
    /// not `tcp`/`udp`.
    #[error("invalid source: {reason}")]
    InvalidSourceUrl { reason: String },
    /// A stream's recording retention is outside 1..=3650 days.
    #[error("invalid recording retention: {reason}")]
    InvalidRetention { reason: String },
    /// No recording has this id.
    #[error("recording {id} not found")]
    RecordingNotFound { id: String },
    /// A recorder reported progress the store cannot keep: a negative count, or a rendition
    /// name that is empty, too long or not made of `A-Z a-z 0-9 _ - .`.
    #[error("invalid progress for recording {id}: {reason}")]
    InvalidRecordingProgress { id: String, reason: String },
    /// An amount, a currency or a fee is out of range.
    #[error("invalid amount: {reason}")]
    InvalidAmount { reason: String },
    /// A transfer's legs do not make a valid movement (sum, accounts, currency, key).
    #[error("invalid transfer: {reason}")]
    InvalidTransfer { reason: String },
    /// A leg would take an account below zero; nothing moved.
    #[error("insufficient funds in {account}: balance {balance_minor}, needs {needed_minor}")]
    InsufficientFunds {
        account: String,
        balance_minor: i64,
        needed_minor: i64,
    },
    /// The idempotency key was already used for a different transfer.
    #[error("idempotency key {key:?} was used for a different transfer")]
    IdempotencyConflict { key: String },
    /// An email address is malformed (or a display name out of range).
    #[error("invalid email: {reason}")]
    InvalidEmail { reason: String },
    /// A new password is too short or too long.
    #[error("invalid password: {reason}")]
    InvalidPassword { reason: String },
    /// Another account has this email.
    #[error("an account with this email exists")]
    EmailTaken,
    /// Wrong email or password, or an unknown, expired or revoked token.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// No account has this id.
    #[error("account {id} not found")]
    AccountNotFound { id: String },
    /// A webhook's signature header is missing, malformed, wrong or too old.
    #[error("invalid webhook signature: {reason}")]
    InvalidSignature { reason: String },
    /// A playback token is malformed, forged, or the signing key is unusable.
    #[error("invalid playback token: {reason}")]
    InvalidToken { reason: String },
    /// A playback token is genuine but past its expiry.
    #[error("the playback token expired at {exp}")]
    TokenExpired { exp: i64 },
    /// The database URL names a backend greenroom does not support.
    #[error("unsupported database URL {url:?}: use sqlite://... or postgres://...")]
    UnsupportedDatabase { url: String },
    /// Running the embedded migrations failed.
    #[error("migrating the {backend} database failed: {source}")]
    Migrate {
        backend: &'static str,
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("database error while {operation}: {source}")]
    Database {
        operation: &'static str,
        source: sqlx::Error,
    },
    /// A stored row holds a value this version does not understand.
    #[error("stream {id} in the database is corrupt: {reason}")]
    Corrupt { id: String, reason: String },
    /// A stored recording row holds a value this version does not understand.
    #[error("recording {id} in the database is corrupt: {reason}")]
    RecordingCorrupt { id: String, reason: String },
}

impl ControlError {
    pub(crate) fn database(operation: &'static str) -> impl FnOnce(sqlx::Error) -> ControlError {
        move |source| ControlError::Database { operation, source }
    }
}
