//! Reading the router code and the error-code functions of the HTTP crates.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::schema::{METHODS, manifest_dir};

// ---------------------------------------------------------------------------------------------
// The routes in the router code

pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
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
pub fn http_sources() -> Vec<(PathBuf, String)> {
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
pub fn call_arguments(text: &str, start: usize) -> &str {
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
pub fn routed_methods(expression: &str) -> BTreeSet<String> {
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
pub fn routes_in_code() -> BTreeMap<String, BTreeSet<String>> {
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

// ---------------------------------------------------------------------------------------------
// The error codes

/// The string literals of every `fn code(&self) -> &'static str` in the HTTP crates.
pub fn error_codes_in_code() -> BTreeSet<String> {
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
pub fn call_arguments_braces(text: &str, start: usize) -> &str {
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

pub fn documented_error_codes(spec: &Value) -> BTreeSet<String> {
    spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode enum")
        .iter()
        .map(|code| code.as_str().expect("code").to_owned())
        .collect()
}
