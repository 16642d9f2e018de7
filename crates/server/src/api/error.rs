use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::response::{IntoResponse, Response};
use greenroom_control::ControlError;
use greenroom_ingest::error_response;
use http::{HeaderValue, StatusCode, header};
use thiserror::Error;

/// Everything an API request can fail with; answered as
/// `{"error":{"code":"stable_code","message":"..."}}`.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("a valid admin bearer token is required")]
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
