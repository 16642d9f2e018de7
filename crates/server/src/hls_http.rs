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
//!
//! Paid streams (see [`crate::access`]): every live route needs a playback token with the
//! watch right for the stream, every replay route one with the replay right for the
//! recording's stream, as `?token=` or `Authorization: Bearer`. A playlist fetched with
//! `?token=` has every URI in it rewritten to carry the same `?token=`, so a player that only
//! knows the master URL keeps working. Whether a stream is paid, and a recording's row, come
//! from the access cache: no request here waits for the database once a stream is known.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use greenroom_control::playback_token::PlaybackRight;
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

/// The playback token a request presents: `?token=` (as written in the URL, and decoded) or
/// the bearer token.
struct Presented {
    /// The `token=` of the query, carried into rewritten playlists; only when it is made of
    /// URL-safe characters (as genuine tokens are), so nothing else is echoed into a playlist.
    in_query: Option<String>,
    token: Option<String>,
}

impl Presented {
    fn of(query: Option<&str>, headers: &HeaderMap) -> Presented {
        let from_query = query_value(query.unwrap_or(""), "token")
            .map(percent_decode)
            .filter(|v| !v.is_empty());
        let in_query = from_query.clone().filter(|token| {
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~'))
        });
        let token = from_query.or_else(|| bearer(headers).map(str::to_owned));
        Presented { in_query, token }
    }

    /// Rewrites a playlist for a request that carried `?token=`; others get it unchanged.
    fn playlist(&self, text: Bytes) -> Bytes {
        match &self.in_query {
            Some(token) => Bytes::from(with_token(&String::from_utf8_lossy(&text), token)),
            None => text,
        }
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let (scheme, token) = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim()
        .split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The raw value of `name` in a query string.
fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `%XX` and `+` decoding of a query value (invalid escapes are kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `uri` with `token=` added to its query.
fn add_token(uri: &str, token: &str) -> String {
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}token={token}")
}

/// Every URI of a playlist carries `token`: URI lines and `URI="..."` attributes (variants,
/// renditions, segments, parts, EXT-X-MAP, preload hints, rendition reports).
pub fn with_token(playlist: &str, token: &str) -> String {
    let mut out = String::with_capacity(playlist.len() + 64);
    for line in playlist.lines() {
        if line.starts_with('#') {
            let mut rest = line;
            while let Some(start) = rest.find("URI=\"") {
                let value_start = start + "URI=\"".len();
                out.push_str(&rest[..value_start]);
                rest = &rest[value_start..];
                let Some(end) = rest.find('"') else { break };
                out.push_str(&add_token(&rest[..end], token));
                rest = &rest[end..];
            }
            out.push_str(rest);
        } else if !line.is_empty() {
            out.push_str(&add_token(line.trim_end(), token));
        }
        out.push('\n');
    }
    out
}

/// Lets the request through for `right` on `stream` (a free stream: anyone).
async fn gate(
    state: &AppState,
    stream: &str,
    presented: &Presented,
    right: PlaybackRight,
) -> Result<crate::access::StreamGate, ApiError> {
    Ok(state
        .access
        .authorize(&state.playback, stream, presented.token.as_deref(), right)
        .await?)
}

async fn master(
    State(state): State<AppState>,
    stream: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path(stream) = stream?;
    if state.hls.is_none() {
        return Err(ApiError::HlsNotFound {
            what: format!("stream {stream} has no HLS (not live)"),
        });
    }
    let presented = Presented::of(query.as_deref(), &headers);
    gate(&state, &stream, &presented, PlaybackRight::Watch).await?;
    let deadline = Instant::now() + MASTER_WAIT;
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
                return Ok(answer(
                    presented.playlist(Bytes::from(body)),
                    PLAYLIST,
                    NO_CACHE,
                ));
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() || tokio::time::timeout(remaining, notified).await.is_err() {
                return Err(ApiError::HlsNotReady);
            }
        } else {
            if Instant::now() >= deadline {
                return Err(ApiError::HlsNotFound {
                    what: format!("stream {stream} has no HLS (not live)"),
                });
            }
            // Not live yet (the gate found the stream): poll briefly.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

async fn live_file(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((stream, session, rendition, file)) = path?;
    let hls = hls_of(&state, &stream)?;
    let presented = Presented::of(query.as_deref(), &headers);
    gate(&state, &stream, &presented, PlaybackRight::Watch).await?;
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
                PlaylistAnswer::Ready(text) => {
                    return Ok(answer(presented.playlist(text), PLAYLIST, NO_CACHE));
                }
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
    RawQuery(query): RawQuery,
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
    let presented = Presented::of(query.as_deref(), &headers);
    replay(
        &state,
        &recording,
        &file,
        content_type,
        &headers,
        &presented,
    )
    .await
}

async fn replay_file(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
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
    let presented = Presented::of(query.as_deref(), &headers);
    replay(
        &state,
        &recording,
        &format!("{rendition}/{file}"),
        content_type,
        &headers,
        &presented,
    )
    .await
}

async fn replay(
    state: &AppState,
    recording: &str,
    path: &str,
    content_type: &'static str,
    headers: &HeaderMap,
    presented: &Presented,
) -> Result<Response, ApiError> {
    let Some(recordings) = state.recordings.as_ref() else {
        return Err(ApiError::RecordingNotFound {
            id: recording.to_owned(),
        });
    };
    let rec = state.access.recording(recording).await?;
    gate(state, &rec.stream_id, presented, PlaybackRight::Replay).await?;
    // A playlist rewritten for its token is answered whole.
    let rewrite = path.ends_with(".m3u8") && presented.in_query.is_some();
    let range = match headers.get(header::RANGE) {
        None => None,
        Some(_) if rewrite => None,
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
            // The remembered recording may have been deleted since: ask the store again.
            state.access.invalidate_recording(recording);
            state.access.recording(recording).await?;
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
    let body = if rewrite {
        presented.playlist(object.body)
    } else {
        object.body
    };
    let mut response = answer(body, content_type, cache);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uri_of_a_playlist_carries_the_token() {
        let media = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n\
            #EXT-X-PART:DURATION=0.5,URI=\"seg7.0.m4s\",INDEPENDENT=YES\n#EXTINF:2.0,\nseg7.m4s\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg8.1.m4s\"\n\
            #EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\",LAST-MSN=7,LAST-PART=0\n";
        let rewritten = with_token(media, "gr1.a.b");
        assert_eq!(
            rewritten,
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4?token=gr1.a.b\"\n\
            #EXT-X-PART:DURATION=0.5,URI=\"seg7.0.m4s?token=gr1.a.b\",INDEPENDENT=YES\n\
            #EXTINF:2.0,\nseg7.m4s?token=gr1.a.b\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg8.1.m4s?token=gr1.a.b\"\n\
            #EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8?token=gr1.a.b\",LAST-MSN=7,LAST-PART=0\n"
        );
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n12/720p/index.m3u8\n\n\
            #EXT-X-I-FRAME-STREAM-INF:URI=\"a.m3u8?x=1\"\n";
        assert_eq!(
            with_token(master, "t"),
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n12/720p/index.m3u8?token=t\n\n\
            #EXT-X-I-FRAME-STREAM-INF:URI=\"a.m3u8?x=1&token=t\"\n"
        );
    }

    #[test]
    fn the_token_comes_from_the_query_or_the_bearer_header() {
        let mut headers = HeaderMap::new();
        let p = Presented::of(Some("_HLS_msn=3&token=gr1.x%2Ey&_HLS_part=1"), &headers);
        assert_eq!(p.in_query.as_deref(), Some("gr1.x.y"));
        assert_eq!(p.token.as_deref(), Some("gr1.x.y"));
        // Checked as presented, but never echoed into a playlist.
        let p = Presented::of(Some("token=a%22%0A%23b"), &headers);
        assert_eq!((p.in_query, p.token.as_deref()), (None, Some("a\"\n#b")));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer gr1.h.h"),
        );
        let p = Presented::of(Some("_HLS_msn=3"), &headers);
        assert_eq!((p.in_query, p.token.as_deref()), (None, Some("gr1.h.h")));
        let p = Presented::of(Some("token="), &HeaderMap::new());
        assert_eq!(p.token, None);
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4");
    }
}
