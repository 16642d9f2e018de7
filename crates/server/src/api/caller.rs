//! Who is calling: the operator (admin token), an account (page session cookie, session or API
//! bearer token, or a trusted identity provider's JWT), or nobody.
//!
//! Bearer credentials that are presented but wrong are refused (401), never silently treated
//! as anonymous: a script with a revoked token should hear about it. A stale session cookie is
//! the exception: browsers keep sending it, so it counts as no credential.

use axum::extract::FromRequestParts;
use greenroom_control::{Account, ControlError, Role};
use http::request::Parts;
use http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use crate::api::ApiError;
use crate::app::AppState;

/// The page session cookie.
pub const SESSION_COOKIE: &str = "greenroom_session";

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The operator's admin token.
    Admin,
    /// A signed-in account.
    Account(Account),
    /// No credentials.
    Anonymous,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin)
    }

    pub fn account(&self) -> Option<&Account> {
        match self {
            Caller::Account(account) => Some(account),
            _ => None,
        }
    }

    /// The account, or 401 for anyone else (the admin acts on accounts through their ids).
    pub fn require_account(&self) -> Result<&Account, ApiError> {
        self.account().ok_or(ApiError::Unauthorized)
    }

    /// A signed-in creator, 401 anonymous, 403 a viewer.
    pub fn require_creator(&self) -> Result<&Account, ApiError> {
        let account = self.require_account()?;
        if account.role != Role::Creator {
            return Err(ApiError::Forbidden {
                reason: "only creator accounts can do this".to_owned(),
            });
        }
        Ok(account)
    }

    /// The admin or anyone signed in; 401 for nobody.
    pub fn require_any(&self) -> Result<(), ApiError> {
        match self {
            Caller::Anonymous => Err(ApiError::Unauthorized),
            _ => Ok(()),
        }
    }
}

/// The bearer token of `Authorization: Bearer ...`, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// The value of the session cookie, if any.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// The account token a request carries: the bearer token if it is one, else the cookie.
pub(crate) fn bearer_or_cookie_secret(headers: &HeaderMap) -> Option<&str> {
    bearer(headers)
        .filter(|token| token.starts_with("grs_") || token.starts_with("grt_"))
        .or_else(|| session_cookie(headers))
}

fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && !token.starts_with("gr1.")
}

async fn account_for_secret(state: &AppState, secret: &str) -> Result<Caller, ApiError> {
    match state.store.account_for_token(secret).await {
        Ok((account, _kind)) => Ok(Caller::Account(account)),
        Err(ControlError::InvalidCredentials) => Err(ApiError::Unauthorized),
        Err(err) => Err(err.into()),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        if let Some(token) = bearer(&parts.headers) {
            if bool::from(token.as_bytes().ct_eq(state.admin_token.as_bytes())) {
                return Ok(Caller::Admin);
            }
            if token.starts_with("grs_") || token.starts_with("grt_") {
                return account_for_secret(state, token).await;
            }
            if looks_like_jwt(token) {
                return external_account(state, token).await;
            }
            // A playback token or anything else does not authenticate API calls.
            return Err(ApiError::Unauthorized);
        }
        // A session cookie that no longer works (expired, signed out elsewhere) is no
        // credential: browsers keep sending it, and public pages must keep working.
        if let Some(secret) = session_cookie(&parts.headers) {
            return match account_for_secret(state, secret).await {
                Err(ApiError::Unauthorized) => Ok(Caller::Anonymous),
                other => other,
            };
        }
        Ok(Caller::Anonymous)
    }
}

/// An identity provider's JWT: verified with the configured key, then the account it maps to
/// (created on first sight).
async fn external_account(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let Some(identity) = state.identity.as_ref() else {
        return Err(ApiError::Unauthorized);
    };
    let now = chrono::Utc::now().timestamp();
    let claims = identity.verify(token, now)?;
    let account = state
        .store
        .account_for_external(
            &claims.subject,
            claims.email.as_deref(),
            claims.name.as_deref(),
            claims.role,
        )
        .await?;
    Ok(Caller::Account(account))
}
