//! Deliveries: Stripe's signature over the exact bytes, restaged events, the clock, shutdown.

use super::*;

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
