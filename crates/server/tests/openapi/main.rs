//! The OpenAPI description (`crates/server/openapi.json`) and the server agree.
//!
//! - The routes are read from the router code (every `.route("...", ...)` in the crates that
//!   use axum) and must be exactly the documented paths and methods.
//! - Every documented operation is sent to the real router (`oneshot`, SQLite in a temporary
//!   directory, engine on loopback) with the documented examples and credentials: it must not
//!   be the generic `not_found`/`method_not_allowed`, its status must be documented, and a JSON
//!   body must match the documented schema (no undocumented field). Undocumented methods on a
//!   documented path must be the JSON `405`.
//! - A live publisher and a viewer go through WHIP and WHEP so the live statistics are checked
//!   against the schema too.
//! - The stable error codes listed are exactly those the code answers with.
//! - `GET /api/v1/openapi.json` serves the file byte for byte.

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
use greenroom_control::Store;
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

#[test]
fn every_route_in_the_router_code_is_documented_and_nothing_else() {
    let spec = spec();
    let in_code = routes_in_code();
    let documented = documented_routes(&spec);
    assert!(
        in_code.contains_key("/api/v1/streams") && in_code.contains_key("/whip/{stream_id}"),
        "the route scan found too little: {in_code:?}"
    );
    for (path, methods) in &in_code {
        assert!(
            !methods.contains("any"),
            "{path}: `any` routes cannot be documented method by method"
        );
        let Some(documented_methods) = documented.get(path) else {
            panic!("{path} ({methods:?}) is served but not in openapi.json");
        };
        assert_eq!(
            methods, documented_methods,
            "{path}: methods served (left) and documented (right) differ"
        );
    }
    for path in documented.keys() {
        assert!(
            in_code.contains_key(path),
            "{path} is in openapi.json but no router serves it"
        );
    }
}

#[test]
fn the_documented_error_codes_are_the_ones_the_code_answers() {
    let spec = spec();
    let in_code = error_codes_in_code();
    assert!(
        in_code.contains("stream_not_found") && in_code.contains("invalid_sdp"),
        "the code scan found too little: {in_code:?}"
    );
    assert_eq!(
        in_code,
        documented_error_codes(&spec),
        "codes answered (left) and documented in ErrorCode (right) differ"
    );
    let table = spec["components"]["schemas"]["ErrorCode"]["description"]
        .as_str()
        .expect("ErrorCode description");
    for code in &in_code {
        assert!(
            table.contains(&format!("| `{code}` |")),
            "{code} is not explained in the ErrorCode table"
        );
    }
}

#[test]
fn the_document_is_openapi_3_1_and_consistent() {
    let spec = spec();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut nodes = Vec::new();
    walk(&spec, String::new(), &mut nodes);

    // Every $ref resolves.
    for (at, node) in &nodes {
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let pointer = reference.strip_prefix('#').unwrap_or("");
            assert!(
                reference.starts_with('#') && spec.pointer(pointer).is_some(),
                "{at}: $ref {reference} does not resolve"
            );
        }
    }

    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths(&spec) {
        // Path templates and path parameters agree.
        let in_template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let declared: BTreeSet<&str> = parameters(&spec, item, operation)
                .into_iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().expect("parameter name"))
                .collect();
            assert_eq!(in_template, declared, "{method} {path}: path parameters");
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(operation_ids.insert(id), "operationId {id} twice");
            assert!(
                operation["security"].is_array(),
                "{method} {path}: say which security applies, [] for none"
            );
            let responses = operation["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            for (status, response) in responses {
                let status: u16 = status.parse().expect("numeric status");
                let response = resolve(&spec, response);
                assert!(response["description"].is_string());
                // Every error answer is the JSON error object.
                if status >= 400 {
                    let schema = &response["content"]["application/json"]["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/Error",
                        "{method} {path} {status}: errors are the Error schema"
                    );
                }
            }
        }
    }

    // Every example (media types, parameters, headers) matches its schema.
    for (at, node) in &nodes {
        let Some(schema) = node.get("schema") else {
            continue;
        };
        if let Some(example) = node.get("example") {
            assert_matches_schema(&spec, schema, example, &format!("example at {at}"));
        }
        if let Some(examples) = node.get("examples").and_then(Value::as_object) {
            for (name, example) in examples {
                let example = &resolve(&spec, example)["value"];
                assert_matches_schema(&spec, schema, example, &format!("example {name} at {at}"));
            }
        }
    }
    for (name, schema) in spec["components"]["schemas"].as_object().expect("schemas") {
        if let Some(example) = schema.get("example") {
            assert_matches_schema(&spec, schema, example, &format!("example of {name}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Probing the router

struct TestApp {
    router: Router,
    engine: RtcEngine,
    _dir: tempfile::TempDir,
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
        advertise_ips: Vec::new(),
        ice_servers: Vec::new(),
    })
    .await
    .expect("start the engine")
}

/// The server as the probes see it: HLS (and so recordings) off.
async fn test_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::connect(&Store::sqlite_url(dir.path()))
        .await
        .expect("open the store");
    let engine = start_engine().await;
    let state = AppState::new(store, engine.clone(), "https://live.example.com", ADMIN);
    TestApp {
        router: app::router(state),
        engine,
        _dir: dir,
    }
}

impl TestApp {
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
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.expect("body").to_bytes(),
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

    /// A fresh stream: `(id, stream key)`.
    async fn create_stream(&self) -> (String, String) {
        let answer = self
            .send(
                "POST",
                "/api/v1/streams",
                &[
                    ("authorization".to_owned(), format!("Bearer {ADMIN}")),
                    ("content-type".to_owned(), "application/json".to_owned()),
                ],
                json!({ "title": "probe" }).to_string(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
        let stream = answer.json();
        (
            stream["id"].as_str().expect("id").to_owned(),
            stream["stream_key"].as_str().expect("key").to_owned(),
        )
    }
}

fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Checks an answer against the documented operation.
fn check_answer(spec: &Value, operation: &Value, answer: &Answer, what: &str) {
    let text = String::from_utf8_lossy(&answer.body);
    let status = answer.status.as_str();
    let Some(response) = operation["responses"].get(status) else {
        panic!("{what}: status {status} is not documented\n{text}");
    };
    let response = resolve(spec, response);
    if answer.status.as_u16() >= 400 {
        assert_eq!(
            answer.header("content-type"),
            Some("application/json"),
            "{what}: {text}"
        );
        let code = answer.json()["error"]["code"].clone();
        assert!(
            code != "not_found" && code != "method_not_allowed",
            "{what}: answered by the generic {code}: {text}"
        );
    }
    if let Some(headers) = response.get("headers").and_then(Value::as_object) {
        for (name, header) in headers {
            if resolve(spec, header)["required"] == true {
                assert!(
                    answer.header(name).is_some(),
                    "{what}: documented header {name} is missing"
                );
            }
        }
    }
    match response.get("content").and_then(Value::as_object) {
        None => assert!(
            answer.body.is_empty(),
            "{what}: documented without a body, answered {text}"
        ),
        Some(content) => {
            let actual = media_type(answer.header("content-type").unwrap_or(""));
            let documented = content
                .iter()
                .find(|(media, _)| media_type(media) == actual)
                .map(|(_, object)| object);
            let Some(documented) = documented else {
                panic!("{what}: content type {actual:?} is not documented");
            };
            if actual == "application/json" {
                let body: Value = serde_json::from_slice(&answer.body)
                    .unwrap_or_else(|err| panic!("{what}: not JSON ({err}): {text}"));
                assert_matches_schema(spec, &documented["schema"], &body, what);
            }
        }
    }
}

fn operation<'a>(spec: &'a Value, path: &str, method: &str) -> &'a Value {
    let operation = &spec["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is not documented");
    operation
}

/// An example of a parameter or media type, as text.
fn example_text(example: &Value) -> String {
    match example {
        Value::String(text) => text.clone(),
        other => other.to_string(),
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
            let (stream_id, stream_key) = app.create_stream().await;

            let mut uri = path.clone();
            let mut query = Vec::new();
            let mut headers: Vec<(String, String)> = Vec::new();
            for parameter in parameters(&spec, item, operation) {
                let name = parameter["name"].as_str().expect("name");
                let example = example_text(&parameter["example"]);
                match parameter["in"].as_str() {
                    Some("path") if name == "id" || name == "stream_id" => {
                        uri = uri.replace(&format!("{{{name}}}"), &stream_id);
                    }
                    Some("path") => {
                        assert!(
                            parameter["example"].is_string(),
                            "{path}: example of {name}"
                        );
                        uri = uri.replace(&format!("{{{name}}}"), &example);
                    }
                    Some("query") => query.push(format!("{name}={example}")),
                    Some("header") => headers.push((name.to_owned(), example)),
                    other => panic!("{path}: parameter in {other:?}"),
                }
            }
            if !query.is_empty() {
                uri = format!("{uri}?{}", query.join("&"));
            }
            let security = operation["security"].as_array().expect("security");
            if let Some(requirement) = security.first().and_then(Value::as_object) {
                let token = match requirement.keys().next().map(String::as_str) {
                    Some("adminBearer") => ADMIN,
                    Some("streamKey") => stream_key.as_str(),
                    other => panic!("unknown security scheme {other:?}"),
                };
                headers.push(("authorization".to_owned(), format!("Bearer {token}")));
            }

            let mut bodies = Vec::new();
            match operation["requestBody"]
                .get("content")
                .and_then(Value::as_object)
            {
                Some(content) => {
                    for (media, object) in content {
                        let example = object
                            .get("example")
                            .unwrap_or_else(|| panic!("{method} {path}: no example for {media}"));
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
                let what = format!("{} {uri} ({media:?})", method.to_ascii_uppercase());
                check_answer(&spec, operation, &answer, &what);
                probes += 1;
            }
        }
    }
    assert!(probes >= 20, "only {probes} probes");
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
