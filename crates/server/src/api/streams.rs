//! `/api/v1/streams`: create, list, read, change, schedule, cancel and end streams (the admin,
//! or a creator for the streams of their channel), and what anyone may know of one: its public
//! status and its calendar event.
//!
//! Who may do what: the admin everything; a signed-in creator creates streams in their own
//! channel and manages those; anyone else is refused (`401` without credentials, `403` with
//! an account that does not own the stream). Public views never carry a stream key.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use greenroom_control::{
    Channel, NewStream, Stream, StreamAccess, StreamSettingsUpdate, StreamSource, ics,
    normalize_handle, validate_recording_retention_days,
};
use greenroom_rtc::{PublisherStats, ViewerStats};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::ownership::{owns_channel, stream_channel};
use crate::api::{ApiError, Caller};
use crate::app::AppState;
use crate::sources::SourceView;

/// A stream as its owner (the admin or the channel's creator) sees it. URLs are absolute,
/// from the public URL.
#[derive(Debug, Serialize)]
pub struct StreamView {
    pub id: String,
    pub title: String,
    /// `scheduled`, `idle`, `live`, `ended` or `cancelled`.
    pub status: &'static str,
    /// The channel's handle (without `@`); `null` for an operator's stream.
    pub channel: Option<String>,
    pub description: String,
    /// RFC 3339, UTC; when the stream is announced to start.
    pub scheduled_at: Option<String>,
    /// When it first went live.
    pub started_at: Option<String>,
    /// When it was cancelled (it never went live).
    pub cancelled_at: Option<String>,
    /// `free` or `paid`.
    pub access: StreamAccess,
    /// Price in wallet tokens of this stream alone; `null`: not sold for tokens.
    pub price_tokens: Option<i64>,
    /// Days after the end grant holders may watch the replays; `null`: while they are kept.
    pub replay_access_days: Option<u32>,
    /// The `.ics` event; `null` for a stream never scheduled.
    pub calendar_url: Option<String>,
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
    /// Each WebRTC viewer now: the layer it gets, its maximum and what its bandwidth carries,
    /// the bandwidth estimate, loss, round-trip time and NACKs.
    pub viewer_sessions: Vec<ViewerStats>,
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

/// What anyone may know of a stream (the watch page, a channel's profile, discovery).
#[derive(Debug, Clone, Serialize)]
pub struct PublicStatus {
    pub id: String,
    pub title: String,
    /// `scheduled`, `idle`, `live`, `ended` or `cancelled`.
    pub status: &'static str,
    pub viewers: usize,
    pub channel: Option<String>,
    pub description: String,
    pub scheduled_at: Option<String>,
    pub access: StreamAccess,
    pub price_tokens: Option<i64>,
    pub replay_access_days: Option<u32>,
    pub watch_url: String,
    pub calendar_url: Option<String>,
}

pub(crate) fn rfc3339(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What the engine knows of a stream now: live, viewers, publisher.
struct LiveStats {
    live: bool,
    viewers: usize,
    publisher: Option<PublisherStats>,
    viewer_sessions: Vec<ViewerStats>,
}

async fn live_stats(state: &AppState, stream: &Stream) -> LiveStats {
    if stream.is_ended() {
        return LiveStats {
            live: false,
            viewers: 0,
            publisher: None,
            viewer_sessions: Vec::new(),
        };
    }
    let stats = state.engine.stream_stats(&stream.id).await;
    LiveStats {
        live: stats.live,
        viewers: stats.viewers,
        publisher: stats.publisher,
        viewer_sessions: stats.viewer_sessions,
    }
}

fn calendar_url(state: &AppState, stream: &Stream) -> Option<String> {
    stream.scheduled_at_ms.map(|_| {
        format!(
            "{}/api/v1/streams/{}/calendar.ics",
            state.public_url, stream.id
        )
    })
}

/// A stream joined with what the engine knows of it now.
pub(crate) async fn view(state: &AppState, stream: Stream, channel: Option<&str>) -> StreamView {
    let stats = live_stats(state, &stream).await;
    let source = state.sources.view(&stream);
    let base = &state.public_url;
    let id = &stream.id;
    StreamView {
        status: stream.state(stats.live).as_str(),
        channel: channel.map(str::to_owned),
        scheduled_at: stream.scheduled_at_ms.map(rfc3339),
        started_at: stream.started_at_ms.map(rfc3339),
        cancelled_at: stream.cancelled_at_ms.map(rfc3339),
        access: stream.access,
        price_tokens: stream.price_tokens,
        replay_access_days: stream.replay_access_days,
        calendar_url: calendar_url(state, &stream),
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
        viewers: stats.viewers,
        publisher: stats.publisher,
        viewer_sessions: stats.viewer_sessions,
        source,
        id: stream.id,
        title: stream.title,
        description: stream.description,
    }
}

/// The public view of a stream whose live-ness is known.
pub(crate) fn public_view(
    state: &AppState,
    stream: Stream,
    channel: Option<&str>,
    live: bool,
    viewers: usize,
) -> PublicStatus {
    PublicStatus {
        status: stream.state(live).as_str(),
        viewers,
        channel: channel.map(str::to_owned),
        scheduled_at: stream.scheduled_at_ms.map(rfc3339),
        access: stream.access,
        price_tokens: stream.price_tokens,
        replay_access_days: stream.replay_access_days,
        watch_url: format!("{}/watch/{}", state.public_url, stream.id),
        calendar_url: calendar_url(state, &stream),
        id: stream.id,
        title: stream.title,
        description: stream.description,
    }
}

/// The handles of the channels of `streams`, by channel id (one query).
pub(crate) async fn channel_handles(
    state: &AppState,
    streams: &[Stream],
) -> Result<HashMap<String, String>, ApiError> {
    let mut ids: Vec<String> = streams
        .iter()
        .filter_map(|s| s.channel_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    Ok(state
        .store
        .channels_by_ids(&ids)
        .await?
        .into_iter()
        .map(|channel| (channel.id, channel.handle))
        .collect())
}

/// The stream, if the caller is the admin or owns its channel: `401` for nobody, `404` for
/// no such stream, `403` for another account.
pub(crate) async fn authorize(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(Stream, Option<Channel>), ApiError> {
    caller.require_any()?;
    let stream = state.store.get_stream(id).await?;
    let channel = stream_channel(state, &stream).await?;
    if !owns_channel(caller, channel.as_ref()) {
        return Err(ApiError::Forbidden {
            reason: "only the stream's channel owner or the admin can do this".to_owned(),
        });
    }
    Ok((stream, channel))
}

fn json_object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(fields) => Ok(fields),
        _ => Err(ApiError::InvalidJson {
            reason: "expected a JSON object".to_owned(),
        }),
    }
}

fn setting(reason: impl Into<String>) -> ApiError {
    ApiError::InvalidStreamSetting {
        reason: reason.into(),
    }
}

/// An RFC 3339 time field as unix ms: absent `None`, `null` `Some(None)`.
pub(crate) fn time_field(
    fields: &Map<String, Value>,
    name: &str,
) -> Result<Option<Option<i64>>, ApiError> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(text)) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| Some(Some(t.timestamp_millis())))
            .map_err(|e| setting(format!("{name} {text:?} is not an RFC 3339 time: {e}"))),
        Some(_) => Err(setting(format!("{name} must be an RFC 3339 time"))),
    }
}

fn description_field(fields: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match fields.get("description") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(setting("description must be a string")),
    }
}

fn access_field(fields: &Map<String, Value>) -> Result<Option<StreamAccess>, ApiError> {
    match fields.get("access") {
        None => Ok(None),
        Some(Value::String(text)) => StreamAccess::parse(text)
            .map(Some)
            .ok_or_else(|| setting(format!("access must be \"free\" or \"paid\", not {text:?}"))),
        Some(_) => Err(setting("access must be \"free\" or \"paid\"")),
    }
}

fn price_field(fields: &Map<String, Value>) -> Result<Option<Option<i64>>, ApiError> {
    match fields.get("price_tokens") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(value) => value
            .as_i64()
            .map(|price| Some(Some(price)))
            .ok_or_else(|| setting("price_tokens must be a whole number of tokens or null")),
    }
}

fn replay_days_field(fields: &Map<String, Value>) -> Result<Option<Option<u32>>, ApiError> {
    match fields.get("replay_access_days") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(value) => value
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .map(|days| Some(Some(days)))
            .ok_or_else(|| setting("replay_access_days must be a whole number of days or null")),
    }
}

fn record_field(fields: &Map<String, Value>) -> Result<Option<bool>, ApiError> {
    match fields.get("record") {
        None => Ok(None),
        Some(Value::Bool(on)) => Ok(Some(*on)),
        Some(_) => Err(ApiError::InvalidRecordingSetting {
            reason: "record must be true or false".to_owned(),
        }),
    }
}

fn retention_field(fields: &Map<String, Value>) -> Result<Option<Option<u32>>, ApiError> {
    match fields.get("recording_retention_days") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(value) => value
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .map(|days| Some(Some(days)))
            .ok_or_else(|| ApiError::InvalidRecordingSetting {
                reason: "recording_retention_days must be a whole number of days or null"
                    .to_owned(),
            }),
    }
}

/// The channel a new stream goes in: the admin may name any channel (`"channel": handle`) or
/// none; a creator's streams go in their own channel (naming another is `403`).
async fn channel_for_create(
    state: &AppState,
    caller: &Caller,
    fields: &Map<String, Value>,
) -> Result<Option<Channel>, ApiError> {
    let named = match fields.get("channel") {
        None | Some(Value::Null) => None,
        Some(Value::String(handle)) => Some(handle.as_str()),
        Some(_) => {
            return Err(ApiError::InvalidChannel {
                reason: "channel must be a handle".to_owned(),
            });
        }
    };
    match caller {
        Caller::Anonymous => Err(ApiError::Unauthorized),
        Caller::Admin => match named {
            Some(handle) => Ok(Some(state.store.get_channel_by_handle(handle).await?)),
            None => Ok(None),
        },
        Caller::Account(account) => {
            let Some(own) = state.store.channel_for_account(&account.id).await? else {
                return Err(ApiError::Forbidden {
                    reason: "only a creator with a channel can create streams: create your \
                             channel first (POST /api/v1/channels)"
                        .to_owned(),
                });
            };
            if let Some(handle) = named
                && normalize_handle(handle).ok().as_deref() != Some(own.handle.as_str())
            {
                return Err(ApiError::Forbidden {
                    reason: format!("you can only create streams in @{}", own.handle),
                });
            }
            Ok(Some(own))
        }
    }
}

/// `POST /api/v1/streams` `{"title", "channel"?, "description"?, "scheduled_at"?, "access"?,
/// "price_tokens"?, "replay_access_days"?, "source_url"?, "source_transport"?,
/// "simulcast_ladder"?, "record"?, "recording_retention_days"?}` → `201` with the stream; a
/// stream with a source is pulled at once. The admin, or a creator (in their channel; RTSP
/// sources are the admin's only).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    caller.require_any()?;
    let Json(body) = body?;
    let fields = json_object(body)?;
    let title = match fields.get("title") {
        Some(Value::String(title)) => title.clone(),
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
    let source = source_field(&fields)?;
    if source.is_some() && !caller.is_admin() {
        return Err(ApiError::Forbidden {
            reason: "only the admin can give a stream an RTSP source".to_owned(),
        });
    }
    let simulcast_ladder = match fields.get("simulcast_ladder") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(on)) => *on,
        Some(_) => {
            return Err(ApiError::InvalidJson {
                reason: "simulcast_ladder must be true or false".to_owned(),
            });
        }
    };
    let record = match fields.get("record") {
        Some(Value::Null) => None,
        _ => record_field(&fields)?,
    }
    .unwrap_or(true);
    let recording_retention_days = retention_field(&fields)?.flatten();
    let description = description_field(&fields)?.unwrap_or_default();
    let scheduled_at_ms = time_field(&fields, "scheduled_at")?.flatten();
    let access = match fields.get("access") {
        Some(Value::Null) => None,
        _ => access_field(&fields)?,
    }
    .unwrap_or_default();
    let price_tokens = price_field(&fields)?.flatten();
    let replay_access_days = replay_days_field(&fields)?.flatten();
    let channel = channel_for_create(&state, &caller, &fields).await?;
    let stream = state
        .store
        .create_stream_from(NewStream {
            title,
            source,
            simulcast_ladder,
            record,
            recording_retention_days,
            channel_id: channel.as_ref().map(|c| c.id.clone()),
            description,
            scheduled_at_ms,
            access,
            price_tokens,
            replay_access_days,
        })
        .await?;
    state.sources.start(&stream);
    let handle = channel.map(|c| c.handle);
    Ok((
        StatusCode::CREATED,
        Json(view(&state, stream, handle.as_deref()).await),
    )
        .into_response())
}

/// The optional `source_url` and `source_transport` of a create request.
fn source_field(fields: &Map<String, Value>) -> Result<Option<StreamSource>, ApiError> {
    let invalid = |reason: &str| ApiError::InvalidSourceUrl {
        reason: reason.to_owned(),
    };
    let transport = match fields.get("source_transport") {
        None | Some(Value::Null) => None,
        Some(Value::String(transport)) => Some(transport.as_str()),
        Some(_) => return Err(invalid("source_transport must be \"tcp\" or \"udp\"")),
    };
    match fields.get("source_url") {
        None | Some(Value::Null) if transport.is_some() => {
            Err(invalid("source_transport needs a source_url"))
        }
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url)) => Ok(Some(StreamSource::new(url, transport)?)),
        Some(_) => Err(invalid("source_url must be a string")),
    }
}

/// `GET /api/v1/streams` → newest first: every stream for the admin, a creator's channel's
/// streams for a creator (none before they have a channel); `403` for a viewer.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<StreamView>>, ApiError> {
    let streams = match &caller {
        Caller::Admin => state.store.list_streams().await?,
        _ => {
            let account = caller.require_creator()?;
            match state.store.channel_for_account(&account.id).await? {
                Some(channel) => state.store.list_channel_streams(&channel.id).await?,
                None => Vec::new(),
            }
        }
    };
    let handles = channel_handles(&state, &streams).await?;
    let mut views = Vec::with_capacity(streams.len());
    for stream in streams {
        let handle = stream
            .channel_id
            .as_ref()
            .and_then(|id| handles.get(id))
            .cloned();
        views.push(view(&state, stream, handle.as_deref()).await);
    }
    Ok(Json(views))
}

/// `GET /api/v1/streams/{id}` → the stream with its live statistics.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<StreamView>, ApiError> {
    let Path(id) = id?;
    let (stream, channel) = authorize(&state, &caller, &id).await?;
    let handle = channel.map(|c| c.handle);
    Ok(Json(view(&state, stream, handle.as_deref()).await))
}

const PATCHABLE: [&str; 6] = [
    "record",
    "recording_retention_days",
    "description",
    "access",
    "price_tokens",
    "replay_access_days",
];

/// `PATCH /api/v1/streams/{id}` `{"record"?, "recording_retention_days"?, "description"?,
/// "access"?, "price_tokens"?, "replay_access_days"?}` → the stream with its new settings.
/// Fields left out stay as they are; `null` clears a retention (the server's default), a
/// token price or a replay access limit. Recording settings apply to the next live session.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<StreamView>, ApiError> {
    let Path(id) = id?;
    caller.require_any()?;
    let Json(body) = body?;
    let fields = json_object(body)?;
    if let Some(unknown) = fields.keys().find(|k| !PATCHABLE.contains(&k.as_str())) {
        return Err(ApiError::InvalidRecordingSetting {
            reason: format!(
                "unknown field {unknown:?}: only {} can change (schedule with POST \
                 /api/v1/streams/{{id}}/schedule)",
                PATCHABLE.join(", ")
            ),
        });
    }
    let record = record_field(&fields)?;
    let retention = retention_field(&fields)?;
    if let Some(Some(days)) = retention {
        validate_recording_retention_days(days)?;
    }
    let settings = StreamSettingsUpdate {
        description: match fields.get("description") {
            Some(Value::Null) => Some(String::new()),
            _ => description_field(&fields)?,
        },
        access: access_field(&fields)?,
        price_tokens: price_field(&fields)?,
        replay_access_days: replay_days_field(&fields)?,
    };
    let (_, channel) = authorize(&state, &caller, &id).await?;
    let mut stream = state.store.update_stream_settings(&id, settings).await?;
    if record.is_some() || retention.is_some() {
        stream = state
            .store
            .update_stream_recording(&id, record, retention)
            .await?;
    }
    state.access.invalidate(&id);
    let handle = channel.map(|c| c.handle);
    Ok(Json(view(&state, stream, handle.as_deref()).await))
}

/// `DELETE /api/v1/streams/{id}` → ends the stream (publisher and viewers are disconnected).
/// A scheduled stream that never went live is cancelled instead (`409`).
pub async fn end(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<StreamView>, ApiError> {
    let Path(id) = id?;
    let (_, channel) = authorize(&state, &caller, &id).await?;
    // Stored first: a publisher racing the engine's teardown is refused by the authority.
    let stream = state.store.end_stream(&id).await?;
    Ok(Json(disconnect(&state, stream, channel).await))
}

/// After a stream ended or was cancelled in the store: forgets its cached access, stops its
/// RTSP pull and disconnects its publisher and viewers; the stream as its owner sees it.
async fn disconnect(state: &AppState, stream: Stream, channel: Option<Channel>) -> StreamView {
    state.access.invalidate(&stream.id);
    state.sources.stop(&stream.id).await;
    state.engine.end_stream(&stream.id).await;
    let handle = channel.map(|c| c.handle);
    view(state, stream, handle.as_deref()).await
}

/// `POST /api/v1/streams/{id}/cancel` → the cancelled stream: only a scheduled stream that
/// never went live (`409` `invalid_transition` otherwise). Cancelling again answers it as is.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<StreamView>, ApiError> {
    let Path(id) = id?;
    let (_, channel) = authorize(&state, &caller, &id).await?;
    let stream = state.store.cancel_stream(&id, now_ms()).await?;
    Ok(Json(disconnect(&state, stream, channel).await))
}

/// `POST /api/v1/streams/{id}/schedule` `{"scheduled_at": RFC 3339}` → the stream, scheduled
/// (or rescheduled): the time must be in the future, at most a year ahead; only a stream
/// that has never gone live and has not ended (`409` otherwise).
pub async fn schedule(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<StreamView>, ApiError> {
    let Path(id) = id?;
    caller.require_any()?;
    let Json(body) = body?;
    let fields = json_object(body)?;
    if let Some(unknown) = fields.keys().find(|k| *k != "scheduled_at") {
        return Err(setting(format!(
            "unknown field {unknown:?}: only scheduled_at is accepted"
        )));
    }
    let Some(Some(at_ms)) = time_field(&fields, "scheduled_at")? else {
        return Err(setting("scheduled_at (an RFC 3339 time) is required"));
    };
    let (_, channel) = authorize(&state, &caller, &id).await?;
    let stream = state.store.schedule_stream(&id, at_ms, now_ms()).await?;
    let handle = channel.map(|c| c.handle);
    Ok(Json(view(&state, stream, handle.as_deref()).await))
}

/// `GET /api/v1/streams/{id}/status` (public) → what anyone may know of the stream.
pub async fn public_status(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<PublicStatus>, ApiError> {
    let Path(id) = id?;
    let stream = state.store.get_stream(&id).await?;
    let channel = stream_channel(&state, &stream).await?;
    let stats = live_stats(&state, &stream).await;
    Ok(Json(public_view(
        &state,
        stream,
        channel.as_ref().map(|c| c.handle.as_str()),
        stats.live,
        stats.viewers,
    )))
}

/// The host of the public URL (for calendar UIDs).
fn public_host(public_url: &str) -> &str {
    let rest = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.split(':').next().unwrap_or(host),
    }
}

/// The calendar's own refusal: the stream exists but was never scheduled (`404`
/// `not_scheduled`). Everything else is an [`ApiError`].
#[derive(Debug)]
struct NotScheduled {
    id: String,
}

impl NotScheduled {
    fn code(&self) -> &'static str {
        "not_scheduled"
    }
}

impl IntoResponse for NotScheduled {
    fn into_response(self) -> Response {
        let message = format!(
            "stream {} was never scheduled: it has no calendar event",
            self.id
        );
        greenroom_ingest::error_response(StatusCode::NOT_FOUND, self.code(), &message)
    }
}

/// `GET /api/v1/streams/{id}/calendar.ics` (public) → the stream's iCalendar event
/// (`text/calendar`): `404` `not_scheduled` for a stream never scheduled.
pub async fn calendar(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let stream = state.store.get_stream(&id).await?;
    if stream.scheduled_at_ms.is_none() {
        return Ok(NotScheduled { id }.into_response());
    }
    let channel = stream_channel(&state, &stream).await?;
    let watch_url = format!("{}/watch/{}", state.public_url, stream.id);
    let text = ics::render_event(
        &stream,
        channel.as_ref(),
        &watch_url,
        public_host(&state.public_url),
        now_ms(),
    );
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("inline; filename=\"{}.ics\"", stream.id)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// The streams routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/streams", get(list).post(create))
        .route(
            "/api/v1/streams/{id}",
            get(get_one).patch(update).delete(end),
        )
        .route("/api/v1/streams/{id}/cancel", post(cancel))
        .route("/api/v1/streams/{id}/schedule", post(schedule))
        .route("/api/v1/streams/{id}/status", get(public_status))
        .route("/api/v1/streams/{id}/calendar.ics", get(calendar))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calendar_host_is_the_public_urls_host() {
        assert_eq!(public_host("https://live.example.com"), "live.example.com");
        assert_eq!(public_host("http://127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(
            public_host("https://tv.example.com/sub/path"),
            "tv.example.com"
        );
        assert_eq!(public_host("http://[::1]:8080"), "::1");
        assert_eq!(public_host("example.com"), "example.com");
    }
}
