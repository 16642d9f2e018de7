//! End to end through the real binary and its HTTP API: a Rust WebRTC publisher goes live over
//! WHIP with three simulcast layers, Rust viewers watch over WHEP (one pinned to `q`), the
//! streams API reports the live stats, and ending the WHIP session makes the stream idle.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use greenroom_rtc::client::{Client, ClientCounters, ClientKind};
use serde_json::Value;
use tokio::sync::watch;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const ADMIN: &str = "test-admin-token-0123456789";

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_greenroom"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GREENROOM_DATA_DIR", dir.path())
        .env("GREENROOM_HTTP_ADDR", "127.0.0.1:0")
        .env("GREENROOM_RTC_UDP_PORT", "0")
        .env("GREENROOM_RTC_WORKERS", "2")
        .env("GREENROOM_RTC_BIND_IP", "127.0.0.1")
        .env("GREENROOM_RTMP_ADDR", "127.0.0.1:0")
        .env("GREENROOM_ADMIN_TOKEN", ADMIN)
        .env("GREENROOM_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn greenroom");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).expect("banner");
    // Keep reading what the server prints so it never writes into a closed pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    let base = first
        .trim()
        .strip_prefix("greenroom listening on ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected banner {first:?}"))
        .to_owned();
    Server {
        child,
        base,
        _dir: dir,
    }
}

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
    let server = start_server();
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
