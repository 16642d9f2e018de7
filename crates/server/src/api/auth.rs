//! The admin bearer token guard of the streams API.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header;
use subtle::ConstantTimeEq;

use crate::api::ApiError;
use crate::app::AppState;

/// Lets the request through only with `Authorization: Bearer <admin token>`.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let authorized = presented
        .is_some_and(|token| bool::from(token.as_bytes().ct_eq(state.admin_token.as_bytes())));
    if !authorized {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(request).await)
}
