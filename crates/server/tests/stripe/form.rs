//! Stripe's request encoding: `application/x-www-form-urlencoded` pairs whose keys nest with
//! brackets (`metadata[k]=v`, `line_items[0][price]=price_1`,
//! `payment_intent_data[transfer_data][destination]=acct_1`), brackets raw or
//! percent-encoded.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The decoded parameters of one request, in the order they were sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses a query string or a form body.
    pub fn parse(text: &str) -> Params {
        let pairs = text
            .split('&')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (key, value) = part.split_once('=').unwrap_or((part, ""));
                (percent_decode(key), percent_decode(value))
            })
            .collect();
        Params { pairs }
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The value of a flat key such as `payment_intent_data[transfer_data][destination]`
    /// (the last one when repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether any key is `prefix` or nests under it (`prefix[...]`).
    pub fn has(&self, prefix: &str) -> bool {
        self.pairs.iter().any(|(k, _)| under(k, prefix).is_some())
    }

    /// The `key → value` pairs directly under `prefix`, e.g. the metadata of `metadata[k]=v`.
    pub fn map_under(&self, prefix: &str) -> BTreeMap<String, String> {
        self.pairs
            .iter()
            .filter_map(|(k, v)| {
                let rest = under(k, prefix)?;
                let inner = rest.strip_prefix('[')?.strip_suffix(']')?;
                (!inner.contains('[')).then(|| (inner.to_owned(), v.clone()))
            })
            .collect()
    }

    /// The distinct array indices under `prefix` (`line_items[0][...]`, `line_items[1]...`).
    pub fn indices(&self, prefix: &str) -> Vec<usize> {
        let mut indices: Vec<usize> = self
            .pairs
            .iter()
            .filter_map(|(k, _)| {
                let rest = under(k, prefix)?.strip_prefix('[')?;
                rest.split_once(']')?.0.parse().ok()
            })
            .collect();
        indices.sort_unstable();
        indices.dedup();
        indices
    }

    /// The parameters as a sorted map, the way Stripe compares two requests sent with one
    /// idempotency key.
    pub fn canonical(&self) -> BTreeMap<String, String> {
        self.pairs.iter().cloned().collect()
    }

    /// The parameters as nested JSON: objects for bracketed keys, arrays for numeric ones,
    /// strings at the leaves (`{"line_items":[{"price":"price_1","quantity":"1"}]}`).
    pub fn nested(&self) -> Value {
        let mut root = Value::Object(Map::new());
        for (key, value) in &self.pairs {
            insert(&mut root, &segments(key), value);
        }
        arrays(root)
    }

    /// The first key that matches none of `patterns`. A pattern is a key whose segments may
    /// be `#` (any array index) or `*` (any name), e.g. `line_items[#][price]`,
    /// `metadata[*]`.
    pub fn unknown_key(&self, patterns: &[&str]) -> Option<&str> {
        self.pairs.iter().map(|(k, _)| k.as_str()).find(|key| {
            let key_segments = segments(key);
            !patterns.iter().any(|pattern| {
                let pattern = segments(pattern);
                pattern.len() == key_segments.len()
                    && pattern
                        .iter()
                        .zip(&key_segments)
                        .all(|(p, k)| match p.as_str() {
                            "#" => k.is_empty() || k.bytes().all(|b| b.is_ascii_digit()),
                            "*" => true,
                            _ => p == k,
                        })
            })
        })
    }
}

/// What follows `prefix` in `key` when `key` is `prefix` or `prefix[...]`.
fn under<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = key.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('[')).then_some(rest)
}

/// `a[b][0]` → `["a", "b", "0"]`; a malformed key is one segment.
fn segments(key: &str) -> Vec<String> {
    let Some(open) = key.find('[') else {
        return vec![key.to_owned()];
    };
    let mut out = vec![key[..open].to_owned()];
    let mut rest = &key[open..];
    while let Some(inner) = rest.strip_prefix('[') {
        let Some((segment, after)) = inner.split_once(']') else {
            return vec![key.to_owned()];
        };
        out.push(segment.to_owned());
        rest = after;
    }
    if rest.is_empty() {
        out
    } else {
        vec![key.to_owned()]
    }
}

fn insert(node: &mut Value, path: &[String], value: &str) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let Value::Object(map) = node else {
        return;
    };
    // `expand[]=a&expand[]=b`: an empty index appends.
    let name = if first.is_empty() {
        map.len().to_string()
    } else {
        first.clone()
    };
    if rest.is_empty() {
        map.insert(name, Value::String(value.to_owned()));
    } else {
        let child = map.entry(name).or_insert_with(|| Value::Object(Map::new()));
        insert(child, rest, value);
    }
}

/// Objects whose keys are exactly `0..n` become arrays.
fn arrays(node: Value) -> Value {
    match node {
        Value::Object(map) => {
            let is_array =
                !map.is_empty() && (0..map.len()).all(|i| map.contains_key(i.to_string().as_str()));
            let mut map: Map<String, Value> =
                map.into_iter().map(|(k, v)| (k, arrays(v))).collect();
            if is_array {
                Value::Array(
                    (0..map.len())
                        .filter_map(|i| map.remove(i.to_string().as_str()))
                        .collect(),
                )
            } else {
                Value::Object(map)
            }
        }
        other => other,
    }
}

fn percent_decode(text: &str) -> String {
    fn hex(byte: u8) -> Option<u8> {
        (byte as char)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
