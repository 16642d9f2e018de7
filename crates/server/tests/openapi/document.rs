//! The document on its own: every route in the router code is documented and nothing else,
//! the documented error codes are the ones the code answers, and it is consistent OpenAPI 3.1
//! (references resolve, examples match their schemas).

use super::*;

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
