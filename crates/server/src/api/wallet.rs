//! The token wallet: viewers buy configured token packs through Stripe Checkout and spend
//! tokens on streams priced in tokens (`POST /api/v1/streams/{id}/enroll`). Every movement is
//! a ledger transfer; the balance is the sum of the wallet's ledger entries, and a spend never
//! takes it below zero (402 `insufficient_tokens`, nothing moved).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use greenroom_control::{
    CheckoutLine, CheckoutMode, LedgerEntry, NewCheckout, TokenPack, TransferKind,
};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::api::commerce::{GrantView, SessionSpec, open_session, optional_json, payments};
use crate::api::ownership::owns_stream;
use crate::api::streams::{now_ms, rfc3339};
use crate::api::{ApiError, Caller};
use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/wallet", get(wallet))
        .route("/api/v1/wallet/packs", get(packs))
        .route("/api/v1/wallet/checkout", post(buy))
        .route("/api/v1/streams/{id}/enroll", post(enroll))
}

/// One movement of a wallet.
#[derive(Debug, Serialize)]
pub struct MovementView {
    pub transfer_id: String,
    /// Positive: tokens in; negative: tokens out.
    pub tokens: i64,
    /// `token_purchase`, `token_spend`, `refund`, `adjustment`.
    pub kind: TransferKind,
    pub memo: Option<String>,
    pub at: String,
}

impl From<LedgerEntry> for MovementView {
    fn from(entry: LedgerEntry) -> MovementView {
        MovementView {
            transfer_id: entry.transfer_id,
            tokens: entry.amount_minor,
            kind: entry.kind,
            memo: entry.memo,
            at: rfc3339(entry.created_at_ms),
        }
    }
}

#[derive(Debug, Serialize)]
struct WalletView {
    balance: i64,
    /// Newest first.
    history: Vec<MovementView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /api/v1/wallet[?limit=N]` (account): balance and movements, newest first.
async fn wallet(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<WalletView>, ApiError> {
    let account = caller.require_account()?;
    let Query(query) = query.map_err(|err| ApiError::InvalidRequest {
        reason: err.body_text(),
    })?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let balance = state.store.wallet_balance(&account.id).await?;
    let history = state.store.wallet_history(&account.id, limit).await?;
    Ok(Json(WalletView {
        balance,
        history: history.into_iter().map(MovementView::from).collect(),
    }))
}

#[derive(Debug, Serialize)]
struct PackList {
    packs: Vec<TokenPack>,
}

/// `GET /api/v1/wallet/packs`: the token packs on sale (none while payments are off).
async fn packs(State(state): State<AppState>) -> Json<PackList> {
    let packs = state
        .payments
        .as_ref()
        .map(|p| p.token_packs.clone())
        .unwrap_or_default();
    Json(PackList { packs })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuyPack {
    #[serde(default)]
    pack: String,
    #[serde(default)]
    return_to: Option<String>,
}

/// `POST /api/v1/wallet/checkout` (account) `{"pack", "return_to"?}` → `201
/// {"checkout_id","url",...}`; the tokens arrive when Stripe reports the payment.
async fn buy(
    State(state): State<AppState>,
    caller: Caller,
    headers: http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let account = caller.require_account()?.clone();
    let request: BuyPack = optional_json(&headers, body)?;
    let payments = payments(&state)?;
    let pack = payments
        .token_pack(&request.pack)
        .ok_or_else(|| ApiError::UnknownTokenPack {
            pack: request.pack.clone(),
        })?
        .clone();
    let checkout = state
        .store
        .create_checkout(NewCheckout::for_tokens(&account.id, &pack)?)
        .await?;
    let spec = SessionSpec {
        mode: CheckoutMode::Payment,
        line: CheckoutLine::Inline {
            name: format!("{} tokens", pack.tokens),
            amount_minor: checkout.amount_minor,
            currency: checkout.currency.clone(),
        },
        return_to: request.return_to.as_deref(),
        // The platform sells tokens; creators are paid when tokens are spent.
        destination: None,
    };
    open_session(&state, payments, &account, checkout, spec).await
}

#[derive(Debug, Serialize)]
struct Enrolled {
    grant: GrantView,
    /// Tokens spent now (0 when the account was enrolled before).
    spent: i64,
    balance: i64,
}

/// `POST /api/v1/streams/{id}/enroll` (account): spends the stream's token price for access to
/// it. `201` with the grant; enrolling again spends nothing (`200`); `409 already_granted`
/// when a pass already covers the stream; `402 insufficient_tokens` when the wallet is short.
async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let account = caller.require_account()?.clone();
    let stream = state.store.get_stream(&id).await?;
    let now = now_ms();
    if stream.is_free() {
        return Err(ApiError::NotForSale { id });
    }
    if owns_stream(&state, &caller, &stream).await? {
        return Err(ApiError::AlreadyGranted {
            reason: "you own this stream".to_owned(),
        });
    }
    match state
        .store
        .access_to_stream(&account.id, &stream, now, false)
        .await
    {
        Ok(grant) if grant.source != greenroom_control::GrantSource::Tokens => {
            return Err(ApiError::AlreadyGranted {
                reason: format!("grant {} already gives access to this stream", grant.id),
            });
        }
        Ok(_) | Err(greenroom_control::ControlError::AccessRequired { .. }) => {}
        Err(err) => return Err(err.into()),
    }
    let (grant, posted) = state
        .store
        .enroll_with_tokens(&account.id, &stream.id, now)
        .await?;
    let balance = state.store.wallet_balance(&account.id).await?;
    let (status, spent) = if posted.replayed {
        (StatusCode::OK, 0)
    } else {
        (StatusCode::CREATED, stream.price_tokens.unwrap_or(0))
    };
    let view = Enrolled {
        grant: GrantView::from(grant),
        spent,
        balance,
    };
    Ok((status, Json(view)).into_response())
}
