//! HLS over HTTP: live playlists (with LL-HLS blocking reload), parts and segments from
//! memory, and replays from object storage (with range requests).
//!
//! - `GET /hls/{stream}/master.m3u8`: waits up to 10 s for the first segments of a stream
//!   that is starting; `Cache-Control: no-cache`.
//! - `GET /hls/{stream}/{session}/{rendition}/index.m3u8[?_HLS_msn=N[&_HLS_part=M]]`: blocks
//!   until the asked part or segment exists (at most three target durations, then 503); a
//!   request more than two segments ahead is a 400.
//! - `GET /hls/{stream}/{session}/{rendition}/{init.mp4|segN.m4s|segN.P.m4s}`: a part named by
//!   the preload hint is answered when it is complete. Immutable (the session is in the URL).
//! - `GET /replays/{recording}/{master.m3u8|thumbnail.jpg|{rendition}/...}`: from storage;
//!   `Range` answered with 206.
//!
//! Every answer carries `Access-Control-Allow-Origin: *` so players on other origins work.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use greenroom_hls::PlaylistAnswer;
use greenroom_hls::playlist::BlockingRequest;

use crate::api::ApiError;
use crate::app::AppState;
use crate::hls::StreamHls;

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const NO_CACHE: &str = "no-cache";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// How long a master playlist request waits for a starting stream.
const MASTER_WAIT: Duration = Duration::from_secs(10);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/hls/{stream}/master.m3u8", get(master))
        .route("/hls/{stream}/{session}/{rendition}/{file}", get(live_file))
        .route("/replays/{recording}/{file}", get(replay_top))
        .route("/replays/{recording}/{rendition}/{file}", get(replay_file))
        .layer(axum::middleware::map_response(cors))
}

async fn cors(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn answer(body: impl Into<Bytes>, content_type: &'static str, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        body.into(),
    )
        .into_response()
}

fn hls_of(state: &AppState, stream: &str) -> Result<StreamHls, ApiError> {
    state
        .hls
        .as_ref()
        .and_then(|hub| hub.get(stream))
        .ok_or_else(|| ApiError::HlsNotFound {
            what: format!("stream {stream} has no HLS (not live)"),
        })
}

async fn master(
    State(state): State<AppState>,
    stream: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(stream) = stream?;
    let deadline = Instant::now() + MASTER_WAIT;
    let mut checked = false;
    loop {
        // A stream that goes live while we wait gets its session now.
        if let Ok(hls) = hls_of(&state, &stream) {
            let notified = hls.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if hls.live.is_ended() {
                return Err(ApiError::HlsNotFound {
                    what: format!("stream {stream} is not live; its replay is in its recordings"),
                });
            }
            if let Some(text) = hls.live.master() {
                let prefix = format!("{}/", hls.session);
                let body: String = text
                    .lines()
                    .map(|line| {
                        if line.is_empty() || line.starts_with('#') {
                            format!("{line}\n")
                        } else {
                            format!("{prefix}{line}\n")
                        }
                    })
                    .collect();
                return Ok(answer(body, PLAYLIST, NO_CACHE));
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() || tokio::time::timeout(remaining, notified).await.is_err() {
                return Err(ApiError::HlsNotReady);
            }
        } else {
            if Instant::now() >= deadline || state.hls.is_none() {
                return Err(ApiError::HlsNotFound {
                    what: format!("stream {stream} has no HLS (not live)"),
                });
            }
            // Not live yet: check once that the stream exists, then poll briefly.
            if !checked {
                state.store.get_stream(&stream).await?;
                checked = true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

async fn live_file(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Path((stream, session, rendition, file)) = path?;
    let hls = hls_of(&state, &stream)?;
    if session.parse::<u64>().ok() != Some(hls.session) {
        return Err(ApiError::HlsNotFound {
            what: format!("session {session} of stream {stream} is over"),
        });
    }
    let options = state
        .hls
        .as_ref()
        .map(|h| h.options().clone())
        .unwrap_or_default();
    if file == "index.m3u8" {
        let request = BlockingRequest::from_query(query.as_deref().unwrap_or("")).map_err(|e| {
            ApiError::InvalidBlockingRequest {
                reason: e.to_string(),
            }
        })?;
        let deadline = Instant::now() + options.segment_target * 3;
        loop {
            let notified = hls.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match hls.live.playlist(&rendition, request.as_ref()) {
                PlaylistAnswer::Ready(text) => return Ok(answer(text, PLAYLIST, NO_CACHE)),
                PlaylistAnswer::NotFound => {
                    return Err(ApiError::HlsNotFound {
                        what: format!("rendition {rendition} has no playlist"),
                    });
                }
                PlaylistAnswer::TooFarAhead => {
                    return Err(ApiError::InvalidBlockingRequest {
                        reason: "_HLS_msn is more than two segments ahead of the playlist"
                            .to_owned(),
                    });
                }
                PlaylistAnswer::Wait => {}
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() || tokio::time::timeout(remaining, notified).await.is_err() {
                return Err(ApiError::HlsNotReady);
            }
        }
    }
    let content_type = media_type(&file).ok_or_else(|| ApiError::HlsNotFound {
        what: format!("no such HLS file {file:?}"),
    })?;
    let deadline = Instant::now() + options.segment_target * 2;
    loop {
        let notified = hls.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(bytes) = hls.live.resource(&rendition, &file) {
            return Ok(answer(bytes, content_type, IMMUTABLE));
        }
        if !hls.live.may_appear(&rendition, &file) || !wait_pinned(notified, deadline).await {
            return Err(ApiError::HlsNotFound {
                what: format!("{rendition}/{file} is not available"),
            });
        }
    }
}

async fn wait_pinned(
    notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    deadline: Instant,
) -> bool {
    let remaining = deadline.saturating_duration_since(Instant::now());
    !remaining.is_zero() && tokio::time::timeout(remaining, notified).await.is_ok()
}

fn media_type(file: &str) -> Option<&'static str> {
    if file == "init.mp4" {
        return Some("video/mp4");
    }
    let rest = file.strip_prefix("seg")?.strip_suffix(".m4s")?;
    let ok = rest
        .split('.')
        .all(|n| !n.is_empty() && n.len() <= 12 && n.bytes().all(|b| b.is_ascii_digit()));
    (ok && rest.split('.').count() <= 2).then_some("video/iso.segment")
}

async fn replay_top(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((recording, file)) = path?;
    let content_type = match file.as_str() {
        "master.m3u8" => PLAYLIST,
        "thumbnail.jpg" => "image/jpeg",
        _ => {
            return Err(ApiError::HlsNotFound {
                what: format!("no such replay file {file:?}"),
            });
        }
    };
    replay(&state, &recording, &file, content_type, &headers).await
}

async fn replay_file(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((recording, rendition, file)) = path?;
    let valid_rendition = rendition.len() <= 8
        && rendition.ends_with('p')
        && rendition[..rendition.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_digit());
    // A replay has whole segments only, no parts.
    let is_part = file.matches('.').count() > 1;
    let content_type = if file == "index.m3u8" {
        Some(PLAYLIST)
    } else {
        media_type(&file).filter(|_| !is_part)
    };
    let (true, Some(content_type)) = (valid_rendition, content_type) else {
        return Err(ApiError::HlsNotFound {
            what: format!("no such replay file {rendition}/{file}"),
        });
    };
    replay(
        &state,
        &recording,
        &format!("{rendition}/{file}"),
        content_type,
        &headers,
    )
    .await
}

async fn replay(
    state: &AppState,
    recording: &str,
    path: &str,
    content_type: &'static str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Some(recordings) = state.recordings.as_ref() else {
        return Err(ApiError::RecordingNotFound {
            id: recording.to_owned(),
        });
    };
    let rec = state.store.get_recording(recording).await?;
    let range = match headers.get(header::RANGE) {
        None => None,
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| ApiError::RangeNotSatisfiable { length: None })?;
            Some(
                greenroom_storage::ByteRange::parse_header(text)
                    .map_err(|_| ApiError::RangeNotSatisfiable { length: None })?,
            )
        }
    };
    let key = format!("{}{path}", rec.storage_prefix());
    let object = match recordings.read(&key, range).await {
        Ok(object) => object,
        Err(greenroom_storage::StorageError::RangeNotSatisfiable { len }) => {
            return Err(ApiError::RangeNotSatisfiable { length: Some(len) });
        }
        Err(error) if error.is_not_found() => {
            return Err(ApiError::HlsNotFound {
                what: format!("replay {recording} has no {path}"),
            });
        }
        Err(error) => {
            return Err(ApiError::Unavailable {
                detail: format!("storage: {error}"),
            });
        }
    };
    let cache =
        if path.ends_with(".m3u8") && rec.status != greenroom_control::RecordingStatus::Ready {
            NO_CACHE
        } else if path.ends_with(".m3u8") || path.ends_with(".jpg") {
            "public, max-age=60"
        } else {
            IMMUTABLE
        };
    let mut response = answer(object.body, content_type, cache);
    let headers = response.headers_mut();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some((start, end)) = object.range {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(value) =
            HeaderValue::from_str(&format!("bytes {start}-{end}/{}", object.total_len))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response)
}
