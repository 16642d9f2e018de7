//! `/api/v1/streams`: create, list, read and end streams (admin), and the public status of one.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use greenroom_control::{Stream, StreamSource};
use greenroom_rtc::PublisherStats;
use http::StatusCode;
use serde::Serialize;

use crate::api::ApiError;
use crate::app::AppState;
use crate::sources::SourceView;

/// A stream as the admin API shows it. URLs are absolute, from the public URL.
#[derive(Debug, Serialize)]
pub struct StreamView {
    pub id: String,
    pub title: String,
    /// `idle`, `live` or `ended`.
    pub status: &'static str,
    pub stream_key: String,
    pub whip_url: String,
    pub whep_url: String,
    /// `rtmp://host:port/live/{stream_key}` for OBS or ffmpeg; `null` when RTMP is off.
    pub rtmp_url: Option<String>,
    pub studio_url: String,
    pub watch_url: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub ended_at: Option<String>,
    /// Viewers connected now (waiting ones included).
    pub viewers: usize,
    /// The live publisher: its tracks and their layers (bitrate, fps, resolution, codec).
    pub publisher: Option<PublisherStats>,
    /// The RTSP source the server pulls (password masked) and how the pull is doing; `null`
    /// for streams without one.
    pub source: Option<SourceView>,
    /// RTMP/RTSP sources are transcoded into a three-layer simulcast ladder (q, h, f).
    pub simulcast_ladder: bool,
    /// The HLS master playlist (adaptive, LL-HLS); `null` when HLS is off.
    pub hls_url: Option<String>,
    /// Each live session is recorded (a replay when it ends).
    pub record: bool,
    /// Days replays are kept; `null`: the server's default.
    pub recording_retention_days: Option<u32>,
    /// The stream's recordings: `GET` lists them.
    pub recordings_url: String,
}

/// What the public watch page may know.
#[derive(Debug, Serialize)]
pub struct PublicStatus {
    pub id: String,
    pub title: String,
    pub status: &'static str,
    pub viewers: usize,
}

/// A stream joined with what the engine knows of it now.
async fn view(state: &AppState, stream: Stream) -> StreamView {
    let (status, viewers, publisher) = if stream.is_ended() {
        ("ended", 0, None)
    } else {
        let stats = state.engine.stream_stats(&stream.id).await;
        let status = if stats.live { "live" } else { "idle" };
        (status, stats.viewers, stats.publisher)
    };
    let source = state.sources.view(&stream);
    let base = &state.public_url;
    let id = &stream.id;
    StreamView {
        simulcast_ladder: stream.simulcast_ladder,
        hls_url: state
            .hls
            .as_ref()
            .map(|_| format!("{base}/hls/{id}/master.m3u8")),
        record: stream.record,
        recording_retention_days: stream.recording_retention_days,
        recordings_url: format!("{base}/api/v1/streams/{id}/recordings"),
        whip_url: format!("{base}/whip/{id}"),
        whep_url: format!("{base}/whep/{id}"),
        rtmp_url: state
            .rtmp_base
            .as_ref()
            .map(|rtmp| format!("{rtmp}/{}", stream.stream_key.expose())),
        studio_url: format!("{base}/studio/{id}#key={}", stream.stream_key.expose()),
        watch_url: format!("{base}/watch/{id}"),
        created_at: rfc3339(stream.created_at_ms),
        ended_at: stream.ended_at_ms.map(rfc3339),
        stream_key: stream.stream_key.expose().to_owned(),
        id: stream.id,
        title: stream.title,
        status,
        viewers,
        publisher,
        source,
    }
}

pub(crate) fn rfc3339(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// `POST /api/v1/streams` `{"title": "...", "source_url"?: "rtsp://...", "source_transport"?:
/// "tcp"|"udp", "simulcast_ladder"?: bool, "record"?: bool, "recording_retention_days"?: n}`
/// → `201` with the stream; a stream with a source is pulled at once.
pub async fn create(
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let Some(fields) = body.as_object() else {
        return Err(ApiError::InvalidJson {
            reason: "expected a JSON object".to_owned(),
        });
    };
    let title = match fields.get("title") {
        Some(serde_json::Value::String(title)) => title,
        Some(_) => {
            return Err(ApiError::InvalidTitle {
                reason: "the title must be a string".to_owned(),
            });
        }
        None => {
            return Err(ApiError::InvalidTitle {
                reason: "a title is required".to_owned(),
            });
        }
    };
    let source = source_field(fields)?;
    let simulcast_ladder = match fields.get("simulcast_ladder") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(on)) => *on,
        Some(_) => {
            return Err(ApiError::InvalidJson {
                reason: "simulcast_ladder must be true or false".to_owned(),
            });
        }
    };
    let record = match fields.get("record") {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::Bool(on)) => *on,
        Some(_) => {
            return Err(ApiError::InvalidRecordingSetting {
                reason: "record must be true or false".to_owned(),
            });
        }
    };
    let recording_retention_days = match fields.get("recording_retention_days") {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|d| u32::try_from(d).ok())
                .ok_or_else(|| ApiError::InvalidRecordingSetting {
                    reason: "recording_retention_days must be a whole number of days".to_owned(),
                })?,
        ),
    };
    let stream = state
        .store
        .create_stream_from(greenroom_control::NewStream {
            title: title.clone(),
            source,
            simulcast_ladder,
            record,
            recording_retention_days,
        })
        .await?;
    state.sources.start(&stream);
    Ok((StatusCode::CREATED, Json(view(&state, stream).await)).into_response())
}

/// The optional `source_url` and `source_transport` of a create request.
fn source_field(
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<StreamSource>, ApiError> {
    let invalid = |reason: &str| ApiError::InvalidSourceUrl {
        reason: reason.to_owned(),
    };
    let transport = match fields.get("source_transport") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(transport)) => Some(transport.as_str()),
        Some(_) => return Err(invalid("source_transport must be \"tcp\" or \"udp\"")),
    };
    match fields.get("source_url") {
        None | Some(serde_json::Value::Null) if transport.is_some() => {
            Err(invalid("source_transport needs a source_url"))
        }
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(url)) => Ok(Some(StreamSource::new(url, transport)?)),
        Some(_) => Err(invalid("source_url must be a string")),
    }
}

/// `GET /api/v1/streams` → every stream, newest first.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<StreamView>>, ApiError> {
    let streams = state.store.list_streams().await?;
    let mut views = Vec::with_capacity(streams.len());
    for stream in streams {
        views.push(view(&state, stream).await);
    }
    Ok(Json(views))
}

/// `GET /api/v1/streams/{id}` → the stream with its live statistics.
pub async fn get(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<StreamView>, ApiError> {
    let Path(id) = id?;
    let stream = state.store.get_stream(&id).await?;
    Ok(Json(view(&state, stream).await))
}

/// `PATCH /api/v1/streams/{id}` `{"record"?: bool, "recording_retention_days"?: n | null}` →
/// the stream with its new recording settings (`null` retention: the server's default). They
/// apply to the next live session; replays already made keep their expiry.
pub async fn update(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<StreamView>, ApiError> {
    let Path(id) = id?;
    let Json(body) = body?;
    let Some(fields) = body.as_object() else {
        return Err(ApiError::InvalidJson {
            reason: "expected a JSON object".to_owned(),
        });
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| *k != "record" && *k != "recording_retention_days")
    {
        return Err(ApiError::InvalidRecordingSetting {
            reason: format!(
                "unknown field {unknown:?}: only record and recording_retention_days can change"
            ),
        });
    }
    let record = match fields.get("record") {
        None => None,
        Some(serde_json::Value::Bool(on)) => Some(*on),
        Some(_) => {
            return Err(ApiError::InvalidRecordingSetting {
                reason: "record must be true or false".to_owned(),
            });
        }
    };
    let retention = match fields.get("recording_retention_days") {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(value) => Some(Some(
            value
                .as_u64()
                .and_then(|d| u32::try_from(d).ok())
                .ok_or_else(|| ApiError::InvalidRecordingSetting {
                    reason: "recording_retention_days must be a whole number of days or null"
                        .to_owned(),
                })?,
        )),
    };
    let stream = state
        .store
        .update_stream_recording(&id, record, retention)
        .await?;
    Ok(Json(view(&state, stream).await))
}

/// `DELETE /api/v1/streams/{id}` → ends the stream (publisher and viewers are disconnected).
pub async fn end(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<StreamView>, ApiError> {
    let Path(id) = id?;
    // Stored first: a publisher racing the engine's teardown is refused by the authority.
    let stream = state.store.end_stream(&id).await?;
    state.sources.stop(&id).await;
    state.engine.end_stream(&id).await;
    Ok(Json(view(&state, stream).await))
}

/// `GET /api/v1/streams/{id}/status` (public) → `{id, title, status, viewers}`.
pub async fn public_status(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<PublicStatus>, ApiError> {
    let Path(id) = id?;
    let stream = state.store.get_stream(&id).await?;
    let view = view(&state, stream).await;
    Ok(Json(PublicStatus {
        id: view.id,
        title: view.title,
        status: view.status,
        viewers: view.viewers,
    }))
}
