//! Accounts, channels, the stream lifecycle, paid access and payments (off: the test server
//! has no Stripe key) answer as the document says: each request is checked against the
//! documented operation, and its status and error code are the ones the scenario expects.

use super::*;

mod lifecycle;
mod paid;
mod payments_off;
mod sessions;

/// Probes `operation` and asserts the status and, for an error, its code; the JSON body.
#[allow(clippy::too_many_arguments)]
async fn expect(
    app: &TestApp,
    spec: &Value,
    operation: (&str, &str),
    uri: &str,
    headers: &[(String, String)],
    body: impl Into<Body>,
    status: u16,
    code: &str,
) -> Value {
    let answer = app.probe(spec, operation, uri, headers, body).await;
    let json = answer.json();
    let (method, _) = operation;
    assert_eq!(answer.status.as_u16(), status, "{method} {uri}: {json:#}");
    if !code.is_empty() {
        assert_eq!(json["error"]["code"], code, "{method} {uri}: {json:#}");
    }
    json
}

fn with_json(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut headers = headers.to_vec();
    headers.push(json_content());
    headers
}

fn in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .filter_map(|item| item["id"].as_str())
        .collect()
}

/// An empty offer: `400` `invalid_sdp` once the request is past the credentials.
const SDP_OFFER: &str = "";
