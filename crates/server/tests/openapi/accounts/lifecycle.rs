//! Channels and the lifecycle of their streams.

use super::*;

#[tokio::test]
async fn channels_and_the_stream_lifecycle_answer_as_documented() {
    let spec = spec();
    let app = test_app().await;
    let creator = [bearer(&app.creator.session)];
    let viewer = [bearer(&app.viewer.session)];
    let admin = [bearer(ADMIN)];
    let create_channel = ("POST", "/api/v1/channels");
    let channel_uri = format!("/api/v1/channels/{}", app.channel);

    // Channels: one per creator, handles unique and checked.
    let uri = "/api/v1/channels";
    let new = json!({ "handle": "bo_live", "display_name": "Bo" }).to_string();
    for (headers, status, code) in [
        (&creator, 409, "channel_exists"),
        (&viewer, 403, "forbidden"),
        (&admin, 403, "forbidden"),
    ] {
        expect(
            &app,
            &spec,
            create_channel,
            uri,
            &with_json(headers),
            new.clone(),
            status,
            code,
        )
        .await;
    }
    let bo = app.sign_up("bo@probe.example", "creator").await;
    let bo_headers = with_json(&[bearer(&bo.session)]);
    for (body, status, code) in [
        (
            json!({ "handle": "@Probe_Channel", "display_name": "Bo" }),
            409,
            "handle_taken",
        ),
        (
            json!({ "handle": "ab", "display_name": "Bo" }),
            422,
            "invalid_channel",
        ),
        (
            json!({ "handle": "admin", "display_name": "Bo" }),
            422,
            "invalid_channel",
        ),
        (
            json!({ "handle": "bo_live", "display_name": "Bo", "links": [] }),
            422,
            "invalid_channel",
        ),
        (json!({ "handle": "bo_live" }), 422, "invalid_channel"),
        (json!(["bo_live"]), 400, "invalid_json"),
    ] {
        expect(
            &app,
            &spec,
            create_channel,
            uri,
            &bo_headers,
            body.to_string(),
            status,
            code,
        )
        .await;
    }
    let made = expect(&app, &spec, create_channel, uri, &bo_headers, new, 201, "").await;
    assert_eq!(made["handle"], "bo_live");
    assert_eq!(
        made["url"],
        "https://live.example.com/api/v1/channels/bo_live"
    );
    assert_eq!(made["stripe_account_id"], Value::Null);

    // The profile is public; its owner sees the Stripe account.
    let get_channel = ("GET", "/api/v1/channels/{handle}");
    let patch_channel = ("PATCH", "/api/v1/channels/{handle}");
    let change = json!({ "stripe_account_id": "acct_1Nv0FGQ9RKHgCVdK" }).to_string();
    expect(
        &app,
        &spec,
        patch_channel,
        &channel_uri,
        &with_json(&viewer),
        change.clone(),
        403,
        "forbidden",
    )
    .await;
    let changed = expect(
        &app,
        &spec,
        patch_channel,
        &channel_uri,
        &with_json(&creator),
        change,
        200,
        "",
    )
    .await;
    assert_eq!(changed["stripe_account_id"], "acct_1Nv0FGQ9RKHgCVdK");
    for bad in [
        json!({ "stripe_account_id": "nope" }),
        json!({ "handle": "renamed" }),
    ] {
        let body = bad.to_string();
        expect(
            &app,
            &spec,
            patch_channel,
            &channel_uri,
            &with_json(&creator),
            body,
            422,
            "invalid_channel",
        )
        .await;
    }
    let profile = expect(
        &app,
        &spec,
        get_channel,
        &channel_uri,
        &creator,
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(profile["stripe_account_id"], "acct_1Nv0FGQ9RKHgCVdK");
    let upper = format!("/api/v1/channels/@{}", app.channel.to_uppercase());
    for headers in [vec![], vec![bearer("grs_stale-session")], viewer.to_vec()] {
        let profile = expect(
            &app,
            &spec,
            get_channel,
            &upper,
            &headers,
            Body::empty(),
            200,
            "",
        )
        .await;
        assert!(profile.get("stripe_account_id").is_none(), "{profile:#}");
    }
    let nobody = "/api/v1/channels/nobody_here";
    expect(
        &app,
        &spec,
        get_channel,
        nobody,
        &[],
        Body::empty(),
        404,
        "channel_not_found",
    )
    .await;

    // A scheduled paid stream of the creator's channel.
    let create = ("POST", "/api/v1/streams");
    let streams = "/api/v1/streams";
    let at = in_days(2);
    let premiere = json!({
        "title": "Premiere",
        "description": "Act one.",
        "scheduled_at": at,
        "access": "paid",
        "price_tokens": 50,
        "replay_access_days": 7,
    });
    let stream = expect(
        &app,
        &spec,
        create,
        streams,
        &with_json(&creator),
        premiere.to_string(),
        201,
        "",
    )
    .await;
    let id = stream["id"].as_str().expect("id").to_owned();
    assert_eq!(stream["status"], "scheduled", "{stream:#}");
    assert_eq!(stream["channel"], app.channel.as_str(), "{stream:#}");
    assert_eq!(stream["access"], "paid");
    assert_eq!(
        stream["calendar_url"],
        format!("https://live.example.com/api/v1/streams/{id}/calendar.ics")
    );
    for (headers, body, status, code) in [
        (&viewer, json!({ "title": "x" }), 403, "forbidden"),
        (
            &creator,
            json!({ "title": "x", "channel": "bo_live" }),
            403,
            "forbidden",
        ),
        (
            &creator,
            json!({ "title": "x", "source_url": "rtsp://cam.example/1" }),
            403,
            "forbidden",
        ),
        (
            &admin,
            json!({ "title": "x", "channel": "nobody_here" }),
            404,
            "channel_not_found",
        ),
        (
            &creator,
            json!({ "title": "x", "scheduled_at": in_days(-1) }),
            422,
            "invalid_stream_setting",
        ),
        (
            &creator,
            json!({ "title": "x", "scheduled_at": in_days(400) }),
            422,
            "invalid_stream_setting",
        ),
        (
            &creator,
            json!({ "title": "x", "price_tokens": 5 }),
            422,
            "invalid_stream_setting",
        ),
        (
            &creator,
            json!({ "title": "x", "access": "vip" }),
            422,
            "invalid_stream_setting",
        ),
        (
            &creator,
            json!({ "title": "x", "channel": 7 }),
            422,
            "invalid_channel",
        ),
        (
            &creator,
            json!({ "title": "x", "simulcast_ladder": "yes" }),
            400,
            "invalid_json",
        ),
    ] {
        let body = body.to_string();
        expect(
            &app,
            &spec,
            create,
            streams,
            &with_json(headers),
            body,
            status,
            code,
        )
        .await;
    }

    // What anyone may know of it.
    let status_uri = format!("/api/v1/streams/{id}/status");
    let public = expect(
        &app,
        &spec,
        ("GET", "/api/v1/streams/{id}/status"),
        &status_uri,
        &[],
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(public["status"], "scheduled");
    assert!(!public.to_string().contains("sk_"), "{public:#}");
    let calendar = ("GET", "/api/v1/streams/{id}/calendar.ics");
    let calendar_uri = format!("/api/v1/streams/{id}/calendar.ics");
    let answer = app
        .probe(&spec, calendar, &calendar_uri, &[], Body::empty())
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header("content-type"),
        Some("text/calendar; charset=utf-8")
    );
    let text = String::from_utf8_lossy(&answer.body);
    assert!(
        text.contains("BEGIN:VEVENT") && text.contains("Premiere"),
        "{text}"
    );
    let discover = ("GET", "/api/v1/discover");
    let listed = expect(
        &app,
        &spec,
        discover,
        "/api/v1/discover?limit=100",
        &[],
        Body::empty(),
        200,
        "",
    )
    .await;
    assert!(
        ids(&listed["upcoming"]).contains(&id.as_str()),
        "{listed:#}"
    );
    for limit in ["0", "101", "x"] {
        let uri = format!("/api/v1/discover?limit={limit}");
        expect(
            &app,
            &spec,
            discover,
            &uri,
            &[],
            Body::empty(),
            400,
            "invalid_request",
        )
        .await;
    }
    let profile = expect(
        &app,
        &spec,
        get_channel,
        &channel_uri,
        &[],
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(ids(&profile["upcoming"]), [id.as_str()], "{profile:#}");

    // Its owner manages it; nobody else.
    let stream_uri = format!("/api/v1/streams/{id}");
    let get = ("GET", "/api/v1/streams/{id}");
    let patch = ("PATCH", "/api/v1/streams/{id}");
    let end = ("DELETE", "/api/v1/streams/{id}");
    expect(
        &app,
        &spec,
        get,
        &stream_uri,
        &viewer,
        Body::empty(),
        403,
        "forbidden",
    )
    .await;
    expect(
        &app,
        &spec,
        get,
        &stream_uri,
        &[],
        Body::empty(),
        401,
        "unauthorized",
    )
    .await;
    let body = json!({ "title": "renamed" }).to_string();
    expect(
        &app,
        &spec,
        patch,
        &stream_uri,
        &with_json(&creator),
        body,
        422,
        "invalid_recording_setting",
    )
    .await;
    let body = json!({ "access": "free" }).to_string();
    let changed = expect(
        &app,
        &spec,
        patch,
        &stream_uri,
        &with_json(&creator),
        body,
        200,
        "",
    )
    .await;
    assert_eq!(
        (changed["access"].clone(), changed["price_tokens"].clone()),
        (json!("free"), Value::Null)
    );
    let body = json!({ "price_tokens": 10 }).to_string();
    expect(
        &app,
        &spec,
        patch,
        &stream_uri,
        &with_json(&creator),
        body,
        422,
        "invalid_stream_setting",
    )
    .await;
    expect(
        &app,
        &spec,
        end,
        &stream_uri,
        &creator,
        Body::empty(),
        409,
        "invalid_transition",
    )
    .await;

    // Rescheduled, then cancelled for good.
    let schedule = ("POST", "/api/v1/streams/{id}/schedule");
    let schedule_uri = format!("/api/v1/streams/{id}/schedule");
    for body in [
        json!({ "scheduled_at": in_days(-1) }),
        json!({ "scheduled_at": at, "title": "x" }),
        json!({}),
    ] {
        let body = body.to_string();
        expect(
            &app,
            &spec,
            schedule,
            &schedule_uri,
            &with_json(&creator),
            body,
            422,
            "invalid_stream_setting",
        )
        .await;
    }
    let body = json!({ "scheduled_at": in_days(3) }).to_string();
    let moved = expect(
        &app,
        &spec,
        schedule,
        &schedule_uri,
        &with_json(&creator),
        body.clone(),
        200,
        "",
    )
    .await;
    assert_eq!(moved["status"], "scheduled");
    let cancel = ("POST", "/api/v1/streams/{id}/cancel");
    let cancel_uri = format!("/api/v1/streams/{id}/cancel");
    expect(
        &app,
        &spec,
        cancel,
        &cancel_uri,
        &viewer,
        Body::empty(),
        403,
        "forbidden",
    )
    .await;
    for _ in 0..2 {
        let cancelled = expect(
            &app,
            &spec,
            cancel,
            &cancel_uri,
            &creator,
            Body::empty(),
            200,
            "",
        )
        .await;
        assert_eq!(cancelled["status"], "cancelled", "{cancelled:#}");
        assert!(cancelled["cancelled_at"].is_string(), "{cancelled:#}");
    }
    expect(
        &app,
        &spec,
        schedule,
        &schedule_uri,
        &with_json(&creator),
        body,
        409,
        "invalid_transition",
    )
    .await;
    let answer = app
        .probe(&spec, calendar, &calendar_uri, &[], Body::empty())
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&answer.body).contains("CANCELLED"));

    // A stream that was never scheduled: no calendar event, nothing to cancel; it ends.
    let plain = expect(
        &app,
        &spec,
        create,
        streams,
        &with_json(&creator),
        json!({ "title": "Plain" }).to_string(),
        201,
        "",
    )
    .await;
    let plain_id = plain["id"].as_str().expect("id");
    assert_eq!(plain["status"], "idle");
    let uri = format!("/api/v1/streams/{plain_id}/calendar.ics");
    expect(
        &app,
        &spec,
        calendar,
        &uri,
        &[],
        Body::empty(),
        404,
        "not_scheduled",
    )
    .await;
    let uri = format!("/api/v1/streams/{plain_id}/cancel");
    expect(
        &app,
        &spec,
        cancel,
        &uri,
        &creator,
        Body::empty(),
        409,
        "invalid_transition",
    )
    .await;
    let uri = format!("/api/v1/streams/{plain_id}");
    let ended = expect(&app, &spec, end, &uri, &creator, Body::empty(), 200, "").await;
    assert_eq!(ended["status"], "ended");

    // Listing: a creator sees their channel's streams, a viewer nothing.
    let list = ("GET", "/api/v1/streams");
    expect(
        &app,
        &spec,
        list,
        streams,
        &viewer,
        Body::empty(),
        403,
        "forbidden",
    )
    .await;
    let mine = expect(&app, &spec, list, streams, &creator, Body::empty(), 200, "").await;
    assert_eq!(ids(&mine), [plain_id, id.as_str()], "{mine:#}");
    let none = expect(
        &app,
        &spec,
        list,
        streams,
        &[bearer(&bo.session)],
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(none, json!([]));
    app.engine.shutdown().await;
}
