//! The Stripe stand-in (tests/stripe) and greenroom's Stripe client against it: products,
//! prices and Checkout Sessions as Stripe answers them, Stripe's validation errors surfacing
//! as `ControlError::Stripe`, idempotency keys, and the signed events a purchase produces.

mod stripe;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use greenroom_control::stripe_client::CHECKOUT_METADATA_KEY;
use greenroom_control::stripe_signature::{DEFAULT_TOLERANCE_SECS, verify_stripe_signature};
use greenroom_control::{
    CheckoutLine, CheckoutMode, CheckoutSessionRequest, ControlError, Interval, StripeClient,
};
use serde_json::{Value, json};
use stripe::form::Params;
use stripe::{Event, Signing, StripeStandin, TEST_SECRET_KEY, event_of, types, unix_now};

const WEBHOOK_SECRET: &str = "whsec_standin_test";

fn client(standin: &StripeStandin) -> StripeClient {
    StripeClient::new(TEST_SECRET_KEY, Some(&standin.api_base())).expect("client")
}

fn session_request(mode: CheckoutMode, line: CheckoutLine, key: &str) -> CheckoutSessionRequest {
    CheckoutSessionRequest {
        mode,
        line,
        client_reference_id: Some("acct-viewer-1".into()),
        metadata: vec![(CHECKOUT_METADATA_KEY.into(), "ck_1".into())],
        customer_email: Some("viewer@example.com".into()),
        success_url: "https://greenroom.test/checkout/ck_1/done".into(),
        cancel_url: "https://greenroom.test/checkout/ck_1/cancelled".into(),
        destination: None,
        application_fee_minor: None,
        application_fee_bps: None,
        idempotency_key: key.into(),
    }
}

/// `(status, reason)` of a `ControlError::Stripe`; panics on anything else.
fn stripe_error<T: std::fmt::Debug>(result: Result<T, ControlError>) -> (Option<u16>, String) {
    match result {
        Err(ControlError::Stripe { status, reason, .. }) => (status, reason),
        other => panic!("expected ControlError::Stripe, got {other:?}"),
    }
}

fn verify(event: &Event, header: &str) -> Result<i64, ControlError> {
    verify_stripe_signature(
        &event.payload(),
        header,
        WEBHOOK_SECRET,
        unix_now(),
        DEFAULT_TOLERANCE_SECS,
    )
}

/// Every event has Stripe's envelope and verifies with the webhook secret.
fn assert_envelope(event: &Event) {
    let json = event.json();
    assert!(event.id().starts_with("evt_"), "{json}");
    assert_eq!(json["object"], "event");
    assert_eq!(json["livemode"], false);
    assert!(json["api_version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(event.created() > 1_700_000_000);
    assert!(event.object().is_object());
    let header = greenroom_control::stripe_signature::stripe_signature_header(
        &event.payload(),
        WEBHOOK_SECRET,
        unix_now(),
    );
    assert!(verify(event, &header).is_ok());
}

#[test]
fn form_parameters_nest_like_stripes() {
    let params = Params::parse(
        "mode=payment&line_items%5B0%5D%5Bprice%5D=price_1&line_items[0][quantity]=1\
         &metadata[greenroom_checkout]=a+b%21&expand[]=x&expand[]=y",
    );
    assert_eq!(params.get("line_items[0][price]"), Some("price_1"));
    assert_eq!(params.map_under("metadata")["greenroom_checkout"], "a b!");
    assert_eq!(params.indices("line_items"), vec![0]);
    let nested = params.nested();
    assert_eq!(nested["line_items"][0]["quantity"], "1");
    assert_eq!(nested["expand"][1], "y");
    assert_eq!(
        params.unknown_key(&["mode", "line_items[#][*]", "metadata[*]"]),
        Some("expand[]")
    );
    assert_eq!(
        params.unknown_key(&["mode", "line_items[#][*]", "metadata[*]", "expand[#]"]),
        None
    );
}

#[tokio::test]
async fn subscription_checkout_with_a_connect_fee_bills_every_month() {
    let standin = StripeStandin::start(WEBHOOK_SECRET).await;
    let client = client(&standin);

    let product = client
        .create_product(
            "Gold pass",
            &[("greenroom_pass", "pass_1")],
            "product:pass_1",
        )
        .await
        .expect("product");
    assert!(product.starts_with("prod_"), "{product}");
    let price = client
        .create_price(
            &product,
            999,
            "usd",
            Some(Interval::Month),
            &[("greenroom_pass", "pass_1")],
            "price:pass_1:1",
        )
        .await
        .expect("price");
    assert!(price.starts_with("price_"), "{price}");
    let stored = standin.price(&price).expect("stored price");
    assert_eq!(stored["type"], "recurring");
    assert_eq!(stored["recurring"]["interval"], "month");
    assert_eq!(stored["unit_amount"], 999);
    assert_eq!(stored["product"], product.as_str());
    assert_eq!(stored["metadata"]["greenroom_pass"], "pass_1");

    let mut request = session_request(
        CheckoutMode::Subscription,
        CheckoutLine::Price(price.clone()),
        "checkout:ck_1",
    );
    request.destination = Some("acct_creator1".into());
    request.application_fee_bps = Some(250);
    let session = client
        .create_checkout_session(&request)
        .await
        .expect("session");
    assert!(session.id.starts_with("cs_test_"), "{}", session.id);
    assert!(
        session.url.starts_with("https://checkout.stripe.com/"),
        "{}",
        session.url
    );

    // What went over the wire.
    let sent = standin.requests_to("POST", "/v1/checkout/sessions");
    assert_eq!(sent.len(), 1);
    let sent = &sent[0];
    assert_eq!(sent.idempotency_key.as_deref(), Some("checkout:ck_1"));
    assert!(sent.stripe_version.is_some());
    for (key, value) in [
        ("mode", "subscription"),
        ("line_items[0][price]", price.as_str()),
        ("line_items[0][quantity]", "1"),
        ("metadata[greenroom_checkout]", "ck_1"),
        ("subscription_data[metadata][greenroom_checkout]", "ck_1"),
        (
            "subscription_data[transfer_data][destination]",
            "acct_creator1",
        ),
        ("subscription_data[application_fee_percent]", "2.5"),
        ("client_reference_id", "acct-viewer-1"),
        ("customer_email", "viewer@example.com"),
        ("success_url", "https://greenroom.test/checkout/ck_1/done"),
        (
            "cancel_url",
            "https://greenroom.test/checkout/ck_1/cancelled",
        ),
    ] {
        assert_eq!(sent.param(key), Some(value), "{key}");
    }
    assert!(
        sent.param("payment_intent_data[metadata][greenroom_checkout]")
            .is_none()
    );
    assert_eq!(
        sent.nested()["subscription_data"]["transfer_data"]["destination"],
        "acct_creator1"
    );

    // The buyer pays.
    let events = standin.pay(&session.id);
    assert_eq!(
        types(&events),
        [
            "customer.subscription.created",
            "invoice.paid",
            "checkout.session.completed"
        ]
    );
    events.iter().for_each(assert_envelope);
    let subscription = event_of(&events, "customer.subscription.created").object();
    let subscription_id = subscription["id"].as_str().expect("sub id").to_owned();
    assert!(subscription_id.starts_with("sub_"));
    assert_eq!(subscription["object"], "subscription");
    assert_eq!(subscription["status"], "active");
    assert_eq!(subscription["metadata"][CHECKOUT_METADATA_KEY], "ck_1");
    assert_eq!(
        subscription["transfer_data"]["destination"],
        "acct_creator1"
    );
    assert_eq!(subscription["application_fee_percent"], json!(2.5));
    assert!(
        subscription["customer"]
            .as_str()
            .is_some_and(|c| c.starts_with("cus_"))
    );
    let start = subscription["current_period_start"]
        .as_i64()
        .expect("start");
    let end = subscription["current_period_end"].as_i64().expect("end");
    assert_eq!(one_month_after(start), end);
    assert_eq!(subscription["items"]["data"][0]["current_period_end"], end);
    assert_eq!(
        subscription["items"]["data"][0]["price"]["id"],
        price.as_str()
    );

    let invoice = event_of(&events, "invoice.paid").object();
    assert!(
        invoice["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("in_"))
    );
    assert_eq!(invoice["subscription"], subscription_id.as_str());
    assert_eq!(invoice["amount_paid"], 999);
    assert_eq!(invoice["currency"], "usd");
    assert_eq!(invoice["billing_reason"], "subscription_create");
    assert_eq!(invoice["lines"]["data"][0]["period"]["start"], start);
    assert_eq!(invoice["lines"]["data"][0]["period"]["end"], end);
    assert_eq!(
        invoice["subscription_details"]["metadata"][CHECKOUT_METADATA_KEY],
        "ck_1"
    );
    assert_eq!(
        invoice["parent"]["subscription_details"]["subscription"],
        subscription_id.as_str()
    );
    assert_eq!(
        invoice["parent"]["subscription_details"]["metadata"][CHECKOUT_METADATA_KEY],
        "ck_1"
    );

    let completed = event_of(&events, "checkout.session.completed").object();
    assert_eq!(completed["id"], session.id.as_str());
    assert_eq!(completed["object"], "checkout.session");
    assert_eq!(completed["mode"], "subscription");
    assert_eq!(completed["status"], "complete");
    assert_eq!(completed["payment_status"], "paid");
    assert_eq!(completed["subscription"], subscription_id.as_str());
    assert_eq!(completed["payment_intent"], Value::Null);
    assert_eq!(completed["amount_total"], 999);
    assert_eq!(completed["metadata"][CHECKOUT_METADATA_KEY], "ck_1");
    assert_eq!(completed["client_reference_id"], "acct-viewer-1");

    // A second month.
    let renewal = standin.renew(&subscription_id);
    assert_eq!(
        types(&renewal),
        ["customer.subscription.updated", "invoice.paid"]
    );
    renewal.iter().for_each(assert_envelope);
    let updated = event_of(&renewal, "customer.subscription.updated");
    assert_eq!(updated.object()["current_period_start"], end);
    assert_eq!(updated.object()["current_period_end"], one_month_after(end));
    assert_eq!(
        updated.json()["data"]["previous_attributes"]["current_period_end"],
        end
    );
    let invoice = event_of(&renewal, "invoice.paid").object();
    assert_eq!(invoice["billing_reason"], "subscription_cycle");
    assert_eq!(invoice["lines"]["data"][0]["period"]["start"], end);
    assert_eq!(
        invoice["lines"]["data"][0]["period"]["end"],
        one_month_after(end)
    );
    assert_ne!(
        invoice["id"],
        event_of(&events, "invoice.paid").object()["id"]
    );

    // Past due, then cancelled.
    let past_due = standin.update_subscription_status(&subscription_id, "past_due");
    assert_eq!(past_due.type_(), "customer.subscription.updated");
    assert_eq!(past_due.object()["status"], "past_due");
    assert_eq!(
        past_due.json()["data"]["previous_attributes"]["status"],
        "active"
    );
    let deleted = standin.cancel_subscription(&subscription_id);
    assert_envelope(&deleted);
    assert_eq!(deleted.type_(), "customer.subscription.deleted");
    assert_eq!(deleted.object()["status"], "canceled");
    assert_eq!(deleted.object()["metadata"][CHECKOUT_METADATA_KEY], "ck_1");
    assert_eq!(standin.events().len(), 3 + 2 + 2);
}

fn one_month_after(unix: i64) -> i64 {
    chrono::DateTime::from_timestamp(unix, 0)
        .and_then(|t| t.checked_add_months(chrono::Months::new(1)))
        .map(|t| t.timestamp())
        .expect("date")
}

#[tokio::test]
async fn yearly_prices_bill_a_year() {
    let standin = StripeStandin::start(WEBHOOK_SECRET).await;
    let client = client(&standin);
    let product = client
        .create_product("Year", &[], "p")
        .await
        .expect("product");
    let price = client
        .create_price(&product, 9_900, "eur", Some(Interval::Year), &[], "pr")
        .await
        .expect("price");
    let request = session_request(CheckoutMode::Subscription, CheckoutLine::Price(price), "s");
    let session = client
        .create_checkout_session(&request)
        .await
        .expect("session");
    let events = standin.pay(&session.id);
    let subscription = event_of(&events, "customer.subscription.created").object();
    let start = subscription["current_period_start"]
        .as_i64()
        .expect("start");
    let a_year_later = chrono::DateTime::from_timestamp(start, 0)
        .and_then(|t| t.checked_add_months(chrono::Months::new(12)))
        .map(|t| t.timestamp());
    assert_eq!(subscription["current_period_end"].as_i64(), a_year_later);
    // No Connect: no transfer, no fee.
    assert_eq!(subscription["transfer_data"], Value::Null);
    assert_eq!(
        standin.requests_to("POST", "/v1/checkout/sessions")[0]
            .param("subscription_data[application_fee_percent]"),
        None
    );
}

#[tokio::test]
async fn payment_checkout_with_an_inline_price_and_an_application_fee() {
    let standin = StripeStandin::start(WEBHOOK_SECRET).await;
    let client = client(&standin);
    let mut request = session_request(
        CheckoutMode::Payment,
        CheckoutLine::Inline {
            name: "Tip for @alice".into(),
            amount_minor: 500,
            currency: "usd".into(),
        },
        "tip:t_1",
    );
    request.destination = Some("acct_alice".into());
    request.application_fee_minor = Some(25);
    let session = client
        .create_checkout_session(&request)
        .await
        .expect("session");

    let sent = &standin.requests_to("POST", "/v1/checkout/sessions")[0];
    for (key, value) in [
        ("mode", "payment"),
        ("line_items[0][quantity]", "1"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "500"),
        (
            "line_items[0][price_data][product_data][name]",
            "Tip for @alice",
        ),
        ("payment_intent_data[application_fee_amount]", "25"),
        (
            "payment_intent_data[transfer_data][destination]",
            "acct_alice",
        ),
        ("payment_intent_data[metadata][greenroom_checkout]", "ck_1"),
        ("metadata[greenroom_checkout]", "ck_1"),
    ] {
        assert_eq!(sent.param(key), Some(value), "{key}");
    }
    assert!(!sent.params.has("subscription_data"));
    assert!(sent.param("line_items[0][price]").is_none());

    let fetched = standin.session(&session.id).expect("session");
    assert_eq!(fetched["amount_total"], 500);
    assert_eq!(fetched["payment_status"], "unpaid");
    assert_eq!(fetched["status"], "open");

    let events = standin.pay(&session.id);
    assert_eq!(types(&events), ["checkout.session.completed"]);
    assert_envelope(&events[0]);
    let completed = events[0].object();
    assert_eq!(completed["mode"], "payment");
    assert_eq!(completed["payment_status"], "paid");
    assert_eq!(completed["amount_total"], 500);
    assert_eq!(completed["currency"], "usd");
    assert_eq!(completed["metadata"][CHECKOUT_METADATA_KEY], "ck_1");
    assert_eq!(completed["client_reference_id"], "acct-viewer-1");
    assert_eq!(completed["subscription"], Value::Null);
    let payment_intent = completed["payment_intent"].as_str().expect("pi").to_owned();
    assert!(payment_intent.starts_with("pi_"), "{payment_intent}");
    let intent = standin.payment_intent(&payment_intent).expect("pi");
    assert_eq!(intent["metadata"][CHECKOUT_METADATA_KEY], "ck_1");
    assert_eq!(intent["application_fee_amount"], 25);
    assert_eq!(intent["transfer_data"]["destination"], "acct_alice");

    // A partial refund, then the rest.
    let partial = standin.refund(&payment_intent, Some(200));
    assert_envelope(&partial);
    assert_eq!(partial.type_(), "charge.refunded");
    let charge = partial.object();
    assert!(
        charge["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("ch_"))
    );
    assert_eq!(charge["object"], "charge");
    assert_eq!(charge["payment_intent"], payment_intent.as_str());
    assert_eq!(charge["amount"], 500);
    assert_eq!(charge["amount_refunded"], 200);
    assert_eq!(charge["refunded"], false);
    assert_eq!(charge["metadata"][CHECKOUT_METADATA_KEY], "ck_1");
    let full = standin.refund(&payment_intent, None);
    assert_eq!(full.object()["amount_refunded"], 500);
    assert_eq!(full.object()["refunded"], true);
    assert_eq!(
        full.object()["refunds"]["data"].as_array().map(Vec::len),
        Some(2)
    );
    assert_ne!(full.id(), partial.id());
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_object_and_refuses_other_parameters() {
    let standin = StripeStandin::start(WEBHOOK_SECRET).await;
    let client = client(&standin);
    let first = client
        .create_product("Pass", &[("a", "1"), ("b", "2")], "product:1")
        .await
        .expect("first");
    let again = client
        .create_product("Pass", &[("b", "2"), ("a", "1")], "product:1")
        .await
        .expect("again");
    assert_eq!(first, again);
    assert_eq!(standin.requests_to("POST", "/v1/products").len(), 2);

    let (status, reason) = stripe_error(client.create_product("Other", &[], "product:1").await);
    assert_eq!(status, Some(400));
    assert!(
        reason
            .starts_with("Keys for idempotent requests can only be used with the same parameters"),
        "{reason}"
    );

    let other = client
        .create_product("Pass", &[("a", "1"), ("b", "2")], "product:2")
        .await
        .expect("other");
    assert_ne!(first, other);

    let price = client
        .create_price(&first, 500, "usd", None, &[], "price:1")
        .await
        .expect("price");
    let request = session_request(
        CheckoutMode::Payment,
        CheckoutLine::Price(price.clone()),
        "checkout:1",
    );
    let session = client
        .create_checkout_session(&request)
        .await
        .expect("session");
    let replay = client
        .create_checkout_session(&request)
        .await
        .expect("replay");
    assert_eq!(session, replay);
    let mut changed = request.clone();
    changed.customer_email = Some("someone-else@example.com".into());
    let (status, reason) = stripe_error(client.create_checkout_session(&changed).await);
    assert_eq!(status, Some(400));
    assert!(reason.contains("same parameters"), "{reason}");

    // Raw: the replay says so, and the same key on another endpoint is refused.
    let http = reqwest::Client::new();
    let replayed = http
        .post(format!("{}/v1/products", standin.api_base()))
        .bearer_auth(TEST_SECRET_KEY)
        .header("idempotency-key", "raw:1")
        .form(&[("name", "Raw")])
        .send()
        .await
        .expect("send");
    assert!(replayed.headers().get("idempotent-replayed").is_none());
    let replayed = http
        .post(format!("{}/v1/products", standin.api_base()))
        .bearer_auth(TEST_SECRET_KEY)
        .header("idempotency-key", "raw:1")
        .form(&[("name", "Raw")])
        .send()
        .await
        .expect("send");
    assert_eq!(
        replayed
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let elsewhere = http
        .post(format!("{}/v1/prices", standin.api_base()))
        .bearer_auth(TEST_SECRET_KEY)
        .header("idempotency-key", "raw:1")
        .form(&[("name", "Raw")])
        .send()
        .await
        .expect("send");
    assert_eq!(elsewhere.status(), 400);
    let body: Value = elsewhere.json().await.expect("json");
    assert_eq!(body["error"]["type"], "idempotency_error");
}

#[tokio::test]
async fn stripes_validation_errors_surface_as_control_errors() {
    let standin = StripeStandin::start(WEBHOOK_SECRET).await;
    let client = client(&standin);
    let product = client
        .create_product("Pass", &[], "p")
        .await
        .expect("product");
    let one_time = client
        .create_price(&product, 500, "usd", None, &[], "p1")
        .await
        .expect("price");
    let monthly = client
        .create_price(&product, 500, "usd", Some(Interval::Month), &[], "p2")
        .await
        .expect("price");

    // Unknown price.
    let request = session_request(
        CheckoutMode::Payment,
        CheckoutLine::Price("price_nope".into()),
        "k1",
    );
    let (status, reason) = stripe_error(client.create_checkout_session(&request).await);
    assert_eq!(
        (status, reason.as_str()),
        (Some(400), "No such price: 'price_nope'")
    );

    // A recurring price in payment mode, a one-time price in subscription mode.
    let request = session_request(
        CheckoutMode::Payment,
        CheckoutLine::Price(monthly.clone()),
        "k2",
    );
    let (status, reason) = stripe_error(client.create_checkout_session(&request).await);
    assert_eq!(status, Some(400));
    assert_eq!(
        reason,
        "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices."
    );
    let request = session_request(
        CheckoutMode::Subscription,
        CheckoutLine::Price(one_time.clone()),
        "k3",
    );
    let (status, reason) = stripe_error(client.create_checkout_session(&request).await);
    assert_eq!(status, Some(400));
    assert_eq!(
        reason,
        "You must provide at least one recurring price in `subscription` mode when using prices."
    );
    // An inline line has no interval: subscription mode refuses it the same way.
    let request = session_request(
        CheckoutMode::Subscription,
        CheckoutLine::Inline {
            name: "x".into(),
            amount_minor: 100,
            currency: "usd".into(),
        },
        "k3b",
    );
    assert_eq!(
        stripe_error(client.create_checkout_session(&request).await).0,
        Some(400)
    );

    // An inactive price.
    client
        .deactivate_price(&one_time)
        .await
        .expect("deactivate");
    client
        .deactivate_price(&one_time)
        .await
        .expect("deactivate twice");
    assert_eq!(standin.price(&one_time).expect("price")["active"], false);
    let request = session_request(
        CheckoutMode::Payment,
        CheckoutLine::Price(one_time.clone()),
        "k4",
    );
    let (status, reason) = stripe_error(client.create_checkout_session(&request).await);
    assert_eq!(status, Some(400));
    assert_eq!(
        reason,
        "The price specified is inactive. This field only accepts active prices."
    );

    // Unknown objects in the URL are 404s; unknown products in a parameter 400s.
    let (status, reason) = stripe_error(client.deactivate_price("price_nope").await);
    assert_eq!(
        (status, reason.as_str()),
        (Some(404), "No such price: 'price_nope'")
    );
    let (status, reason) = stripe_error(
        client
            .create_price("prod_nope", 500, "usd", None, &[], "k5")
            .await,
    );
    assert_eq!(
        (status, reason.as_str()),
        (Some(400), "No such product: 'prod_nope'")
    );

    // A bad key.
    let bad =
        StripeClient::new("sk_live_wrongwrong1234", Some(&standin.api_base())).expect("client");
    let (status, reason) = stripe_error(bad.create_product("x", &[], "k6").await);
    assert_eq!(status, Some(401));
    assert!(
        reason.starts_with("Invalid API Key provided: sk_live_****1234"),
        "{reason}"
    );

    // Fees that cannot be right are refused before Stripe is called.
    let mut request = session_request(
        CheckoutMode::Payment,
        CheckoutLine::Price(monthly.clone()),
        "k7",
    );
    request.application_fee_minor = Some(10);
    assert!(matches!(
        client.create_checkout_session(&request).await,
        Err(ControlError::InvalidAmount { .. })
    ));

    // Transient failures are retried once with the same idempotency key.
    let before = standin.requests().len();
    standin.fail_next_request(500, "An unknown error occurred");
    let retried = client
        .create_product("Retry", &[], "retry:1")
        .await
        .expect("retried");
    let attempts: Vec<_> = standin.requests()[before..].to_vec();
    assert_eq!(
        attempts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 200]
    );
    assert!(
        attempts
            .iter()
            .all(|r| r.idempotency_key.as_deref() == Some("retry:1"))
    );
    assert!(retried.starts_with("prod_"));
    standin.fail_next_request(503, "Stripe is down");
    standin.fail_next_request(503, "Stripe is still down");
    let (status, reason) = stripe_error(client.create_product("Down", &[], "down:1").await);
    assert_eq!(
        (status, reason.as_str()),
        (Some(503), "Stripe is still down")
    );
    // A 4xx is not retried.
    let before = standin.requests().len();
    standin.fail_next_request(402, "Your card was declined.");
    assert_eq!(
        stripe_error(client.create_product("No", &[], "no:1").await).0,
        Some(402)
    );
    assert_eq!(standin.requests().len(), before + 1);
}

/// Raw HTTP: the checks greenroom's client never triggers.
#[tokio::test]
async fn the_standin_validates_raw_requests_like_stripe() {
    let standin = StripeStandin::start(WEBHOOK_SECRET).await;
    let http = reqwest::Client::new();
    let base = standin.api_base();
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        http.post(format!("{base}{path}"))
            .bearer_auth(TEST_SECRET_KEY)
            .form(&form)
            .send()
    };
    async fn error(response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        (status, body["error"].clone())
    }

    // Authentication.
    let response = http
        .post(format!("{base}/v1/products"))
        .form(&[("name", "x")])
        .send()
        .await
        .expect("send");
    let (status, body) = error(response).await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "invalid_request_error");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("You did not provide an API key"))
    );

    let price = {
        let product: Value = post("/v1/products", vec![("name", "P".into())])
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(product["object"], "product");
        let product = product["id"].as_str().expect("id").to_owned();
        let price: Value = post(
            "/v1/prices",
            vec![
                ("product", product),
                ("unit_amount", "700".into()),
                ("currency", "usd".into()),
            ],
        )
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
        assert_eq!(price["type"], "one_time");
        price["id"].as_str().expect("id").to_owned()
    };
    let base_form = |extra: Vec<(&'static str, String)>| {
        let mut form = vec![
            ("mode", "payment".to_owned()),
            ("success_url", "https://greenroom.test/ok".to_owned()),
            ("line_items[0][price]", price.clone()),
            ("line_items[0][quantity]", "1".to_owned()),
        ];
        form.extend(extra);
        form
    };

    // Missing required parameters name the parameter.
    for missing in ["mode", "success_url", "line_items[0][price]"] {
        let form: Vec<_> = base_form(vec![])
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
        let (status, body) = error(post("/v1/checkout/sessions", form).await.expect("send")).await;
        assert_eq!(status, 400, "{missing}");
        let param = if missing.starts_with("line_items") {
            "line_items[0]"
        } else {
            missing
        };
        assert_eq!(body["param"], param, "{body}");
    }
    let form = vec![
        ("mode", "payment".to_owned()),
        ("success_url", "https://x.test".to_owned()),
    ];
    let (status, body) = error(post("/v1/checkout/sessions", form).await.expect("send")).await;
    assert_eq!((status, body["param"].as_str()), (400, Some("line_items")));
    assert_eq!(body["code"], "parameter_missing");

    // An application fee needs a destination.
    let form = base_form(vec![(
        "payment_intent_data[application_fee_amount]",
        "10".into(),
    )]);
    let (status, body) = error(post("/v1/checkout/sessions", form).await.expect("send")).await;
    assert_eq!(status, 400);
    assert_eq!(body["param"], "payment_intent_data[application_fee_amount]");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("transfer_data[destination]"))
    );
    let form = base_form(vec![
        ("payment_intent_data[application_fee_amount]", "10".into()),
        (
            "payment_intent_data[transfer_data][destination]",
            "acct_1".into(),
        ),
    ]);
    let session: Value = post("/v1/checkout/sessions", form)
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(session["object"], "checkout.session");
    assert_eq!(session["amount_total"], 700);

    // Unknown parameters, mode-specific data in the wrong mode, bad fee percentages.
    let (status, body) = error(
        post(
            "/v1/checkout/sessions",
            base_form(vec![("colour", "red".into())]),
        )
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("parameter_unknown"))
    );
    let form = base_form(vec![("subscription_data[metadata][a]", "b".into())]);
    let (status, body) = error(post("/v1/checkout/sessions", form).await.expect("send")).await;
    assert_eq!(
        (status, body["param"].as_str()),
        (400, Some("subscription_data"))
    );
    let form = base_form(vec![("line_items[0][price_data][currency]", "usd".into())]);
    let (status, _) = error(post("/v1/checkout/sessions", form).await.expect("send")).await;
    assert_eq!(status, 400);

    // GET works for sessions and prices; unknown ids are 404 resource_missing.
    let id = session["id"].as_str().expect("id");
    let fetched = http
        .get(format!("{base}/v1/checkout/sessions/{id}"))
        .bearer_auth(TEST_SECRET_KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(fetched.status(), 200);
    let fetched = http
        .get(format!("{base}/v1/prices/price_nope"))
        .bearer_auth(TEST_SECRET_KEY)
        .send()
        .await
        .expect("send");
    let (status, body) = error(fetched).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("resource_missing"))
    );
    let (status, _) = error(post("/v1/customers", vec![]).await.expect("send")).await;
    assert_eq!(status, 404);

    // Every request was recorded with its status.
    let statuses: Vec<u16> = standin.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses[0], 401);
    assert!(statuses.contains(&200) && statuses.contains(&400) && statuses.contains(&404));
}

/// A receiver that keeps what it was sent.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver() -> (String, Received, tokio::task::JoinHandle<()>) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/stripe/webhook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                store.lock().expect("lock").push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/stripe/webhook",
        listener.local_addr().expect("addr")
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, received, task)
}

#[tokio::test]
async fn deliveries_carry_stripes_signature_and_exact_bytes() {
    let standin = StripeStandin::start(WEBHOOK_SECRET).await;
    let client = client(&standin);
    let request = session_request(
        CheckoutMode::Payment,
        CheckoutLine::Inline {
            name: "Tokens".into(),
            amount_minor: 499,
            currency: "usd".into(),
        },
        "tokens:1",
    );
    let session = client
        .create_checkout_session(&request)
        .await
        .expect("session");
    let events = standin.pay(&session.id);
    let event = &events[0];
    let (url, received, task) = receiver().await;

    assert_eq!(standin.deliver(event, &url).await.status(), 200);
    assert_eq!(standin.deliver(event, &url).await.status(), 200);
    let stale = Signing {
        timestamp: unix_now() - 600,
        secret: WEBHOOK_SECRET,
    };
    standin.deliver_with(event, &url, stale).await;
    let forged = Signing {
        timestamp: unix_now(),
        secret: "whsec_forged",
    };
    standin.deliver_with(event, &url, forged).await;

    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 4);
    for (headers, body) in &received {
        assert_eq!(body.as_ref(), event.payload().as_slice());
        assert!(
            headers["content-type"]
                .to_str()
                .is_ok_and(|v| v.starts_with("application/json"))
        );
        let parsed: Value = serde_json::from_slice(body).expect("json");
        assert_eq!(parsed["id"], event.id());
        assert_eq!(parsed["type"], "checkout.session.completed");
    }
    let header = |i: usize| {
        received[i].0["stripe-signature"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    assert!(header(0).starts_with("t="), "{}", header(0));
    assert!(header(0).contains(",v1="), "{}", header(0));
    let verify_body = |i: usize| {
        verify_stripe_signature(
            &received[i].1,
            &header(i),
            WEBHOOK_SECRET,
            unix_now(),
            DEFAULT_TOLERANCE_SECS,
        )
    };
    assert!(verify_body(0).is_ok());
    assert!(verify_body(1).is_ok(), "a redelivery verifies too");
    assert!(
        matches!(verify_body(2), Err(ControlError::InvalidSignature { .. })),
        "stale"
    );
    assert!(
        matches!(verify_body(3), Err(ControlError::InvalidSignature { .. })),
        "forged"
    );
    task.abort();
}

#[tokio::test]
async fn events_can_be_restaged_and_the_clock_advanced() {
    let standin = StripeStandin::start(WEBHOOK_SECRET).await;
    let client = client(&standin);
    let product = client
        .create_product("Monthly", &[], "p")
        .await
        .expect("product");
    let price = client
        .create_price(&product, 300, "gbp", Some(Interval::Month), &[], "pr")
        .await
        .expect("price");
    let session = client
        .create_checkout_session(&session_request(
            CheckoutMode::Subscription,
            CheckoutLine::Price(price),
            "s",
        ))
        .await
        .expect("session");
    let events = standin.pay(&session.id);
    let subscription = event_of(&events, "customer.subscription.created").object()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let created = event_of(&events, "invoice.paid").created();
    standin.advance_clock(40 * 86_400);
    let renewal = standin.renew(&subscription);
    assert!(renewal[0].created() >= created + 40 * 86_400);
    let older = renewal[0].clone().with_created(created - 10);
    assert_eq!(older.created(), created - 10);
    assert_eq!(older.id(), renewal[0].id());
    // The expired-session event for an open session.
    let other = client
        .create_checkout_session(&session_request(
            CheckoutMode::Payment,
            CheckoutLine::Inline {
                name: "x".into(),
                amount_minor: 100,
                currency: "gbp".into(),
            },
            "s2",
        ))
        .await
        .expect("session");
    let expired = standin.expire(&other.id);
    assert_eq!(expired.type_(), "checkout.session.expired");
    assert_eq!(expired.object()["status"], "expired");
}

#[tokio::test]
async fn the_standin_stops_when_dropped() {
    let standin = StripeStandin::start(WEBHOOK_SECRET).await;
    let base = standin.api_base();
    let http = reqwest::Client::new();
    assert!(http.get(format!("{base}/v1/prices/x")).send().await.is_ok());
    drop(standin);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let fresh = reqwest::Client::new();
    assert!(
        fresh
            .get(format!("{base}/v1/prices/x"))
            .send()
            .await
            .is_err()
    );
}
