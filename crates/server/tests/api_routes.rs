//! The HTTP API, pages and WHIP/WHEP wiring of the binary, driven with `oneshot` on a SQLite
//! store in a temporary directory and a real engine on loopback.

use std::net::{IpAddr, Ipv4Addr};

use axum::Router;
use axum::body::{Body, Bytes};
use greenroom::app::{self, AppState};
use greenroom_control::Store;
use greenroom_rtc::client::{Client, ClientKind};
use greenroom_rtc::{RtcConfig, RtcEngine};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN: &str = "test-admin-token-0123456789";
const PUBLIC_URL: &str = "https://live.example.com";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct TestApp {
    router: Router,
    engine: RtcEngine,
    _dir: tempfile::TempDir,
}

async fn test_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::connect(&Store::sqlite_url(dir.path()))
        .await
        .expect("open the store");
    let engine = RtcEngine::start(RtcConfig {
        bind_ip: LOOPBACK,
        udp_port: 0,
        workers: 1,
        detach_viewers: true,
        advertise_ips: Vec::new(),
        ice_servers: Vec::new(),
    })
    .await
    .expect("start the engine");
    let state = AppState::new(store, engine.clone(), &format!("{PUBLIC_URL}/"), ADMIN);
    TestApp {
        router: app::router(state),
        engine,
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn assert_error(&self, status: StatusCode, code: &str) {
        let text = String::from_utf8_lossy(&self.body);
        assert_eq!(self.status, status, "{text}");
        assert_eq!(self.header(header::CONTENT_TYPE), Some("application/json"));
        assert_eq!(self.json()["error"]["code"], code, "{text}");
        assert!(self.json()["error"]["message"].is_string(), "{text}");
    }
}

impl TestApp {
    async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Answer {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(body.into()).expect("valid request");
        let response = self.router.clone().oneshot(request).await.expect("answer");
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.expect("body").to_bytes(),
        }
    }

    async fn admin(&self, method: &str, uri: &str, body: Option<Value>) -> Answer {
        let auth = format!("Bearer {ADMIN}");
        match body {
            Some(body) => {
                self.send(
                    method,
                    uri,
                    &[
                        ("authorization", &auth),
                        ("content-type", "application/json"),
                    ],
                    body.to_string(),
                )
                .await
            }
            None => {
                self.send(method, uri, &[("authorization", &auth)], Body::empty())
                    .await
            }
        }
    }

    async fn create(&self, title: &str) -> Value {
        let answer = self
            .admin("POST", "/api/v1/streams", Some(json!({ "title": title })))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
        answer.json()
    }
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = test_app().await;
    let answer = app.send("GET", "/healthz", &[], Body::empty()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({ "status": "ok" }));
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let app = test_app().await;
    for (method, uri) in [
        ("GET", "/nope"),
        ("POST", "/api/v1/nope"),
        ("GET", "/"),
        ("GET", "/static/nope.js"),
    ] {
        app.send(method, uri, &[], Body::empty())
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn the_streams_api_needs_the_admin_token() {
    let app = test_app().await;
    let body = json!({ "title": "x" }).to_string();
    for auth in [
        None,
        Some("Bearer wrong-token-0123456789"),
        Some("Basic dGVzdA=="),
        Some(ADMIN),
    ] {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = auth {
            headers.push(("authorization", auth));
        }
        for (method, uri) in [
            ("POST", "/api/v1/streams"),
            ("GET", "/api/v1/streams"),
            ("GET", "/api/v1/streams/aaaaaaaaaaaaaaaa"),
            ("DELETE", "/api/v1/streams/aaaaaaaaaaaaaaaa"),
        ] {
            let answer = app.send(method, uri, &headers, body.clone()).await;
            answer.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
            assert_eq!(answer.header(header::WWW_AUTHENTICATE), Some("Bearer"));
        }
    }
}

#[tokio::test]
async fn creating_a_stream_answers_201_with_absolute_urls() {
    let app = test_app().await;
    let stream = app.create("  Launch party  ").await;
    let id = stream["id"].as_str().expect("id");
    let key = stream["stream_key"].as_str().expect("key");
    assert_eq!(id.len(), 16);
    assert!(key.starts_with("sk_"));
    assert_eq!(stream["title"], "Launch party");
    assert_eq!(stream["status"], "idle");
    assert_eq!(stream["viewers"], 0);
    assert_eq!(stream["whip_url"], format!("{PUBLIC_URL}/whip/{id}"));
    assert_eq!(stream["whep_url"], format!("{PUBLIC_URL}/whep/{id}"));
    assert_eq!(
        stream["studio_url"],
        format!("{PUBLIC_URL}/studio/{id}#key={key}")
    );
    assert_eq!(stream["watch_url"], format!("{PUBLIC_URL}/watch/{id}"));
    assert!(
        stream["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(stream["ended_at"], Value::Null);
}

#[tokio::test]
async fn stream_creation_validates_its_input() {
    let app = test_app().await;
    let auth = format!("Bearer {ADMIN}");
    let json_ct = ("content-type", "application/json");
    let post = |headers: Vec<(&'static str, String)>, body: String| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            app.send("POST", "/api/v1/streams", &headers, body).await
        }
    };
    let with_json = || {
        vec![
            ("authorization", auth.clone()),
            (json_ct.0, json_ct.1.to_owned()),
        ]
    };

    post(
        vec![
            ("authorization", auth.clone()),
            ("content-type", "text/plain".to_owned()),
        ],
        r#"{"title":"x"}"#.to_owned(),
    )
    .await
    .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    post(
        vec![("authorization", auth.clone())],
        r#"{"title":"x"}"#.to_owned(),
    )
    .await
    .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    for bad_json in ["{", "not json", "[1,2]", "\"title\""] {
        post(with_json(), bad_json.to_owned())
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    }
    for bad_title in [
        json!({}),
        json!({ "title": 5 }),
        json!({ "title": "" }),
        json!({ "title": "   " }),
        json!({ "title": "x".repeat(201) }),
    ] {
        post(with_json(), bad_title.to_string())
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_title");
    }
    let big = json!({ "title": "x", "pad": "y".repeat(20 * 1024) }).to_string();
    post(with_json(), big)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let longest = post(with_json(), json!({ "title": "é".repeat(200) }).to_string()).await;
    assert_eq!(longest.status, StatusCode::CREATED);
    let listed = app.admin("GET", "/api/v1/streams", None).await.json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "only the valid stream was stored"
    );
}

#[tokio::test]
async fn listing_is_newest_first() {
    let app = test_app().await;
    let mut ids = Vec::new();
    for title in ["one", "two", "three"] {
        ids.push(
            app.create(title).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let answer = app.admin("GET", "/api/v1/streams", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let listed: Vec<String> = answer
        .json()
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    ids.reverse();
    assert_eq!(listed, ids);
}

#[tokio::test]
async fn reading_a_stream_shows_its_live_state() {
    let app = test_app().await;
    app.admin("GET", "/api/v1/streams/aaaaaaaaaaaaaaaa", None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "stream_not_found");
    app.admin("GET", "/api/v1/streams/not-an-id", None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "stream_not_found");
    let created = app.create("watched").await;
    let id = created["id"].as_str().expect("id");
    let stream = app
        .admin("GET", &format!("/api/v1/streams/{id}"), None)
        .await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.json()["status"], "idle");
    assert_eq!(stream.json()["publisher"], Value::Null);

    // A viewer waiting for the publisher is counted.
    let offer = Client::new(ClientKind::Viewer, LOOPBACK)
        .and_then(|c| c.offer_sdp())
        .expect("offer");
    let answer = app
        .send(
            "POST",
            &format!("/whep/{id}"),
            &[("content-type", "application/sdp")],
            offer,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let stream = app
        .admin("GET", &format!("/api/v1/streams/{id}"), None)
        .await
        .json();
    assert_eq!(stream["viewers"], 1);
    let status = app
        .send(
            "GET",
            &format!("/api/v1/streams/{id}/status"),
            &[],
            Body::empty(),
        )
        .await
        .json();
    assert_eq!(status["viewers"], 1);
    app.engine.shutdown().await;
}

#[tokio::test]
async fn deleting_a_stream_ends_it_for_good() {
    let app = test_app().await;
    let created = app.create("short-lived").await;
    let id = created["id"].as_str().expect("id");
    let key = created["stream_key"].as_str().expect("key");
    let ended = app
        .admin("DELETE", &format!("/api/v1/streams/{id}"), None)
        .await;
    assert_eq!(ended.status, StatusCode::OK);
    assert_eq!(ended.json()["status"], "ended");
    assert!(ended.json()["ended_at"].is_string());
    let again = app
        .admin("DELETE", &format!("/api/v1/streams/{id}"), None)
        .await;
    assert_eq!(again.status, StatusCode::OK, "ending twice is harmless");
    assert_eq!(again.json()["ended_at"], ended.json()["ended_at"]);
    let read = app
        .admin("GET", &format!("/api/v1/streams/{id}"), None)
        .await;
    assert_eq!(read.json()["status"], "ended");
    app.admin("DELETE", "/api/v1/streams/aaaaaaaaaaaaaaaa", None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "stream_not_found");

    // Publishing and watching an ended stream is refused.
    let auth = format!("Bearer {key}");
    app.send(
        "POST",
        &format!("/whip/{id}"),
        &[
            ("content-type", "application/sdp"),
            ("authorization", &auth),
        ],
        "v=0\r\n",
    )
    .await
    .assert_error(StatusCode::CONFLICT, "stream_ended");
    app.send(
        "POST",
        &format!("/whep/{id}"),
        &[("content-type", "application/sdp")],
        "v=0\r\n",
    )
    .await
    .assert_error(StatusCode::CONFLICT, "stream_ended");
}

#[tokio::test]
async fn the_public_status_needs_no_token_and_shows_no_secret() {
    let app = test_app().await;
    let created = app.create("public").await;
    let id = created["id"].as_str().expect("id");
    let answer = app
        .send(
            "GET",
            &format!("/api/v1/streams/{id}/status"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let status = answer.json();
    assert_eq!(
        status,
        json!({
            "id": id,
            "title": "public",
            "status": "idle",
            "viewers": 0,
            "channel": null,
            "description": "",
            "scheduled_at": null,
            "access": "free",
            "price_tokens": null,
            "replay_access_days": null,
            "watch_url": format!("{PUBLIC_URL}/watch/{id}"),
            "calendar_url": null,
        })
    );
    // Nothing secret: no key, no ingest URL.
    let text = status.to_string();
    assert!(!text.contains("key") && !text.contains("whip"), "{text}");
    app.send(
        "GET",
        "/api/v1/streams/aaaaaaaaaaaaaaaa/status",
        &[],
        Body::empty(),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "stream_not_found");
}

#[tokio::test]
async fn whip_checks_the_stream_key_against_the_store() {
    let app = test_app().await;
    let created = app.create("keyed").await;
    let id = created["id"].as_str().expect("id");
    let key = created["stream_key"].as_str().expect("key");
    let sdp = ("content-type", "application/sdp");
    app.send("POST", &format!("/whip/{id}"), &[sdp], "v=0\r\n")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.send(
        "POST",
        &format!("/whip/{id}"),
        &[sdp, ("authorization", "Bearer sk_wrong")],
        "v=0\r\n",
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.send(
        "POST",
        "/whip/aaaaaaaaaaaaaaaa",
        &[sdp, ("authorization", &format!("Bearer {key}"))],
        "v=0\r\n",
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "stream_not_found");
    // The right key reaches the engine, which judges the SDP.
    app.send(
        "POST",
        &format!("/whip/{id}"),
        &[sdp, ("authorization", &format!("Bearer {key}"))],
        "not sdp",
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_sdp");
    let offer = Client::new(ClientKind::Publisher { simulcast: true }, LOOPBACK)
        .and_then(|c| c.offer_sdp())
        .expect("offer");
    let answer = app
        .send(
            "POST",
            &format!("/whip/{id}"),
            &[sdp, ("authorization", &format!("Bearer {key}"))],
            offer,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert!(
        answer
            .header(header::LOCATION)
            .is_some_and(|l| l.starts_with(&format!("/whip/{id}/")))
    );
    assert_eq!(
        answer.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some("*")
    );
    app.send("POST", "/whep/aaaaaaaaaaaaaaaa", &[sdp], "v=0\r\n")
        .await
        .assert_error(StatusCode::NOT_FOUND, "stream_not_found");
    app.engine.shutdown().await;
}

#[tokio::test]
async fn pages_and_static_files_are_served_uncached() {
    let app = test_app().await;
    for (uri, content_type) in [
        ("/studio/aaaaaaaaaaaaaaaa", "text/html; charset=utf-8"),
        ("/watch/aaaaaaaaaaaaaaaa", "text/html; charset=utf-8"),
        ("/dashboard", "text/html; charset=utf-8"),
        ("/static/app.css", "text/css; charset=utf-8"),
        ("/static/account.js", "text/javascript; charset=utf-8"),
        ("/static/api.js", "text/javascript; charset=utf-8"),
        ("/static/dashboard.js", "text/javascript; charset=utf-8"),
        ("/static/money.js", "text/javascript; charset=utf-8"),
        ("/static/studio.js", "text/javascript; charset=utf-8"),
        ("/static/ui.js", "text/javascript; charset=utf-8"),
        ("/static/watch-access.js", "text/javascript; charset=utf-8"),
        ("/static/watch.js", "text/javascript; charset=utf-8"),
        ("/static/webrtc.js", "text/javascript; charset=utf-8"),
    ] {
        let answer = app.send("GET", uri, &[], Body::empty()).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}");
        assert_eq!(
            answer.header(header::CONTENT_TYPE),
            Some(content_type),
            "{uri}"
        );
        assert_eq!(
            answer.header(header::CACHE_CONTROL),
            Some("no-cache"),
            "{uri}"
        );
        assert!(!answer.body.is_empty(), "{uri}");
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let app = test_app().await;
    app.admin("PUT", "/api/v1/streams", None)
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    app.send("POST", "/healthz", &[], Body::empty())
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}
