//! WHEP resource behaviour, driven with `oneshot` against a real engine.

mod common;

use common::*;
use http::{StatusCode, header};

const SDP: (&str, &str) = ("content-type", "application/sdp");
const TRICKLE: (&str, &str) = ("content-type", "application/trickle-ice-sdpfrag");
const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn options_on_the_endpoint_advertises_sdp_and_cors() {
    let (app, _engine) = app().await;
    let answer = send(&app, request("OPTIONS", "/whep/livestreamaaaaaa", &[], "")).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(answer.header("accept-post"), Some("application/sdp"));
    assert_cors(&answer);
    let answer = send(
        &app,
        request("OPTIONS", "/whep/livestreamaaaaaa/session", &[], ""),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_cors(&answer);
}

#[tokio::test]
async fn a_bad_layer_is_400_invalid_layer() {
    let (app, _engine) = app().await;
    for query in ["layer=x", "layer=", "layer=HIGH", "layer=qq"] {
        let uri = format!("/whep/livestreamaaaaaa?{query}");
        let answer = send(&app, request("POST", &uri, &[SDP], viewer_offer())).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "invalid_layer");
    }
}

#[tokio::test]
async fn an_offer_for_an_unknown_stream_is_404() {
    let (app, _engine) = app().await;
    let answer = send(
        &app,
        request("POST", "/whep/nosuchstreamaaaa", &[SDP], viewer_offer()),
    )
    .await;
    answer.assert_error(StatusCode::NOT_FOUND, "stream_not_found");
}

#[tokio::test]
async fn an_offer_for_an_ended_stream_is_409() {
    let (app, _engine) = app().await;
    let answer = send(
        &app,
        request("POST", "/whep/endedstreamaaaaa", &[SDP], viewer_offer()),
    )
    .await;
    answer.assert_error(StatusCode::CONFLICT, "stream_ended");
}

#[tokio::test]
async fn an_offer_without_the_sdp_content_type_is_415() {
    let (app, _engine) = app().await;
    let answer = send(
        &app,
        request("POST", "/whep/livestreamaaaaaa", &[JSON], viewer_offer()),
    )
    .await;
    answer.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
}

#[tokio::test]
async fn a_malformed_offer_is_400_invalid_sdp() {
    let (app, _engine) = app().await;
    for body in ["garbage", "", "v=0\r\n"] {
        let answer = send(
            &app,
            request("POST", "/whep/livestreamaaaaaa", &[SDP], body),
        )
        .await;
        answer.assert_error(StatusCode::BAD_REQUEST, "invalid_sdp");
    }
}

#[tokio::test]
async fn a_patch_of_an_unknown_session_is_404() {
    let (app, _engine) = app().await;
    let uri = "/whep/livestreamaaaaaa/nosuchsession";
    let answer = send(&app, request("PATCH", uri, &[JSON], r#"{"layer":"q"}"#)).await;
    answer.assert_error(StatusCode::NOT_FOUND, "session_not_found");
    let answer = send(&app, request("PATCH", uri, &[TRICKLE], TRICKLE_FRAGMENT)).await;
    answer.assert_error(StatusCode::NOT_FOUND, "session_not_found");
    let answer = send(&app, request("DELETE", uri, &[], "")).await;
    answer.assert_error(StatusCode::NOT_FOUND, "session_not_found");
}

#[tokio::test]
async fn a_layer_patch_is_validated_before_the_engine() {
    let (app, _engine) = app().await;
    let uri = "/whep/livestreamaaaaaa/nosuchsession";
    let answer = send(&app, request("PATCH", uri, &[JSON], "{not json")).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    let answer = send(&app, request("PATCH", uri, &[JSON], r#"{"quality":"q"}"#)).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    let answer = send(&app, request("PATCH", uri, &[JSON], r#"{"layer":"z"}"#)).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "invalid_layer");
    let answer = send(
        &app,
        request("PATCH", uri, &[("content-type", "text/plain")], "q"),
    )
    .await;
    answer.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let answer = send(&app, request("PATCH", uri, &[], "q")).await;
    answer.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
}

#[tokio::test]
async fn a_viewer_may_arrive_before_the_publisher_and_change_layers() {
    let (app, engine) = app().await;
    let answer = send(
        &app,
        request(
            "POST",
            "/whep/livestreamaaaaaa?layer=h",
            &[SDP],
            viewer_offer(),
        ),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "body: {}",
        answer.text()
    );
    assert_eq!(answer.header(header::CONTENT_TYPE), Some("application/sdp"));
    let location = answer
        .header(header::LOCATION)
        .unwrap_or_default()
        .to_owned();
    assert!(
        location.starts_with("/whep/livestreamaaaaaa/"),
        "{location}"
    );
    assert!(answer.header(header::ETAG).is_some());
    assert_eq!(answer.headers.get_all(header::LINK).iter().count(), 2);
    assert_cors(&answer);

    let stats = engine.stream_stats(LIVE).await;
    assert!(!stats.live);
    assert_eq!(stats.viewers, 1);

    let changed = send(
        &app,
        request("PATCH", &location, &[JSON], r#"{"layer":"q"}"#),
    )
    .await;
    assert_eq!(
        changed.status,
        StatusCode::NO_CONTENT,
        "body: {}",
        changed.text()
    );
    assert_cors(&changed);
    let bad = send(
        &app,
        request("PATCH", &location, &[JSON], r#"{"layer":"x"}"#),
    )
    .await;
    bad.assert_error(StatusCode::BAD_REQUEST, "invalid_layer");
    let trickle = send(
        &app,
        request("PATCH", &location, &[TRICKLE], TRICKLE_FRAGMENT),
    )
    .await;
    assert_eq!(
        trickle.status,
        StatusCode::NO_CONTENT,
        "body: {}",
        trickle.text()
    );

    let deleted = send(&app, request("DELETE", &location, &[], "")).await;
    assert_eq!(deleted.status, StatusCode::OK, "body: {}", deleted.text());
    let again = send(&app, request("DELETE", &location, &[], "")).await;
    again.assert_error(StatusCode::NOT_FOUND, "session_not_found");
    engine.shutdown().await;
}

#[tokio::test]
async fn a_paid_stream_needs_a_watch_token_for_it() {
    let (app, _engine) = app().await;
    let url = format!("/whep/{PAID}");
    let answer = send(&app, request("POST", &url, &[SDP], viewer_offer())).await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "token_required");
    assert_eq!(answer.header(header::WWW_AUTHENTICATE), Some("Bearer"));
    let cases = [
        (
            FORGED_TOKEN.to_owned(),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            EXPIRED_TOKEN.to_owned(),
            StatusCode::UNAUTHORIZED,
            "token_expired",
        ),
        (
            playback_token("watch", LIVE),
            StatusCode::FORBIDDEN,
            "token_wrong_stream",
        ),
        (
            playback_token("publish", PAID),
            StatusCode::FORBIDDEN,
            "token_wrong_stream",
        ),
    ];
    for (token, status, code) in cases {
        let auth = bearer(&token);
        let headers = [SDP, ("authorization", auth.as_str())];
        let answer = send(&app, request("POST", &url, &headers, viewer_offer())).await;
        answer.assert_error(status, code);
        let in_query = format!("{url}?token={token}");
        let answer = send(&app, request("POST", &in_query, &[SDP], viewer_offer())).await;
        answer.assert_error(status, code);
    }
    // The right token, as a header or in the URL (next to a layer cap), is let through.
    let token = playback_token("watch", PAID);
    let auth = bearer(&token);
    let headers = [SDP, ("authorization", auth.as_str())];
    let answer = send(&app, request("POST", &url, &headers, viewer_offer())).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let in_query = format!("{url}?layer=q&token={token}");
    let answer = send(&app, request("POST", &in_query, &[SDP], viewer_offer())).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());

    // The session is renewed with a fresh token; a bad one is refused and changes nothing.
    let location = answer
        .header(header::LOCATION)
        .expect("session location")
        .to_owned();
    let renew = |body: String| request("PATCH", &location, &[JSON], body);
    let answer = send(&app, renew(format!(r#"{{"token":"{token}"}}"#))).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    let answer = send(&app, renew(format!(r#"{{"token":"{token}","layer":"h"}}"#))).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    let answer = send(&app, renew(format!(r#"{{"token":"{FORGED_TOKEN}"}}"#))).await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
    let answer = send(&app, renew(format!(r#"{{"token":"{EXPIRED_TOKEN}"}}"#))).await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "token_expired");
    let other = playback_token("watch", LIVE);
    let answer = send(&app, renew(format!(r#"{{"token":"{other}"}}"#))).await;
    answer.assert_error(StatusCode::FORBIDDEN, "token_wrong_stream");
    let answer = send(&app, renew("{}".to_owned())).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "invalid_json");
}

#[tokio::test]
async fn a_free_stream_ignores_tokens() {
    let (app, _engine) = app().await;
    let uri = format!("/whep/{LIVE}?token={FORGED_TOKEN}");
    let answer = send(&app, request("POST", &uri, &[SDP], viewer_offer())).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
}
