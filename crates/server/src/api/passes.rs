//! Access passes: a channel's owner creates, renames, reprices and archives them; anyone sees
//! the active ones; a signed-in account claims a free pass or buys a paid one through Stripe
//! Checkout (`POST /api/v1/passes/{id}/checkout`).
//!
//! A paid pass is a Stripe Product with one active Price. Repricing makes a new Price (Stripe
//! prices are immutable) for new buyers and retires the old one; subscribers keep the price
//! they subscribed at. The Stripe objects are made before the database row, with idempotency
//! keys, so a failed call leaves nothing half made here; an orphaned Product in Stripe (the
//! database refused the pass after Stripe accepted it) sells nothing.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use greenroom_control::{
    Channel, CheckoutLine, CheckoutMode, Interval, NewCheckout, NewPass, Pass, PassKind, PassPrice,
    PassScope, StripeIds,
};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::api::commerce::{GrantView, SessionSpec, creator_account, open_session, payments};
use crate::api::ownership::{owns_channel, require_channel_owner};
use crate::api::streams::{now_ms, rfc3339};
use crate::api::{ApiError, Caller};
use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/channels/{handle}/passes", get(list).post(create))
        .route(
            "/api/v1/passes/{id}",
            get(get_one).patch(update).delete(archive),
        )
        .route("/api/v1/passes/{id}/checkout", post(checkout))
}

/// A pass as the API shows it.
#[derive(Debug, Serialize)]
pub struct PassView {
    pub id: String,
    pub channel: String,
    pub name: String,
    /// `free`, `one_time`, `monthly` or `yearly`.
    pub kind: PassKind,
    /// `channel` (every stream of the channel) or `streams` (`stream_ids`).
    pub scope: PassScope,
    pub stream_ids: Vec<String>,
    /// What a new buyer pays, in minor units of `currency` (0 for a free pass).
    pub amount_minor: i64,
    pub currency: String,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Owner and admin only: the Stripe objects and every price the pass was sold at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe: Option<PassStripeView>,
}

#[derive(Debug, Serialize)]
pub struct PassStripeView {
    pub product_id: Option<String>,
    pub price_id: Option<String>,
    pub prices: Vec<PriceView>,
}

#[derive(Debug, Serialize)]
pub struct PriceView {
    pub price_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub created_at: String,
    pub retired_at: Option<String>,
}

impl From<PassPrice> for PriceView {
    fn from(price: PassPrice) -> PriceView {
        PriceView {
            price_id: price.stripe_price_id,
            amount_minor: price.amount_minor,
            currency: price.currency,
            created_at: rfc3339(price.created_at_ms),
            retired_at: price.retired_at_ms.map(rfc3339),
        }
    }
}

async fn pass_view(
    state: &AppState,
    pass: Pass,
    channel: &Channel,
    owner: bool,
) -> Result<PassView, ApiError> {
    let stripe = if owner && pass.kind.is_paid() {
        let prices = state.store.pass_prices(&pass.id).await?;
        Some(PassStripeView {
            product_id: pass.stripe_product_id.clone(),
            price_id: pass.stripe_price_id.clone(),
            prices: prices.into_iter().map(PriceView::from).collect(),
        })
    } else {
        None
    };
    Ok(PassView {
        id: pass.id,
        channel: channel.handle.clone(),
        name: pass.name,
        kind: pass.kind,
        scope: pass.scope,
        stream_ids: pass.stream_ids,
        amount_minor: pass.amount_minor,
        currency: pass.currency,
        active: pass.active,
        created_at: rfc3339(pass.created_at_ms),
        updated_at: rfc3339(pass.updated_at_ms),
        stripe,
    })
}

fn recurring(kind: PassKind) -> Option<Interval> {
    match kind {
        PassKind::Monthly => Some(Interval::Month),
        PassKind::Yearly => Some(Interval::Year),
        PassKind::Free | PassKind::OneTime => None,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePass {
    name: String,
    kind: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    stream_ids: Vec<String>,
    #[serde(default)]
    amount_minor: i64,
    #[serde(default)]
    currency: Option<String>,
}

/// `POST /api/v1/channels/{handle}/passes` (owner): `{"name", "kind":
/// "free"|"one_time"|"monthly"|"yearly", "scope"?: "channel"|"streams", "stream_ids"?: [...],
/// "amount_minor"?, "currency"?}` → `201` with the pass.
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    handle: Result<Path<String>, PathRejection>,
    body: Result<Json<CreatePass>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Path(handle) = handle?;
    let channel = state.store.get_channel_by_handle(&handle).await?;
    require_channel_owner(&caller, &channel)?;
    let Json(body) = body?;
    let kind = PassKind::parse(&body.kind).ok_or_else(|| ApiError::InvalidPass {
        reason: format!(
            "kind must be \"free\", \"one_time\", \"monthly\" or \"yearly\", not {:?}",
            body.kind
        ),
    })?;
    let scope = match body.scope.as_deref() {
        None if body.stream_ids.is_empty() => PassScope::Channel,
        None => PassScope::Streams,
        Some(value) => PassScope::parse(value).ok_or_else(|| ApiError::InvalidPass {
            reason: format!("scope must be \"channel\" or \"streams\", not {value:?}"),
        })?,
    };
    let configured_currency = state.payments.as_ref().map(|p| p.currency.clone());
    let currency = body
        .currency
        .or(configured_currency)
        .unwrap_or_else(|| crate::config::DEFAULT_CURRENCY.to_owned());
    let new = NewPass {
        channel_id: channel.id.clone(),
        name: body.name,
        kind,
        scope,
        stream_ids: body.stream_ids,
        amount_minor: body.amount_minor,
        currency,
    };
    let stripe_ids = if kind.is_paid() {
        // Check everything greenroom can before anything is made in Stripe.
        let placeholder = StripeIds {
            product_id: "prod_check".to_owned(),
            price_id: "price_check".to_owned(),
        };
        let checked = new.validate(Some(&placeholder))?;
        let payments = payments(&state)?;
        let key = format!("pass-{}", crate::api::commerce::random_key());
        let metadata = [("greenroom_channel", channel.id.as_str())];
        let product_id = payments
            .stripe
            .create_product(
                &format!("{} (@{})", checked.name, channel.handle),
                &metadata,
                &format!("{key}-product"),
            )
            .await?;
        let price_id = payments
            .stripe
            .create_price(
                &product_id,
                checked.amount_minor,
                &checked.currency,
                recurring(kind),
                &metadata,
                &format!("{key}-price"),
            )
            .await?;
        Some(StripeIds {
            product_id,
            price_id,
        })
    } else {
        None
    };
    let pass = state.store.create_pass(new, stripe_ids).await?;
    let view = pass_view(&state, pass, &channel, true).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    include_archived: Option<bool>,
}

#[derive(Debug, Serialize)]
struct PassList {
    passes: Vec<PassView>,
}

/// `GET /api/v1/channels/{handle}/passes[?include_archived=true]`: the channel's passes
/// (archived ones for the owner only).
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    handle: Result<Path<String>, PathRejection>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<PassList>, ApiError> {
    let Path(handle) = handle?;
    let Query(query) = query.map_err(|err| ApiError::InvalidRequest {
        reason: err.body_text(),
    })?;
    let channel = state.store.get_channel_by_handle(&handle).await?;
    let owner = owns_channel(&caller, Some(&channel));
    let include_archived = query.include_archived.unwrap_or(false);
    if include_archived && !owner {
        require_channel_owner(&caller, &channel)?;
    }
    let passes = state
        .store
        .list_channel_passes(&channel.id, include_archived)
        .await?;
    let mut views = Vec::with_capacity(passes.len());
    for pass in passes {
        views.push(pass_view(&state, pass, &channel, owner).await?);
    }
    Ok(Json(PassList { passes: views }))
}

/// The pass and its channel; an archived pass is found by its owner only.
async fn pass_and_channel(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(Pass, Channel, bool), ApiError> {
    let pass = state.store.get_pass(id).await?;
    let channel = state.store.get_channel(&pass.channel_id).await?;
    let owner = owns_channel(caller, Some(&channel));
    if !pass.active && !owner {
        return Err(ApiError::PassNotFound { id: id.to_owned() });
    }
    Ok((pass, channel, owner))
}

/// `GET /api/v1/passes/{id}`.
async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<PassView>, ApiError> {
    let Path(id) = id?;
    let (pass, channel, owner) = pass_and_channel(&state, &caller, &id).await?;
    Ok(Json(pass_view(&state, pass, &channel, owner).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePass {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    amount_minor: Option<i64>,
}

/// `PATCH /api/v1/passes/{id}` (owner): `{"name"?, "amount_minor"?}`. A new amount makes a new
/// Stripe Price for new buyers and retires the old one.
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<UpdatePass>, JsonRejection>,
) -> Result<Json<PassView>, ApiError> {
    let Path(id) = id?;
    let (mut pass, channel, _) = pass_and_channel(&state, &caller, &id).await?;
    require_channel_owner(&caller, &channel)?;
    let Json(body) = body?;
    if !pass.active {
        return Err(ApiError::PassInactive { id });
    }
    if let Some(name) = &body.name {
        pass = state.store.rename_pass(&id, name).await?;
    }
    if let Some(amount) = body.amount_minor
        && amount != pass.amount_minor
    {
        if !pass.kind.is_paid() {
            return Err(ApiError::InvalidPass {
                reason: format!("pass {id} is free: it has no price"),
            });
        }
        greenroom_control::pass::validate_pass_amount(pass.kind, amount, &pass.currency)?;
        let payments = payments(&state)?;
        let product_id = pass
            .stripe_product_id
            .clone()
            .ok_or_else(|| ApiError::Internal {
                detail: format!("paid pass {id} has no Stripe product"),
            })?;
        let metadata = [("greenroom_channel", channel.id.as_str())];
        let key = format!(
            "pass-{id}-price-{amount}-{}",
            crate::api::commerce::random_key()
        );
        let price_id = payments
            .stripe
            .create_price(
                &product_id,
                amount,
                &pass.currency,
                recurring(pass.kind),
                &metadata,
                &key,
            )
            .await?;
        let old_price = pass.stripe_price_id.clone();
        pass = state
            .store
            .reprice_pass(&id, amount, &price_id, now_ms())
            .await?;
        if let Some(old) = old_price {
            retire_price(&state, &old).await;
        }
    }
    Ok(Json(pass_view(&state, pass, &channel, true).await?))
}

/// Stops a Stripe Price from being sold. The pass row already answers for what is sold (a
/// checkout always uses the pass's current price), so a failure here is logged, not fatal.
async fn retire_price(state: &AppState, price_id: &str) {
    if let Some(payments) = &state.payments
        && let Err(err) = payments.stripe.deactivate_price(price_id).await
    {
        tracing::warn!(price = %price_id, error = %err, "could not deactivate a Stripe price");
    }
}

/// `DELETE /api/v1/passes/{id}` (owner): archives the pass; nobody can buy or claim it any
/// more, grants already made stay.
async fn archive(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<PassView>, ApiError> {
    let Path(id) = id?;
    let (pass, channel, _) = pass_and_channel(&state, &caller, &id).await?;
    require_channel_owner(&caller, &channel)?;
    let archived = state.store.archive_pass(&pass.id).await?;
    if pass.active
        && let Some(price) = &pass.stripe_price_id
    {
        retire_price(&state, price).await;
    }
    Ok(Json(pass_view(&state, archived, &channel, true).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckoutRequest {
    /// A path on this server to come back to after paying (default `/`).
    #[serde(default)]
    pub return_to: Option<String>,
}

/// What claiming a free pass answers.
#[derive(Debug, Serialize)]
struct Claimed {
    grant: GrantView,
}

/// `POST /api/v1/passes/{id}/checkout` (account) `{"return_to"?: "/watch/ID"}`: a free pass is
/// claimed at once (`201 {"grant"}`); a paid one opens a Stripe Checkout session
/// (`201 {"checkout_id","url",...}`) whose completion the webhook turns into a grant.
async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    headers: http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let account = caller.require_account()?.clone();
    let request: CheckoutRequest = crate::api::commerce::optional_json(&headers, body)?;
    let (pass, channel, _) = pass_and_channel(&state, &caller, &id).await?;
    if !pass.active {
        return Err(ApiError::PassInactive { id });
    }
    let now = now_ms();
    if pass.kind == PassKind::Free {
        let grant = state
            .store
            .claim_free_pass(&account.id, &pass.id, now)
            .await?;
        let view = Claimed {
            grant: GrantView::from(grant),
        };
        return Ok((StatusCode::CREATED, Json(view)).into_response());
    }
    let payments = payments(&state)?;
    let destination = creator_account(&channel)?;
    let price_id = pass
        .stripe_price_id
        .clone()
        .ok_or_else(|| ApiError::Internal {
            detail: format!("paid pass {} has no Stripe price", pass.id),
        })?;
    let new = NewCheckout::for_pass(&account.id, &pass, payments.platform_fee_bps)?;
    let checkout = state.store.create_checkout(new).await?;
    let mode = if pass.kind.is_subscription() {
        CheckoutMode::Subscription
    } else {
        CheckoutMode::Payment
    };
    let spec = SessionSpec {
        mode,
        line: CheckoutLine::Price(price_id),
        return_to: request.return_to.as_deref(),
        destination: Some(destination),
    };
    open_session(&state, payments, &account, checkout, spec).await
}
