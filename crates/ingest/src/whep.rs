//! WHEP: a viewer posts a recvonly offer (optionally capped with `?layer=q|h|f`), trickles
//! candidates, changes its layer with a JSON `PATCH`, and deletes its session. Watching a paid
//! stream needs a playback token (`Authorization: Bearer` or `?token=`) on the `POST`; the
//! session URL, unguessable, is then the viewer's handle on its session, which lasts until
//! the token expires (plus [`EXPIRY_GRACE`]) unless the viewer sends a fresh token in a JSON
//! `PATCH` (`{"token": "..."}`): a revoked grant gets no fresh token, so its session ends.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use greenroom_rtc::{Layer, SubscribeOptions};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::http_util::{
    JSON, SDP, SessionPath, StreamPath, TRICKLE, if_match, media_type, patched, read_body,
    read_sdp, require_media_type,
};
use crate::{IngestError, IngestState, StreamAuthority, http_util};

#[derive(Debug, Deserialize)]
pub(crate) struct WhepQuery {
    layer: Option<String>,
    token: Option<String>,
}

/// A session of a paid stream outlives its token by this much, so a viewer renewing at the
/// last moment (or with a slightly slow clock) is not cut off.
pub const EXPIRY_GRACE: Duration = Duration::from_secs(30);

/// A JSON `PATCH` of a viewer's session: a new maximum layer, a fresh playback token, or both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionChange {
    #[serde(default)]
    layer: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// The instant a session watching until `expires_unix` (a token's expiry) is closed.
fn session_end(expires_unix: Option<i64>) -> Option<Instant> {
    let expires_unix = expires_unix?;
    let now_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let left = Duration::from_secs(expires_unix.saturating_sub(now_unix).max(0) as u64);
    Some(Instant::now() + left + EXPIRY_GRACE)
}

fn parse_layer(layer: &str) -> Result<Layer, IngestError> {
    Layer::from_rid(layer).ok_or_else(|| IngestError::InvalidLayer {
        layer: layer.to_owned(),
    })
}

/// `POST /whep/{stream_id}[?layer=q|h|f][&token=...]`: the viewer's offer; answers `201` with
/// the answer.
pub(crate) async fn subscribe<A: StreamAuthority>(
    State(state): State<IngestState<A>>,
    StreamPath(stream): StreamPath,
    query: Result<Query<WhepQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    require_media_type(&headers, SDP)?;
    let Query(query) = query.map_err(|err| IngestError::InvalidRequest {
        reason: err.body_text(),
    })?;
    let max_layer = query.layer.as_deref().map(parse_layer).transpose()?;
    let token_query = http_util::TokenQuery { token: query.token };
    let token = http_util::presented_token(&headers, &token_query);
    let expires = state.authority.authorize_watch(&stream, token).await?;
    let offer = read_sdp(&headers, body).await?;
    let options = SubscribeOptions {
        max_layer,
        valid_until: session_end(expires),
    };
    let answer = state.engine.subscribe(&stream, &offer, options).await?;
    tracing::info!(%stream, session = %answer.session, ?max_layer, "WHEP viewer accepted");
    http_util::created("whep", &stream, answer, state.engine.ice_servers())
}

/// `PATCH /whep/{stream_id}/{session_id}`: trickle ICE / ICE restart
/// (`application/trickle-ice-sdpfrag`), or (`application/json`, answers `204`) a new maximum
/// layer `{"layer":"q"}` and/or a fresh playback token `{"token":"gr1..."}` that moves the
/// session's end to that token's expiry.
pub(crate) async fn patch_session<A: StreamAuthority>(
    State(state): State<IngestState<A>>,
    path: SessionPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    match media_type(&headers).as_deref() {
        Some(TRICKLE) => {
            let if_match = if_match(&headers)?;
            let fragment = read_sdp(&headers, body).await?;
            let outcome = state
                .engine
                .patch(&path.stream, &path.session, if_match.as_deref(), &fragment)
                .await?;
            patched(outcome)
        }
        Some(JSON) => {
            let bytes = read_body(&headers, body).await?;
            let change: SessionChange =
                serde_json::from_slice(&bytes).map_err(|err| IngestError::InvalidJson {
                    reason: err.to_string(),
                })?;
            if change.layer.is_none() && change.token.is_none() {
                return Err(IngestError::InvalidJson {
                    reason: "expected \"layer\" or \"token\"".to_owned(),
                });
            }
            let layer = change.layer.as_deref().map(parse_layer).transpose()?;
            if let Some(token) = change.token.as_deref() {
                let expires = state
                    .authority
                    .authorize_watch(&path.stream, Some(token))
                    .await?;
                state
                    .engine
                    .extend_session(&path.stream, &path.session, session_end(expires))
                    .await?;
                tracing::debug!(stream = %path.stream, session = %path.session, ?expires, "viewer session extended");
            }
            if let Some(layer) = layer {
                state
                    .engine
                    .set_max_layer(&path.stream, &path.session, layer)
                    .await?;
                tracing::debug!(stream = %path.stream, session = %path.session, ?layer, "viewer layer changed");
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(IngestError::UnsupportedMediaType {
            expected: "application/trickle-ice-sdpfrag or application/json",
        }),
    }
}

/// `DELETE /whep/{stream_id}/{session_id}`: the viewer leaves.
pub(crate) async fn delete_session<A: StreamAuthority>(
    State(state): State<IngestState<A>>,
    path: SessionPath,
) -> Result<Response, IngestError> {
    state
        .engine
        .close_session(&path.stream, &path.session)
        .await?;
    tracing::info!(stream = %path.stream, session = %path.session, "WHEP session deleted");
    Ok(StatusCode::OK.into_response())
}
