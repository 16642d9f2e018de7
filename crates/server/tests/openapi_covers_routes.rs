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

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use greenroom::app::{self, AppState};
use greenroom_control::Store;
use greenroom_rtc::client::{Client, ClientKind};
use greenroom_rtc::{RtcConfig, RtcEngine};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN: &str = "test-admin-token-0123456789";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The methods an OpenAPI path item may hold, as axum routes them (HEAD follows GET).
const METHODS: [&str; 6] = ["get", "post", "put", "patch", "delete", "options"];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spec() -> Value {
    let text = std::fs::read_to_string(manifest_dir().join("openapi.json")).expect("read spec");
    serde_json::from_str(&text).expect("the spec is JSON")
}

/// Follows `$ref`s (local ones only) to the value they name.
fn resolve<'a>(spec: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return value;
        };
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("non-local $ref {reference}"));
        value = spec
            .pointer(pointer)
            .unwrap_or_else(|| panic!("$ref {reference} does not resolve"));
    }
    panic!("$ref chain too long")
}

fn paths(spec: &Value) -> &serde_json::Map<String, Value> {
    spec["paths"].as_object().expect("paths")
}

/// Every documented `(path, method)`.
fn documented_routes(spec: &Value) -> BTreeMap<String, BTreeSet<String>> {
    paths(spec)
        .iter()
        .map(|(path, item)| {
            let methods = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (*m).to_owned())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The routes in the router code

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source files of every crate that builds HTTP routes (uses axum).
fn http_sources() -> Vec<(PathBuf, String)> {
    let crates = manifest_dir().join("..");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&crates).expect("crates dir").flatten() {
        rust_files(&entry.path().join("src"), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            text.contains("axum").then_some((path, text))
        })
        .collect()
}

/// The text of the argument list that starts at `start` (just after an opening parenthesis),
/// up to its closing parenthesis; string literals are skipped.
fn call_arguments(text: &str, start: usize) -> &str {
    let bytes = text.as_bytes();
    let (mut depth, mut i, mut in_string) = (1usize, start, false);
    while i < bytes.len() {
        match (in_string, bytes[i]) {
            (true, b'\\') => i += 1,
            (true, b'"') => in_string = false,
            (false, b'"') => in_string = true,
            (false, b'(') => depth += 1,
            (false, b')') => {
                depth -= 1;
                if depth == 0 {
                    return &text[start..i];
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced parentheses after byte {start}")
}

/// The HTTP methods an axum method-router expression routes (`get(a).post(b)`).
fn routed_methods(expression: &str) -> BTreeSet<String> {
    let mut methods = BTreeSet::new();
    for method in METHODS.iter().chain(&["head", "trace", "any"]) {
        let needle = format!("{method}(");
        for (at, _) in expression.match_indices(&needle) {
            let before = expression[..at].chars().next_back();
            let is_call = match before {
                None => true,
                Some(c) => c == '.' || c == '(' || c.is_whitespace(),
            };
            if is_call {
                methods.insert((*method).to_owned());
            }
        }
    }
    methods
}

/// Every `.route("path", methods)` in the HTTP crates.
fn routes_in_code() -> BTreeMap<String, BTreeSet<String>> {
    let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in http_sources() {
        for (at, needle) in text.match_indices(".route(") {
            let args = call_arguments(&text, at + needle.len());
            let args = args.trim_start();
            let Some(rest) = args.strip_prefix('"') else {
                panic!(
                    "{}: a route path that is not a string literal ({:.60}); \
                     make it a literal so this test can check it is documented",
                    file.display(),
                    args
                );
            };
            let end = rest.find('"').expect("closed string literal");
            let path = &rest[..end];
            let methods = routed_methods(&rest[end + 1..]);
            assert!(
                !methods.is_empty(),
                "{}: no method found for route {path}",
                file.display()
            );
            routes.entry(path.to_owned()).or_default().extend(methods);
        }
    }
    routes
}

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

// ---------------------------------------------------------------------------------------------
// The error codes

/// The string literals of every `fn code(&self) -> &'static str` in the HTTP crates.
fn error_codes_in_code() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    for (_, text) in http_sources() {
        for (at, _) in text.match_indices("fn code(&self) -> &'static str") {
            let body_start = at + text[at..].find('{').expect("fn body") + 1;
            let body = call_arguments_braces(&text, body_start);
            let mut rest = body;
            while let Some(open) = rest.find('"') {
                let after = &rest[open + 1..];
                let close = after.find('"').expect("closed literal");
                codes.insert(after[..close].to_owned());
                rest = &after[close + 1..];
            }
        }
    }
    codes
}

/// Like [`call_arguments`] for a `{ ... }` block (no string holds a brace in these functions).
fn call_arguments_braces(text: &str, start: usize) -> &str {
    let mut depth = 1usize;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[start..start + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces")
}

fn documented_error_codes(spec: &Value) -> BTreeSet<String> {
    spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode enum")
        .iter()
        .map(|code| code.as_str().expect("code").to_owned())
        .collect()
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

// ---------------------------------------------------------------------------------------------
// The document itself

fn walk<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((at.clone(), value));
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                walk(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Checks `value` against a JSON schema (the subset the spec uses). Objects are strict: a field
/// the schema does not list is an error, so a new field in an answer must be documented.
fn check_schema(spec: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = alternatives
            .iter()
            .filter(|alternative| {
                let mut inner = Vec::new();
                check_schema(spec, alternative, value, at, &mut inner);
                inner.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!("{at}: {value} matches {matching} oneOf schemas"));
        }
        return;
    }
    if let Some(expected) = schema.get("const")
        && value != expected
    {
        errors.push(format!("{at}: {value} is not {expected}"));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let fits = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        });
        if !fits {
            errors.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
    }
    match value {
        Value::Object(fields) => {
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !fields.contains_key(required) {
                    errors.push(format!("{at}: missing required field {required}"));
                }
            }
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, field) in fields {
                    match properties.get(name) {
                        Some(field_schema) => {
                            check_schema(spec, field_schema, field, &format!("{at}.{name}"), errors)
                        }
                        None => errors.push(format!("{at}: undocumented field {name}")),
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_schema(spec, item_schema, item, &format!("{at}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

fn assert_matches_schema(spec: &Value, schema: &Value, value: &Value, what: &str) {
    let mut errors = Vec::new();
    check_schema(spec, schema, value, "$", &mut errors);
    assert!(errors.is_empty(), "{what}: {errors:#?}\n{value:#}");
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

/// Path-item and operation parameters, resolved.
fn parameters<'a>(spec: &'a Value, item: &'a Value, operation: &'a Value) -> Vec<&'a Value> {
    item.get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            operation
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .map(|p| resolve(spec, p))
        .collect()
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

async fn test_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::connect(&Store::sqlite_url(dir.path()))
        .await
        .expect("open the store");
    let engine = RtcEngine::start(RtcConfig {
        bind_ip: LOOPBACK,
        udp_port: 0,
        workers: 1,
        advertise_ips: Vec::new(),
        ice_servers: Vec::new(),
    })
    .await
    .expect("start the engine");
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
