use axum::Json;
use axum::response::{IntoResponse, Response};
use greenroom_rtc::RtcError;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use thiserror::Error;

/// Everything a WHIP or WHEP request can fail with. Each variant has one status and one stable
/// `code` (see [`IngestError::code`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The request's `Content-Type` is not the one the resource takes.
    #[error("expected Content-Type {expected}")]
    UnsupportedMediaType { expected: &'static str },
    /// The bearer token is missing or wrong.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// No stream has this id.
    #[error("stream {stream} not found")]
    StreamNotFound { stream: String },
    /// The stream has ended.
    #[error("stream {stream} has ended")]
    StreamEnded { stream: String },
    /// The stream's lifecycle does not allow this now (e.g. publishing to a cancelled stream).
    #[error("stream {stream} is {state}: cannot {action}")]
    InvalidTransition {
        stream: String,
        state: &'static str,
        action: &'static str,
    },
    /// Watching this (paid) stream needs a playback token and none was presented.
    #[error("a playback token is required for stream {stream}")]
    TokenRequired { stream: String },
    /// The playback token is malformed or forged.
    #[error("invalid playback token: {reason}")]
    InvalidToken { reason: String },
    /// The playback token is genuine but has expired.
    #[error("the playback token has expired")]
    TokenExpired,
    /// The playback token is for another stream, or grants another right.
    #[error("the playback token is not for this right on stream {stream}")]
    TokenWrongStream { stream: String },
    /// The body is larger than [`crate::MAX_BODY_BYTES`].
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The SDP offer or fragment is empty or not UTF-8 (the engine judges the rest).
    #[error("invalid SDP: {reason}")]
    InvalidSdp { reason: String },
    /// `?layer=` or `{"layer":...}` is not `q`, `h` or `f`.
    #[error("invalid layer {layer:?}: expected \"q\", \"h\" or \"f\"")]
    InvalidLayer { layer: String },
    /// A JSON body does not parse or lacks a field.
    #[error("invalid JSON body: {reason}")]
    InvalidJson { reason: String },
    /// The path, query or body could not be read.
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    /// The resource exists but not with this method.
    #[error("method not allowed on this resource")]
    MethodNotAllowed,
    /// The WebRTC engine refused or failed.
    #[error(transparent)]
    Rtc(#[from] RtcError),
    /// Something on the server side failed; the detail is logged, never returned.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl IngestError {
    /// An internal failure with its detail (logged when answered).
    pub fn internal(detail: impl std::fmt::Display) -> IngestError {
        IngestError::Internal {
            detail: detail.to_string(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::Unauthorized => StatusCode::UNAUTHORIZED,
            IngestError::StreamNotFound { .. } => StatusCode::NOT_FOUND,
            IngestError::StreamEnded { .. } | IngestError::InvalidTransition { .. } => {
                StatusCode::CONFLICT
            }
            IngestError::TokenRequired { .. }
            | IngestError::InvalidToken { .. }
            | IngestError::TokenExpired => StatusCode::UNAUTHORIZED,
            IngestError::TokenWrongStream { .. } => StatusCode::FORBIDDEN,
            IngestError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::InvalidSdp { .. }
            | IngestError::InvalidLayer { .. }
            | IngestError::InvalidJson { .. }
            | IngestError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            IngestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            IngestError::Rtc(err) => match err {
                RtcError::InvalidSdp(_) => StatusCode::BAD_REQUEST,
                RtcError::UnsupportedMedia(_) => StatusCode::UNPROCESSABLE_ENTITY,
                RtcError::StreamBusy { .. } => StatusCode::CONFLICT,
                // An RTMP/RTSP session has no WHIP/WHEP resource.
                RtcError::SessionNotFound { .. } | RtcError::NotWebRtc => StatusCode::NOT_FOUND,
                RtcError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
                RtcError::Closed => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            IngestError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::UnsupportedMediaType { .. } => "unsupported_media_type",
            IngestError::Unauthorized => "unauthorized",
            IngestError::StreamNotFound { .. } => "stream_not_found",
            IngestError::StreamEnded { .. } => "stream_ended",
            IngestError::InvalidTransition { .. } => "invalid_transition",
            IngestError::TokenRequired { .. } => "token_required",
            IngestError::InvalidToken { .. } => "invalid_token",
            IngestError::TokenExpired => "token_expired",
            IngestError::TokenWrongStream { .. } => "token_wrong_stream",
            IngestError::PayloadTooLarge { .. } => "payload_too_large",
            IngestError::InvalidSdp { .. } => "invalid_sdp",
            IngestError::InvalidLayer { .. } => "invalid_layer",
            IngestError::InvalidJson { .. } => "invalid_json",
            IngestError::InvalidRequest { .. } => "invalid_request",
            IngestError::MethodNotAllowed => "method_not_allowed",
            IngestError::Rtc(err) => match err {
                RtcError::InvalidSdp(_) => "invalid_sdp",
                RtcError::UnsupportedMedia(_) => "unsupported_media",
                RtcError::StreamBusy { .. } => "stream_busy",
                RtcError::SessionNotFound { .. } | RtcError::NotWebRtc => "session_not_found",
                RtcError::PreconditionFailed { .. } => "precondition_failed",
                RtcError::Closed => "unavailable",
                _ => "internal",
            },
            IngestError::Internal { .. } => "internal",
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(error = %self, "WHIP/WHEP request refused");
                "the server is shutting down".to_owned()
            } else {
                tracing::error!(error = %self, "WHIP/WHEP request failed");
                "internal server error".to_owned()
            }
        } else {
            self.to_string()
        };
        let mut response = error_response(status, self.code(), &message);
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

/// The JSON error answer every greenroom HTTP resource uses:
/// `{"error":{"code":"stable_code","message":"human text"}}`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail { code, message },
        }),
    )
        .into_response()
}
