//! The studio, watch and dashboard pages and their static files, embedded in the binary.
//!
//! The pages are plain HTML with ES modules (no build step) over the JSON API: the watch page
//! and the dashboard act for the account signed in with the page session cookie, the studio
//! with the stream key from its URL fragment.

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
const DASHBOARD_HTML: &str = include_str!("../web/dashboard.html");

/// `(file name, content type, contents)` of every file under `/static/`.
const STATIC_FILES: [(&str, &str, &str); 10] = [
    ("app.css", CSS, include_str!("../web/app.css")),
    ("account.js", JS, include_str!("../web/account.js")),
    ("api.js", JS, include_str!("../web/api.js")),
    ("dashboard.js", JS, include_str!("../web/dashboard.js")),
    ("money.js", JS, include_str!("../web/money.js")),
    ("studio.js", JS, include_str!("../web/studio.js")),
    ("ui.js", JS, include_str!("../web/ui.js")),
    (
        "watch-access.js",
        JS,
        include_str!("../web/watch-access.js"),
    ),
    ("watch.js", JS, include_str!("../web/watch.js")),
    ("webrtc.js", JS, include_str!("../web/webrtc.js")),
];

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/studio/{id}", get(studio))
        .route("/watch/{id}", get(watch))
        .route("/dashboard", get(dashboard))
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

/// `GET /dashboard`: the creator's page (channel, streams, passes, tips).
async fn dashboard() -> Response {
    page(HTML, DASHBOARD_HTML)
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
