//! Idempotency keys and Stripe's validation errors, through the client and on raw requests.

use super::*;

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
