//! The application: shared state and the whole HTTP router.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, http::Method, http::Uri};
use greenroom_control::playback_token::PlaybackTokens;
use greenroom_control::{ExternalIdentity, Store, StripeClient};
use greenroom_ingest::IngestState;
use greenroom_rtc::RtcEngine;
use tower_http::trace::TraceLayer;

use crate::access::AccessCache;
use crate::api::{self, ApiError};
use crate::authority::ControlAuthority;
use crate::config::{Config, TokenPack};
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
    /// Signs and checks playback tokens.
    pub playback: PlaybackTokens,
    /// Lifetime of watch and replay tokens, in seconds.
    pub playback_ttl_secs: u64,
    /// Whether streams are paid, and recordings, from memory; the API calls
    /// [`AccessCache::invalidate`] after changing a stream.
    pub access: AccessCache,
    /// `None`: payments are off (no Stripe key configured).
    pub payments: Option<Arc<Payments>>,
    /// `None`: sign-in with an identity provider's JWT is off.
    pub identity: Option<ExternalIdentity>,
    /// Live events (paid tips) for streams' creators.
    pub live_events: crate::live_events::LiveEvents,
}

/// Everything selling needs: the Stripe client and the business settings.
pub struct Payments {
    pub stripe: StripeClient,
    /// Verifies `Stripe-Signature` headers (`whsec_...`).
    pub webhook_secret: String,
    /// Platform fee on pass sales and tips, in basis points.
    pub platform_fee_bps: u32,
    /// Tip limits in major units of `currency`, inclusive.
    pub tip_min_major: i64,
    pub tip_max_major: i64,
    /// Lowercase ISO 4217 currency of tips and token packs.
    pub currency: String,
    pub token_packs: Vec<TokenPack>,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("platform_fee_bps", &self.platform_fee_bps)
            .field("currency", &self.currency)
            .field("token_packs", &self.token_packs)
            .finish_non_exhaustive()
    }
}

impl Payments {
    /// The payments `config` turns on (`None` without a Stripe key).
    pub fn from_config(
        config: &Config,
    ) -> Result<Option<Payments>, greenroom_control::ControlError> {
        let (Some(key), Some(webhook_secret)) =
            (&config.stripe_secret_key, &config.stripe_webhook_secret)
        else {
            return Ok(None);
        };
        Ok(Some(Payments {
            stripe: StripeClient::new(key, config.stripe_api_base.as_deref())?,
            webhook_secret: webhook_secret.clone(),
            platform_fee_bps: config.platform_fee_bps,
            tip_min_major: config.tip_min,
            tip_max_major: config.tip_max,
            currency: config.currency.clone(),
            token_packs: config.token_packs.clone(),
        }))
    }

    /// The token pack with this id.
    pub fn token_pack(&self, id: &str) -> Option<&TokenPack> {
        self.token_packs.iter().find(|pack| pack.id == id)
    }
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
    /// State with a random playback key (tokens last until restart), payments and external
    /// identity off; the `with_*` methods set them.
    pub fn new(store: Store, engine: RtcEngine, public_url: &str, admin_token: &str) -> AppState {
        let sources = Sources::new(engine.clone());
        let access = AccessCache::new(store.clone());
        AppState {
            store,
            engine,
            public_url: Arc::from(public_url.trim_end_matches('/')),
            admin_token: Arc::from(admin_token),
            rtmp_base: None,
            sources,
            hls: None,
            recordings: None,
            playback: crate::access::random_playback_tokens(),
            playback_ttl_secs: crate::config::DEFAULT_PLAYBACK_TOKEN_TTL_SECS,
            access,
            payments: None,
            identity: None,
            live_events: crate::live_events::LiveEvents::default(),
        }
    }

    /// Signs playback tokens with `tokens`; watch and replay tokens last `ttl_secs`.
    pub fn with_playback(mut self, tokens: PlaybackTokens, ttl_secs: u64) -> AppState {
        self.playback = tokens;
        self.playback_ttl_secs = ttl_secs;
        self
    }

    /// Turns payments on.
    pub fn with_payments(mut self, payments: Payments) -> AppState {
        self.payments = Some(Arc::new(payments));
        self
    }

    /// Turns sign-in with an identity provider's JWTs on.
    pub fn with_identity(mut self, identity: ExternalIdentity) -> AppState {
        self.identity = Some(identity);
        self
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
        ControlAuthority::for_state(&state),
    ));
    Router::new()
        .merge(api::router())
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
