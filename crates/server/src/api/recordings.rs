//! Recordings (replays) of a stream: list, read, change the expiry, delete. The admin, or the
//! owner of the stream's channel (`401` without credentials, `403` for other accounts).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use greenroom_control::{Recording, RecordingStatus};
use http::StatusCode;
use serde::Serialize;

use crate::api::streams::{authorize, rfc3339};
use crate::api::{ApiError, Caller};
use crate::app::AppState;

/// A recording as the API shows it.
#[derive(Debug, Serialize)]
pub struct RecordingView {
    pub id: String,
    pub stream_id: String,
    /// `recording` (the session is live), `ready` (a replay) or `failed`.
    pub status: RecordingStatus,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_ms: i64,
    pub size_bytes: i64,
    pub segments: i64,
    /// Rendition names, highest first.
    pub renditions: Vec<String>,
    /// The replay's HLS master playlist.
    pub replay_url: String,
    pub thumbnail_url: Option<String>,
    /// When the retention job deletes it; `null`: kept.
    pub expires_at: Option<String>,
}

pub(crate) fn view(state: &AppState, recording: Recording) -> RecordingView {
    let base = &state.public_url;
    let id = &recording.id;
    RecordingView {
        replay_url: format!("{base}/replays/{id}/master.m3u8"),
        thumbnail_url: recording
            .has_thumbnail
            .then(|| format!("{base}/replays/{id}/thumbnail.jpg")),
        started_at: rfc3339(recording.started_at_ms),
        ended_at: recording.ended_at_ms.map(rfc3339),
        expires_at: recording.expires_at_ms.map(rfc3339),
        status: recording.status,
        duration_ms: recording.duration_ms,
        size_bytes: recording.size_bytes,
        segments: recording.segments,
        renditions: recording.variants,
        stream_id: recording.stream_id,
        id: recording.id,
    }
}

/// `GET /api/v1/streams/{id}/recordings` → the stream's recordings, newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<RecordingView>>, ApiError> {
    let Path(id) = id?;
    authorize(&state, &caller, &id).await?;
    let recordings = state.store.list_recordings(&id).await?;
    Ok(Json(
        recordings.into_iter().map(|r| view(&state, r)).collect(),
    ))
}

/// The recording, if the caller is the admin or owns its stream's channel.
async fn authorized_recording(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Recording, ApiError> {
    caller.require_any()?;
    let recording = state.store.get_recording(id).await?;
    authorize(state, caller, &recording.stream_id).await?;
    Ok(recording)
}

/// `GET /api/v1/recordings/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<RecordingView>, ApiError> {
    let Path(id) = id?;
    let recording = authorized_recording(&state, &caller, &id).await?;
    Ok(Json(view(&state, recording)))
}

/// `PATCH /api/v1/recordings/{id}` `{"expires_at": "RFC 3339" | null}` → the recording with
/// its new expiry (`null` keeps it until changed again).
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<RecordingView>, ApiError> {
    let Path(id) = id?;
    caller.require_any()?;
    let Json(body) = body?;
    let Some(fields) = body.as_object() else {
        return Err(ApiError::InvalidJson {
            reason: "expected a JSON object".to_owned(),
        });
    };
    if let Some(unknown) = fields.keys().find(|k| *k != "expires_at") {
        return Err(ApiError::InvalidRecordingSetting {
            reason: format!("unknown field {unknown:?}: only expires_at can change"),
        });
    }
    let expires_at_ms = match fields.get("expires_at") {
        None => {
            return Err(ApiError::InvalidRecordingSetting {
                reason: "expires_at is required (an RFC 3339 time, or null)".to_owned(),
            });
        }
        Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| ApiError::InvalidRecordingSetting {
                    reason: format!("expires_at {text:?} is not an RFC 3339 time: {e}"),
                })?
                .timestamp_millis(),
        ),
        Some(_) => {
            return Err(ApiError::InvalidRecordingSetting {
                reason: "expires_at must be an RFC 3339 string or null".to_owned(),
            });
        }
    };
    authorized_recording(&state, &caller, &id).await?;
    let recording = state.store.set_recording_expiry(&id, expires_at_ms).await?;
    state.access.invalidate_recording(&id);
    Ok(Json(view(&state, recording)))
}

/// `DELETE /api/v1/recordings/{id}` → `204`: the replay's files, then its record.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let recording = authorized_recording(&state, &caller, &id).await?;
    if recording.status == RecordingStatus::Recording {
        return Err(ApiError::InvalidRecordingSetting {
            reason: "the recording is still being written; end the stream first".to_owned(),
        });
    }
    let Some(recordings) = state.recordings.as_ref() else {
        state.store.delete_recording(&id).await?;
        state.access.invalidate_recording(&id);
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    recordings
        .delete(&recording)
        .await
        .map_err(|detail| ApiError::Unavailable { detail })?;
    state.access.invalidate_recording(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The recordings routes.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/api/v1/streams/{id}/recordings", get(list))
        .route(
            "/api/v1/recordings/{id}",
            get(get_one).patch(patch).delete(delete),
        )
}
