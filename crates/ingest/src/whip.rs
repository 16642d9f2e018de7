//! WHIP (RFC 9725): a publisher posts its offer, trickles candidates, and deletes its session.
//! `POST` and `PATCH` carry the stream key, or a playback token with the publish right, as a
//! bearer token (or a playback token as `?token=`). `DELETE` needs only the session
//! URL, whose random id (about 130 bits) is the capability: browsers end sessions from a
//! `pagehide` handler with a bare `fetch(url, {method: 'DELETE', keepalive: true})`.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

use crate::http_util::{
    SDP, SessionPath, StreamPath, TRICKLE, TokenQuery, created, if_match, patched, presented_token,
    read_sdp, require_media_type, token_query,
};
use crate::{IngestError, IngestState, StreamAuthority};

/// `POST /whip/{stream_id}`: the publisher's SDP offer; answers `201` with the SDP answer.
pub(crate) async fn publish<A: StreamAuthority>(
    State(state): State<IngestState<A>>,
    StreamPath(stream): StreamPath,
    query: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    require_media_type(&headers, SDP)?;
    let query = token_query(query)?;
    state
        .authority
        .authorize_publish(&stream, presented_token(&headers, &query))
        .await?;
    let offer = read_sdp(&headers, body).await?;
    let answer = state.engine.publish(&stream, &offer).await?;
    tracing::info!(%stream, session = %answer.session, "WHIP publisher accepted");
    created("whip", &stream, answer, state.engine.ice_servers())
}

/// `PATCH /whip/{stream_id}/{session_id}`: trickle ICE or ICE restart.
pub(crate) async fn patch_session<A: StreamAuthority>(
    State(state): State<IngestState<A>>,
    path: SessionPath,
    query: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    require_media_type(&headers, TRICKLE)?;
    let query = token_query(query)?;
    state
        .authority
        .authorize_publish(&path.stream, presented_token(&headers, &query))
        .await?;
    let if_match = if_match(&headers)?;
    let fragment = read_sdp(&headers, body).await?;
    let outcome = state
        .engine
        .patch(&path.stream, &path.session, if_match.as_deref(), &fragment)
        .await?;
    patched(outcome)
}

/// `DELETE /whip/{stream_id}/{session_id}`: the publisher leaves.
pub(crate) async fn delete_session<A: StreamAuthority>(
    State(state): State<IngestState<A>>,
    path: SessionPath,
) -> Result<Response, IngestError> {
    state
        .engine
        .close_session(&path.stream, &path.session)
        .await?;
    tracing::info!(stream = %path.stream, session = %path.session, "WHIP session deleted");
    Ok(StatusCode::OK.into_response())
}
