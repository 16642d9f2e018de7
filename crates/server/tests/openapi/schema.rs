//! The OpenAPI document: loading, `$ref`s, checking values against its schemas and answers
//! against their operations.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

use crate::Answer;

pub const METHODS: [&str; 6] = ["get", "post", "put", "patch", "delete", "options"];

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn spec() -> Value {
    let text = std::fs::read_to_string(manifest_dir().join("openapi.json")).expect("read spec");
    serde_json::from_str(&text).expect("the spec is JSON")
}

/// Follows `$ref`s (local ones only) to the value they name.
pub fn resolve<'a>(spec: &'a Value, mut value: &'a Value) -> &'a Value {
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

pub fn paths(spec: &Value) -> &serde_json::Map<String, Value> {
    spec["paths"].as_object().expect("paths")
}

/// Every documented `(path, method)`.
pub fn documented_routes(spec: &Value) -> BTreeMap<String, BTreeSet<String>> {
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
// The document itself

pub fn walk<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
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
pub fn check_schema(
    spec: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    errors: &mut Vec<String>,
) {
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

pub fn assert_matches_schema(spec: &Value, schema: &Value, value: &Value, what: &str) {
    let mut errors = Vec::new();
    check_schema(spec, schema, value, "$", &mut errors);
    assert!(errors.is_empty(), "{what}: {errors:#?}\n{value:#}");
}

/// Path-item and operation parameters, resolved.
pub fn parameters<'a>(spec: &'a Value, item: &'a Value, operation: &'a Value) -> Vec<&'a Value> {
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
// Answers against their operations

fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Checks an answer against the documented operation.
pub fn check_answer(spec: &Value, operation: &Value, answer: &Answer, what: &str) {
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

pub fn operation<'a>(spec: &'a Value, path: &str, method: &str) -> &'a Value {
    let operation = &spec["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is not documented");
    operation
}

/// An example of a parameter or media type, as text.
pub fn example_text(example: &Value) -> String {
    match example {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
