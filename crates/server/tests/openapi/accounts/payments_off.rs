//! Passes, tips, the wallet and the webhook while payments are off.

use super::*;

#[tokio::test]
async fn passes_tips_and_the_wallet_answer_as_documented_with_payments_off() {
    let spec = spec();
    let app = test_app().await;
    let creator = [bearer(&app.creator.session)];
    let viewer = [bearer(&app.viewer.session)];
    let passes = format!("/api/v1/channels/{}/passes", app.channel);
    let create = ("POST", "/api/v1/channels/{handle}/passes");
    let list = ("GET", "/api/v1/channels/{handle}/passes");

    // Paid passes need Stripe; what is checked first is checked without it.
    for (headers, body, status, code) in [
        (
            &creator,
            json!({ "name": "Season", "kind": "monthly", "amount_minor": 900 }),
            503,
            "payments_disabled",
        ),
        (
            &creator,
            json!({ "name": "Season", "kind": "weekly" }),
            422,
            "invalid_pass",
        ),
        (
            &creator,
            json!({ "name": "Season", "kind": "one_time", "amount_minor": 5 }),
            422,
            "invalid_pass",
        ),
        (
            &creator,
            json!({ "name": "Fans", "kind": "free", "amount_minor": 100 }),
            422,
            "invalid_pass",
        ),
        (
            &creator,
            json!({ "name": "Fans", "kind": "free", "stream_ids": ["zzzzzzzzzzzzzzzz"] }),
            422,
            "invalid_pass",
        ),
        (&creator, json!({ "name": "Fans" }), 400, "invalid_json"),
        (
            &viewer,
            json!({ "name": "Fans", "kind": "free" }),
            403,
            "forbidden",
        ),
    ] {
        let body = body.to_string();
        expect(
            &app,
            &spec,
            create,
            &passes,
            &with_json(headers),
            body,
            status,
            code,
        )
        .await;
    }
    let pass = app.create_pass(&spec).await;
    let pass_uri = format!("/api/v1/passes/{pass}");
    let listed = expect(&app, &spec, list, &passes, &[], Body::empty(), 200, "").await;
    assert_eq!(ids(&listed["passes"]), [pass.as_str()]);
    let archived = format!("{passes}?include_archived=true");
    expect(
        &app,
        &spec,
        list,
        &archived,
        &[],
        Body::empty(),
        401,
        "unauthorized",
    )
    .await;
    expect(
        &app,
        &spec,
        list,
        &archived,
        &viewer,
        Body::empty(),
        403,
        "forbidden",
    )
    .await;
    let bad = format!("{passes}?include_archived=maybe");
    expect(
        &app,
        &spec,
        list,
        &bad,
        &creator,
        Body::empty(),
        400,
        "invalid_request",
    )
    .await;

    // Renamed, not repriced (free), archived: then hidden from everyone but its owner.
    let patch = ("PATCH", "/api/v1/passes/{id}");
    let get = ("GET", "/api/v1/passes/{id}");
    let body = json!({ "name": "Fans+" }).to_string();
    expect(
        &app,
        &spec,
        patch,
        &pass_uri,
        &with_json(&viewer),
        body.clone(),
        403,
        "forbidden",
    )
    .await;
    let renamed = expect(
        &app,
        &spec,
        patch,
        &pass_uri,
        &with_json(&creator),
        body.clone(),
        200,
        "",
    )
    .await;
    assert_eq!(renamed["name"], "Fans+");
    let price = json!({ "amount_minor": 500 }).to_string();
    expect(
        &app,
        &spec,
        patch,
        &pass_uri,
        &with_json(&creator),
        price,
        422,
        "invalid_pass",
    )
    .await;
    let gone = expect(
        &app,
        &spec,
        ("DELETE", "/api/v1/passes/{id}"),
        &pass_uri,
        &creator,
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(gone["active"], false);
    expect(
        &app,
        &spec,
        get,
        &pass_uri,
        &[],
        Body::empty(),
        404,
        "pass_not_found",
    )
    .await;
    expect(
        &app,
        &spec,
        get,
        &pass_uri,
        &creator,
        Body::empty(),
        200,
        "",
    )
    .await;
    expect(
        &app,
        &spec,
        patch,
        &pass_uri,
        &with_json(&creator),
        body,
        409,
        "pass_inactive",
    )
    .await;
    let claim_uri = format!("{pass_uri}/checkout");
    let claim = ("POST", "/api/v1/passes/{id}/checkout");
    expect(
        &app,
        &spec,
        claim,
        &claim_uri,
        &viewer,
        Body::empty(),
        404,
        "pass_not_found",
    )
    .await;
    let listed = expect(
        &app,
        &spec,
        list,
        &archived,
        &creator,
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(ids(&listed["passes"]), [pass.as_str()]);

    // Tips need Stripe and a channel; the creator's feed and list work without.
    let (id, _) = app.create_stream().await;
    let tips = format!("/api/v1/streams/{id}/tips");
    let tip = json!({ "amount_minor": 500, "message": "bravo" }).to_string();
    let post_tip = ("POST", "/api/v1/streams/{id}/tips");
    expect(
        &app,
        &spec,
        post_tip,
        &tips,
        &with_json(&viewer),
        tip.clone(),
        503,
        "payments_disabled",
    )
    .await;
    let answer = app
        .send(
            "POST",
            "/api/v1/streams",
            &with_json(&[bearer(ADMIN)]),
            json!({ "title": "no channel" }).to_string(),
        )
        .await;
    let orphan = answer.json()["id"].as_str().expect("id").to_owned();
    let uri = format!("/api/v1/streams/{orphan}/tips");
    expect(
        &app,
        &spec,
        post_tip,
        &uri,
        &with_json(&viewer),
        tip,
        403,
        "forbidden",
    )
    .await;
    let listed = expect(
        &app,
        &spec,
        ("GET", "/api/v1/streams/{id}/tips"),
        &tips,
        &creator,
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(listed, json!({ "tips": [] }));
    expect(
        &app,
        &spec,
        ("GET", "/api/v1/streams/{id}/tips"),
        &tips,
        &viewer,
        Body::empty(),
        403,
        "forbidden",
    )
    .await;
    let events = ("GET", "/api/v1/streams/{id}/events");
    let answer = app
        .probe(
            &spec,
            events,
            &format!("/api/v1/streams/{id}/events"),
            &creator,
            Body::empty(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));

    // The wallet: readable and empty; buying tokens needs Stripe.
    let wallet = expect(
        &app,
        &spec,
        ("GET", "/api/v1/wallet"),
        "/api/v1/wallet",
        &viewer,
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(wallet, json!({ "balance": 0, "history": [] }));
    let packs = expect(
        &app,
        &spec,
        ("GET", "/api/v1/wallet/packs"),
        "/api/v1/wallet/packs",
        &[],
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(packs, json!({ "packs": [] }));
    let buy = ("POST", "/api/v1/wallet/checkout");
    let body = json!({ "pack": "small" }).to_string();
    expect(
        &app,
        &spec,
        buy,
        "/api/v1/wallet/checkout",
        &viewer,
        body,
        503,
        "payments_disabled",
    )
    .await;

    // Stripe's webhook and checkouts.
    let webhook = ("POST", "/api/v1/stripe/webhook");
    let signature = [("stripe-signature".to_owned(), "t=1,v1=00".to_owned())];
    expect(
        &app,
        &spec,
        webhook,
        "/api/v1/stripe/webhook",
        &signature,
        "{}",
        503,
        "payments_disabled",
    )
    .await;
    let uri = format!("/api/v1/checkouts/{pass}");
    expect(
        &app,
        &spec,
        ("GET", "/api/v1/checkouts/{id}"),
        &uri,
        &viewer,
        Body::empty(),
        404,
        "checkout_not_found",
    )
    .await;
    app.engine.shutdown().await;
}
