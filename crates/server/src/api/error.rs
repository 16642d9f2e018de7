use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::response::{IntoResponse, Response};
use greenroom_control::ControlError;
use greenroom_ingest::error_response;
use http::{HeaderValue, StatusCode, header};
use thiserror::Error;

/// Everything an API request can fail with; answered as
/// `{"error":{"code":"stable_code","message":"..."}}`.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("sign in, or present a valid API token or the admin token")]
    Unauthorized,
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("method not allowed on this resource")]
    MethodNotAllowed,
    #[error("stream {id} not found")]
    StreamNotFound { id: String },
    #[error("invalid JSON body: {reason}")]
    InvalidJson { reason: String },
    #[error("expected Content-Type application/json")]
    UnsupportedMediaType,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    #[error("{reason}")]
    InvalidTitle { reason: String },
    #[error("{reason}")]
    InvalidSourceUrl { reason: String },
    #[error("{what}")]
    HlsNotFound { what: String },
    #[error("the HLS stream is not ready yet; retry shortly")]
    HlsNotReady,
    #[error("invalid blocking playlist request: {reason}")]
    InvalidBlockingRequest { reason: String },
    #[error("recording {id} not found")]
    RecordingNotFound { id: String },
    #[error("the requested range is not satisfiable")]
    RangeNotSatisfiable { length: Option<u64> },
    #[error("{reason}")]
    InvalidRecordingSetting { reason: String },
    #[error("{reason}")]
    Forbidden { reason: String },
    #[error("a playback token is required for this stream")]
    TokenRequired,
    #[error("invalid playback token: {reason}")]
    InvalidToken { reason: String },
    #[error("the playback token has expired")]
    TokenExpired,
    #[error("the playback token is for another stream or right")]
    TokenWrongStream,
    #[error("watching stream {id} requires a pass")]
    AccessRequired { id: String },
    #[error("replay access to stream {id} has ended")]
    ReplayAccessExpired { id: String },
    #[error("{reason}")]
    InvalidEmail { reason: String },
    #[error("{reason}")]
    InvalidPassword { reason: String },
    #[error("{reason}")]
    InvalidDisplayName { reason: String },
    #[error("an account with this email exists")]
    EmailTaken,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("account {id} not found")]
    AccountNotFound { id: String },
    #[error("no API token {id}")]
    ApiTokenNotFound { id: String },
    #[error("{reason}")]
    InvalidChannel { reason: String },
    #[error("the handle @{handle} is taken")]
    HandleTaken { handle: String },
    #[error("this account already has a channel")]
    ChannelExists,
    #[error("channel {id} not found")]
    ChannelNotFound { id: String },
    #[error("stream {id} is {state}: cannot {action}")]
    InvalidTransition {
        id: String,
        state: &'static str,
        action: &'static str,
    },
    #[error("{reason}")]
    InvalidStreamSetting { reason: String },
    #[error("{reason}")]
    InvalidPass { reason: String },
    #[error("pass {id} not found")]
    PassNotFound { id: String },
    #[error("pass {id} is no longer sold")]
    PassInactive { id: String },
    #[error("{reason}")]
    AlreadyGranted { reason: String },
    #[error("checkout {id} not found")]
    CheckoutNotFound { id: String },
    #[error("stream {id} is not sold for tokens")]
    NotForSale { id: String },
    #[error("not enough tokens: balance {balance}, price {needed}")]
    InsufficientTokens { balance: i64, needed: i64 },
    #[error("{reason}")]
    InvalidAmount { reason: String },
    #[error("unknown token pack {pack:?}")]
    UnknownTokenPack { pack: String },
    #[error("payments are not configured on this server")]
    PaymentsDisabled,
    #[error("the creator of channel {channel} cannot receive payments yet")]
    CreatorNotConnected { channel: String },
    #[error("the payment provider failed: {detail}")]
    PaymentProvider { detail: String },
    #[error("{reason}")]
    InvalidSignature { reason: String },
    #[error("{reason}")]
    InvalidWebhook { reason: String },
    #[error("{reason}")]
    InvalidIdentityToken { reason: String },
    #[error("idempotency key {key:?} was used for a different request")]
    IdempotencyConflict { key: String },
    #[error("unavailable: {detail}")]
    Unavailable { detail: String },
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::RouteNotFound { .. } | ApiError::StreamNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidJson { .. } | ApiError::InvalidRequest { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidTitle { .. } | ApiError::InvalidSourceUrl { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unavailable { .. } | ApiError::HlsNotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::HlsNotFound { .. } | ApiError::RecordingNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            ApiError::InvalidBlockingRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::InvalidRecordingSetting { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Forbidden { .. }
            | ApiError::TokenWrongStream
            | ApiError::AccessRequired { .. }
            | ApiError::ReplayAccessExpired { .. } => StatusCode::FORBIDDEN,
            ApiError::TokenRequired
            | ApiError::InvalidToken { .. }
            | ApiError::TokenExpired
            | ApiError::InvalidCredentials
            | ApiError::InvalidIdentityToken { .. } => StatusCode::UNAUTHORIZED,
            ApiError::InvalidEmail { .. }
            | ApiError::InvalidPassword { .. }
            | ApiError::InvalidDisplayName { .. }
            | ApiError::InvalidChannel { .. }
            | ApiError::InvalidStreamSetting { .. }
            | ApiError::InvalidPass { .. }
            | ApiError::InvalidAmount { .. }
            | ApiError::UnknownTokenPack { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::EmailTaken
            | ApiError::HandleTaken { .. }
            | ApiError::ChannelExists
            | ApiError::InvalidTransition { .. }
            | ApiError::PassInactive { .. }
            | ApiError::AlreadyGranted { .. }
            | ApiError::NotForSale { .. }
            | ApiError::CreatorNotConnected { .. }
            | ApiError::IdempotencyConflict { .. } => StatusCode::CONFLICT,
            ApiError::AccountNotFound { .. }
            | ApiError::ApiTokenNotFound { .. }
            | ApiError::ChannelNotFound { .. }
            | ApiError::PassNotFound { .. }
            | ApiError::CheckoutNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::InsufficientTokens { .. } => StatusCode::PAYMENT_REQUIRED,
            ApiError::PaymentsDisabled => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PaymentProvider { .. } => StatusCode::BAD_GATEWAY,
            ApiError::InvalidSignature { .. } | ApiError::InvalidWebhook { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::RouteNotFound { .. } => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::StreamNotFound { .. } => "stream_not_found",
            ApiError::InvalidJson { .. } => "invalid_json",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::InvalidTitle { .. } => "invalid_title",
            ApiError::InvalidSourceUrl { .. } => "invalid_source_url",
            ApiError::HlsNotFound { .. } => "hls_not_found",
            ApiError::HlsNotReady => "hls_not_ready",
            ApiError::InvalidBlockingRequest { .. } => "invalid_blocking_request",
            ApiError::RecordingNotFound { .. } => "recording_not_found",
            ApiError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            ApiError::InvalidRecordingSetting { .. } => "invalid_recording_setting",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::TokenRequired => "token_required",
            ApiError::InvalidToken { .. } => "invalid_token",
            ApiError::TokenExpired => "token_expired",
            ApiError::TokenWrongStream => "token_wrong_stream",
            ApiError::AccessRequired { .. } => "access_required",
            ApiError::ReplayAccessExpired { .. } => "replay_access_expired",
            ApiError::InvalidEmail { .. } => "invalid_email",
            ApiError::InvalidPassword { .. } => "invalid_password",
            ApiError::InvalidDisplayName { .. } => "invalid_display_name",
            ApiError::EmailTaken => "email_taken",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::AccountNotFound { .. } => "account_not_found",
            ApiError::ApiTokenNotFound { .. } => "api_token_not_found",
            ApiError::InvalidChannel { .. } => "invalid_channel",
            ApiError::HandleTaken { .. } => "handle_taken",
            ApiError::ChannelExists => "channel_exists",
            ApiError::ChannelNotFound { .. } => "channel_not_found",
            ApiError::InvalidTransition { .. } => "invalid_transition",
            ApiError::InvalidStreamSetting { .. } => "invalid_stream_setting",
            ApiError::InvalidPass { .. } => "invalid_pass",
            ApiError::PassNotFound { .. } => "pass_not_found",
            ApiError::PassInactive { .. } => "pass_inactive",
            ApiError::AlreadyGranted { .. } => "already_granted",
            ApiError::CheckoutNotFound { .. } => "checkout_not_found",
            ApiError::NotForSale { .. } => "not_for_sale",
            ApiError::InsufficientTokens { .. } => "insufficient_tokens",
            ApiError::InvalidAmount { .. } => "invalid_amount",
            ApiError::UnknownTokenPack { .. } => "unknown_token_pack",
            ApiError::PaymentsDisabled => "payments_disabled",
            ApiError::CreatorNotConnected { .. } => "creator_not_connected",
            ApiError::PaymentProvider { .. } => "payment_provider_error",
            ApiError::InvalidSignature { .. } => "invalid_signature",
            ApiError::InvalidWebhook { .. } => "invalid_webhook",
            ApiError::InvalidIdentityToken { .. } => "invalid_identity_token",
            ApiError::IdempotencyConflict { .. } => "idempotency_conflict",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal { .. } => "internal",
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(err: ControlError) -> ApiError {
        match err {
            ControlError::StreamNotFound { id } => ApiError::StreamNotFound { id },
            ControlError::InvalidTitle { reason } => ApiError::InvalidTitle { reason },
            ControlError::InvalidSourceUrl { reason } => ApiError::InvalidSourceUrl { reason },
            ControlError::InvalidStreamKey { .. } => ApiError::Unauthorized,
            ControlError::RecordingNotFound { id } => ApiError::RecordingNotFound { id },
            ControlError::InvalidRetention { reason } => {
                ApiError::InvalidRecordingSetting { reason }
            }
            ControlError::InvalidAmount { reason } => ApiError::InvalidAmount { reason },
            ControlError::InsufficientFunds {
                account,
                balance_minor,
                needed_minor,
            } if account.starts_with("wallet:") => ApiError::InsufficientTokens {
                balance: balance_minor,
                needed: needed_minor,
            },
            ControlError::IdempotencyConflict { key } => ApiError::IdempotencyConflict { key },
            ControlError::InvalidEmail { reason } => ApiError::InvalidEmail { reason },
            ControlError::InvalidPassword { reason } => ApiError::InvalidPassword { reason },
            ControlError::InvalidDisplayName { reason } => ApiError::InvalidDisplayName { reason },
            ControlError::EmailTaken => ApiError::EmailTaken,
            ControlError::InvalidCredentials => ApiError::InvalidCredentials,
            ControlError::AccountNotFound { id } => ApiError::AccountNotFound { id },
            ControlError::InvalidSignature { reason } => ApiError::InvalidSignature { reason },
            ControlError::InvalidToken { reason } => ApiError::InvalidToken { reason },
            ControlError::TokenExpired { .. } => ApiError::TokenExpired,
            ControlError::InvalidChannel { reason } => ApiError::InvalidChannel { reason },
            ControlError::HandleTaken { handle } => ApiError::HandleTaken { handle },
            ControlError::ChannelExists { .. } => ApiError::ChannelExists,
            ControlError::ChannelNotFound { id } => ApiError::ChannelNotFound { id },
            ControlError::Forbidden { reason } => ApiError::Forbidden { reason },
            ControlError::InvalidTransition { id, state, action } => {
                ApiError::InvalidTransition { id, state, action }
            }
            ControlError::InvalidStreamSetting { reason } => {
                ApiError::InvalidStreamSetting { reason }
            }
            ControlError::InvalidPass { reason } => ApiError::InvalidPass { reason },
            ControlError::PassNotFound { id } => ApiError::PassNotFound { id },
            ControlError::PassInactive { id } => ApiError::PassInactive { id },
            ControlError::AlreadyGranted { reason } => ApiError::AlreadyGranted { reason },
            ControlError::CheckoutNotFound { id } => ApiError::CheckoutNotFound { id },
            ControlError::NotForSale { id } => ApiError::NotForSale { id },
            ControlError::AccessRequired { id } => ApiError::AccessRequired { id },
            ControlError::ReplayAccessExpired { id } => ApiError::ReplayAccessExpired { id },
            ControlError::UnknownTokenPack { pack } => ApiError::UnknownTokenPack { pack },
            ControlError::PaymentsDisabled => ApiError::PaymentsDisabled,
            ControlError::CreatorNotConnected { channel } => {
                ApiError::CreatorNotConnected { channel }
            }
            ControlError::Stripe {
                operation, reason, ..
            } => ApiError::PaymentProvider {
                detail: format!("{operation}: {reason}"),
            },
            ControlError::InvalidWebhook { reason } => ApiError::InvalidWebhook { reason },
            ControlError::InvalidIdentityToken { reason } => {
                ApiError::InvalidIdentityToken { reason }
            }
            other => ApiError::Internal {
                detail: other.to_string(),
            },
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            other => ApiError::InvalidJson {
                reason: other.body_text(),
            },
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::InvalidRequest {
                reason: rejection.body_text(),
            }
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::InvalidRequest {
            reason: rejection.body_text(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal { .. } => {
                tracing::error!(error = %self, "API request failed");
                "internal server error".to_owned()
            }
            ApiError::Unavailable { .. } => {
                tracing::warn!(error = %self, "API request refused");
                "the service is not available".to_owned()
            }
            ApiError::PaymentProvider { .. } => {
                tracing::warn!(error = %self, "payment provider call failed");
                "the payment provider did not accept the request; try again later".to_owned()
            }
            _ => self.to_string(),
        };
        let mut response = error_response(status, self.code(), &message);
        if let ApiError::RangeNotSatisfiable {
            length: Some(length),
        } = &self
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{length}"))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        if matches!(self, ApiError::HlsNotReady) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
