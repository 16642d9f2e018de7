//! The JSON API: `/api/v1/streams` (admin bearer token) and the public stream status.

mod auth;
mod error;
mod recordings;
mod streams;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;

pub use error::ApiError;
pub use recordings::RecordingView;
pub use streams::{PublicStatus, StreamView};

use crate::app::AppState;

/// Largest JSON body the API reads.
pub const MAX_JSON_BYTES: usize = 16 * 1024;

pub fn router(state: AppState) -> Router<AppState> {
    let admin = Router::new()
        .route("/api/v1/streams", get(streams::list).post(streams::create))
        .route(
            "/api/v1/streams/{id}",
            get(streams::get)
                .patch(streams::update)
                .delete(streams::end),
        )
        .route("/api/v1/streams/{id}/recordings", get(recordings::list))
        .route(
            "/api/v1/recordings/{id}",
            get(recordings::get)
                .patch(recordings::patch)
                .delete(recordings::delete),
        )
        .route_layer(middleware::from_fn_with_state(state, auth::require_admin));
    let public = Router::new().route("/api/v1/streams/{id}/status", get(streams::public_status));
    admin
        .merge(public)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
