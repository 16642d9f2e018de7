//! The studio and watch pages and their static files, embedded in the binary.

use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};

use crate::api::ApiError;

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

const STUDIO_HTML: &str = include_str!("../web/studio.html");
const WATCH_HTML: &str = include_str!("../web/watch.html");

/// `(file name, content type, contents)` of every file under `/static/`.
const STATIC_FILES: [(&str, &str, &str); 4] = [
    ("app.css", CSS, include_str!("../web/app.css")),
    ("studio.js", JS, include_str!("../web/studio.js")),
    ("watch.js", JS, include_str!("../web/watch.js")),
    ("webrtc.js", JS, include_str!("../web/webrtc.js")),
];

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/studio/{id}", get(studio))
        .route("/watch/{id}", get(watch))
        .route("/static/{file}", get(static_file))
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `GET /studio/{id}`: the browser publisher page (the key travels in the URL fragment).
async fn studio() -> Response {
    page(HTML, STUDIO_HTML)
}

/// `GET /watch/{id}`: the viewer page.
async fn watch() -> Response {
    page(HTML, WATCH_HTML)
}

/// `GET /static/{file}`.
async fn static_file(Path(file): Path<String>) -> Result<Response, ApiError> {
    STATIC_FILES
        .iter()
        .find(|(name, _, _)| *name == file)
        .map(|(_, content_type, body)| page(content_type, body))
        .ok_or(ApiError::RouteNotFound {
            method: "GET".to_owned(),
            path: format!("/static/{file}"),
        })
}
