//! Accounts: sign up, sign in and out (page sessions), the caller's own account, and API tokens
//! for scripts.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use greenroom_control::{Account, IssuedToken, Role, TokenKind};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::api::caller::{SESSION_COOKIE, bearer, bearer_or_cookie_secret, session_cookie};
use crate::api::streams::rfc3339;
use crate::api::{ApiError, Caller};
use crate::app::AppState;

/// How long a page session lasts.
pub const SESSION_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// Longest API token name, in characters.
const MAX_TOKEN_NAME_CHARS: usize = 80;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/accounts", post(sign_up))
        .route("/api/v1/sessions", post(sign_in))
        .route("/api/v1/sessions/current", delete(sign_out))
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/tokens", post(create_api_token))
        .route("/api/v1/me/tokens/{id}", delete(revoke_api_token))
}

/// An account as its owner sees it.
#[derive(Debug, Serialize)]
pub struct AccountView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    /// `viewer` or `creator`.
    pub role: Role,
    pub created_at: String,
}

impl From<Account> for AccountView {
    fn from(account: Account) -> AccountView {
        AccountView {
            id: account.id,
            email: account.email,
            display_name: account.display_name,
            role: account.role,
            created_at: rfc3339(account.created_at_ms),
        }
    }
}

/// A new page session: the token is shown once (also set as an HttpOnly cookie).
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub token: String,
    pub expires_at: Option<String>,
    pub account: AccountView,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignUp {
    email: String,
    password: String,
    display_name: String,
    #[serde(default)]
    role: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    email: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApiToken {
    name: String,
}

fn session_response(status: StatusCode, token: IssuedToken, account: Account) -> Response {
    let max_age = SESSION_TTL_MS / 1000;
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}",
        token.secret
    );
    let body = SessionView {
        expires_at: token.expires_at_ms.map(rfc3339),
        token: token.secret,
        account: account.into(),
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /api/v1/accounts` `{"email","password","display_name","role"?: "viewer"|"creator"}` →
/// `201` with a page session for the new account.
async fn sign_up(
    State(state): State<AppState>,
    body: Result<Json<SignUp>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let role = match body.role.as_deref() {
        None | Some("viewer") => Role::Viewer,
        Some("creator") => Role::Creator,
        Some(other) => {
            return Err(ApiError::InvalidRequest {
                reason: format!("role must be \"viewer\" or \"creator\", not {other:?}"),
            });
        }
    };
    let account = state
        .store
        .create_account(&body.email, &body.password, &body.display_name, role)
        .await?;
    let token = state
        .store
        .issue_token(&account.id, TokenKind::Session, None, Some(SESSION_TTL_MS))
        .await?;
    tracing::info!(account = %account.id, role = ?account.role, "account created");
    Ok(session_response(StatusCode::CREATED, token, account))
}

/// `POST /api/v1/sessions` `{"email","password"}` → `201` with a page session; a wrong email
/// and a wrong password get the same `401 invalid_credentials`.
async fn sign_in(
    State(state): State<AppState>,
    body: Result<Json<SignIn>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let account = state
        .store
        .authenticate(&body.email, &body.password)
        .await?;
    let token = state
        .store
        .issue_token(&account.id, TokenKind::Session, None, Some(SESSION_TTL_MS))
        .await?;
    Ok(session_response(StatusCode::CREATED, token, account))
}

/// `DELETE /api/v1/sessions/current`: ends the session the request carries (cookie or
/// bearer) → `204`, and clears the cookie.
async fn sign_out(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match caller.account() {
        Some(account) => {
            if let Some(secret) = bearer_or_cookie_secret(&headers) {
                state.store.revoke_token_secret(&account.id, secret).await?;
            }
        }
        // A cookie whose session is gone (expired, revoked elsewhere): clear it all the same.
        None if session_cookie(&headers).is_some() && bearer(&headers).is_none() => {}
        None => return Err(ApiError::Unauthorized),
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("greenroom_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(response)
}

/// The caller's account and, for a creator, the handle of their channel.
#[derive(Debug, Serialize)]
pub struct MeView {
    #[serde(flatten)]
    pub account: AccountView,
    /// The channel's handle (without `@`); `null` until the creator opens one.
    pub channel: Option<String>,
}

/// `GET /api/v1/me`: the caller's account and channel.
async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<MeView>, ApiError> {
    let account = caller.require_account()?.clone();
    let channel = state
        .store
        .channel_for_account(&account.id)
        .await?
        .map(|c| c.handle);
    Ok(Json(MeView {
        account: account.into(),
        channel,
    }))
}

/// An API token, shown once.
#[derive(Debug, Serialize)]
pub struct ApiTokenView {
    pub id: String,
    pub name: String,
    pub token: String,
}

/// `POST /api/v1/me/tokens` `{"name"}` → `201` with a token for scripts (valid until revoked).
async fn create_api_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewApiToken>, JsonRejection>,
) -> Result<Response, ApiError> {
    let account = caller.require_account()?;
    let Json(body) = body?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME_CHARS {
        return Err(ApiError::InvalidRequest {
            reason: format!("name must be 1 to {MAX_TOKEN_NAME_CHARS} characters"),
        });
    }
    let token = state
        .store
        .issue_token(&account.id, TokenKind::Api, Some(name), None)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ApiTokenView {
            id: token.id,
            name: name.to_owned(),
            token: token.secret,
        }),
    )
        .into_response())
}

/// `DELETE /api/v1/me/tokens/{id}` → `204`; `404` when the caller has no such live token.
async fn revoke_api_token(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let account = caller.require_account()?;
    let Path(id) = id?;
    if state.store.revoke_token(&account.id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::ApiTokenNotFound { id })
    }
}
