//! Channels and the stream lifecycle through the real binary: creators sign up and make
//! their channel, run scheduled (free and paid) streams in it, reschedule, cancel and end them;
//! who may see and change what (anonymous 401, other accounts 403, the owner and the admin
//! yes); the public views (status, channel profile, discovery, calendar) never show a key; a
//! stream published over RTMP shows up as live in discovery.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "../binary/mod.rs"]
mod binary;
mod client;
mod rtmp;

use binary::sign_up_and_in;
use client::{Api, Who};

const ADMIN: &str = "test-admin-token-channels-0123456789";

fn rfc3339_in(from_now: Duration) -> String {
    (chrono::Utc::now() + from_now).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

fn assert_no_secrets(text: &str, what: &str) {
    assert!(!text.contains("stream_key"), "{what}: {text}");
    assert!(!text.contains("sk_"), "{what}: {text}");
    assert!(!text.contains("rtmp://"), "{what}: {text}");
}

#[tokio::test]
async fn creators_run_their_channel_and_its_streams() {
    let server = binary::start_server(ADMIN, "greenroom=info,warn");
    let api = Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let ann = sign_up_and_in(&api.http, &api.base, "ann@example.com", "creator").await;
    let bob = sign_up_and_in(&api.http, &api.base, "bob@example.com", "creator").await;
    let val = sign_up_and_in(&api.http, &api.base, "val@example.com", "viewer").await;
    let (ann, bob, val) = (Who::Token(&ann), Who::Token(&bob), Who::Token(&val));

    // --- The channel -------------------------------------------------------------------
    let new_channel = json!({"handle": "@Ann_Live", "display_name": "Ann Live", "bio": "Sundays"});
    let post = Some(new_channel.clone());
    api.refused(
        Who::Nobody,
        "POST",
        "/api/v1/channels",
        post.clone(),
        401,
        "unauthorized",
    )
    .await;
    api.refused(
        Who::Admin,
        "POST",
        "/api/v1/channels",
        post.clone(),
        403,
        "forbidden",
    )
    .await;
    api.refused(
        val,
        "POST",
        "/api/v1/channels",
        post.clone(),
        403,
        "forbidden",
    )
    .await;
    for (bad, code) in [
        (
            json!({"handle": "ab", "display_name": "A"}),
            "invalid_channel",
        ),
        (
            json!({"handle": "admin", "display_name": "A"}),
            "invalid_channel",
        ),
        (
            json!({"handle": "ann-live", "display_name": "A"}),
            "invalid_channel",
        ),
        (
            json!({"handle": "annlive", "display_name": ""}),
            "invalid_channel",
        ),
        (json!({"handle": "annlive"}), "invalid_channel"),
        (json!({"handle": 5, "display_name": "A"}), "invalid_channel"),
        (
            json!({"handle": "annlive", "display_name": "A", "color": "red"}),
            "invalid_channel",
        ),
    ] {
        api.refused(ann, "POST", "/api/v1/channels", Some(bad), 422, code)
            .await;
    }
    let channel = api
        .ok(ann, "POST", "/api/v1/channels", post.clone(), 201)
        .await;
    assert_eq!(channel["handle"], "ann_live", "{channel}");
    assert_eq!(channel["display_name"], "Ann Live");
    assert_eq!(channel["bio"], "Sundays");
    assert_eq!(channel["stripe_account_id"], Value::Null);
    assert_eq!(
        channel["url"],
        format!("{}/api/v1/channels/ann_live", api.base)
    );
    api.refused(
        ann,
        "POST",
        "/api/v1/channels",
        post.clone(),
        409,
        "channel_exists",
    )
    .await;
    api.refused(
        bob,
        "POST",
        "/api/v1/channels",
        post.clone(),
        409,
        "handle_taken",
    )
    .await;

    let (status, profile_text) = api
        .call_text(Who::Nobody, "GET", "/api/v1/channels/@ANN_live", None)
        .await;
    assert_eq!(status, 200, "{profile_text}");
    let profile: Value = serde_json::from_str(&profile_text).expect("JSON");
    assert_eq!(profile["handle"], "ann_live");
    assert_eq!(profile["live"], json!([]));
    assert_eq!(profile["upcoming"], json!([]));
    api.refused(
        Who::Nobody,
        "GET",
        "/api/v1/channels/nobody_here",
        None,
        404,
        "channel_not_found",
    )
    .await;

    let patch = Some(json!({"stripe_account_id": "acct_1AbCdEf"}));
    api.refused(
        Who::Nobody,
        "PATCH",
        "/api/v1/channels/ann_live",
        patch.clone(),
        401,
        "unauthorized",
    )
    .await;
    api.refused(
        bob,
        "PATCH",
        "/api/v1/channels/ann_live",
        patch.clone(),
        403,
        "forbidden",
    )
    .await;
    api.refused(
        ann,
        "PATCH",
        "/api/v1/channels/ann_live",
        Some(json!({"stripe_account_id": "cus_123"})),
        422,
        "invalid_channel",
    )
    .await;
    api.refused(
        ann,
        "PATCH",
        "/api/v1/channels/ann_live",
        Some(json!({"handle": "other"})),
        422,
        "invalid_channel",
    )
    .await;
    let changed = api
        .ok(ann, "PATCH", "/api/v1/channels/ann_live", patch, 200)
        .await;
    assert_eq!(changed["stripe_account_id"], "acct_1AbCdEf");
    let changed = api
        .ok(
            Who::Admin,
            "PATCH",
            "/api/v1/channels/ann_live",
            Some(json!({"bio": "Sundays at noon"})),
            200,
        )
        .await;
    assert_eq!(changed["bio"], "Sundays at noon");
    assert_eq!(changed["stripe_account_id"], "acct_1AbCdEf");
    let public = api
        .ok(Who::Nobody, "GET", "/api/v1/channels/ann_live", None, 200)
        .await;
    assert!(public.get("stripe_account_id").is_none(), "{public}");
    let own = api
        .ok(ann, "GET", "/api/v1/channels/ann_live", None, 200)
        .await;
    assert_eq!(own["stripe_account_id"], "acct_1AbCdEf");

    // --- Streams in the channel --------------------------------------------------------
    let at = rfc3339_in(Duration::from_secs(2 * 3600));
    let new_stream = json!({
        "title": "Launch party",
        "description": "Bring snacks; and friends, too.",
        "scheduled_at": at,
        "access": "paid",
        "price_tokens": 50,
        "replay_access_days": 7,
    });
    // Nobody signed in; a viewer; another creator; ann in bob's channel, or with an RTSP
    // source (the admin's only).
    for (who, body, status, code) in [
        (Who::Nobody, new_stream.clone(), 401, "unauthorized"),
        (val, new_stream.clone(), 403, "forbidden"),
        (bob, new_stream.clone(), 403, "forbidden"),
        (
            ann,
            json!({"title": "x", "channel": "bob"}),
            403,
            "forbidden",
        ),
        (
            ann,
            json!({"title": "x", "source_url": "rtsp://10.0.0.1/x"}),
            403,
            "forbidden",
        ),
    ] {
        api.refused(who, "POST", "/api/v1/streams", Some(body), status, code)
            .await;
    }
    for bad in [
        json!({"title": "x", "scheduled_at": "tomorrow"}),
        json!({"title": "x", "scheduled_at": "2001-01-01T00:00:00Z"}),
        json!({"title": "x", "access": "gold"}),
        json!({"title": "x", "price_tokens": 5}),
        json!({"title": "x", "access": "paid", "price_tokens": 0}),
        json!({"title": "x", "replay_access_days": 0}),
        json!({"title": "x", "description": "d".repeat(5001)}),
    ] {
        api.refused(
            ann,
            "POST",
            "/api/v1/streams",
            Some(bad),
            422,
            "invalid_stream_setting",
        )
        .await;
    }
    let launch = api
        .ok(ann, "POST", "/api/v1/streams", Some(new_stream), 201)
        .await;
    let launch_id = launch["id"].as_str().expect("id").to_owned();
    assert_eq!(launch["status"], "scheduled", "{launch}");
    assert_eq!(launch["channel"], "ann_live");
    assert_eq!(launch["access"], "paid");
    assert_eq!(launch["price_tokens"], 50);
    assert_eq!(launch["replay_access_days"], 7);
    assert_eq!(launch["description"], "Bring snacks; and friends, too.");
    assert!(
        launch["stream_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("sk_"))
    );
    let scheduled_at = launch["scheduled_at"]
        .as_str()
        .expect("scheduled_at")
        .to_owned();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&scheduled_at).expect("time"),
        chrono::DateTime::parse_from_rfc3339(&at).expect("time")
    );
    let calendar_path = format!("/api/v1/streams/{launch_id}/calendar.ics");
    assert_eq!(
        launch["calendar_url"],
        format!("{}{calendar_path}", api.base)
    );

    let idle = api
        .ok(
            ann,
            "POST",
            "/api/v1/streams",
            Some(json!({"title": "Just chatting"})),
            201,
        )
        .await;
    let idle_id = idle["id"].as_str().expect("id").to_owned();
    assert_eq!(idle["status"], "idle");
    assert_eq!(idle["access"], "free");
    assert_eq!(idle["calendar_url"], Value::Null);

    // The admin's streams: no channel, free, as before; or in a channel it names.
    let operator = api
        .ok(
            Who::Admin,
            "POST",
            "/api/v1/streams",
            Some(json!({"title": "Lobby"})),
            201,
        )
        .await;
    assert_eq!(operator["channel"], Value::Null);
    assert_eq!(operator["status"], "idle");
    assert_eq!(operator["access"], "free");
    let operator_id = operator["id"].as_str().expect("id").to_owned();
    let placed = api
        .ok(
            Who::Admin,
            "POST",
            "/api/v1/streams",
            Some(json!({"title": "Guest slot", "channel": "@Ann_Live"})),
            201,
        )
        .await;
    assert_eq!(placed["channel"], "ann_live");
    let placed_id = placed["id"].as_str().expect("id").to_owned();
    api.refused(
        Who::Admin,
        "POST",
        "/api/v1/streams",
        Some(json!({"title": "x", "channel": "nobody_here"})),
        404,
        "channel_not_found",
    )
    .await;

    // Who lists and reads what.
    let mine = api.ok(ann, "GET", "/api/v1/streams", None, 200).await;
    assert_eq!(
        ids(&mine),
        vec![placed_id.clone(), idle_id.clone(), launch_id.clone()]
    );
    assert_eq!(
        api.ok(bob, "GET", "/api/v1/streams", None, 200).await,
        json!([])
    );
    api.refused(val, "GET", "/api/v1/streams", None, 403, "forbidden")
        .await;
    api.refused(
        Who::Nobody,
        "GET",
        "/api/v1/streams",
        None,
        401,
        "unauthorized",
    )
    .await;
    let all = ids(&api
        .ok(Who::Admin, "GET", "/api/v1/streams", None, 200)
        .await);
    for id in [&launch_id, &idle_id, &operator_id, &placed_id] {
        assert!(all.contains(id), "the admin lists {id}: {all:?}");
    }
    let launch_path = format!("/api/v1/streams/{launch_id}");
    api.refused(Who::Nobody, "GET", &launch_path, None, 401, "unauthorized")
        .await;
    api.refused(bob, "GET", &launch_path, None, 403, "forbidden")
        .await;
    api.refused(val, "GET", &launch_path, None, 403, "forbidden")
        .await;
    api.refused(
        bob,
        "GET",
        &format!("/api/v1/streams/{operator_id}"),
        None,
        403,
        "forbidden",
    )
    .await;
    api.refused(
        ann,
        "GET",
        "/api/v1/streams/aaaaaaaaaaaaaaaa",
        None,
        404,
        "stream_not_found",
    )
    .await;
    assert_eq!(
        api.ok(ann, "GET", &launch_path, None, 200).await["id"],
        launch_id.as_str()
    );
    assert_eq!(
        api.ok(Who::Admin, "GET", &launch_path, None, 200).await["channel"],
        "ann_live"
    );

    // The public views.
    let (status, text) = api
        .call_text(Who::Nobody, "GET", &format!("{launch_path}/status"), None)
        .await;
    assert_eq!(status, 200, "{text}");
    assert_no_secrets(&text, "status");
    let public: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(public["status"], "scheduled");
    assert_eq!(public["channel"], "ann_live");
    assert_eq!(public["access"], "paid");
    assert_eq!(public["price_tokens"], 50);
    assert_eq!(public["replay_access_days"], 7);
    assert_eq!(public["scheduled_at"], scheduled_at.as_str());
    assert_eq!(public["description"], "Bring snacks; and friends, too.");
    assert_eq!(public["viewers"], 0);

    let (status, text) = api
        .call_text(Who::Nobody, "GET", "/api/v1/channels/ann_live", None)
        .await;
    assert_eq!(status, 200);
    assert_no_secrets(&text, "profile");
    let profile: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(ids(&profile["upcoming"]), vec![launch_id.clone()]);
    assert_eq!(profile["live"], json!([]));

    let (status, text) = api
        .call_text(Who::Nobody, "GET", "/api/v1/discover", None)
        .await;
    assert_eq!(status, 200);
    assert_no_secrets(&text, "discover");
    let discover: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(ids(&discover["upcoming"]), vec![launch_id.clone()]);
    assert_eq!(discover["upcoming"][0]["channel"], "ann_live");
    assert_eq!(discover["live"], json!([]));
    for bad in ["0", "101", "ten", "-1"] {
        api.refused(
            Who::Nobody,
            "GET",
            &format!("/api/v1/discover?limit={bad}"),
            None,
            400,
            "invalid_request",
        )
        .await;
    }
    api.ok(Who::Nobody, "GET", "/api/v1/discover?limit=100", None, 200)
        .await;

    // The calendar event.
    let response = api
        .http
        .get(format!("{}{calendar_path}", api.base))
        .send()
        .await
        .expect("GET calendar");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/calendar; charset=utf-8")
    );
    let ics = response.text().await.expect("ics");
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"), "{ics}");
    assert!(ics.ends_with("END:VCALENDAR\r\n"), "{ics}");
    assert!(!ics.replace("\r\n", "").contains('\n'), "bare LF in {ics}");
    let unfolded = ics.replace("\r\n ", "");
    assert!(
        unfolded.contains(&format!("\r\nUID:{launch_id}@127.0.0.1\r\n")),
        "{ics}"
    );
    assert!(unfolded.contains("\r\nSUMMARY:Launch party\r\n"), "{ics}");
    assert!(
        unfolded.contains("Bring snacks\\; and friends\\, too."),
        "{ics}"
    );
    assert!(unfolded.contains("\r\nSTATUS:CONFIRMED\r\n"), "{ics}");
    assert!(
        unfolded.contains(&format!("\r\nURL:{}/watch/{launch_id}\r\n", api.base)),
        "{ics}"
    );
    api.refused(
        Who::Nobody,
        "GET",
        &format!("/api/v1/streams/{idle_id}/calendar.ics"),
        None,
        404,
        "not_scheduled",
    )
    .await;
    api.refused(
        Who::Nobody,
        "GET",
        "/api/v1/streams/aaaaaaaaaaaaaaaa/calendar.ics",
        None,
        404,
        "stream_not_found",
    )
    .await;

    // Settings.
    api.refused(
        bob,
        "PATCH",
        &launch_path,
        Some(json!({"price_tokens": 80})),
        403,
        "forbidden",
    )
    .await;
    api.refused(
        Who::Nobody,
        "PATCH",
        &launch_path,
        Some(json!({"price_tokens": 80})),
        401,
        "unauthorized",
    )
    .await;
    for bad in [
        json!({"access": "gold"}),
        json!({"access": null}),
        json!({"price_tokens": "80"}),
        json!({"access": "free", "price_tokens": 5}),
        json!({"replay_access_days": 4000}),
    ] {
        api.refused(
            ann,
            "PATCH",
            &launch_path,
            Some(bad),
            422,
            "invalid_stream_setting",
        )
        .await;
    }
    api.refused(
        ann,
        "PATCH",
        &launch_path,
        Some(json!({"scheduled_at": at})),
        422,
        "invalid_recording_setting",
    )
    .await;
    let patched = api
        .ok(
            ann,
            "PATCH",
            &launch_path,
            Some(json!({"price_tokens": 80, "description": "New plan", "record": false})),
            200,
        )
        .await;
    assert_eq!(patched["price_tokens"], 80);
    assert_eq!(patched["description"], "New plan");
    assert_eq!(patched["record"], false);
    assert_eq!(patched["replay_access_days"], 7);
    let freed = api
        .ok(
            Who::Admin,
            "PATCH",
            &launch_path,
            Some(json!({"access": "free"})),
            200,
        )
        .await;
    assert_eq!(freed["access"], "free");
    assert_eq!(freed["price_tokens"], Value::Null);

    // Scheduling, ending and cancelling.
    let schedule_path = format!("{launch_path}/schedule");
    let later = rfc3339_in(Duration::from_secs(5 * 3600));
    api.refused(
        bob,
        "POST",
        &schedule_path,
        Some(json!({"scheduled_at": later})),
        403,
        "forbidden",
    )
    .await;
    for bad in [
        json!({}),
        json!({"scheduled_at": null}),
        json!({"scheduled_at": "2001-01-01T00:00:00Z"}),
        json!({"scheduled_at": rfc3339_in(Duration::from_secs(400 * 24 * 3600))}),
        json!({"scheduled_at": later, "title": "x"}),
    ] {
        api.refused(
            ann,
            "POST",
            &schedule_path,
            Some(bad),
            422,
            "invalid_stream_setting",
        )
        .await;
    }
    let moved = api
        .ok(
            ann,
            "POST",
            &schedule_path,
            Some(json!({"scheduled_at": later})),
            200,
        )
        .await;
    assert_eq!(moved["status"], "scheduled");
    assert_ne!(moved["scheduled_at"], scheduled_at.as_str());

    let scheduled_idle = api
        .ok(
            ann,
            "POST",
            &format!("/api/v1/streams/{idle_id}/schedule"),
            Some(json!({"scheduled_at": later})),
            200,
        )
        .await;
    assert_eq!(
        scheduled_idle["status"], "scheduled",
        "an idle stream becomes scheduled"
    );

    api.refused(ann, "DELETE", &launch_path, None, 409, "invalid_transition")
        .await;
    let cancel_path = format!("{launch_path}/cancel");
    api.refused(bob, "POST", &cancel_path, None, 403, "forbidden")
        .await;
    api.refused(Who::Nobody, "POST", &cancel_path, None, 401, "unauthorized")
        .await;
    let cancelled = api.ok(ann, "POST", &cancel_path, None, 200).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string());
    assert!(cancelled["ended_at"].is_string());
    assert_eq!(
        api.ok(ann, "POST", &cancel_path, None, 200).await["status"],
        "cancelled"
    );
    api.refused(
        ann,
        "POST",
        &schedule_path,
        Some(json!({"scheduled_at": later})),
        409,
        "invalid_transition",
    )
    .await;
    let ics = api
        .call_text(Who::Nobody, "GET", &calendar_path, None)
        .await
        .1;
    assert!(ics.contains("\r\nSTATUS:CANCELLED\r\n"), "{ics}");
    let status = api
        .ok(
            Who::Nobody,
            "GET",
            &format!("{launch_path}/status"),
            None,
            200,
        )
        .await;
    assert_eq!(status["status"], "cancelled");
    let discover = api
        .ok(Who::Nobody, "GET", "/api/v1/discover", None, 200)
        .await;
    assert_eq!(ids(&discover["upcoming"]), vec![idle_id.clone()]);

    // An unscheduled stream is not cancelled but ended.
    let placed_path = format!("/api/v1/streams/{placed_id}");
    api.refused(
        ann,
        "POST",
        &format!("{placed_path}/cancel"),
        None,
        409,
        "invalid_transition",
    )
    .await;
    api.refused(bob, "DELETE", &placed_path, None, 403, "forbidden")
        .await;
    let ended = api.ok(ann, "DELETE", &placed_path, None, 200).await;
    assert_eq!(ended["status"], "ended");

    // Recordings: the owner and the admin.
    let recordings = format!("{launch_path}/recordings");
    assert_eq!(api.ok(ann, "GET", &recordings, None, 200).await, json!([]));
    assert_eq!(
        api.ok(Who::Admin, "GET", &recordings, None, 200).await,
        json!([])
    );
    api.refused(bob, "GET", &recordings, None, 403, "forbidden")
        .await;
    api.refused(Who::Nobody, "GET", &recordings, None, 401, "unauthorized")
        .await;
    api.refused(
        ann,
        "GET",
        "/api/v1/recordings/aaaaaaaaaaaaaaaa",
        None,
        404,
        "recording_not_found",
    )
    .await;
    api.refused(
        Who::Nobody,
        "GET",
        "/api/v1/recordings/aaaaaaaaaaaaaaaa",
        None,
        401,
        "unauthorized",
    )
    .await;
}
