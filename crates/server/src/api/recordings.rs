//! Recordings (replays) of a stream: list, read, change the expiry, delete (admin).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use greenroom_control::{Recording, RecordingStatus};
use http::StatusCode;
use serde::Serialize;

use crate::api::ApiError;
use crate::api::streams::rfc3339;
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
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<RecordingView>>, ApiError> {
    let Path(id) = id?;
    state.store.get_stream(&id).await?;
    let recordings = state.store.list_recordings(&id).await?;
    Ok(Json(
        recordings.into_iter().map(|r| view(&state, r)).collect(),
    ))
}

/// `GET /api/v1/recordings/{id}`.
pub async fn get(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<RecordingView>, ApiError> {
    let Path(id) = id?;
    let recording = state.store.get_recording(&id).await?;
    Ok(Json(view(&state, recording)))
}

/// `PATCH /api/v1/recordings/{id}` `{"expires_at": "RFC 3339" | null}` → the recording with
/// its new expiry (`null` keeps it until changed again).
pub async fn patch(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<RecordingView>, ApiError> {
    let Path(id) = id?;
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
    let recording = state.store.set_recording_expiry(&id, expires_at_ms).await?;
    Ok(Json(view(&state, recording)))
}

/// `DELETE /api/v1/recordings/{id}` → `204`: the replay's files, then its record.
pub async fn delete(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let recording = state.store.get_recording(&id).await?;
    if recording.status == RecordingStatus::Recording {
        return Err(ApiError::InvalidRecordingSetting {
            reason: "the recording is still being written; end the stream first".to_owned(),
        });
    }
    let Some(recordings) = state.recordings.as_ref() else {
        state.store.delete_recording(&id).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    recordings
        .delete(&recording)
        .await
        .map_err(|detail| ApiError::Unavailable { detail })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
