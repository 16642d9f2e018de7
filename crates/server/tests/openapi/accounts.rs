//! Accounts, channels, the stream lifecycle, paid access and payments (off: the test server
//! has no Stripe key) answer as the document says: each request is checked against the
//! documented operation, and its status and error code are the ones the scenario expects.

use super::*;

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

#[tokio::test]
async fn accounts_sessions_and_api_tokens_answer_as_documented() {
    let spec = spec();
    let app = test_app().await;
    let sign_up = ("POST", "/api/v1/accounts");
    let sign_in = ("POST", "/api/v1/sessions");
    let me = ("GET", "/api/v1/me");
    let new_token = ("POST", "/api/v1/me/tokens");
    let json_only = [json_content()];

    // Signing up signs in: a page session, also as a cookie.
    let account =
        json!({ "email": " Ann@Example.com ", "password": PASSWORD, "display_name": "Ann" });
    let uri = "/api/v1/accounts";
    let answer = app
        .probe(&spec, sign_up, uri, &json_only, account.to_string())
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let session = answer.json();
    assert_eq!(session["account"]["email"], "ann@example.com");
    assert_eq!(session["account"]["role"], "viewer");
    let token = session["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("grs_"), "{session:#}");
    let cookie = answer.header("set-cookie").expect("a cookie");
    assert!(
        cookie.starts_with(&format!("greenroom_session={token};")) && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    for (body, status, code) in [
        (
            json!({ "email": "ANN@example.com", "password": PASSWORD, "display_name": "Ann" }),
            409,
            "email_taken",
        ),
        (
            json!({ "email": "ann.example.com", "password": PASSWORD, "display_name": "Ann" }),
            422,
            "invalid_email",
        ),
        (
            json!({ "email": "bo@example.com", "password": "short", "display_name": "Bo" }),
            422,
            "invalid_password",
        ),
        (
            json!({ "email": "bo@example.com", "password": PASSWORD, "display_name": " " }),
            422,
            "invalid_display_name",
        ),
        (
            json!({ "email": "bo@example.com", "password": PASSWORD, "display_name": "Bo", "role": "admin" }),
            400,
            "invalid_request",
        ),
        (
            json!({ "email": "bo@example.com", "password": PASSWORD }),
            400,
            "invalid_json",
        ),
        (
            json!({ "email": "bo@example.com", "password": PASSWORD, "display_name": "Bo", "admin": true }),
            400,
            "invalid_json",
        ),
    ] {
        expect(
            &app,
            &spec,
            sign_up,
            uri,
            &json_only,
            body.to_string(),
            status,
            code,
        )
        .await;
    }
    expect(
        &app,
        &spec,
        sign_up,
        uri,
        &[],
        account.to_string(),
        415,
        "unsupported_media_type",
    )
    .await;

    // Signing in: one answer for a wrong email and a wrong password.
    let uri = "/api/v1/sessions";
    for body in [
        json!({ "email": "ann@example.com", "password": "not the password" }),
        json!({ "email": "nobody@example.com", "password": PASSWORD }),
    ] {
        let answer = app
            .probe(&spec, sign_in, uri, &json_only, body.to_string())
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.json()["error"]["code"], "invalid_credentials");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    }
    let body = json!({ "email": "ANN@example.com", "password": PASSWORD });
    let session = expect(
        &app,
        &spec,
        sign_in,
        uri,
        &json_only,
        body.to_string(),
        201,
        "",
    )
    .await;
    let second = session["token"].as_str().expect("token").to_owned();

    // The caller's account, by cookie or bearer token; the admin is no account.
    let cookie = [("cookie".to_owned(), format!("greenroom_session={token}"))];
    let found = expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &cookie,
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(found["email"], "ann@example.com");
    expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &[bearer(&second)],
        Body::empty(),
        200,
        "",
    )
    .await;
    for headers in [
        vec![bearer(ADMIN)],
        vec![],
        vec![bearer("grs_no-such-session")],
        vec![bearer("gr1.a-playback-token.is-no-api-credential")],
    ] {
        expect(
            &app,
            &spec,
            me,
            "/api/v1/me",
            &headers,
            Body::empty(),
            401,
            "unauthorized",
        )
        .await;
    }

    // API tokens: made, used, revoked.
    let uri = "/api/v1/me/tokens";
    let made = expect(
        &app,
        &spec,
        new_token,
        uri,
        &with_json(&cookie),
        json!({ "name": "  upload script " }).to_string(),
        201,
        "",
    )
    .await;
    assert_eq!(made["name"], "upload script");
    let api_token = made["token"].as_str().expect("token").to_owned();
    assert!(api_token.starts_with("grt_"), "{made:#}");
    expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &[bearer(&api_token)],
        Body::empty(),
        200,
        "",
    )
    .await;
    for name in [json!(" "), json!("x".repeat(81))] {
        let body = json!({ "name": name }).to_string();
        expect(
            &app,
            &spec,
            new_token,
            uri,
            &with_json(&cookie),
            body,
            400,
            "invalid_request",
        )
        .await;
    }
    let revoke = ("DELETE", "/api/v1/me/tokens/{id}");
    let token_uri = format!("/api/v1/me/tokens/{}", made["id"].as_str().expect("id"));
    expect(
        &app,
        &spec,
        revoke,
        &token_uri,
        &cookie,
        Body::empty(),
        204,
        "",
    )
    .await;
    expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &[bearer(&api_token)],
        Body::empty(),
        401,
        "unauthorized",
    )
    .await;
    // Revoked already: the documented 404.
    let answer = app.send("DELETE", &token_uri, &cookie, Body::empty()).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json()["error"]["code"], "api_token_not_found");
    assert!(operation(&spec, "/api/v1/me/tokens/{id}", "delete")["responses"]["404"].is_object());

    // Signing out revokes the session presented and clears the cookie.
    let sign_out = ("DELETE", "/api/v1/sessions/current");
    let answer = app
        .probe(
            &spec,
            sign_out,
            "/api/v1/sessions/current",
            &cookie,
            Body::empty(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(
        answer
            .header("set-cookie")
            .is_some_and(|c| c.starts_with("greenroom_session=;") && c.contains("Max-Age=0"))
    );
    expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &cookie,
        Body::empty(),
        401,
        "unauthorized",
    )
    .await;
    // The stale cookie is no credential: signing out again just clears it, and public
    // reads answer as for anyone.
    let again = app
        .probe(
            &spec,
            sign_out,
            "/api/v1/sessions/current",
            &cookie,
            Body::empty(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let discover = app
        .send("GET", "/api/v1/discover", &cookie, Body::empty())
        .await;
    assert_eq!(discover.status, StatusCode::OK);
    let me_now = expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &[bearer(&second)],
        Body::empty(),
        200,
        "",
    )
    .await;
    assert!(me_now["channel"].is_null(), "{me_now:#}");

    // The identity provider's tokens stand for an account made on first sight.
    let idris = identity_token("idris");
    let found = expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &[bearer(&idris)],
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(found["display_name"], "Idris");
    assert_eq!(found["role"], "viewer");
    let again = expect(
        &app,
        &spec,
        me,
        "/api/v1/me",
        &[bearer(&idris)],
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(again["id"], found["id"]);
    let claims = json!({ "iss": IDENTITY_ISSUER, "aud": IDENTITY_AUDIENCE, "sub": "idris" });
    let forged = jwt::hs256(b"another-secret-of-at-least-32-bytes", &{
        let mut claims = claims.clone();
        claims["exp"] = json!(chrono::Utc::now().timestamp() + 3600);
        claims
    });
    let expired = jwt::hs256(IDENTITY_SECRET, &{
        let mut claims = claims.clone();
        claims["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
        claims
    });
    for token in [forged, expired] {
        let headers = [bearer(&token)];
        expect(
            &app,
            &spec,
            me,
            "/api/v1/me",
            &headers,
            Body::empty(),
            401,
            "invalid_identity_token",
        )
        .await;
    }
    app.engine.shutdown().await;
}

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

#[tokio::test]
async fn paid_streams_need_grants_and_playback_tokens() {
    let spec = spec();
    let app = test_app().await;
    let creator = [bearer(&app.creator.session)];
    let viewer = [bearer(&app.viewer.session)];
    let admin = [bearer(ADMIN)];
    let body =
        json!({ "title": "Paid", "access": "paid", "price_tokens": 50, "replay_access_days": 7 });
    let stream = expect(
        &app,
        &spec,
        ("POST", "/api/v1/streams"),
        "/api/v1/streams",
        &with_json(&creator),
        body.to_string(),
        201,
        "",
    )
    .await;
    let id = stream["id"].as_str().expect("id").to_owned();
    let key = stream["stream_key"].as_str().expect("key").to_owned();

    // Who may have a playback token.
    let issue = ("POST", "/api/v1/streams/{id}/playback-token");
    let uri = format!("/api/v1/streams/{id}/playback-token");
    let watch = json!({ "right": "watch" }).to_string();
    let publish = json!({ "right": "publish" }).to_string();
    expect(
        &app,
        &spec,
        issue,
        &uri,
        &[],
        Body::empty(),
        401,
        "unauthorized",
    )
    .await;
    expect(
        &app,
        &spec,
        issue,
        &uri,
        &viewer,
        watch.clone(),
        403,
        "access_required",
    )
    .await;
    expect(
        &app,
        &spec,
        issue,
        &uri,
        &viewer,
        publish.clone(),
        403,
        "forbidden",
    )
    .await;
    for (bad, code) in [
        (json!({ "right": "listen" }).to_string(), "invalid_request"),
        ("{".to_owned(), "invalid_json"),
        (json!({ "who": 1 }).to_string(), "invalid_json"),
    ] {
        expect(&app, &spec, issue, &uri, &creator, bad, 400, code).await;
    }
    let mut form = creator.to_vec();
    form.push((
        "content-type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    ));
    expect(
        &app,
        &spec,
        issue,
        &uri,
        &form,
        "right=watch",
        415,
        "unsupported_media_type",
    )
    .await;
    let token = expect(&app, &spec, issue, &uri, &creator, Body::empty(), 201, "").await;
    assert_eq!(token["right"], "watch");
    assert_eq!(
        token["webrtc_url"],
        format!("https://live.example.com/whep/{id}")
    );
    assert_eq!(token["hls_url"], Value::Null, "HLS is off");
    let watch_token = token["token"].as_str().expect("token").to_owned();
    let published = expect(&app, &spec, issue, &uri, &admin, publish, 201, "").await;
    assert_eq!(
        published["webrtc_url"],
        format!("https://live.example.com/whip/{id}")
    );
    let publish_token = published["token"].as_str().expect("token").to_owned();
    let replay = json!({ "right": "replay" }).to_string();
    let replayed = expect(&app, &spec, issue, &uri, &admin, replay.clone(), 201, "").await;
    let replay_token = replayed["token"].as_str().expect("token").to_owned();

    // WHEP checks the token before the offer, WHIP takes the key or a publish token.
    let whep = ("POST", "/whep/{stream_id}");
    let whip = ("POST", "/whip/{stream_id}");
    let sdp = ("content-type".to_owned(), "application/sdp".to_owned());
    let whep_uri = format!("/whep/{id}");
    let whip_uri = format!("/whip/{id}");
    for (headers, query, status, code) in [
        (vec![], "", 401, "token_required"),
        (vec![bearer("gr1.junk.junk")], "", 401, "invalid_token"),
        (vec![bearer(&replay_token)], "", 403, "token_wrong_stream"),
        (vec![bearer(&watch_token)], "", 400, "invalid_sdp"),
        (vec![], "?token=", 401, "token_required"),
        (vec![], "?layer=h&token=", 400, "invalid_sdp"),
    ] {
        let mut headers = headers;
        headers.push(sdp.clone());
        let uri = match query {
            "?token=" => format!("{whep_uri}?token="),
            "?layer=h&token=" => format!("{whep_uri}?layer=h&token={watch_token}"),
            _ => whep_uri.clone(),
        };
        expect(&app, &spec, whep, &uri, &headers, SDP_OFFER, status, code).await;
    }
    for (headers, uri, status, code) in [
        (
            vec![bearer(&watch_token)],
            whip_uri.clone(),
            403,
            "token_wrong_stream",
        ),
        (
            vec![bearer("gr1.junk.junk")],
            whip_uri.clone(),
            401,
            "invalid_token",
        ),
        (
            vec![bearer("sk_wrong")],
            whip_uri.clone(),
            401,
            "unauthorized",
        ),
        (
            vec![],
            format!("{whip_uri}?token={publish_token}"),
            400,
            "invalid_sdp",
        ),
        (vec![bearer(&key)], whip_uri.clone(), 400, "invalid_sdp"),
    ] {
        let mut headers = headers;
        headers.push(sdp.clone());
        expect(&app, &spec, whip, &uri, &headers, SDP_OFFER, status, code).await;
    }

    // Tokens buy this stream alone; the wallet is empty, and the owner needs nothing.
    let enroll = ("POST", "/api/v1/streams/{id}/enroll");
    let enroll_uri = format!("/api/v1/streams/{id}/enroll");
    expect(
        &app,
        &spec,
        enroll,
        &enroll_uri,
        &viewer,
        Body::empty(),
        402,
        "insufficient_tokens",
    )
    .await;
    expect(
        &app,
        &spec,
        enroll,
        &enroll_uri,
        &creator,
        Body::empty(),
        409,
        "already_granted",
    )
    .await;
    let (free_id, _) = app.create_stream().await;
    let free_uri = format!("/api/v1/streams/{free_id}/enroll");
    expect(
        &app,
        &spec,
        enroll,
        &free_uri,
        &viewer,
        Body::empty(),
        409,
        "not_for_sale",
    )
    .await;

    // A free pass of the channel opens it.
    let pass = app.create_pass(&spec).await;
    let claim = ("POST", "/api/v1/passes/{id}/checkout");
    let claim_uri = format!("/api/v1/passes/{pass}/checkout");
    let claimed = expect(
        &app,
        &spec,
        claim,
        &claim_uri,
        &viewer,
        Body::empty(),
        201,
        "",
    )
    .await;
    assert_eq!(claimed["grant"]["source"], "free");
    assert_eq!(claimed["grant"]["active"], true);
    let again = expect(
        &app,
        &spec,
        claim,
        &claim_uri,
        &viewer,
        json!({}).to_string(),
        201,
        "",
    )
    .await;
    assert_eq!(again["grant"]["id"], claimed["grant"]["id"]);
    let grants = expect(
        &app,
        &spec,
        ("GET", "/api/v1/me/grants"),
        "/api/v1/me/grants",
        &viewer,
        Body::empty(),
        200,
        "",
    )
    .await;
    assert_eq!(
        ids(&grants["grants"]),
        [claimed["grant"]["id"].as_str().expect("id")]
    );
    expect(&app, &spec, issue, &uri, &viewer, watch, 201, "").await;
    expect(
        &app,
        &spec,
        enroll,
        &enroll_uri,
        &viewer,
        Body::empty(),
        409,
        "already_granted",
    )
    .await;
    expect(
        &app,
        &spec,
        claim,
        &claim_uri,
        &viewer,
        "[",
        400,
        "invalid_json",
    )
    .await;

    // Once ended, a live token is refused, a replay one is not.
    let end_uri = format!("/api/v1/streams/{id}");
    expect(
        &app,
        &spec,
        ("DELETE", "/api/v1/streams/{id}"),
        &end_uri,
        &admin,
        Body::empty(),
        200,
        "",
    )
    .await;
    expect(
        &app,
        &spec,
        issue,
        &uri,
        &viewer,
        Body::empty(),
        409,
        "invalid_transition",
    )
    .await;
    let replayed = expect(&app, &spec, issue, &uri, &viewer, replay, 201, "").await;
    assert_eq!(replayed["webrtc_url"], Value::Null);
    let mut headers = vec![bearer(&watch_token)];
    headers.push(sdp);
    expect(
        &app,
        &spec,
        whep,
        &whep_uri,
        &headers,
        SDP_OFFER,
        409,
        "stream_ended",
    )
    .await;
    app.engine.shutdown().await;
}

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
