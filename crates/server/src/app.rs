//! The application: shared state and the whole HTTP router.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, http::Method, http::Uri};
use greenroom_control::Store;
use greenroom_ingest::IngestState;
use greenroom_rtc::RtcEngine;
use tower_http::trace::TraceLayer;

use crate::api::{self, ApiError};
use crate::authority::ControlAuthority;
use crate::pages;
use crate::sources::Sources;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub engine: RtcEngine,
    /// Base of every absolute URL in answers, without a trailing slash.
    pub public_url: Arc<str>,
    pub admin_token: Arc<str>,
    /// `rtmp://host:port/live` when RTMP ingest is on.
    pub rtmp_base: Option<Arc<str>>,
    /// The RTSP pulls of streams with a source.
    pub sources: Sources,
    /// Live HLS of every stream (`None` when HLS is off).
    pub hls: Option<crate::hls::HlsHub>,
    /// Recordings and replays (`None` when HLS is off).
    pub recordings: Option<crate::recording::Recordings>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(store: Store, engine: RtcEngine, public_url: &str, admin_token: &str) -> AppState {
        let sources = Sources::new(engine.clone());
        AppState {
            store,
            engine,
            public_url: Arc::from(public_url.trim_end_matches('/')),
            admin_token: Arc::from(admin_token),
            rtmp_base: None,
            sources,
            hls: None,
            recordings: None,
        }
    }

    /// Turns on HLS and recordings.
    pub fn with_hls(
        mut self,
        hls: crate::hls::HlsHub,
        recordings: crate::recording::Recordings,
    ) -> AppState {
        self.sources =
            Sources::with_frame_taps(self.engine.clone(), std::sync::Arc::new(hls.clone()));
        self.hls = Some(hls);
        self.recordings = Some(recordings);
        self
    }

    /// Announces RTMP ingest on `port` (same host as the public URL) in stream answers.
    pub fn with_rtmp_port(mut self, port: u16) -> AppState {
        let host = self
            .public_url
            .split("://")
            .nth(1)
            .unwrap_or(&self.public_url)
            .split('/')
            .next()
            .unwrap_or_default();
        // Strip the HTTP port (keep IPv6 brackets).
        let host = match host.rfind(':') {
            Some(i) if !host[i..].contains(']') => &host[..i],
            _ => host,
        };
        self.rtmp_base = Some(Arc::from(format!("rtmp://{host}:{port}/live")));
        self
    }
}

/// Every route: the API, WHIP/WHEP, the pages, `/healthz`, and a JSON 404 for the rest.
pub fn router(state: AppState) -> Router {
    let ingest = greenroom_ingest::router(IngestState::new(
        state.engine.clone(),
        ControlAuthority::new(state.store.clone()),
    ));
    Router::new()
        .merge(api::router(state.clone()))
        .merge(pages::router())
        .merge(crate::hls_http::router())
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(crate::openapi::document))
        .method_not_allowed_fallback(api::method_not_allowed)
        .with_state(state)
        .merge(ingest)
        .fallback(not_found)
        .layer(TraceLayer::new_for_http())
}

/// `GET /healthz`: `200 {"status":"ok"}` while the database answers.
async fn health(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|err| ApiError::Unavailable {
            detail: err.to_string(),
        })?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

/// `GET /metrics`: the node's counters in the Prometheus text format. Nothing is labelled by
/// stream, user or SSRC, so the page is safe to scrape without credentials.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.engine.metrics().to_prometheus(),
    )
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::RouteNotFound {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}
