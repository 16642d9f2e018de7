//! The OpenAPI description (`crates/server/openapi.json`) and the server agree.
//!
//! - The routes are read from the router code (every `.route("...", ...)` in the crates that
//!   use axum) and must be exactly the documented paths and methods (`document.rs`, with the
//!   document's own consistency and its error-code table).
//! - Every documented operation is sent to the real router (`oneshot`, SQLite in a temporary
//!   directory, engine on loopback) with the documented examples, once per documented security
//!   requirement (accounts: a creator with a channel and a viewer, signed up through the API),
//!   on fresh resources (a stream of the creator's channel, a pass, an API token): it must not
//!   be the generic `not_found`/`method_not_allowed`, its status must be documented, and a JSON
//!   body must match the documented schema (no undocumented field). An operation that needs
//!   credentials must answer `401` without them. Undocumented methods on a documented path must
//!   be the JSON `405`.
//! - Accounts, channels, the stream lifecycle, paid access and payments (off: no Stripe) answer
//!   as documented (`accounts.rs`); so do HLS, recordings and replays (`media.rs`).
//! - A live publisher and a viewer go through WHIP and WHEP so the live statistics are checked
//!   against the schema too.
//! - The stable error codes listed are exactly those the code answers with.
//! - `GET /api/v1/openapi.json` serves the file byte for byte.

mod accounts;
mod document;
mod jwt;
mod media;
mod scan;
mod schema;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use greenroom::app::{self, AppState};
use greenroom::hls::HlsHub;
use greenroom::recording::Recordings;
use greenroom_control::external_identity::{IdentityConfig, IdentityKey};
use greenroom_control::{ExternalIdentity, Store, TokenKind};
use greenroom_hls::HlsOptions;
use greenroom_ingest::FrameTaps;
use greenroom_rtc::client::{Client, ClientKind};
use greenroom_rtc::{RtcConfig, RtcEngine, SourceProtocol};
use greenroom_storage::{ObjectStore, Spool};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use scan::*;
use schema::*;

const ADMIN: &str = "test-admin-token-0123456789";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The identity provider the test server trusts (`identityToken`).
const IDENTITY_SECRET: &[u8] = b"openapi-probe-identity-provider-secret";
const IDENTITY_ISSUER: &str = "https://id.example.com";
const IDENTITY_AUDIENCE: &str = "greenroom";
/// The password of the accounts the probes sign up.
const PASSWORD: &str = "probe password 123";

// ---------------------------------------------------------------------------------------------
// Probing the router

struct TestApp {
    router: Router,
    engine: RtcEngine,
    store: Store,
    /// A creator account with the channel `channel`.
    creator: Member,
    /// A viewer account.
    viewer: Member,
    /// The creator's channel's handle.
    channel: String,
    _dir: tempfile::TempDir,
}

/// An account signed up through the API: its id and the page session it got.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    session: String,
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

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn start_engine() -> RtcEngine {
    RtcEngine::start(RtcConfig {
        bind_ip: LOOPBACK,
        udp_port: 0,
        workers: 1,
        detach_viewers: true,
        advertise_ips: Vec::new(),
        ice_servers: Vec::new(),
    })
    .await
    .expect("start the engine")
}

/// The server as the probes see it: HLS (and so recordings) off, payments off, an identity
/// provider trusted.
async fn test_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::connect(&Store::sqlite_url(dir.path()))
        .await
        .expect("open the store");
    let engine = start_engine().await;
    let state = AppState::new(
        store.clone(),
        engine.clone(),
        "https://live.example.com",
        ADMIN,
    );
    TestApp::start(state, store, engine, dir).await
}

/// A JWT of the trusted identity provider for `subject`, valid for an hour.
fn identity_token(subject: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    jwt::hs256(
        IDENTITY_SECRET,
        &json!({
            "iss": IDENTITY_ISSUER,
            "aud": IDENTITY_AUDIENCE,
            "sub": subject,
            "exp": now + 3600,
            "name": "Idris",
        }),
    )
}

fn bearer(token: &str) -> (String, String) {
    ("authorization".to_owned(), format!("Bearer {token}"))
}

fn json_content() -> (String, String) {
    ("content-type".to_owned(), "application/json".to_owned())
}

/// The credentials of one probe: headers and a query parameter.
struct Credentials {
    what: String,
    headers: Vec<(String, String)>,
    query: Option<String>,
}

impl Credentials {
    fn none() -> Credentials {
        Credentials {
            what: "no credentials".to_owned(),
            headers: Vec::new(),
            query: None,
        }
    }
}

impl TestApp {
    /// The app of `state`, with an identity provider, a creator (with a channel) and a viewer
    /// signed up through the API.
    async fn start(
        state: AppState,
        store: Store,
        engine: RtcEngine,
        dir: tempfile::TempDir,
    ) -> TestApp {
        let identity = ExternalIdentity::new(IdentityConfig {
            key: IdentityKey::Hs256(IDENTITY_SECRET.to_vec()),
            issuer: IDENTITY_ISSUER.to_owned(),
            audience: IDENTITY_AUDIENCE.to_owned(),
        })
        .expect("identity provider");
        let mut app = TestApp {
            router: app::router(state.with_identity(identity)),
            engine,
            store,
            creator: Member {
                id: String::new(),
                session: String::new(),
            },
            viewer: Member {
                id: String::new(),
                session: String::new(),
            },
            channel: String::new(),
            _dir: dir,
        };
        app.creator = app.sign_up("creator@probe.example", "creator").await;
        app.viewer = app.sign_up("viewer@probe.example", "viewer").await;
        let answer = app
            .send(
                "POST",
                "/api/v1/channels",
                &[bearer(&app.creator.session), json_content()],
                json!({ "handle": "probe_channel", "display_name": "Probe channel" }).to_string(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.json());
        app.channel = answer.json()["handle"].as_str().expect("handle").to_owned();
        app
    }

    async fn sign_up(&self, email: &str, role: &str) -> Member {
        let answer = self
            .send(
                "POST",
                "/api/v1/accounts",
                &[json_content()],
                json!({ "email": email, "password": PASSWORD, "display_name": role, "role": role })
                    .to_string(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.json());
        let session = answer.json();
        Member {
            id: session["account"]["id"].as_str().expect("id").to_owned(),
            session: session["token"].as_str().expect("token").to_owned(),
        }
    }

    /// A fresh token of `member` (a page session or an API token), so that a probe that
    /// revokes what it presents does not sign anyone out.
    async fn fresh_token(&self, member: &Member, kind: TokenKind) -> String {
        self.store
            .issue_token(&member.id, kind, Some("probe"), Some(3_600_000))
            .await
            .expect("issue a token")
            .secret
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(String, String)],
        body: impl Into<Body>,
    ) -> Answer {
        let mut builder = Request::builder()
            .method(method.to_ascii_uppercase().as_str())
            .uri(uri);
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(body.into()).expect("valid request");
        let response = self.router.clone().oneshot(request).await.expect("answer");
        let (parts, body) = response.into_parts();
        // A server-sent event stream stays open: its headers are the answer.
        let streaming = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let body = if streaming {
            Bytes::new()
        } else {
            body.collect().await.expect("body").to_bytes()
        };
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Sends a request and checks the answer against the documented operation.
    async fn probe(
        &self,
        spec: &Value,
        (method, path): (&str, &str),
        uri: &str,
        headers: &[(String, String)],
        body: impl Into<Body>,
    ) -> Answer {
        let answer = self.send(method, uri, headers, body).await;
        let what = format!("{method} {uri}");
        check_answer(
            spec,
            operation(spec, path, &method.to_ascii_lowercase()),
            &answer,
            &what,
        );
        answer
    }

    /// A fresh stream of the creator's channel: `(id, stream key)`.
    async fn create_stream(&self) -> (String, String) {
        let answer = self
            .send(
                "POST",
                "/api/v1/streams",
                &[bearer(ADMIN), json_content()],
                json!({ "title": "probe", "channel": self.channel }).to_string(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
        let stream = answer.json();
        (
            stream["id"].as_str().expect("id").to_owned(),
            stream["stream_key"].as_str().expect("key").to_owned(),
        )
    }

    /// A playback token with `right` for `stream`, issued to the admin.
    async fn playback_token(&self, spec: &Value, stream: &str, right: &str) -> String {
        let answer = self
            .probe(
                spec,
                ("POST", "/api/v1/streams/{id}/playback-token"),
                &format!("/api/v1/streams/{stream}/playback-token"),
                &[bearer(ADMIN), json_content()],
                json!({ "right": right }).to_string(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
        answer.json()["token"].as_str().expect("token").to_owned()
    }

    /// A fresh free pass of the creator's channel.
    async fn create_pass(&self, spec: &Value) -> String {
        let answer = self
            .probe(
                spec,
                ("POST", "/api/v1/channels/{handle}/passes"),
                &format!("/api/v1/channels/{}/passes", self.channel),
                &[bearer(&self.creator.session), json_content()],
                json!({ "name": "Probe pass", "kind": "free" }).to_string(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
        answer.json()["id"].as_str().expect("pass id").to_owned()
    }

    /// The id of a fresh API token of the account `headers` authenticate (of the creator when
    /// they authenticate no account).
    async fn api_token_id(&self, spec: &Value, headers: &[(String, String)]) -> String {
        let create = ("POST", "/api/v1/me/tokens");
        let body = json!({ "name": "probe" }).to_string();
        let mut with_body = headers.to_vec();
        with_body.push(json_content());
        let mut answer = self
            .probe(spec, create, "/api/v1/me/tokens", &with_body, body.clone())
            .await;
        if answer.status == StatusCode::UNAUTHORIZED {
            let creator = [bearer(&self.creator.session), json_content()];
            answer = self
                .probe(spec, create, "/api/v1/me/tokens", &creator, body)
                .await;
        }
        assert_eq!(answer.status, StatusCode::CREATED);
        answer.json()["id"].as_str().expect("token id").to_owned()
    }

    /// Every way of presenting the security scheme `scheme` (`None`: no credentials) on a
    /// request to `path` about stream `stream`.
    async fn credentials(
        &self,
        spec: &Value,
        scheme: Option<&str>,
        path: &str,
        (stream, key): (&str, &str),
    ) -> Vec<Credentials> {
        let right = if path.starts_with("/whip/") {
            "publish"
        } else if path.starts_with("/replays/") {
            "replay"
        } else {
            "watch"
        };
        let one = |what: &str, headers: Vec<(String, String)>| Credentials {
            what: what.to_owned(),
            headers,
            query: None,
        };
        match scheme {
            None => vec![Credentials::none()],
            Some("adminBearer") => vec![one("the admin", vec![bearer(ADMIN)])],
            Some("streamKey") => vec![one("the stream key", vec![bearer(key)])],
            Some("accountBearer") => {
                let creator = self.fresh_token(&self.creator, TokenKind::Session).await;
                let viewer = self.fresh_token(&self.viewer, TokenKind::Api).await;
                vec![
                    one("the creator's session", vec![bearer(&creator)]),
                    one("the viewer's API token", vec![bearer(&viewer)]),
                ]
            }
            Some("sessionCookie") => {
                let session = self.fresh_token(&self.creator, TokenKind::Session).await;
                let cookie = ("cookie".to_owned(), format!("greenroom_session={session}"));
                vec![one("the creator's session cookie", vec![cookie])]
            }
            Some("identityToken") => vec![one(
                "an identity provider's token",
                vec![bearer(&identity_token("probe-viewer"))],
            )],
            Some("playbackToken") => {
                let token = self.playback_token(spec, stream, right).await;
                vec![one("a playback token", vec![bearer(&token)])]
            }
            Some("playbackTokenQuery") => {
                let token = self.playback_token(spec, stream, right).await;
                vec![Credentials {
                    what: "a playback token in the query".to_owned(),
                    headers: Vec::new(),
                    query: Some(format!("token={token}")),
                }]
            }
            Some(other) => panic!("unknown security scheme {other}"),
        }
    }

    /// The value of path parameter `name` of `path` for a probe: a fresh resource of the kind
    /// the path names, else the documented example.
    async fn path_value(
        &self,
        spec: &Value,
        (path, name): (&str, &str),
        example: &Value,
        stream: &str,
        credentials: &Credentials,
    ) -> String {
        match name {
            "id" if path.starts_with("/api/v1/passes/") => self.create_pass(spec).await,
            "id" if path.starts_with("/api/v1/me/tokens/") => {
                self.api_token_id(spec, &credentials.headers).await
            }
            "id" | "stream_id" => stream.to_owned(),
            "handle" => self.channel.clone(),
            _ => {
                assert!(example.is_string(), "{path}: example of {name}");
                example_text(example)
            }
        }
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_as_documented() {
    let spec = spec();
    let app = test_app().await;
    let mut probes = 0;
    for (path, item) in paths(&spec) {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                // An undocumented method on a documented path: the JSON 405.
                let uri = path.replace('{', "x").replace('}', "");
                let answer = app
                    .send(
                        method,
                        &uri,
                        &[("authorization".to_owned(), format!("Bearer {ADMIN}"))],
                        Body::empty(),
                    )
                    .await;
                assert_eq!(
                    answer.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {uri} is not documented but answers"
                );
                assert_eq!(answer.json()["error"]["code"], "method_not_allowed");
                continue;
            };
            let security = operation["security"].as_array().expect("security");
            let mut schemes: Vec<Option<&str>> = Vec::new();
            for requirement in security {
                let requirement = requirement.as_object().expect("a security requirement");
                assert!(
                    requirement.len() <= 1,
                    "{method} {path}: requirements of several schemes are not probed"
                );
                schemes.push(requirement.keys().next().map(String::as_str));
            }
            // Credentials are optional when there are none to give or `{}` is among them;
            // otherwise a request without them is the documented 401.
            let optional_listed = schemes.contains(&None);
            let optional = schemes.is_empty() || optional_listed;
            if schemes.is_empty() {
                schemes.push(None);
            }
            let mut runs: Vec<(Option<&str>, bool)> = schemes.iter().map(|s| (*s, false)).collect();
            if !optional {
                runs.push((None, true));
            }
            for (scheme, must_refuse) in runs {
                let (stream_id, stream_key) = app.create_stream().await;
                let stream = (stream_id.as_str(), stream_key.as_str());
                for credentials in app.credentials(&spec, scheme, path, stream).await {
                    let mut uri = path.clone();
                    let mut query = Vec::new();
                    let mut headers = credentials.headers.clone();
                    for parameter in parameters(&spec, item, operation) {
                        let name = parameter["name"].as_str().expect("name");
                        let example = &parameter["example"];
                        match parameter["in"].as_str() {
                            Some("path") => {
                                let value = app
                                    .path_value(
                                        &spec,
                                        (path, name),
                                        example,
                                        &stream_id,
                                        &credentials,
                                    )
                                    .await;
                                uri = uri.replace(&format!("{{{name}}}"), &value);
                            }
                            Some("query") => {
                                query.push(format!("{name}={}", example_text(example)))
                            }
                            Some("header") => {
                                headers.push((name.to_owned(), example_text(example)))
                            }
                            other => panic!("{path}: parameter in {other:?}"),
                        }
                    }
                    query.extend(credentials.query.clone());
                    if !query.is_empty() {
                        uri = format!("{uri}?{}", query.join("&"));
                    }

                    let mut bodies = Vec::new();
                    match operation["requestBody"]
                        .get("content")
                        .and_then(Value::as_object)
                    {
                        Some(content) => {
                            for (media, object) in content {
                                let example = object.get("example").unwrap_or_else(|| {
                                    panic!("{method} {path}: no example for {media}")
                                });
                                bodies.push((Some(media.clone()), example_text(example)));
                            }
                        }
                        None => bodies.push((None, String::new())),
                    }
                    for (media, body) in bodies {
                        let mut headers = headers.clone();
                        if let Some(media) = &media {
                            headers.push(("content-type".to_owned(), media.clone()));
                        }
                        let answer = app.send(method, &uri, &headers, body).await;
                        let what = format!(
                            "{} {uri} ({media:?}, {})",
                            method.to_ascii_uppercase(),
                            credentials.what
                        );
                        check_answer(&spec, operation, &answer, &what);
                        if must_refuse {
                            assert_eq!(
                                answer.status,
                                StatusCode::UNAUTHORIZED,
                                "{what}: the operation needs credentials"
                            );
                        } else if scheme.is_none() && optional_listed {
                            assert_ne!(
                                answer.status,
                                StatusCode::UNAUTHORIZED,
                                "{what}: documented as needing no credentials"
                            );
                        }
                        probes += 1;
                    }
                }
            }
        }
    }
    assert!(probes >= 150, "only {probes} probes");
    app.engine.shutdown().await;
}

#[tokio::test]
async fn the_served_document_is_the_file() {
    let app = test_app().await;
    let answer = app
        .send("GET", "/api/v1/openapi.json", &[], Body::empty())
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let file = std::fs::read(manifest_dir().join("openapi.json")).expect("read spec");
    assert!(answer.body.as_ref() == file.as_slice(), "served != file");
    assert_eq!(greenroom::openapi::DOCUMENT.as_bytes(), file.as_slice());
    app.engine.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// A live stream through WHIP and WHEP

#[tokio::test(flavor = "current_thread")]
async fn live_statistics_and_sessions_answer_as_documented() {
    tokio::task::LocalSet::new()
        .run_until(live_statistics_and_sessions())
        .await;
}

async fn live_statistics_and_sessions() {
    let spec = spec();
    let app = test_app().await;
    let (id, key) = app.create_stream().await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);

    // The publisher.
    let mut publisher =
        Client::new(ClientKind::Publisher { simulcast: true }, LOOPBACK).expect("publisher");
    let offer = publisher.offer_sdp().expect("offer");
    let answer = app
        .send(
            "POST",
            &format!("/whip/{id}"),
            &[
                ("content-type".to_owned(), "application/sdp".to_owned()),
                ("authorization".to_owned(), format!("Bearer {key}")),
            ],
            offer,
        )
        .await;
    check_answer(
        &spec,
        operation(&spec, "/whip/{stream_id}", "post"),
        &answer,
        "WHIP publish",
    );
    assert_eq!(answer.status, StatusCode::CREATED);
    let whip_session = answer.header("location").expect("location").to_owned();
    assert!(whip_session.starts_with(&format!("/whip/{id}/")));
    assert!(answer.header("etag").is_some_and(|e| e.starts_with('"')));
    assert_eq!(
        answer.header("accept-patch"),
        Some("application/trickle-ice-sdpfrag")
    );
    publisher
        .apply_answer(&String::from_utf8_lossy(&answer.body))
        .expect("answer applies");
    tokio::task::spawn_local(publisher.run(stop_rx.clone()));

    // A viewer capped at `h`.
    let mut viewer = Client::new(ClientKind::Viewer, LOOPBACK).expect("viewer");
    let offer = viewer.offer_sdp().expect("offer");
    let answer = app
        .send(
            "POST",
            &format!("/whep/{id}?layer=h"),
            &[("content-type".to_owned(), "application/sdp".to_owned())],
            offer,
        )
        .await;
    check_answer(
        &spec,
        operation(&spec, "/whep/{stream_id}", "post"),
        &answer,
        "WHEP subscribe",
    );
    assert_eq!(answer.status, StatusCode::CREATED);
    let whep_session = answer.header("location").expect("location").to_owned();
    viewer
        .apply_answer(&String::from_utf8_lossy(&answer.body))
        .expect("answer applies");
    tokio::task::spawn_local(viewer.run(stop_rx));

    // The live statistics, checked against the schema at every poll.
    let admin = [("authorization".to_owned(), format!("Bearer {ADMIN}"))];
    let get_stream = operation(&spec, "/api/v1/streams/{id}", "get");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let stream = loop {
        let answer = app
            .send(
                "GET",
                &format!("/api/v1/streams/{id}"),
                &admin,
                Body::empty(),
            )
            .await;
        check_answer(&spec, get_stream, &answer, "GET live stream");
        let stream = answer.json();
        let video_sized = stream["publisher"]["tracks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|track| track["kind"] == "video")
            .flat_map(|track| track["layers"].as_array().into_iter().flatten())
            .any(|layer| layer["width"].is_u64() && layer["bitrate_bps"].as_u64() > Some(0));
        if stream["status"] == "live" && video_sized || tokio::time::Instant::now() > deadline {
            break stream;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stream["status"], "live", "{stream:#}");
    assert_eq!(stream["viewers"], 1, "{stream:#}");
    let sessions = stream["viewer_sessions"]
        .as_array()
        .expect("viewer_sessions");
    assert_eq!(sessions.len(), 1, "{stream:#}");
    assert_eq!(sessions[0]["max_layer"], "h", "{stream:#}");
    let kinds: BTreeSet<&str> = stream["publisher"]["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .filter_map(|track| track["kind"].as_str())
        .collect();
    assert_eq!(kinds, BTreeSet::from(["audio", "video"]), "{stream:#}");

    let answer = app
        .send("GET", "/api/v1/streams", &admin, Body::empty())
        .await;
    check_answer(
        &spec,
        operation(&spec, "/api/v1/streams", "get"),
        &answer,
        "GET streams while live",
    );
    let answer = app
        .send(
            "GET",
            &format!("/api/v1/streams/{id}/status"),
            &[],
            Body::empty(),
        )
        .await;
    check_answer(
        &spec,
        operation(&spec, "/api/v1/streams/{id}/status", "get"),
        &answer,
        "GET status while live",
    );
    assert_eq!(answer.json()["status"], "live");

    // The viewer changes its layer.
    let answer = app
        .send(
            "PATCH",
            &whep_session,
            &[("content-type".to_owned(), "application/json".to_owned())],
            json!({ "layer": "q" }).to_string(),
        )
        .await;
    check_answer(
        &spec,
        operation(&spec, "/whep/{stream_id}/{session_id}", "patch"),
        &answer,
        "WHEP layer change",
    );
    assert_eq!(answer.status, StatusCode::NO_CONTENT);

    // Both leave.
    for (session, path) in [
        (&whep_session, "/whep/{stream_id}/{session_id}"),
        (&whip_session, "/whip/{stream_id}/{session_id}"),
    ] {
        let answer = app.send("DELETE", session, &[], Body::empty()).await;
        check_answer(
            &spec,
            operation(&spec, path, "delete"),
            &answer,
            "DELETE session",
        );
        assert_eq!(answer.status, StatusCode::OK);
    }
    let _ = stop.send(true);
    app.engine.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// HLS, recordings and replays (a server with HLS on and recordings in a local directory)
