//! Playback gating through the real binary: a PAID stream is published with a publish token
//! over WHIP and with its key over RTMP (Debian's ffmpeg, HLS on), watched over WHEP and live
//! HLS with watch tokens and replayed with replay tokens, each route tried with no token, a
//! forged one, an expired one, one for another stream and a valid one; a free stream still
//! needs nothing. The test signs its tokens with the key the server is started with.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use greenroom_control::playback_token::{PlaybackClaims, PlaybackRight, PlaybackTokens};
use greenroom_rtc::client::{Client, ClientKind};
use serde_json::Value;

mod binary;

use binary::ffmpeg_publish;

const ADMIN: &str = "test-admin-token-gating-0123456789";
const PLAYBACK_KEY: &str = "test-playback-key-0123456789abcdefghijklmnop";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn sign(key: &str, stream: &str, right: PlaybackRight, exp: i64) -> String {
    PlaybackTokens::new(key.as_bytes())
        .expect("key")
        .issue(&PlaybackClaims {
            stream: stream.to_owned(),
            right,
            exp,
            sub: None,
        })
}

/// The four refusals and the acceptance of one route, for one right.
struct Matrix {
    forged: String,
    expired: String,
    other_stream: String,
    valid: String,
}

impl Matrix {
    fn new(stream: &str, other: &str, right: PlaybackRight) -> Matrix {
        Matrix {
            forged: sign(
                "another-key-0123456789abcdefghijklmnopqrs",
                stream,
                right,
                now() + 600,
            ),
            expired: sign(PLAYBACK_KEY, stream, right, now() - 10),
            other_stream: sign(PLAYBACK_KEY, other, right, now() + 600),
            valid: sign(PLAYBACK_KEY, stream, right, now() + 600),
        }
    }

    /// (token, expected status, expected code) for the refusals.
    fn refusals(&self) -> [(Option<&str>, u16, &'static str); 4] {
        [
            (None, 401, "token_required"),
            (Some(&self.forged), 401, "invalid_token"),
            (Some(&self.expired), 401, "token_expired"),
            (Some(&self.other_stream), 403, "token_wrong_stream"),
        ]
    }
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or("<none>")
            .to_owned(),
    )
}

async fn create_stream(http: &reqwest::Client, base: &str, body: Value) -> Value {
    let response = http
        .post(format!("{base}/api/v1/streams"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("create a stream");
    assert_eq!(response.status(), 201, "creating {body}");
    response.json().await.expect("stream JSON")
}

/// POSTs an SDP offer with an optional bearer token; (status, code or Location).
async fn offer(
    http: &reqwest::Client,
    url: &str,
    sdp: String,
    bearer: Option<&str>,
) -> (u16, String) {
    let mut request = http
        .post(url)
        .header("content-type", "application/sdp")
        .body(sdp);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST offer");
    if response.status() == 201 {
        let location = response.headers()["location"]
            .to_str()
            .unwrap_or("")
            .to_owned();
        return (201, location);
    }
    error_code(response).await
}

fn viewer_offer() -> String {
    Client::new(ClientKind::Viewer, LOOPBACK)
        .and_then(|c| c.offer_sdp())
        .expect("viewer offer")
}

fn publisher_offer() -> String {
    Client::new(ClientKind::Publisher { simulcast: false }, LOOPBACK)
        .and_then(|c| c.offer_sdp())
        .expect("publisher offer")
}

async fn get(http: &reqwest::Client, url: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut request = http.get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("GET")
}

/// `url` with `?token=` (or `&token=`) added.
fn with_token(url: &str, token: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}token={token}")
}

/// Tries every refusal of `matrix` on `url` (token in the query, and once as a bearer), then
/// the valid token; returns the body of the accepted answer.
async fn check_route(http: &reqwest::Client, what: &str, url: &str, matrix: &Matrix) -> Vec<u8> {
    for (token, status, code) in matrix.refusals() {
        let target = token.map_or_else(|| url.to_owned(), |t| with_token(url, t));
        let answer = error_code(get(http, &target, None).await).await;
        assert_eq!(answer, (status, code.to_owned()), "{what} with {code}");
    }
    let answer = error_code(get(http, url, Some(&matrix.expired)).await).await;
    assert_eq!(answer, (401, "token_expired".to_owned()), "{what}, bearer");
    let accepted = get(http, &with_token(url, &matrix.valid), None).await;
    assert_eq!(accepted.status(), 200, "{what} with a valid token");
    let by_header = get(http, url, Some(&matrix.valid)).await;
    assert_eq!(by_header.status(), 200, "{what} with a valid bearer token");
    accepted.bytes().await.expect("body").to_vec()
}

/// Every URI line and `URI="..."` of a playlist carries `token`.
fn assert_rewritten(playlist: &str, token: &str) {
    let mut uris = 0;
    for line in playlist.lines() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            uris += 1;
            assert!(line.ends_with(&format!("token={token}")), "{line}");
        }
        for part in line.split("URI=\"").skip(1) {
            uris += 1;
            let uri = part.split('"').next().unwrap_or("");
            assert!(uri.ends_with(&format!("token={token}")), "{line}");
        }
    }
    assert!(uris > 0, "no URI in {playlist}");
}

/// The first URI line of a playlist.
fn first_uri(playlist: &str) -> String {
    playlist
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or_else(|| panic!("no URI in {playlist}"))
        .to_owned()
}

fn strip_query(uri: &str) -> &str {
    uri.split('?').next().unwrap_or(uri)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_streams_need_the_right_token_on_every_route() {
    let server = binary::start_server_with(
        ADMIN,
        "warn",
        &[
            ("GREENROOM_PLAYBACK_KEY", PLAYBACK_KEY),
            ("GREENROOM_HLS_PRESET", "ultrafast"),
            ("GREENROOM_HLS_LADDER", "240"),
        ],
    );
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let paid = create_stream(
        &http,
        &base,
        serde_json::json!({"title": "paid", "access": "paid"}),
    )
    .await;
    assert_eq!(paid["access"], "paid", "{paid}");
    let free = create_stream(&http, &base, serde_json::json!({"title": "free"})).await;
    let id = paid["id"].as_str().expect("id").to_owned();
    let free_id = free["id"].as_str().expect("id").to_owned();

    // WHIP: the stream key or a publish token. No credential at all is the WHIP resource's
    // `unauthorized` (the key is the usual credential); the token refusals are the same as
    // everywhere.
    let whip = format!("{base}/whip/{id}");
    let publish = Matrix::new(&id, &free_id, PlaybackRight::Publish);
    let (status, code) = offer(&http, &whip, publisher_offer(), None).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
    for (token, status, code) in publish.refusals().into_iter().skip(1) {
        let answer = offer(&http, &whip, publisher_offer(), token).await;
        assert_eq!(answer, (status, code.to_owned()), "WHIP with {code}");
    }
    let watch = Matrix::new(&id, &free_id, PlaybackRight::Watch);
    let answer = offer(&http, &whip, publisher_offer(), Some(&watch.valid)).await;
    assert_eq!(
        answer,
        (403, "token_wrong_stream".to_owned()),
        "a watch token"
    );
    let (status, session) = offer(&http, &whip, publisher_offer(), Some(&publish.valid)).await;
    assert_eq!(status, 201, "WHIP with a publish token: {session}");
    let deleted = http
        .delete(format!("{base}{session}"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 200);

    // WHEP: a watch token for the stream, as a bearer or in the query.
    let whep = format!("{base}/whep/{id}");
    for (token, status, code) in watch.refusals() {
        let answer = offer(&http, &whep, viewer_offer(), token).await;
        assert_eq!(answer, (status, code.to_owned()), "WHEP with {code}");
    }
    let replay = Matrix::new(&id, &free_id, PlaybackRight::Replay);
    let answer = offer(&http, &whep, viewer_offer(), Some(&replay.valid)).await;
    assert_eq!(
        answer,
        (403, "token_wrong_stream".to_owned()),
        "a replay token"
    );
    let mut sessions = Vec::new();
    for (url, bearer) in [
        (whep.clone(), Some(watch.valid.as_str())),
        (with_token(&whep, &watch.valid), None),
        // A free stream needs nothing, and ignores a token for another stream.
        (format!("{base}/whep/{free_id}"), None),
        (
            with_token(&format!("{base}/whep/{free_id}"), &watch.forged),
            None,
        ),
    ] {
        let (status, session) = offer(&http, &url, viewer_offer(), bearer).await;
        assert_eq!(status, 201, "WHEP {url}: {session}");
        sessions.push(session);
    }
    for session in sessions {
        let _ = http.delete(format!("{base}{session}")).send().await;
    }

    // Live HLS from an RTMP publish (the key, as OBS does).
    let rtmp_url = paid["rtmp_url"].as_str().expect("rtmp_url").to_owned();
    let hls_url = paid["hls_url"].as_str().expect("hls_url").to_owned();
    let mut ffmpeg = ffmpeg_publish(&rtmp_url, "640x360", 9, 30, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut live = false;
    while Instant::now() < deadline {
        if get(&http, &with_token(&hls_url, &watch.valid), None)
            .await
            .status()
            == 200
        {
            live = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(live, "no master playlist");
    let master = check_route(&http, "master playlist", &hls_url, &watch).await;
    let master = String::from_utf8_lossy(&master).into_owned();
    assert_rewritten(&master, &watch.valid);
    let hls_base = hls_url.trim_end_matches("master.m3u8");
    let media_url = format!("{hls_base}{}", strip_query(&first_uri(&master)));
    let media = check_route(&http, "media playlist", &media_url, &watch).await;
    let media = String::from_utf8_lossy(&media).into_owned();
    assert_rewritten(&media, &watch.valid);
    // Blocking reloads keep working next to the token.
    let msn: u64 = media
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("media sequence");
    let blocking = get(
        &http,
        &with_token(&format!("{media_url}?_HLS_msn={msn}"), &watch.valid),
        None,
    )
    .await;
    assert_eq!(blocking.status(), 200);
    let media_dir = media_url.trim_end_matches("index.m3u8");
    let segment = format!("{media_dir}{}", strip_query(&first_uri(&media)));
    check_route(&http, "segment", &segment, &watch).await;
    check_route(
        &http,
        "init segment",
        &format!("{media_dir}init.mp4"),
        &watch,
    )
    .await;

    // The replay, once the publish is over and the recording ready.
    let _ = ffmpeg.0.wait();
    let mut recording = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let list: Value = get(
            &http,
            &format!("{base}/api/v1/streams/{id}/recordings"),
            Some(ADMIN),
        )
        .await
        .json()
        .await
        .expect("recordings");
        if list[0]["status"] == "ready" {
            recording = list[0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(recording["status"], "ready", "{recording}");
    let replay_url = recording["replay_url"].as_str().expect("replay_url");
    let answer = error_code(get(&http, &with_token(replay_url, &watch.valid), None).await).await;
    assert_eq!(
        answer,
        (403, "token_wrong_stream".to_owned()),
        "a watch token"
    );
    let replay_master = check_route(&http, "replay master", replay_url, &replay).await;
    let replay_master = String::from_utf8_lossy(&replay_master).into_owned();
    assert_rewritten(&replay_master, &replay.valid);
    let replay_base = replay_url.trim_end_matches("master.m3u8");
    let vod_url = format!("{replay_base}{}", strip_query(&first_uri(&replay_master)));
    let vod = check_route(&http, "replay playlist", &vod_url, &replay).await;
    let vod = String::from_utf8_lossy(&vod).into_owned();
    assert_rewritten(&vod, &replay.valid);
    let vod_dir = vod_url.trim_end_matches("index.m3u8");
    check_route(
        &http,
        "replay segment",
        &format!("{vod_dir}{}", strip_query(&first_uri(&vod))),
        &replay,
    )
    .await;
}
