//! `POST /api/v1/streams/{id}/playback-token`: the signed, short-lived token WHEP, HLS and
//! replays of a paid stream ask for (and WHIP, for the stream's owner). Whether the caller may
//! have one is decided here, against the grants; the media paths check only the signature.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use greenroom_control::playback_token::{PlaybackClaims, PlaybackRight};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::api::ownership::owns_stream;
use crate::api::streams::rfc3339;
use crate::api::{ApiError, Caller};
use crate::app::AppState;

/// How long a publish token lasts, in seconds (a broadcast session).
pub const PUBLISH_TOKEN_TTL_SECS: i64 = 12 * 3600;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/streams/{id}/playback-token", post(issue))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    #[serde(default)]
    right: Option<String>,
}

/// A playback token and where to use it.
#[derive(Debug, Serialize)]
pub struct PlaybackTokenView {
    pub token: String,
    pub stream_id: String,
    /// `watch`, `replay` or `publish`.
    pub right: PlaybackRight,
    pub expires_at: String,
    /// WHEP (watch) or WHIP (publish) endpoint; present the token as `Authorization: Bearer`.
    pub webrtc_url: Option<String>,
    /// The live HLS master playlist with the token in its query (watch, when HLS is on).
    pub hls_url: Option<String>,
}

fn parse_right(right: Option<&str>) -> Result<PlaybackRight, ApiError> {
    match right {
        None | Some("watch") => Ok(PlaybackRight::Watch),
        Some("replay") => Ok(PlaybackRight::Replay),
        Some("publish") => Ok(PlaybackRight::Publish),
        Some(other) => Err(ApiError::InvalidRequest {
            reason: format!("right must be \"watch\", \"replay\" or \"publish\", not {other:?}"),
        }),
    }
}

/// `POST /api/v1/streams/{id}/playback-token` `{"right"?: "watch"|"replay"|"publish"}` → `201`.
/// Free streams: anyone. Paid streams: an account holding a grant that covers the stream (for
/// replays, also within the stream's replay access), the channel's owner, or the admin.
/// Publish: the owner or the admin only.
async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    headers: http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    // The body is optional: no body asks for a watch token.
    let request: TokenRequest = crate::api::commerce::optional_json(&headers, body)?;
    let right = parse_right(request.right.as_deref())?;
    let stream = state.store.get_stream(&id).await?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let owner = owns_stream(&state, &caller, &stream).await?;
    let live = !stream.is_ended() && state.engine.stream_stats(&stream.id).await.live;
    let stream_state = stream.state(live).as_str();
    let mut not_after_ms: Option<i64> = None;
    match right {
        PlaybackRight::Publish => {
            caller.require_any()?;
            if !owner {
                return Err(ApiError::Forbidden {
                    reason: "only the stream's owner can publish to it".to_owned(),
                });
            }
            if stream.is_ended() {
                return Err(ApiError::InvalidTransition {
                    id: stream.id,
                    state: stream_state,
                    action: "publish",
                });
            }
        }
        PlaybackRight::Watch | PlaybackRight::Replay => {
            let replay = right == PlaybackRight::Replay;
            if !replay && stream.is_ended() {
                return Err(ApiError::InvalidTransition {
                    id: stream.id,
                    state: stream_state,
                    action: "watch live",
                });
            }
            if !stream.is_free() && !owner {
                let account = caller.require_account()?;
                let grant = state
                    .store
                    .access_to_stream(&account.id, &stream, now_ms, replay)
                    .await?;
                not_after_ms = grant.expires_at_ms;
                if replay
                    && let (Some(ended), Some(days)) =
                        (stream.ended_at_ms, stream.replay_access_days)
                {
                    let window_end = ended.saturating_add(i64::from(days) * 86_400_000);
                    not_after_ms = Some(not_after_ms.map_or(window_end, |at| at.min(window_end)));
                }
            }
        }
    }
    let ttl_secs = match right {
        PlaybackRight::Publish => PUBLISH_TOKEN_TTL_SECS,
        _ => i64::try_from(state.playback_ttl_secs).unwrap_or(i64::MAX / 4),
    };
    let mut exp = now_ms / 1000 + ttl_secs;
    if let Some(limit) = not_after_ms {
        exp = exp.min(limit / 1000);
    }
    let claims = PlaybackClaims {
        stream: stream.id.clone(),
        right,
        exp,
        sub: caller.account().map(|a| a.id.clone()),
    };
    let token = state.playback.issue(&claims);
    let base = &state.public_url;
    let view = PlaybackTokenView {
        webrtc_url: match right {
            PlaybackRight::Watch => Some(format!("{base}/whep/{}", stream.id)),
            PlaybackRight::Publish => Some(format!("{base}/whip/{}", stream.id)),
            PlaybackRight::Replay => None,
        },
        hls_url: (right == PlaybackRight::Watch && state.hls.is_some())
            .then(|| format!("{base}/hls/{}/master.m3u8?token={token}", stream.id)),
        expires_at: rfc3339(exp * 1000),
        stream_id: stream.id,
        right,
        token,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}
