//! A stream of a channel published over RTMP (ffmpeg) shows up live in discovery.

use super::*;
use binary::ffmpeg_publish;

#[tokio::test]
async fn a_channel_stream_published_over_rtmp_is_discovered_live() {
    let server = binary::start_server(ADMIN, "greenroom=info,warn");
    let api = Api {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let cam = sign_up_and_in(&api.http, &api.base, "cam@example.com", "creator").await;
    let cam = Who::Token(&cam);
    api.ok(
        cam,
        "POST",
        "/api/v1/channels",
        Some(json!({"handle": "camera", "display_name": "Camera"})),
        201,
    )
    .await;
    let stream = api
        .ok(
            cam,
            "POST",
            "/api/v1/streams",
            Some(json!({
                "title": "Early bird",
                "scheduled_at": rfc3339_in(Duration::from_secs(3600)),
            })),
            201,
        )
        .await;
    let id = stream["id"].as_str().expect("id").to_owned();
    let rtmp_url = stream["rtmp_url"].as_str().expect("RTMP is on").to_owned();
    api.ok(
        Who::Admin,
        "POST",
        "/api/v1/streams",
        Some(json!({"title": "operator"})),
        201,
    )
    .await;
    let discover = api
        .ok(Who::Nobody, "GET", "/api/v1/discover", None, 200)
        .await;
    assert_eq!(ids(&discover["upcoming"]), vec![id.clone()]);

    let _ffmpeg = ffmpeg_publish(&rtmp_url, "320x240", 20, 30, 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    let discover = loop {
        let discover = api
            .ok(Who::Nobody, "GET", "/api/v1/discover", None, 200)
            .await;
        if !discover["live"].as_array().is_none_or(Vec::is_empty) {
            break discover;
        }
        assert!(Instant::now() < deadline, "never live: {discover}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ids(&discover["live"]), vec![id.clone()], "{discover}");
    assert_eq!(discover["live"][0]["status"], "live");
    assert_eq!(discover["live"][0]["channel"], "camera");
    assert_eq!(
        discover["upcoming"],
        json!([]),
        "a live stream is not upcoming"
    );
    assert_no_secrets(&discover.to_string(), "discover");
    let profile = api
        .ok(Who::Nobody, "GET", "/api/v1/channels/camera", None, 200)
        .await;
    assert_eq!(ids(&profile["live"]), vec![id.clone()]);
    assert_eq!(profile["upcoming"], json!([]));
    let status = api
        .ok(
            Who::Nobody,
            "GET",
            &format!("/api/v1/streams/{id}/status"),
            None,
            200,
        )
        .await;
    assert_eq!(status["status"], "live");
    let owner_view = api
        .ok(cam, "GET", &format!("/api/v1/streams/{id}"), None, 200)
        .await;
    assert_eq!(owner_view["status"], "live");
}
