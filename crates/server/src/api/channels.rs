//! `/api/v1/channels`: a creator makes their channel, anyone reads a channel's public profile
//! (with its live and upcoming streams), the owner or the admin changes it.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use greenroom_control::{Channel, ChannelUpdate};
use http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::ownership::{owns_channel, require_channel_owner};
use crate::api::streams::{PublicStatus, now_ms, public_view, rfc3339};
use crate::api::{ApiError, Caller};
use crate::app::AppState;

/// How many open streams of a channel its profile looks at.
const PROFILE_STREAMS: u32 = 100;
/// A scheduled stream stays upcoming this long after its announced start.
const UPCOMING_GRACE_MS: i64 = 3_600_000;

/// A channel as its owner (or the admin) sees it after a change.
#[derive(Debug, Serialize)]
pub struct ChannelView {
    pub id: String,
    /// Lowercase, without `@`.
    pub handle: String,
    pub display_name: String,
    pub bio: String,
    /// The creator's connected Stripe account; `null` until connected.
    pub stripe_account_id: Option<String>,
    pub created_at: String,
    /// The public profile (`GET`).
    pub url: String,
}

/// A channel's public profile.
#[derive(Debug, Serialize)]
pub struct ChannelProfile {
    pub id: String,
    pub handle: String,
    pub display_name: String,
    pub bio: String,
    pub created_at: String,
    /// Shown to the owner and the admin only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_account_id: Option<String>,
    /// Streams of the channel live now.
    pub live: Vec<PublicStatus>,
    /// Scheduled streams not yet started (up to an hour late), soonest first.
    pub upcoming: Vec<PublicStatus>,
}

fn channel_view(state: &AppState, channel: Channel) -> ChannelView {
    ChannelView {
        url: format!("{}/api/v1/channels/{}", state.public_url, channel.handle),
        created_at: rfc3339(channel.created_at_ms),
        id: channel.id,
        handle: channel.handle,
        display_name: channel.display_name,
        bio: channel.bio,
        stripe_account_id: channel.stripe_account_id,
    }
}

fn json_object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(fields) => Ok(fields),
        _ => Err(ApiError::InvalidJson {
            reason: "expected a JSON object".to_owned(),
        }),
    }
}

fn invalid(reason: impl Into<String>) -> ApiError {
    ApiError::InvalidChannel {
        reason: reason.into(),
    }
}

fn string_field(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(invalid(format!("{name} must be a string"))),
    }
}

/// `POST /api/v1/channels` `{"handle", "display_name", "bio"?}` → `201` with the channel: a
/// signed-in creator's one channel (`409` `channel_exists` for a second, `409`
/// `handle_taken` when another channel has the handle).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let account = match &caller {
        Caller::Anonymous => return Err(ApiError::Unauthorized),
        Caller::Admin => {
            return Err(ApiError::Forbidden {
                reason: "a channel belongs to a creator account: sign in as the creator".to_owned(),
            });
        }
        Caller::Account(account) => account,
    };
    let Json(body) = body?;
    let fields = json_object(body)?;
    if let Some(unknown) = fields
        .keys()
        .find(|k| !["handle", "display_name", "bio"].contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "unknown field {unknown:?}: a channel has a handle, a display_name and a bio"
        )));
    }
    let handle = string_field(&fields, "handle")?.ok_or_else(|| invalid("handle is required"))?;
    let display_name = string_field(&fields, "display_name")?
        .ok_or_else(|| invalid("display_name is required"))?;
    let bio = match fields.get("bio") {
        Some(Value::Null) => None,
        _ => string_field(&fields, "bio")?,
    }
    .unwrap_or_default();
    let channel = state
        .store
        .create_channel(&account.id, &handle, &display_name, &bio)
        .await?;
    Ok((StatusCode::CREATED, Json(channel_view(&state, channel))).into_response())
}

/// `GET /api/v1/channels/{handle}` (public; `@Name` works too) → the profile with the
/// channel's live and upcoming streams. Credentials only add the owner's fields: wrong or
/// expired ones are ignored here (a public page must not fail on a stale cookie).
pub async fn profile(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    handle: Result<Path<String>, PathRejection>,
) -> Result<Json<ChannelProfile>, ApiError> {
    let Path(handle) = handle?;
    let channel = state.store.get_channel_by_handle(&handle).await?;
    let now = now_ms();
    let open = state
        .store
        .channel_open_streams(&channel.id, PROFILE_STREAMS)
        .await?;
    let mut live = Vec::new();
    let mut upcoming = Vec::new();
    for stream in open {
        let stats = state.engine.stream_stats(&stream.id).await;
        if stats.live {
            live.push(public_view(
                &state,
                stream,
                Some(&channel.handle),
                true,
                stats.viewers,
            ));
        } else if stream.is_scheduled()
            && stream
                .scheduled_at_ms
                .is_some_and(|at| at >= now - UPCOMING_GRACE_MS)
        {
            upcoming.push(public_view(
                &state,
                stream,
                Some(&channel.handle),
                false,
                stats.viewers,
            ));
        }
    }
    upcoming.sort_by(|a, b| a.scheduled_at.cmp(&b.scheduled_at).then(a.id.cmp(&b.id)));
    let owner = caller.is_ok_and(|caller| owns_channel(&caller, Some(&channel)));
    Ok(Json(ChannelProfile {
        created_at: rfc3339(channel.created_at_ms),
        stripe_account_id: if owner {
            channel.stripe_account_id
        } else {
            None
        },
        id: channel.id,
        handle: channel.handle,
        display_name: channel.display_name,
        bio: channel.bio,
        live,
        upcoming,
    }))
}

/// `PATCH /api/v1/channels/{handle}` `{"display_name"?, "bio"?, "stripe_account_id"?:
/// "acct_..." | null}` → the channel. The owner or the admin; the handle never changes.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    handle: Result<Path<String>, PathRejection>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<ChannelView>, ApiError> {
    let Path(handle) = handle?;
    caller.require_any()?;
    let channel = state.store.get_channel_by_handle(&handle).await?;
    require_channel_owner(&caller, &channel)?;
    let Json(body) = body?;
    let fields = json_object(body)?;
    if let Some(unknown) = fields
        .keys()
        .find(|k| !["display_name", "bio", "stripe_account_id"].contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "unknown field {unknown:?}: only display_name, bio and stripe_account_id can change"
        )));
    }
    let update = ChannelUpdate {
        display_name: string_field(&fields, "display_name")?,
        bio: match fields.get("bio") {
            Some(Value::Null) => Some(String::new()),
            _ => string_field(&fields, "bio")?,
        },
        stripe_account_id: match fields.get("stripe_account_id") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(id)) => Some(Some(id.clone())),
            Some(_) => return Err(invalid("stripe_account_id must be a string or null")),
        },
    };
    let channel = state.store.update_channel(&channel.id, update).await?;
    Ok(Json(channel_view(&state, channel)))
}

/// The channels routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/channels", post(create))
        .route("/api/v1/channels/{handle}", get(profile).patch(update))
}
