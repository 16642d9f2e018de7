//! WHEP: a viewer posts a recvonly offer (optionally capped with `?layer=q|h|f`), trickles
//! candidates, changes its layer with a JSON `PATCH`, and deletes its session. Watching a paid
//! stream needs a playback token (`Authorization: Bearer` or `?token=`) on the `POST`; the
//! session URL, unguessable, is then the viewer's handle on its session.

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

#[derive(Debug, Deserialize)]
struct LayerChange {
    layer: String,
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
    state.authority.authorize_watch(&stream, token).await?;
    let offer = read_sdp(&headers, body).await?;
    let answer = state
        .engine
        .subscribe(&stream, &offer, SubscribeOptions { max_layer })
        .await?;
    tracing::info!(%stream, session = %answer.session, ?max_layer, "WHEP viewer accepted");
    http_util::created("whep", &stream, answer, state.engine.ice_servers())
}

/// `PATCH /whep/{stream_id}/{session_id}`: trickle ICE / ICE restart
/// (`application/trickle-ice-sdpfrag`) or a new maximum layer (`application/json`,
/// `{"layer":"q"}`, answers `204`).
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
            let change: LayerChange =
                serde_json::from_slice(&bytes).map_err(|err| IngestError::InvalidJson {
                    reason: err.to_string(),
                })?;
            let layer = parse_layer(&change.layer)?;
            state
                .engine
                .set_max_layer(&path.stream, &path.session, layer)
                .await?;
            tracing::debug!(stream = %path.stream, session = %path.session, ?layer, "viewer layer changed");
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
