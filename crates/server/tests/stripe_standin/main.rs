//! The Stripe stand-in (tests/stripe) and greenroom's Stripe client against it: products,
//! prices and Checkout Sessions as Stripe answers them, Stripe's validation errors surfacing
//! as `ControlError::Stripe`, idempotency keys, and the signed events a purchase produces.

#[path = "../stripe/mod.rs"]
mod stripe;

mod requests;
mod webhooks;

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
