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
    /// A channel handle is malformed (3 to 30 characters from `a-z 0-9 _`) or reserved, or a
    /// channel's display name or bio is out of range.
    #[error("invalid channel: {reason}")]
    InvalidChannel { reason: String },
    /// Another channel has this handle.
    #[error("the handle @{handle} is taken")]
    HandleTaken { handle: String },
    /// The account already has a channel (one per account).
    #[error("account {account} already has a channel")]
    ChannelExists { account: String },
    /// No channel has this handle or id.
    #[error("channel {id} not found")]
    ChannelNotFound { id: String },
    /// The caller may not do this (not the owner, not a creator, ...).
    #[error("forbidden: {reason}")]
    Forbidden { reason: String },
    /// A stream's lifecycle does not allow this action now (e.g. cancelling a stream that
    /// went live, publishing to a cancelled one).
    #[error("stream {id} is {state}: cannot {action}")]
    InvalidTransition {
        id: String,
        state: &'static str,
        action: &'static str,
    },
    /// A stream setting is out of range: schedule time, description, access, token price,
    /// replay access days.
    #[error("invalid stream setting: {reason}")]
    InvalidStreamSetting { reason: String },
    /// A pass definition is invalid (name, kind, scope, price, currency, streams).
    #[error("invalid pass: {reason}")]
    InvalidPass { reason: String },
    /// No pass has this id.
    #[error("pass {id} not found")]
    PassNotFound { id: String },
    /// The pass is archived and no longer sold.
    #[error("pass {id} is no longer sold")]
    PassInactive { id: String },
    /// The account already holds an active grant this purchase would give.
    #[error("already granted: {reason}")]
    AlreadyGranted { reason: String },
    /// No checkout has this id or Stripe session id.
    #[error("checkout {id} not found")]
    CheckoutNotFound { id: String },
    /// The stream is not sold for tokens.
    #[error("stream {id} is not sold for tokens")]
    NotForSale { id: String },
    /// Watching needs a grant the account does not hold (or the stream needs a signed-in
    /// viewer).
    #[error("access to stream {id} requires a pass")]
    AccessRequired { id: String },
    /// The grant covers the stream but its replay access has ended.
    #[error("replay access to stream {id} ended")]
    ReplayAccessExpired { id: String },
    /// No token pack has this id.
    #[error("unknown token pack {pack:?}")]
    UnknownTokenPack { pack: String },
    /// Payments are not configured on this server (no Stripe secret key).
    #[error("payments are not configured on this server")]
    PaymentsDisabled,
    /// The creator has not connected a Stripe account to receive money.
    #[error("channel {channel} has no connected Stripe account")]
    CreatorNotConnected { channel: String },
    /// Stripe refused or failed a call; `status` is Stripe's HTTP status when there was one.
    #[error("Stripe {operation} failed: {reason}")]
    Stripe {
        operation: &'static str,
        status: Option<u16>,
        reason: String,
    },
    /// A webhook's payload is not a Stripe event greenroom can read.
    #[error("invalid webhook payload: {reason}")]
    InvalidWebhook { reason: String },
    /// An external identity token (JWT) is malformed, forged, expired or from another issuer
    /// or audience.
    #[error("invalid identity token: {reason}")]
    InvalidIdentityToken { reason: String },
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
    /// Work the server does itself failed (a worker thread, a hashing library).
    #[error("{operation} failed: {reason}")]
    Internal {
        operation: &'static str,
        reason: String,
    },
    /// A display name is empty, too long or has control characters.
    #[error("invalid display name: {reason}")]
    InvalidDisplayName { reason: String },
    /// A stored recording row holds a value this version does not understand.
    #[error("recording {id} in the database is corrupt: {reason}")]
    RecordingCorrupt { id: String, reason: String },
}

impl ControlError {
    pub(crate) fn database(operation: &'static str) -> impl FnOnce(sqlx::Error) -> ControlError {
        move |source| ControlError::Database { operation, source }
    }
}
