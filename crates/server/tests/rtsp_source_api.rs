//! Streams with an RTSP source through the API: the source is validated (`422
//! invalid_source_url`), pulled as soon as the stream is created (from a real gst-rtsp-server,
//! `scripts/rtsp-test-server.py`), shown with its password masked and its state, holds the
//! publisher slot while it plays (WHIP is refused), and stops when the stream ends. At start-up
//! the open streams with sources are pulled again.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use greenroom::app::{self, AppState};
use greenroom_control::{Store, StreamSource};
use greenroom_rtc::client::{Client, ClientKind};
use greenroom_rtc::{RtcConfig, RtcEngine};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN: &str = "test-admin-token-rtsp-0123456789";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The RTSP server process; killed and reaped on drop.
struct RtspServer(Child);

impl RtspServer {
    fn start(port: u16, media: &Path) -> RtspServer {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/rtsp-test-server.py");
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut child = Command::new(python)
            .arg(&script)
            .arg(port.to_string())
            .arg(media)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with gi (scripts/install-deps.sh test)");
        let stdout = child.stdout.take().expect("stdout");
        let server = RtspServer(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read");
        assert_eq!(line.trim(), "ready", "the RTSP test server starts");
        server
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn make_clip(dir: &Path) -> PathBuf {
    let path = dir.join("clip.mkv");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t",
            "30",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
        ])
        .args([
            "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .status()
        .expect("ffmpeg on PATH");
    assert!(status.success(), "ffmpeg made the clip");
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind((LOOPBACK, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn send(router: &Router, method: &str, uri: &str, body: Option<Value>) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {ADMIN}"));
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = router
        .clone()
        .oneshot(request.body(body).expect("request"))
        .await
        .expect("answer");
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        body: body.collect().await.expect("body").to_bytes(),
    }
}

async fn engine() -> RtcEngine {
    RtcEngine::start(RtcConfig {
        bind_ip: LOOPBACK,
        udp_port: 0,
        workers: 1,
        detach_viewers: true,
        advertise_ips: Vec::new(),
        ice_servers: Vec::new(),
    })
    .await
    .expect("engine")
}

/// Polls the stream until `check` holds (up to 20 s) and returns it.
async fn wait_stream(router: &Router, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = send(router, "GET", &format!("/api/v1/streams/{id}"), None)
            .await
            .json();
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the stream never got there: {last:#}");
}

fn assert_source_fields(source: &Value) {
    let mut keys: Vec<&str> = source
        .as_object()
        .expect("source object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["last_error", "reconnects", "state", "transport", "url"],
        "{source:#}"
    );
}

#[tokio::test]
async fn invalid_sources_are_422_and_store_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::connect(&Store::sqlite_url(dir.path()))
        .await
        .expect("store");
    let engine = engine().await;
    let router = app::router(AppState::new(store, engine.clone(), "http://x", ADMIN));
    for body in [
        json!({"title": "t", "source_url": "http://cam/x"}),
        json!({"title": "t", "source_url": "rtsp://"}),
        json!({"title": "t", "source_url": 5}),
        json!({"title": "t", "source_url": "rtsp://cam/x", "source_transport": "sctp"}),
        json!({"title": "t", "source_transport": "udp"}),
    ] {
        let answer = send(&router, "POST", "/api/v1/streams", Some(body.clone())).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            answer.json()["error"]["code"],
            "invalid_source_url",
            "{body}"
        );
    }
    let listed = send(&router, "GET", "/api/v1/streams", None).await.json();
    assert_eq!(listed, json!([]));
    // A plain stream shows no source.
    let plain = send(
        &router,
        "POST",
        "/api/v1/streams",
        Some(json!({"title": "plain"})),
    )
    .await;
    assert_eq!(plain.status, StatusCode::CREATED);
    assert_eq!(plain.json()["source"], Value::Null);
    engine.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_stream_with_a_source_is_pulled_until_it_ends_and_again_after_a_restart() {
    tokio::task::LocalSet::new()
        .run_until(pull_through_the_api())
        .await;
}

async fn pull_through_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(dir.path());
    let port = free_port();
    let _rtsp = RtspServer::start(port, &clip);
    let store = Store::connect(&Store::sqlite_url(dir.path()))
        .await
        .expect("store");
    let engine = engine().await;
    let state = AppState::new(store.clone(), engine.clone(), "http://x", ADMIN);
    let router = app::router(state.clone());

    let created = send(
        &router,
        "POST",
        "/api/v1/streams",
        Some(json!({
            "title": "camera",
            "source_url": format!("rtsp://viewer:hunter2@127.0.0.1:{port}/clip"),
        })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let stream = created.json();
    assert!(
        !created.body.windows(7).any(|w| w == b"hunter2"),
        "{stream:#}"
    );
    let source = &stream["source"];
    assert_source_fields(source);
    assert_eq!(
        source["url"],
        format!("rtsp://viewer:***@127.0.0.1:{port}/clip")
    );
    assert_eq!(source["transport"], "tcp");
    let id = stream["id"].as_str().expect("id").to_owned();
    let key = stream["stream_key"].as_str().expect("key").to_owned();

    let live = wait_stream(&router, &id, |s| {
        s["source"]["state"] == "playing" && s["status"] == "live"
    })
    .await;
    assert_eq!(live["publisher"]["source"]["protocol"], "rtsp", "{live:#}");

    // While the source plays, WHIP is refused.
    let client = Client::new(ClientKind::Publisher { simulcast: false }, LOOPBACK).expect("client");
    let whip = router
        .clone()
        .oneshot(
            Request::builder()
                .method("POST")
                .uri(format!("/whip/{id}"))
                .header("content-type", "application/sdp")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::from(client.offer_sdp().expect("offer")))
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(whip.status(), StatusCode::CONFLICT);

    // Ending the stream stops the pull.
    let ended = send(&router, "DELETE", &format!("/api/v1/streams/{id}"), None).await;
    assert_eq!(ended.status, StatusCode::OK);
    let ended = ended.json();
    assert_eq!(ended["status"], "ended");
    assert_eq!(ended["source"]["state"], "stopped", "{ended:#}");

    // Start-up: open streams with sources are pulled by a fresh server.
    let source =
        StreamSource::new(&format!("rtsp://127.0.0.1:{port}/clip"), Some("udp")).expect("valid");
    let reopened = store
        .create_stream_with_source("restarted", Some(source))
        .await
        .expect("create");
    let fresh = AppState::new(store.clone(), engine.clone(), "http://x", ADMIN);
    assert_eq!(fresh.sources.start_open(&store).await.expect("start"), 1);
    let router = app::router(fresh.clone());
    let playing = wait_stream(&router, &reopened.id, |s| s["source"]["state"] == "playing").await;
    assert_eq!(playing["source"]["transport"], "udp");
    fresh.sources.shutdown().await;
    let stopped = send(
        &router,
        "GET",
        &format!("/api/v1/streams/{}", reopened.id),
        None,
    )
    .await;
    assert_eq!(stopped.json()["source"]["state"], "stopped");

    state.sources.shutdown().await;
    engine.shutdown().await;
}
