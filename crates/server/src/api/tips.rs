//! Tips during a stream: a signed-in viewer opens a Stripe Checkout for an amount within the
//! configured limits and an optional message; the platform's fee is an application fee, the
//! rest goes to the creator's Stripe Connect account. When Stripe reports the payment, the tip
//! appears on the stream's live feed (`GET /api/v1/streams/{id}/events`, server-sent events,
//! owner only).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream as FutureStream;
use greenroom_control::{CheckoutLine, CheckoutMode, NewCheckout, Tip};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use crate::api::commerce::{SessionSpec, creator_account, open_session, payments};
use crate::api::ownership::{owns_channel, stream_channel};
use crate::api::streams::rfc3339;
use crate::api::{ApiError, Caller};
use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/streams/{id}/tips", get(list).post(create))
        .route("/api/v1/streams/{id}/events", get(events))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTip {
    /// In minor units of the configured currency.
    amount_minor: i64,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    return_to: Option<String>,
}

/// `POST /api/v1/streams/{id}/tips` (account) `{"amount_minor", "message"?, "return_to"?}` →
/// `201 {"checkout_id","url",...}`.
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<NewTip>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let account = caller.require_account()?.clone();
    let Json(body) = body?;
    let stream = state.store.get_stream(&id).await?;
    if stream.is_ended() || stream.cancelled_at_ms.is_some() {
        let live = false;
        return Err(ApiError::InvalidTransition {
            id: stream.id.clone(),
            state: stream.state(live).as_str(),
            action: "tip",
        });
    }
    let channel = stream_channel(&state, &stream)
        .await?
        .ok_or_else(|| ApiError::Forbidden {
            reason: format!("stream {id} belongs to no channel: it takes no tips"),
        })?;
    let payments = payments(&state)?;
    let destination = creator_account(&channel)?;
    let new = NewCheckout::for_tip(
        &account.id,
        &stream.id,
        body.message.as_deref(),
        body.amount_minor,
        &payments.currency,
        payments.platform_fee_bps,
        (payments.tip_min_major, payments.tip_max_major),
    )?;
    let checkout = state.store.create_checkout(new).await?;
    let default_return = format!("/watch/{}", stream.id);
    let spec = SessionSpec {
        mode: CheckoutMode::Payment,
        line: CheckoutLine::Inline {
            name: format!("Tip for @{}: {}", channel.handle, stream.title),
            amount_minor: checkout.amount_minor,
            currency: checkout.currency.clone(),
        },
        return_to: Some(body.return_to.as_deref().unwrap_or(&default_return)),
        destination: Some(destination),
    };
    open_session(&state, payments, &account, checkout, spec).await
}

/// A paid tip as its creator sees it.
#[derive(Debug, Serialize)]
pub struct TipView {
    pub id: String,
    pub stream_id: String,
    pub amount_minor: i64,
    pub currency: String,
    /// The platform's application fee.
    pub fee_minor: i64,
    /// What reaches the creator's Stripe account.
    pub creator_minor: i64,
    pub message: Option<String>,
    pub from: String,
    pub paid_at: Option<String>,
}

async fn tip_view(state: &AppState, tip: Tip) -> TipView {
    let from = match state.store.get_account(&tip.account_id).await {
        Ok(account) => account.display_name,
        Err(_) => String::from("a viewer"),
    };
    TipView {
        creator_minor: tip.amount_minor - tip.fee_minor,
        id: tip.id,
        stream_id: tip.stream_id,
        amount_minor: tip.amount_minor,
        currency: tip.currency,
        fee_minor: tip.fee_minor,
        message: tip.message,
        from,
        paid_at: tip.paid_at_ms.map(rfc3339),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
struct TipList {
    tips: Vec<TipView>,
}

/// The stream, if the caller owns its channel (404 for a stream that does not exist, 401/403
/// for anyone else).
async fn owned_stream(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<greenroom_control::Stream, ApiError> {
    caller.require_any()?;
    let stream = state.store.get_stream(id).await?;
    let channel = stream_channel(state, &stream).await?;
    if !owns_channel(caller, channel.as_ref()) {
        return Err(ApiError::Forbidden {
            reason: "only the stream's owner sees its tips".to_owned(),
        });
    }
    Ok(stream)
}

/// `GET /api/v1/streams/{id}/tips[?limit=N]` (owner): paid tips, newest first.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<TipList>, ApiError> {
    let Path(id) = id?;
    let Query(query) = query.map_err(|err| ApiError::InvalidRequest {
        reason: err.body_text(),
    })?;
    let stream = owned_stream(&state, &caller, &id).await?;
    let tips = state
        .store
        .tips_for_stream(&stream.id, query.limit.unwrap_or(50))
        .await?;
    let mut views = Vec::with_capacity(tips.len());
    for tip in tips {
        views.push(tip_view(&state, tip).await);
    }
    Ok(Json(TipList { tips: views }))
}

/// `GET /api/v1/streams/{id}/events` (owner): server-sent events, one per paid tip
/// (`event: tip`, data a JSON tip), as they happen on this node.
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Sse<impl FutureStream<Item = Result<Event, Infallible>>>, ApiError> {
    let Path(id) = id?;
    let stream = owned_stream(&state, &caller, &id).await?;
    let receiver = state.live_events.subscribe(&stream.id);
    let feed = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => match Event::default().event(event.name()).json_data(&event) {
                    Ok(sse) => return Some((Ok(sse), receiver)),
                    Err(err) => tracing::warn!(error = %err, "could not encode a live event"),
                },
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, "a live event listener fell behind");
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(feed).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
