//! Sign-in with an identity provider's JWT through the real binary: a token signed with the
//! configured HS256 secret, issuer and audience stands for an account (made on first use, the
//! same one afterwards); `greenroom_role: creator` makes a creator who can open a channel; a
//! token signed with another key, for another audience, or expired is refused with
//! `invalid_identity_token`, never treated as anonymous.

mod binary;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const ADMIN: &str = "test-admin-token-identity-0123456789";
const SECRET: &str = "identity-provider-shared-secret-0123456789";
const ISSUER: &str = "https://id.example.com";
const AUDIENCE: &str = "greenroom";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn jwt(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign a JWT")
}

fn claims(sub: &str, extra: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "exp": now() + 300,
        "email": format!("{sub}@example.com"),
        "name": format!("User {sub}"),
    });
    if let (Some(map), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        map.extend(extra.clone());
    }
    claims
}

async fn me(http: &reqwest::Client, base: &str, token: &str) -> (u16, Value) {
    let response = http
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /api/v1/me");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_provider_tokens_stand_for_accounts() {
    let server = binary::start_server_with(
        ADMIN,
        "warn",
        &[
            ("GREENROOM_HLS", "false"),
            ("GREENROOM_JWT_HS256_SECRET", SECRET),
            ("GREENROOM_JWT_ISSUER", ISSUER),
            ("GREENROOM_JWT_AUDIENCE", AUDIENCE),
        ],
    );
    let base = server.base.clone();
    let http = reqwest::Client::new();

    let viewer = jwt(SECRET, claims("u-1", json!({})));
    let (status, first) = me(&http, &base, &viewer).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["email"], "u-1@example.com", "{first}");
    assert_eq!(first["role"], "viewer", "{first}");
    // A fresh token for the same subject is the same account.
    let again = jwt(SECRET, claims("u-1", json!({"exp": now() + 600})));
    let (_, second) = me(&http, &base, &again).await;
    assert_eq!(second["id"], first["id"]);

    // A creator claim lets the holder open a channel; a viewer is refused.
    let creator = jwt(SECRET, claims("c-1", json!({"greenroom_role": "creator"})));
    let channel = json!({"handle": "fromidp", "display_name": "From the IdP"});
    let opened = http
        .post(format!("{base}/api/v1/channels"))
        .bearer_auth(&creator)
        .json(&channel)
        .send()
        .await
        .expect("POST /api/v1/channels");
    assert_eq!(opened.status(), 201);
    let refused = http
        .post(format!("{base}/api/v1/channels"))
        .bearer_auth(&viewer)
        .json(&json!({"handle": "viewerchan", "display_name": "V"}))
        .send()
        .await
        .expect("POST /api/v1/channels");
    assert_eq!(refused.status(), 403);

    for (what, token) in [
        (
            "another key",
            jwt(
                "another-secret-of-enough-length-0123456789",
                claims("u-1", json!({})),
            ),
        ),
        (
            "another audience",
            jwt(SECRET, claims("u-1", json!({"aud": "someone-else"}))),
        ),
        (
            "another issuer",
            jwt(
                SECRET,
                claims("u-1", json!({"iss": "https://evil.example"})),
            ),
        ),
        (
            "expired",
            jwt(SECRET, claims("u-1", json!({"exp": now() - 3600}))),
        ),
    ] {
        let (status, body) = me(&http, &base, &token).await;
        assert_eq!(
            (status, body["error"]["code"].as_str().unwrap_or("<none>")),
            (401, "invalid_identity_token"),
            "{what}: {body}"
        );
    }
}
