//! The OpenAPI 3.1 description of the HTTP API, written by hand in `crates/server/openapi.json`,
//! embedded in the binary and served as is at `GET /api/v1/openapi.json`.
//!
//! Invariant: the served bytes are the file's bytes. `tests/openapi/main.rs` checks
//! that every route the router serves is documented and every documented operation is routed.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// The description, exactly as in `crates/server/openapi.json`.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// `GET /api/v1/openapi.json`: the description, `application/json`.
pub async fn document() -> Response {
    let mut response = (StatusCode::OK, DOCUMENT).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
