//! End to end through the real binary and its HTTP API: a Rust WebRTC publisher goes live over
//! WHIP with three simulcast layers, Rust viewers watch over WHEP (one pinned to `q`), the
//! streams API reports the live stats, and ending the WHIP session makes the stream idle.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use greenroom_rtc::client::{Client, ClientCounters, ClientKind};
use serde_json::Value;
use tokio::sync::watch;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const ADMIN: &str = "test-admin-token-0123456789";

mod binary;

use binary::start_server;

async fn post_sdp(
    http: &reqwest::Client,
    url: &str,
    sdp: String,
    key: Option<&str>,
) -> (String, String) {
    let mut request = http
        .post(url)
        .header("content-type", "application/sdp")
        .body(sdp);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("POST offer");
    assert_eq!(response.status().as_u16(), 201, "offer accepted at {url}");
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location header")
        .to_owned();
    (location, response.text().await.expect("answer body"))
}

fn spawn(client: Client, stop: &watch::Receiver<bool>) -> Arc<ClientCounters> {
    let counters = client.counters();
    tokio::task::spawn_local(client.run(stop.clone()));
    counters
}

async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..400 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
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

#[tokio::test(flavor = "current_thread")]
async fn rust_publisher_and_viewers_through_whip_and_whep() {
    let server = start_server(ADMIN, "warn");
    let base = server.base.clone();
    tokio::task::LocalSet::new()
        .run_until(async move {
            let http = reqwest::Client::new();
            let created: Value = http
                .post(format!("{base}/api/v1/streams"))
                .bearer_auth(ADMIN)
                .json(&serde_json::json!({"title": "e2e"}))
                .send()
                .await
                .expect("create stream")
                .json()
                .await
                .expect("stream JSON");
            let id = created["id"].as_str().expect("id").to_owned();
            let key = created["stream_key"].as_str().expect("key").to_owned();
            let (stop_tx, stop) = watch::channel(false);

            // A viewer that arrives before the publisher.
            let mut early = Client::new(ClientKind::Viewer, LOOPBACK).expect("client");
            let (_, answer) = post_sdp(
                &http,
                &format!("{base}/whep/{id}"),
                early.offer_sdp().expect("offer"),
                None,
            )
            .await;
            early.apply_answer(&answer).expect("answer");
            let early = spawn(early, &stop);

            let mut publisher =
                Client::new(ClientKind::Publisher { simulcast: true }, LOOPBACK).expect("client");
            let (whip_session, answer) = post_sdp(
                &http,
                &format!("{base}/whip/{id}"),
                publisher.offer_sdp().expect("offer"),
                Some(&key),
            )
            .await;
            publisher.apply_answer(&answer).expect("answer");
            let _publisher = spawn(publisher, &stop);

            let mut low = Client::new(ClientKind::Viewer, LOOPBACK).expect("client");
            let (_, answer) = post_sdp(
                &http,
                &format!("{base}/whep/{id}?layer=q"),
                low.offer_sdp().expect("offer"),
                None,
            )
            .await;
            low.apply_answer(&answer).expect("answer");
            let low = spawn(low, &stop);

            assert!(
                eventually(|| early.last_width.load(Ordering::Relaxed) == 1280
                    && low.last_width.load(Ordering::Relaxed) == 320)
                .await,
                "the unpinned viewer gets 1280-wide keyframes ({}), the pinned one 320 ({})",
                early.last_width.load(Ordering::Relaxed),
                low.last_width.load(Ordering::Relaxed)
            );
            assert!(eventually(|| early.audio_packets.load(Ordering::Relaxed) > 20).await);

            let stream = stream_json(&http, &base, &id).await;
            assert_eq!(stream["status"], "live", "{stream}");
            assert_eq!(stream["viewers"], 2, "{stream}");
            let tracks = stream["publisher"]["tracks"].as_array().expect("tracks");
            let video = tracks
                .iter()
                .find(|t| t["kind"] == "video")
                .expect("video track");
            assert_eq!(video["codec"], "video/VP8");
            let widths: Vec<i64> = video["layers"]
                .as_array()
                .expect("layers")
                .iter()
                .filter_map(|l| l["width"].as_i64())
                .collect();
            assert_eq!(widths, vec![320, 640, 1280], "{stream}");

            let scrape = || async {
                http.get(format!("{base}/metrics"))
                    .send()
                    .await
                    .expect("GET /metrics")
                    .text()
                    .await
                    .expect("metrics text")
            };
            let detached = |metrics: &str| {
                metrics
                    .lines()
                    .any(|l| l.trim() == "greenroom_viewers_detached 2")
            };
            // Both viewers have sent RTCP by now or soon: then the server carries their
            // sessions without webrtc-rs, and their media keeps flowing.
            let mut metrics = scrape().await;
            for _ in 0..50 {
                if detached(&metrics) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                metrics = scrape().await;
            }
            assert!(detached(&metrics), "{metrics}");
            let audio_before = early.audio_packets.load(Ordering::Relaxed);
            assert!(
                eventually(|| early.audio_packets.load(Ordering::Relaxed) > audio_before + 20)
                    .await,
                "media keeps flowing to a detached viewer"
            );
            let value = |name: &str| -> u64 {
                metrics
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name} ")))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or_else(|| panic!("{name} missing from {metrics}"))
            };
            assert_eq!(value("greenroom_publishers"), 1, "{metrics}");
            assert_eq!(value("greenroom_viewers"), 2, "{metrics}");
            assert!(
                value("greenroom_rtp_received_packets_total") > 100,
                "{metrics}"
            );
            assert!(value("greenroom_rtp_sent_packets_total") > 100, "{metrics}");
            // Present even when zero (keyframes may have come on the publisher's own schedule).
            value("greenroom_publisher_keyframe_requests_total");
            value("greenroom_layer_switches_total");

            let ended = http
                .delete(format!("{base}{whip_session}"))
                .send()
                .await
                .expect("DELETE WHIP session");
            assert!(ended.status().is_success());
            assert!(
                {
                    let mut idle = false;
                    for _ in 0..100 {
                        if stream_json(&http, &base, &id).await["status"] == "idle" {
                            idle = true;
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    idle
                },
                "the stream is idle once the WHIP session is deleted"
            );
            let _ = stop_tx.send(true);
            tokio::time::sleep(Duration::from_millis(200)).await;
        })
        .await;
    drop(server);
}
