//! RTMP in, WebRTC out, through the real binary: Debian's ffmpeg publishes H.264 + AAC over
//! RTMP (as OBS does), a Rust WebRTC viewer watches over WHEP. Without B-frames the video is
//! re-packetized; with B-frames it is re-encoded, and the stream's stats say which. AAC always
//! becomes Opus. A wrong key is refused without disturbing the live publish, and a publisher
//! that drops and comes back is picked up by the same viewer session.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use greenroom_rtc::client::{Client, ClientCounters, ClientKind};
use serde_json::Value;
use tokio::sync::watch;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const ADMIN: &str = "test-admin-token-rtmp-0123456789";

mod binary;

use binary::{ffmpeg_publish, start_server};

async fn create_stream(http: &reqwest::Client, base: &str) -> Value {
    create_stream_with(http, base, serde_json::json!({"title": "rtmp"})).await
}

async fn create_stream_with(http: &reqwest::Client, base: &str, body: Value) -> Value {
    http.post(format!("{base}/api/v1/streams"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("create stream")
        .json()
        .await
        .expect("stream JSON")
}

async fn stream_json(http: &reqwest::Client, base: &str, id: &str) -> Value {
    http.get(format!("{base}/api/v1/streams/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("GET stream")
        .json()
        .await
        .expect("stream JSON")
}

async fn viewer(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    stop: &watch::Receiver<bool>,
) -> Arc<ClientCounters> {
    viewer_at(http, &format!("{base}/whep/{id}"), stop).await
}

async fn viewer_at(
    http: &reqwest::Client,
    whep_url: &str,
    stop: &watch::Receiver<bool>,
) -> Arc<ClientCounters> {
    let mut client = Client::new(ClientKind::Viewer, LOOPBACK).expect("client");
    let response = http
        .post(whep_url)
        .header("content-type", "application/sdp")
        .body(client.offer_sdp().expect("offer"))
        .send()
        .await
        .expect("WHEP");
    assert_eq!(response.status().as_u16(), 201);
    client
        .apply_answer(&response.text().await.expect("answer"))
        .expect("answer applies");
    let counters = client.counters();
    tokio::task::spawn_local(client.run(stop.clone()));
    counters
}

async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

async fn wait_status(http: &reqwest::Client, base: &str, id: &str, status: &str) -> Value {
    for _ in 0..150 {
        let stream = stream_json(http, base, id).await;
        if stream["status"] == status {
            return stream;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stream {id} never became {status}");
}

fn get(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Publishes with `b_frames`, watches, and returns the stream's stats while live.
async fn publish_and_watch(b_frames: u32) -> Value {
    let server = start_server(ADMIN, "info,rtc=warn,rtc_dtls=error,rtc_ice=warn");
    let base = server.base.clone();
    tokio::task::LocalSet::new()
        .run_until(async move {
            let http = reqwest::Client::new();
            let stream = create_stream(&http, &base).await;
            let id = stream["id"].as_str().expect("id").to_owned();
            let rtmp_url = stream["rtmp_url"].as_str().expect("rtmp_url").to_owned();
            assert!(rtmp_url.starts_with("rtmp://127.0.0.1:"), "{rtmp_url}");
            let (stop_tx, stop) = watch::channel(false);
            let watcher = viewer(&http, &base, &id, &stop).await;

            let _ffmpeg = ffmpeg_publish(&rtmp_url, "640x360", 12, 30, b_frames);
            wait_status(&http, &base, &id, "live").await;
            assert!(
                eventually(Duration::from_secs(15), || get(&watcher.keyframes) >= 2
                    && get(&watcher.audio_packets) >= 100)
                .await,
                "the viewer gets keyframes ({}) and audio ({})",
                get(&watcher.keyframes),
                get(&watcher.audio_packets)
            );
            assert_eq!(get(&watcher.last_width), 640, "H.264 keyframes of the source's size");
            let audio_bytes_per_packet = get(&watcher.audio_bytes) / get(&watcher.audio_packets);
            assert!(
                audio_bytes_per_packet > 40,
                "Opus frames carry the tone, not silence ({audio_bytes_per_packet} bytes per packet)"
            );
            // About 30 frames a second arrive: count frames as keyframes + marker-delimited
            // frames is not possible from counters, so check the packet rate stays up.
            let before = get(&watcher.video_packets);
            tokio::time::sleep(Duration::from_secs(2)).await;
            let per_second = (get(&watcher.video_packets) - before) / 2;
            assert!(per_second >= 30, "at least one packet per frame at 30 fps: {per_second}/s");
            // The stats once video and audio both flow.
            let live = stream_json(&http, &base, &id).await;
            assert_eq!(live["status"], "live", "{live}");
            let _ = stop_tx.send(true);
            tokio::time::sleep(Duration::from_millis(200)).await;
            live
        })
        .await
}

#[tokio::test(flavor = "current_thread")]
async fn rtmp_without_b_frames_is_repacketized() {
    let live = publish_and_watch(0).await;
    let source = &live["publisher"]["source"];
    assert_eq!(source["protocol"], "rtmp", "{live}");
    assert_eq!(source["video"], "repacketized", "{live}");
    assert_eq!(source["audio"], "transcoded", "{live}");
    let tracks = live["publisher"]["tracks"].as_array().expect("tracks");
    assert!(tracks.iter().any(|t| t["codec"] == "video/H264"), "{live}");
    assert!(tracks.iter().any(|t| t["codec"] == "audio/opus"), "{live}");
}

#[tokio::test(flavor = "current_thread")]
async fn rtmp_with_b_frames_is_reencoded_and_says_so() {
    let live = publish_and_watch(2).await;
    let source = &live["publisher"]["source"];
    assert_eq!(source["protocol"], "rtmp", "{live}");
    assert_eq!(source["video"], "transcoded", "{live}");
    assert!(
        source["note"]
            .as_str()
            .is_some_and(|n| n.contains("B-frames")),
        "{live}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn wrong_key_is_refused_and_a_restarted_publisher_reaches_the_same_viewer() {
    let server = start_server(ADMIN, "info,rtc=warn,rtc_dtls=error,rtc_ice=warn");
    let base = server.base.clone();
    tokio::task::LocalSet::new()
        .run_until(async move {
            let http = reqwest::Client::new();
            let stream = create_stream(&http, &base).await;
            let id = stream["id"].as_str().expect("id").to_owned();
            let rtmp_url = stream["rtmp_url"].as_str().expect("rtmp_url").to_owned();
            let (stop_tx, stop) = watch::channel(false);
            let watcher = viewer(&http, &base, &id, &stop).await;

            let mut first = ffmpeg_publish(&rtmp_url, "640x360", 30, 30, 0);
            wait_status(&http, &base, &id, "live").await;
            assert!(eventually(Duration::from_secs(15), || get(&watcher.keyframes) >= 1).await);

            // A wrong key: ffmpeg gives up, the live publish goes on.
            let wrong = rtmp_url
                .rsplit_once('/')
                .map(|(b, _)| format!("{b}/sk_wrong"))
                .expect("url");
            let mut intruder = ffmpeg_publish(&wrong, "640x360", 3, 30, 0);
            let status = tokio::task::spawn_blocking(move || intruder.0.wait())
                .await
                .expect("join")
                .expect("ffmpeg exit");
            assert!(!status.success(), "a wrong key is refused");
            let before = get(&watcher.video_packets);
            assert!(
                eventually(Duration::from_secs(10), || get(&watcher.video_packets)
                    > before + 60)
                .await,
                "the live publish is undisturbed"
            );

            // The publisher drops and comes back: the same WHEP session resumes.
            let _ = first.0.kill();
            let _ = first.0.wait();
            wait_status(&http, &base, &id, "idle").await;
            let keyframes = get(&watcher.keyframes);
            let _second = ffmpeg_publish(&rtmp_url, "640x360", 20, 30, 0);
            wait_status(&http, &base, &id, "live").await;
            assert!(
                eventually(Duration::from_secs(10), || get(&watcher.keyframes)
                    > keyframes)
                .await,
                "the viewer gets the new publisher's keyframes on its old session"
            );
            assert!(watcher.connected.load(Ordering::Relaxed));
            let _ = stop_tx.send(true);
            tokio::time::sleep(Duration::from_millis(200)).await;
        })
        .await;
    drop(server);
}

#[tokio::test(flavor = "current_thread")]
async fn a_stream_with_a_ladder_offers_three_layers_from_one_rtmp_source() {
    let server = start_server(ADMIN, "info,rtc=warn,rtc_dtls=error,rtc_ice=warn");
    let base = server.base.clone();
    tokio::task::LocalSet::new()
        .run_until(async move {
            let http = reqwest::Client::new();
            let stream = create_stream_with(
                &http,
                &base,
                serde_json::json!({"title": "ladder", "simulcast_ladder": true}),
            )
            .await;
            assert_eq!(stream["simulcast_ladder"], true, "{stream}");
            let id = stream["id"].as_str().expect("id").to_owned();
            let rtmp_url = stream["rtmp_url"].as_str().expect("rtmp_url").to_owned();
            let (stop_tx, stop) = watch::channel(false);
            let full = viewer(&http, &base, &id, &stop).await;
            let low = viewer_at(&http, &format!("{base}/whep/{id}?layer=q"), &stop).await;

            let _ffmpeg = ffmpeg_publish(&rtmp_url, "640x360", 15, 30, 0);
            wait_status(&http, &base, &id, "live").await;
            assert!(
                eventually(Duration::from_secs(20), || get(&full.last_width) == 640
                    && get(&low.last_width) == 160)
                .await,
                "full viewer gets 640-wide keyframes ({}), the q viewer 160-wide ({})",
                get(&full.last_width),
                get(&low.last_width)
            );
            let live = stream_json(&http, &base, &id).await;
            let source = &live["publisher"]["source"];
            assert_eq!(source["video"], "transcoded", "{live}");
            assert!(
                source["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("ladder")),
                "{live}"
            );
            let video = live["publisher"]["tracks"]
                .as_array()
                .expect("tracks")
                .iter()
                .find(|t| t["kind"] == "video")
                .cloned()
                .expect("video track");
            let layers: Vec<&str> = video["layers"]
                .as_array()
                .expect("layers")
                .iter()
                .filter_map(|l| l["layer"].as_str())
                .collect();
            assert_eq!(layers, vec!["q", "h", "f"], "{live}");
            let _ = stop_tx.send(true);
            tokio::time::sleep(Duration::from_millis(200)).await;
        })
        .await;
    drop(server);
}
