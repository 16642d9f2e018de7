//! What selling shares: the Stripe webhook (`POST /api/v1/stripe/webhook`), a buyer's
//! checkouts and grants, and the helpers the pass, tip and wallet routes use.
//!
//! The webhook is the only way money turns into access: it checks the `Stripe-Signature`
//! header (HMAC-SHA256 with the endpoint secret, timestamp within five minutes), then applies
//! the event exactly once per event id ([`greenroom_control::Store::apply_stripe_event`]).
//! A forged, stale or malformed delivery answers 400 and changes nothing; a failure to store
//! answers 500 so Stripe delivers again.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use greenroom_control::stripe_client::CHECKOUT_METADATA_KEY;
use greenroom_control::stripe_event::MAX_EVENT_BYTES;
use greenroom_control::stripe_signature::{DEFAULT_TOLERANCE_SECS, verify_stripe_signature};
use greenroom_control::{
    Account, Channel, Checkout, CheckoutLine, CheckoutMode, CheckoutPurpose,
    CheckoutSessionRequest, CheckoutStatus, EventStatus, Grant, GrantSource, StripeEvent, Tip,
};
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::streams::{now_ms, rfc3339};
use crate::api::{ApiError, Caller};
use crate::app::{AppState, Payments};
use crate::live_events::LiveEvent;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/stripe/webhook",
            post(webhook).layer(DefaultBodyLimit::max(MAX_EVENT_BYTES)),
        )
        .route("/api/v1/checkouts/{id}", get(checkout_status))
        .route("/api/v1/me/grants", get(my_grants))
}

/// The payments settings, or 503 `payments_disabled` when no Stripe key is configured.
pub(crate) fn payments(state: &AppState) -> Result<&Arc<Payments>, ApiError> {
    state.payments.as_ref().ok_or(ApiError::PaymentsDisabled)
}

/// A random idempotency-key part (128 bits, hex).
pub(crate) fn random_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A JSON body that may be absent (empty or whitespace): absent is `T::default()`; present,
/// it must parse (400 `invalid_json`) and, when a `Content-Type` is given, be JSON (415
/// otherwise).
pub(crate) fn optional_json<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if let Some(content_type) = headers.get(http::header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        let json = essence.eq_ignore_ascii_case("application/json")
            || (essence.starts_with("application/") && essence.ends_with("+json"));
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    serde_json::from_slice(&body).map_err(|err| ApiError::InvalidJson {
        reason: err.to_string(),
    })
}

/// Where Stripe sends the buyer back: `return_to` (a path on this server, default `/`) with
/// `checkout=<id>` (paid) or `checkout=<id>&cancelled=1` appended.
pub(crate) fn return_urls(
    state: &AppState,
    return_to: Option<&str>,
    checkout_id: &str,
) -> Result<(String, String), ApiError> {
    let path = return_to.unwrap_or("/");
    // Only paths on this server: no scheme, no `//host`, no backslashes or control chars.
    if !path.starts_with('/')
        || path.starts_with("//")
        || path.contains('\\')
        || path.contains('#')
        || path.len() > 512
        || path.chars().any(char::is_control)
    {
        return Err(ApiError::InvalidRequest {
            reason: format!(
                "return_to must be a path on this server such as /watch/ID, not {path:?}"
            ),
        });
    }
    let separator = if path.contains('?') { '&' } else { '?' };
    let base = format!(
        "{}{path}{separator}checkout={checkout_id}",
        state.public_url
    );
    Ok((base.clone(), format!("{base}&cancelled=1")))
}

/// What starting a purchase answers.
#[derive(Debug, Serialize)]
pub struct CheckoutStarted {
    pub checkout_id: String,
    /// Stripe's hosted payment page: send the buyer there.
    pub url: String,
    pub amount_minor: i64,
    pub currency: String,
}

/// The creator's Stripe Connect account a channel's sales go to (409
/// `creator_not_connected` before the creator connected one).
pub(crate) fn creator_account(channel: &Channel) -> Result<String, ApiError> {
    channel
        .stripe_account_id
        .clone()
        .ok_or_else(|| ApiError::CreatorNotConnected {
            channel: channel.handle.clone(),
        })
}

/// What a stored checkout is sold as on Stripe's page.
pub(crate) struct SessionSpec<'a> {
    pub mode: CheckoutMode,
    pub line: CheckoutLine,
    /// A path on this server to come back to.
    pub return_to: Option<&'a str>,
    /// The creator's connected account; the platform keeps its fee as the application fee
    /// (the checkout's `fee_minor` for a payment, the fee rate for a subscription). `None`:
    /// the platform sells (token packs).
    pub destination: Option<String>,
}

/// Opens the Stripe Checkout session of a stored checkout and notes it; `201` with where to
/// send the buyer. The session's idempotency key is the checkout's id, so a retried call
/// cannot open two.
pub(crate) async fn open_session(
    state: &AppState,
    payments: &Payments,
    buyer: &Account,
    checkout: Checkout,
    spec: SessionSpec<'_>,
) -> Result<Response, ApiError> {
    let (success_url, cancel_url) = return_urls(state, spec.return_to, &checkout.id)?;
    let subscription = spec.mode == CheckoutMode::Subscription;
    let connected = spec.destination.is_some();
    let session = payments
        .stripe
        .create_checkout_session(&CheckoutSessionRequest {
            mode: spec.mode,
            line: spec.line,
            client_reference_id: Some(checkout.id.clone()),
            metadata: vec![(CHECKOUT_METADATA_KEY.to_owned(), checkout.id.clone())],
            customer_email: Some(buyer.email.clone()),
            success_url,
            cancel_url,
            destination: spec.destination,
            application_fee_minor: (connected && !subscription).then_some(checkout.fee_minor),
            application_fee_bps: (connected && subscription).then_some(payments.platform_fee_bps),
            idempotency_key: format!("checkout-{}", checkout.id),
        })
        .await?;
    state
        .store
        .attach_stripe_session(&checkout.id, &session.id)
        .await?;
    let started = CheckoutStarted {
        checkout_id: checkout.id,
        url: session.url,
        amount_minor: checkout.amount_minor,
        currency: checkout.currency,
    };
    Ok((StatusCode::CREATED, Json(started)).into_response())
}

/// A grant as the API shows it.
#[derive(Debug, Serialize)]
pub struct GrantView {
    pub id: String,
    pub channel_id: String,
    pub pass_id: Option<String>,
    pub stream_id: Option<String>,
    /// `free`, `purchase`, `subscription`, `tokens` or `comp`.
    pub source: GrantSource,
    pub starts_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub revoke_reason: Option<String>,
    /// Not revoked, started and not expired now.
    pub active: bool,
}

impl From<Grant> for GrantView {
    fn from(grant: Grant) -> GrantView {
        let active = grant.is_active_at(now_ms());
        GrantView {
            id: grant.id,
            channel_id: grant.channel_id,
            pass_id: grant.pass_id,
            stream_id: grant.stream_id,
            source: grant.source,
            starts_at: rfc3339(grant.starts_at_ms),
            expires_at: grant.expires_at_ms.map(rfc3339),
            revoked_at: grant.revoked_at_ms.map(rfc3339),
            revoke_reason: grant.revoke_reason,
            active,
        }
    }
}

#[derive(Debug, Serialize)]
struct GrantList {
    grants: Vec<GrantView>,
}

/// `GET /api/v1/me/grants`: the caller's grants, newest first, revoked ones included.
async fn my_grants(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<GrantList>, ApiError> {
    let account = caller.require_account()?;
    let grants = state.store.grants_for_account(&account.id).await?;
    Ok(Json(GrantList {
        grants: grants.into_iter().map(GrantView::from).collect(),
    }))
}

/// A checkout as its buyer sees it.
#[derive(Debug, Serialize)]
pub struct CheckoutView {
    pub id: String,
    #[serde(flatten)]
    pub purpose: CheckoutPurpose,
    pub amount_minor: i64,
    pub currency: String,
    /// `open`, `completed` or `expired`.
    pub status: CheckoutStatus,
    pub created_at: String,
    pub completed_at: Option<String>,
    /// The grant a completed pass purchase made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantView>,
}

/// `GET /api/v1/checkouts/{id}`: the buyer (or the admin) follows a purchase; the page a buyer
/// comes back to polls this until the webhook completed it.
async fn checkout_status(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<CheckoutView>, ApiError> {
    let Path(id) = id?;
    caller.require_any()?;
    let checkout: Checkout = state.store.get_checkout(&id).await?;
    let mine = caller
        .account()
        .is_some_and(|a| a.id == checkout.account_id);
    if !mine && !caller.is_admin() {
        // Someone else's purchase does not exist for this caller.
        return Err(ApiError::CheckoutNotFound { id });
    }
    let grant = match (&checkout.purpose, checkout.status) {
        (CheckoutPurpose::Pass { .. }, CheckoutStatus::Completed) => state
            .store
            .grant_for_checkout(&checkout.id)
            .await?
            .map(GrantView::from),
        _ => None,
    };
    Ok(Json(CheckoutView {
        id: checkout.id,
        purpose: checkout.purpose,
        amount_minor: checkout.amount_minor,
        currency: checkout.currency,
        status: checkout.status,
        created_at: rfc3339(checkout.created_at_ms),
        completed_at: checkout.completed_at_ms.map(rfc3339),
        grant,
    }))
}

#[derive(Debug, Serialize)]
struct WebhookAnswer {
    event_id: String,
    /// `applied`, `duplicate` or `ignored`.
    status: &'static str,
}

/// `POST /api/v1/stripe/webhook`: Stripe's event deliveries.
async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookAnswer>, ApiError> {
    let payments = payments(&state)?;
    let body = body?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| ApiError::InvalidSignature {
            reason: "no Stripe-Signature header".to_owned(),
        })?;
    let now = now_ms();
    verify_stripe_signature(
        &body,
        signature,
        &payments.webhook_secret,
        now / 1000,
        DEFAULT_TOLERANCE_SECS,
    )?;
    let event = StripeEvent::parse(&body)?;
    let outcome = state
        .store
        .apply_stripe_event(&event, now, payments.platform_fee_bps)
        .await?;
    for tip in outcome.paid_tips() {
        publish_tip(&state, tip).await;
    }
    let status = match outcome.status {
        EventStatus::Applied => "applied",
        EventStatus::Duplicate => "duplicate",
        EventStatus::Ignored { .. } => "ignored",
    };
    Ok(Json(WebhookAnswer {
        event_id: outcome.event_id,
        status,
    }))
}

/// Shows a paid tip on its stream's live feed.
async fn publish_tip(state: &AppState, tip: &Tip) {
    let from = match state.store.get_account(&tip.account_id).await {
        Ok(account) => account.display_name,
        Err(_) => String::from("a viewer"),
    };
    state.live_events.publish(
        &tip.stream_id,
        LiveEvent::Tip {
            tip_id: tip.id.clone(),
            amount_minor: tip.amount_minor,
            currency: tip.currency.clone(),
            creator_minor: tip.amount_minor - tip.fee_minor,
            message: tip.message.clone(),
            from,
            paid_at: rfc3339(tip.paid_at_ms.unwrap_or(tip.created_at_ms)),
        },
    );
}
