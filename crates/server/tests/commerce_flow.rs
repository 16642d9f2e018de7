//! Selling through the real binary against the Stripe stand-in (tests/stripe), with webhooks
//! signed by Stripe's scheme: a creator with a connected Stripe account makes a paid stream
//! and passes; a viewer is refused, buys a monthly pass through Checkout, the webhooks make
//! the grant, a playback token follows and WHEP accepts it; forged, stale and replayed
//! deliveries change nothing; cancelling the subscription and refunding a one-time pass
//! revoke access; a tip carries the 5 % application fee and reaches the creator's live feed;
//! token packs fill a wallet that enrolment spends, with 402 when it runs short. The flow runs
//! once on SQLite and once on Postgres (a fresh database, dropped afterwards).

mod binary;
mod stripe;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use greenroom_rtc::client::{Client, ClientKind};
use serde_json::{Value, json};
use stripe::{Event, Signing, StripeStandin, TEST_SECRET_KEY, event_of, unix_now};

const ADMIN: &str = "test-admin-token-commerce-0123456789";
const WEBHOOK_SECRET: &str = "whsec_commerce_flow_test";
const CONNECTED: &str = "acct_1AnnLiveConnect";

/// A signed-in account's view of the API.
struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn as_(&self, token: &str) -> Api {
        Api {
            http: self.http.clone(),
            base: self.base.clone(),
            token: Some(token.to_owned()),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, json)
    }

    /// Calls and expects `status`; the answer.
    async fn ok(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, json) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        json
    }

    /// Calls and expects an error `status` with `code`.
    async fn refused(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
        code: &str,
    ) {
        let (got, json) = self.call(method, path, body).await;
        assert_eq!(
            (got, json["error"]["code"].as_str().unwrap_or("<none>")),
            (status, code),
            "{method} {path}: {json}"
        );
    }
}

fn session_id(url: &str) -> String {
    url.rsplit('/')
        .next()
        .filter(|id| id.starts_with("cs_"))
        .unwrap_or_else(|| panic!("no session id in {url}"))
        .to_owned()
}

fn viewer_offer() -> String {
    Client::new(ClientKind::Viewer, IpAddr::V4(Ipv4Addr::LOCALHOST))
        .and_then(|c| c.offer_sdp())
        .expect("viewer offer")
}

/// POSTs a WHEP offer; (status, error code or Location).
async fn whep(http: &reqwest::Client, url: &str, bearer: Option<&str>) -> (u16, String) {
    let mut request = http
        .post(url)
        .header("content-type", "application/sdp")
        .body(viewer_offer());
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("WHEP offer");
    let status = response.status().as_u16();
    if status == 201 {
        let location = response.headers()["location"]
            .to_str()
            .unwrap_or("")
            .to_owned();
        let _ = http
            .delete(format!(
                "{}{location}",
                url.split("/whep/").next().unwrap_or("")
            ))
            .send()
            .await;
        return (201, location);
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or("<none>")
            .to_owned(),
    )
}

/// Delivers every event and expects each to be applied.
async fn deliver_all(stripe: &StripeStandin, events: &[Event], hook: &str) {
    for event in events {
        let response = stripe.deliver(event, hook).await;
        let status = response.status();
        let body: Value = response.json().await.expect("webhook JSON");
        assert_eq!(status, 200, "{} {}: {body}", event.type_(), event.id());
        assert_eq!(body["status"], "applied", "{}: {body}", event.type_());
        assert_eq!(body["event_id"], event.id());
    }
}

/// Whether `account` can get a watch token for `stream` (201) or is refused (403 code).
async fn watch_token(api: &Api, stream: &str) -> Result<String, String> {
    let (status, json) = api
        .call(
            "POST",
            &format!("/api/v1/streams/{stream}/playback-token"),
            Some(json!({"right": "watch"})),
        )
        .await;
    match status {
        201 => Ok(json["token"].as_str().expect("token").to_owned()),
        _ => Err(format!(
            "{status} {}",
            json["error"]["code"].as_str().unwrap_or("<none>")
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buying_tipping_and_spending_tokens_on_sqlite() {
    flow(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buying_tipping_and_spending_tokens_on_postgres() {
    use futures::FutureExt;
    use sqlx::Connection;

    let admin_url = std::env::var("GREENROOM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|err| panic!("this test needs Postgres at {admin_url}: {err}"));
    let database = format!("greenroom_commerce_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    let (server_base, _) = admin_url.rsplit_once('/').expect("a database name");
    let url = format!("{server_base}/{database}");
    let outcome = std::panic::AssertUnwindSafe(flow(Some(&url)))
        .catch_unwind()
        .await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop the test database");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn flow(database_url: Option<&str>) {
    let stripe = StripeStandin::start(WEBHOOK_SECRET).await;
    let api_base = stripe.api_base();
    let mut env = vec![
        ("GREENROOM_HLS", "false"),
        ("GREENROOM_STRIPE_SECRET_KEY", TEST_SECRET_KEY),
        ("GREENROOM_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("GREENROOM_STRIPE_API_BASE", api_base.as_str()),
        ("GREENROOM_TOKEN_PACKS", "small:100:499,large:1000:3999"),
    ];
    if let Some(url) = database_url {
        env.push(("GREENROOM_DATABASE_URL", url));
    }
    let server = binary::start_server_with(ADMIN, "warn", &env);
    let base = server.base.clone();
    let hook = format!("{base}/api/v1/stripe/webhook");
    let http = reqwest::Client::new();
    let nobody = Api {
        http: http.clone(),
        base: base.clone(),
        token: None,
    };

    // --- The creator: channel, connected Stripe account, a paid stream, passes. ----------
    let creator =
        nobody.as_(&binary::sign_up_and_in(&http, &base, "ann@example.com", "creator").await);
    creator
        .ok(
            "POST",
            "/api/v1/channels",
            Some(json!({"handle": "annlive", "display_name": "Ann Live"})),
            201,
        )
        .await;
    // Selling needs the creator's Connect account.
    let stream = creator
        .ok(
            "POST",
            "/api/v1/streams",
            Some(json!({"title": "Paid show", "access": "paid", "price_tokens": 60})),
            201,
        )
        .await;
    let stream_id = stream["id"].as_str().expect("stream id").to_owned();
    let monthly = creator
        .ok(
            "POST",
            "/api/v1/channels/annlive/passes",
            Some(json!({"name": "All of Ann", "kind": "monthly", "amount_minor": 900})),
            201,
        )
        .await;
    let monthly_id = monthly["id"].as_str().expect("pass id").to_owned();
    assert_eq!(monthly["scope"], "channel", "{monthly}");
    let price_id = monthly["stripe"]["price_id"]
        .as_str()
        .expect("price")
        .to_owned();
    let price = stripe.price(&price_id).expect("the price exists in Stripe");
    assert_eq!(price["unit_amount"], 900);
    assert_eq!(price["recurring"]["interval"], "month");
    // Anyone sees the pass, without its Stripe details.
    let listed = nobody
        .ok("GET", "/api/v1/channels/annlive/passes", None, 200)
        .await;
    assert_eq!(listed["passes"][0]["id"], monthly_id.as_str());
    assert!(listed["passes"][0].get("stripe").is_none(), "{listed}");

    // --- A viewer without a grant is refused everywhere. ---------------------------------
    let viewer =
        nobody.as_(&binary::sign_up_and_in(&http, &base, "vic@example.com", "viewer").await);
    assert_eq!(
        watch_token(&viewer, &stream_id).await,
        Err("403 access_required".to_owned())
    );
    assert_eq!(
        watch_token(&nobody, &stream_id).await,
        Err("401 unauthorized".to_owned())
    );
    let whep_url = format!("{base}/whep/{stream_id}");
    assert_eq!(
        whep(&http, &whep_url, None).await,
        (401, "token_required".into())
    );
    // No connected account: nothing can be sold yet.
    let checkout_path = format!("/api/v1/passes/{monthly_id}/checkout");
    viewer
        .refused("POST", &checkout_path, None, 409, "creator_not_connected")
        .await;
    creator
        .ok(
            "PATCH",
            "/api/v1/channels/annlive",
            Some(json!({"stripe_account_id": CONNECTED})),
            200,
        )
        .await;

    // --- Buying the monthly pass. --------------------------------------------------------
    let started = viewer
        .ok(
            "POST",
            &checkout_path,
            Some(json!({"return_to": format!("/watch/{stream_id}")})),
            201,
        )
        .await;
    let checkout_id = started["checkout_id"]
        .as_str()
        .expect("checkout")
        .to_owned();
    let session = session_id(started["url"].as_str().expect("url"));
    let made = stripe.requests_to("POST", "/v1/checkout/sessions");
    let made = made.last().expect("a session request");
    assert_eq!(made.param("mode"), Some("subscription"));
    assert_eq!(made.param("line_items[0][price]"), Some(price_id.as_str()));
    assert_eq!(
        made.param("subscription_data[transfer_data][destination]"),
        Some(CONNECTED)
    );
    assert_eq!(
        made.param("subscription_data[application_fee_percent]"),
        Some("5")
    );
    assert_eq!(made.param("customer_email"), Some("vic@example.com"));
    assert!(
        made.param("success_url")
            .is_some_and(|u| u == format!("{base}/watch/{stream_id}?checkout={checkout_id}")),
        "{:?}",
        made.param("success_url")
    );
    let status_path = format!("/api/v1/checkouts/{checkout_id}");
    assert_eq!(
        viewer.ok("GET", &status_path, None, 200).await["status"],
        "open"
    );
    // Someone else's checkout does not exist for them.
    creator
        .refused("GET", &status_path, None, 404, "checkout_not_found")
        .await;

    let events = stripe.pay(&session);
    let completed = event_of(&events, "checkout.session.completed").clone();
    // Forged (another secret), stale (signed an hour ago) and unsigned deliveries change
    // nothing.
    let forged = stripe
        .deliver_with(
            &completed,
            &hook,
            Signing {
                timestamp: unix_now(),
                secret: "whsec_someone_else",
            },
        )
        .await;
    assert_eq!(forged.status(), 400);
    let stale = stripe
        .deliver_with(
            &completed,
            &hook,
            Signing {
                timestamp: unix_now() - 3600,
                secret: WEBHOOK_SECRET,
            },
        )
        .await;
    assert_eq!(stale.status(), 400);
    let stale: Value = stale.json().await.expect("JSON");
    assert_eq!(stale["error"]["code"], "invalid_signature", "{stale}");
    let unsigned = http
        .post(&hook)
        .header("content-type", "application/json")
        .body(completed.payload())
        .send()
        .await
        .expect("POST");
    assert_eq!(unsigned.status(), 400);
    assert_eq!(
        viewer.ok("GET", &status_path, None, 200).await["status"],
        "open"
    );
    assert_eq!(
        watch_token(&viewer, &stream_id).await,
        Err("403 access_required".to_owned())
    );

    // The real deliveries make the grant; a replay of one is a duplicate.
    deliver_all(&stripe, &events, &hook).await;
    let replayed: Value = stripe
        .deliver(&completed, &hook)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(replayed["status"], "duplicate", "{replayed}");
    let bought = viewer.ok("GET", &status_path, None, 200).await;
    assert_eq!(bought["status"], "completed", "{bought}");
    assert_eq!(bought["grant"]["source"], "subscription", "{bought}");
    let grants = viewer.ok("GET", "/api/v1/me/grants", None, 200).await;
    assert_eq!(
        grants["grants"].as_array().map(Vec::len),
        Some(1),
        "{grants}"
    );
    // Buying it again while it runs is refused.
    viewer
        .refused("POST", &checkout_path, None, 409, "already_granted")
        .await;

    // Repricing: a new Price for new buyers, the old one retired; the subscriber keeps it.
    let pass_path = format!("/api/v1/passes/{monthly_id}");
    let repriced = creator
        .ok(
            "PATCH",
            &pass_path,
            Some(json!({"amount_minor": 1200})),
            200,
        )
        .await;
    let new_price = repriced["stripe"]["price_id"].as_str().expect("price");
    assert_ne!(new_price, price_id);
    assert_eq!(
        stripe.price(new_price).expect("new price")["unit_amount"],
        1200
    );
    assert_eq!(stripe.price(&price_id).expect("old price")["active"], false);
    let prices = repriced["stripe"]["prices"].as_array().expect("prices");
    assert_eq!(prices.len(), 2, "{repriced}");
    assert!(prices[0]["retired_at"].is_string() && prices[1]["retired_at"].is_null());
    let public = nobody.ok("GET", &pass_path, None, 200).await;
    assert_eq!(public["amount_minor"], 1200);
    assert!(public.get("stripe").is_none(), "{public}");
    viewer
        .refused(
            "PATCH",
            &pass_path,
            Some(json!({"amount_minor": 1})),
            403,
            "forbidden",
        )
        .await;

    // Grant → token → WHEP.
    let token = watch_token(&viewer, &stream_id)
        .await
        .expect("a watch token");
    assert_eq!(whep(&http, &whep_url, Some(&token)).await.0, 201);
    assert_eq!(
        whep(&http, &whep_url, None).await,
        (401, "token_required".into())
    );

    // Cancelling the subscription ends access at the next token.
    let subscription = stripe
        .session(&session)
        .and_then(|s| s["subscription"].as_str().map(str::to_owned))
        .expect("the session's subscription");
    let cancelled = stripe.cancel_subscription(&subscription);
    deliver_all(&stripe, std::slice::from_ref(&cancelled), &hook).await;
    assert_eq!(
        watch_token(&viewer, &stream_id).await,
        Err("403 access_required".to_owned())
    );

    // --- A one-time pass for this stream, bought and refunded. ---------------------------
    let once = creator
        .ok(
            "POST",
            "/api/v1/channels/annlive/passes",
            Some(
                json!({"name": "Tonight", "kind": "one_time", "amount_minor": 500,
                        "stream_ids": [stream_id]}),
            ),
            201,
        )
        .await;
    assert_eq!(once["scope"], "streams", "{once}");
    let buyer =
        nobody.as_(&binary::sign_up_and_in(&http, &base, "bea@example.com", "viewer").await);
    let started = buyer
        .ok(
            "POST",
            &format!(
                "/api/v1/passes/{}/checkout",
                once["id"].as_str().expect("id")
            ),
            None,
            201,
        )
        .await;
    let session = session_id(started["url"].as_str().expect("url"));
    let made = stripe.requests_to("POST", "/v1/checkout/sessions");
    let made = made.last().expect("a session request");
    assert_eq!(made.param("mode"), Some("payment"));
    assert_eq!(
        made.param("payment_intent_data[application_fee_amount]"),
        Some("25")
    );
    assert_eq!(
        made.param("payment_intent_data[transfer_data][destination]"),
        Some(CONNECTED)
    );
    deliver_all(&stripe, &stripe.pay(&session), &hook).await;
    let token = watch_token(&buyer, &stream_id)
        .await
        .expect("a watch token");
    assert_eq!(whep(&http, &whep_url, Some(&token)).await.0, 201);
    let payment_intent = stripe
        .session(&session)
        .and_then(|s| s["payment_intent"].as_str().map(str::to_owned))
        .expect("the session's payment");
    let refund = stripe.refund(&payment_intent, None);
    deliver_all(&stripe, std::slice::from_ref(&refund), &hook).await;
    assert_eq!(
        watch_token(&buyer, &stream_id).await,
        Err("403 access_required".to_owned())
    );
    let grants = buyer.ok("GET", "/api/v1/me/grants", None, 200).await;
    assert_eq!(grants["grants"][0]["active"], false, "{grants}");
    assert_eq!(grants["grants"][0]["revoke_reason"], "refunded", "{grants}");

    // --- A tip reaches the creator live, less the 5 % platform fee. ----------------------
    let mut feed = http
        .get(format!("{base}/api/v1/streams/{stream_id}/events"))
        .bearer_auth(creator.token.as_deref().expect("token"))
        .send()
        .await
        .expect("event feed");
    assert_eq!(feed.status(), 200);
    assert!(
        feed.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/event-stream"))
    );
    viewer
        .refused(
            "GET",
            &format!("/api/v1/streams/{stream_id}/events"),
            None,
            403,
            "forbidden",
        )
        .await;
    let tips_path = format!("/api/v1/streams/{stream_id}/tips");
    viewer
        .refused(
            "POST",
            &tips_path,
            Some(json!({"amount_minor": 50})),
            422,
            "invalid_amount",
        )
        .await;
    viewer
        .refused(
            "POST",
            &tips_path,
            Some(json!({"amount_minor": 100_001})),
            422,
            "invalid_amount",
        )
        .await;
    nobody
        .refused(
            "POST",
            &tips_path,
            Some(json!({"amount_minor": 500})),
            401,
            "unauthorized",
        )
        .await;
    let started = viewer
        .ok(
            "POST",
            &tips_path,
            Some(json!({"amount_minor": 1000, "message": "Great show!"})),
            201,
        )
        .await;
    let session = session_id(started["url"].as_str().expect("url"));
    let made = stripe.requests_to("POST", "/v1/checkout/sessions");
    let made = made.last().expect("a session request");
    assert_eq!(
        made.param("payment_intent_data[application_fee_amount]"),
        Some("50")
    );
    assert_eq!(
        made.param("payment_intent_data[transfer_data][destination]"),
        Some(CONNECTED)
    );
    assert_eq!(
        made.param("line_items[0][price_data][unit_amount]"),
        Some("1000")
    );
    deliver_all(&stripe, &stripe.pay(&session), &hook).await;
    let mut text = String::new();
    let tip = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let chunk = feed.chunk().await.expect("feed").expect("the feed ended");
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(data) = text
                .split("\n\n")
                .find(|e| e.contains("event: tip"))
                .and_then(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            {
                return serde_json::from_str::<Value>(data).expect("tip JSON");
            }
        }
    })
    .await
    .expect("the tip on the live feed");
    assert_eq!(tip["amount_minor"], 1000, "{tip}");
    assert_eq!(tip["creator_minor"], 950, "{tip}");
    assert_eq!(tip["message"], "Great show!", "{tip}");
    assert_eq!(tip["from"], "vic", "{tip}");
    let tips = creator.ok("GET", &tips_path, None, 200).await;
    assert_eq!(tips["tips"][0]["fee_minor"], 50, "{tips}");

    // --- Tokens: buy a pack, enrol, run short. -------------------------------------------
    let packs = nobody.ok("GET", "/api/v1/wallet/packs", None, 200).await;
    assert_eq!(packs["packs"][0]["id"], "small", "{packs}");
    let spender =
        nobody.as_(&binary::sign_up_and_in(&http, &base, "sam@example.com", "viewer").await);
    spender
        .refused(
            "POST",
            "/api/v1/wallet/checkout",
            Some(json!({"pack": "huge"})),
            422,
            "unknown_token_pack",
        )
        .await;
    let enroll_path = format!("/api/v1/streams/{stream_id}/enroll");
    spender
        .refused("POST", &enroll_path, None, 402, "insufficient_tokens")
        .await;
    let started = spender
        .ok(
            "POST",
            "/api/v1/wallet/checkout",
            Some(json!({"pack": "small"})),
            201,
        )
        .await;
    let made = stripe.requests_to("POST", "/v1/checkout/sessions");
    let made = made.last().expect("a session request");
    assert_eq!(
        made.param("payment_intent_data[transfer_data][destination]"),
        None
    );
    deliver_all(
        &stripe,
        &stripe.pay(&session_id(started["url"].as_str().expect("url"))),
        &hook,
    )
    .await;
    assert_eq!(
        spender.ok("GET", "/api/v1/wallet", None, 200).await["balance"],
        100
    );
    let enrolled = spender.ok("POST", &enroll_path, None, 201).await;
    assert_eq!(
        (enrolled["spent"].clone(), enrolled["balance"].clone()),
        (json!(60), json!(40))
    );
    let again = spender.ok("POST", &enroll_path, None, 200).await;
    assert_eq!(
        (again["spent"].clone(), again["balance"].clone()),
        (json!(0), json!(40))
    );
    let token = watch_token(&spender, &stream_id)
        .await
        .expect("a watch token");
    assert_eq!(whep(&http, &whep_url, Some(&token)).await.0, 201);
    let second = creator
        .ok(
            "POST",
            "/api/v1/streams",
            Some(json!({"title": "Encore", "access": "paid", "price_tokens": 60})),
            201,
        )
        .await;
    spender
        .refused(
            "POST",
            &format!(
                "/api/v1/streams/{}/enroll",
                second["id"].as_str().expect("id")
            ),
            None,
            402,
            "insufficient_tokens",
        )
        .await;
    let wallet = spender.ok("GET", "/api/v1/wallet", None, 200).await;
    let history = wallet["history"].as_array().expect("history");
    let kinds: Vec<&str> = history.iter().filter_map(|m| m["kind"].as_str()).collect();
    assert_eq!(kinds, ["token_spend", "token_purchase"], "{wallet}");
    let sum: i64 = history.iter().filter_map(|m| m["tokens"].as_i64()).sum();
    assert_eq!(sum, 40, "the history sums to the balance: {wallet}");
}
