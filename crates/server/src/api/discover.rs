//! `GET /api/v1/discover`: what is on now and what is coming, across every channel (streams
//! an operator made without a channel are not listed). Public.

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::api::streams::{PublicStatus, channel_handles, now_ms, public_view};
use crate::app::AppState;

/// Rows per list when `limit` is not given.
const DEFAULT_LIMIT: u32 = 20;
/// Most rows per list.
const MAX_LIMIT: u32 = 100;
/// How many open channel streams are asked of the engine whether they are live.
const LIVE_CANDIDATES: u32 = 100;

#[derive(Debug, Deserialize)]
pub struct DiscoverQuery {
    limit: Option<String>,
}

/// The two lists.
#[derive(Debug, Serialize)]
pub struct Discover {
    /// Channel streams live now, the most recently started first.
    pub live: Vec<PublicStatus>,
    /// Scheduled channel streams (up to an hour late), soonest first.
    pub upcoming: Vec<PublicStatus>,
}

/// `GET /api/v1/discover?limit=n` (1 to 100, default 20, per list) → `{"live": [...],
/// "upcoming": [...]}`.
pub async fn discover(
    State(state): State<AppState>,
    query: Result<Query<DiscoverQuery>, QueryRejection>,
) -> Result<Json<Discover>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidRequest {
        reason: e.body_text(),
    })?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::InvalidRequest {
                reason: format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
            })?,
    };
    let candidates = state.store.open_channel_streams(LIVE_CANDIDATES).await?;
    let upcoming = state.store.upcoming_streams(now_ms(), limit).await?;
    let mut handles = channel_handles(&state, &candidates).await?;
    handles.extend(channel_handles(&state, &upcoming).await?);
    let handle = |stream: &greenroom_control::Stream| {
        stream
            .channel_id
            .as_ref()
            .and_then(|id| handles.get(id))
            .cloned()
    };
    let mut live = Vec::new();
    for stream in candidates {
        if live.len() >= limit as usize {
            break;
        }
        let stats = state.engine.stream_stats(&stream.id).await;
        if stats.live {
            let channel = handle(&stream);
            live.push(public_view(
                &state,
                stream,
                channel.as_deref(),
                true,
                stats.viewers,
            ));
        }
    }
    let mut soon = Vec::with_capacity(upcoming.len());
    for stream in upcoming {
        // Live already (a publisher started early): listed under `live`.
        if state.engine.stream_stats(&stream.id).await.live {
            continue;
        }
        let channel = handle(&stream);
        soon.push(public_view(&state, stream, channel.as_deref(), false, 0));
    }
    Ok(Json(Discover {
        live,
        upcoming: soon,
    }))
}

/// The discovery route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/discover", get(discover))
}
