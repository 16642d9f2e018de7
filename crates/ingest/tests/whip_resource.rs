//! WHIP resource behaviour (RFC 9725), driven with `oneshot` against a real engine.

mod common;

use common::*;
use http::{StatusCode, header};

const SDP: (&str, &str) = ("content-type", "application/sdp");
const TRICKLE: (&str, &str) = ("content-type", "application/trickle-ice-sdpfrag");

fn whip_url(stream: &str) -> String {
    format!("/whip/{stream}")
}

#[tokio::test]
async fn options_on_the_endpoint_advertises_sdp_and_cors() {
    let (app, _engine) = app().await;
    let answer = send(&app, request("OPTIONS", &whip_url(LIVE), &[], "")).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(answer.header("accept-post"), Some("application/sdp"));
    assert_eq!(
        answer.header(header::ACCESS_CONTROL_ALLOW_METHODS),
        Some("POST, PATCH, DELETE, OPTIONS")
    );
    assert_eq!(
        answer.header(header::ACCESS_CONTROL_ALLOW_HEADERS),
        Some("Authorization, Content-Type, If-Match")
    );
    assert_cors(&answer);
}

#[tokio::test]
async fn options_on_a_session_advertises_trickle_and_cors() {
    let (app, _engine) = app().await;
    let answer = send(&app, request("OPTIONS", "/whip/x/y", &[], "")).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(
        answer.header("accept-patch"),
        Some("application/trickle-ice-sdpfrag")
    );
    assert_cors(&answer);
}

#[tokio::test]
async fn an_offer_without_the_sdp_content_type_is_415() {
    let (app, _engine) = app().await;
    let auth = bearer(LIVE_KEY);
    for content_type in [None, Some("text/plain"), Some("application/json")] {
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        let answer = send(&app, request("POST", &whip_url(LIVE), &headers, "v=0\r\n")).await;
        answer.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
}

#[tokio::test]
async fn an_offer_without_a_bearer_token_is_401_with_a_challenge() {
    let (app, _engine) = app().await;
    let answer = send(&app, request("POST", &whip_url(LIVE), &[SDP], "v=0\r\n")).await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(answer.header(header::WWW_AUTHENTICATE), Some("Bearer"));
    let basic = [SDP, ("authorization", "Basic dXNlcjpwYXNz")];
    let answer = send(&app, request("POST", &whip_url(LIVE), &basic, "v=0\r\n")).await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn an_offer_with_a_wrong_key_is_401() {
    let (app, _engine) = app().await;
    let auth = bearer(ENDED_KEY);
    let answer = send(
        &app,
        request(
            "POST",
            &whip_url(LIVE),
            &[SDP, ("authorization", &auth)],
            "v=0\r\n",
        ),
    )
    .await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(answer.header(header::WWW_AUTHENTICATE), Some("Bearer"));
}

#[tokio::test]
async fn an_offer_to_an_unknown_stream_is_404() {
    let (app, _engine) = app().await;
    let auth = bearer(LIVE_KEY);
    let answer = send(
        &app,
        request(
            "POST",
            "/whip/nosuchstreamaaaa",
            &[SDP, ("authorization", &auth)],
            "v=0\r\n",
        ),
    )
    .await;
    answer.assert_error(StatusCode::NOT_FOUND, "stream_not_found");
}

#[tokio::test]
async fn an_offer_to_an_ended_stream_is_409() {
    let (app, _engine) = app().await;
    let auth = bearer(ENDED_KEY);
    let answer = send(
        &app,
        request(
            "POST",
            &whip_url(ENDED),
            &[SDP, ("authorization", &auth)],
            publisher_offer(),
        ),
    )
    .await;
    answer.assert_error(StatusCode::CONFLICT, "stream_ended");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let (app, _engine) = app().await;
    let auth = bearer(LIVE_KEY);
    let big = "a".repeat(64 * 1024 + 1);
    // Without Content-Length: the limit stops the read.
    let answer = send(
        &app,
        request(
            "POST",
            &whip_url(LIVE),
            &[SDP, ("authorization", &auth)],
            big.clone(),
        ),
    )
    .await;
    answer.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // With Content-Length: refused before reading.
    let length = big.len().to_string();
    let headers = [SDP, ("authorization", &auth), ("content-length", &length)];
    let answer = send(&app, request("POST", &whip_url(LIVE), &headers, big)).await;
    answer.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn a_malformed_offer_is_400_invalid_sdp() {
    let (app, _engine) = app().await;
    let auth = bearer(LIVE_KEY);
    let headers = [SDP, ("authorization", auth.as_str())];
    for body in [
        &b"this is not SDP"[..],
        b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video\r\n",
        b"",
        b"   \r\n",
        b"\xff\xfe\xfd",
    ] {
        let answer = send(
            &app,
            request("POST", &whip_url(LIVE), &headers, body.to_vec()),
        )
        .await;
        answer.assert_error(StatusCode::BAD_REQUEST, "invalid_sdp");
    }
}

#[tokio::test]
async fn an_authority_failure_is_a_500_without_detail() {
    let (app, _engine) = app().await;
    let auth = bearer(LIVE_KEY);
    let answer = send(
        &app,
        request(
            "POST",
            &whip_url(BROKEN),
            &[SDP, ("authorization", &auth)],
            "v=0\r\n",
        ),
    )
    .await;
    answer.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert_eq!(answer.error_message(), "internal server error");
    assert!(!answer.text().contains("secret detail"));
}

#[tokio::test]
async fn a_patch_without_the_trickle_content_type_is_415() {
    let (app, _engine) = app().await;
    let auth = bearer(LIVE_KEY);
    let answer = send(
        &app,
        request(
            "PATCH",
            "/whip/livestreamaaaaaa/session",
            &[SDP, ("authorization", &auth)],
            TRICKLE_FRAGMENT,
        ),
    )
    .await;
    answer.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
}

#[tokio::test]
async fn a_patch_without_the_stream_key_is_401() {
    let (app, _engine) = app().await;
    let answer = send(
        &app,
        request(
            "PATCH",
            "/whip/livestreamaaaaaa/session",
            &[TRICKLE],
            TRICKLE_FRAGMENT,
        ),
    )
    .await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn a_patch_or_delete_of_an_unknown_session_is_404() {
    let (app, _engine) = app().await;
    let auth = bearer(LIVE_KEY);
    let answer = send(
        &app,
        request(
            "PATCH",
            "/whip/livestreamaaaaaa/nosuchsession",
            &[TRICKLE, ("authorization", &auth)],
            TRICKLE_FRAGMENT,
        ),
    )
    .await;
    answer.assert_error(StatusCode::NOT_FOUND, "session_not_found");
    let answer = send(
        &app,
        request(
            "DELETE",
            "/whip/livestreamaaaaaa/nosuchsession",
            &[("authorization", &auth)],
            "",
        ),
    )
    .await;
    answer.assert_error(StatusCode::NOT_FOUND, "session_not_found");
}

#[tokio::test]
async fn an_unsupported_method_is_405_json() {
    let (app, _engine) = app().await;
    let answer = send(&app, request("GET", &whip_url(LIVE), &[], "")).await;
    answer.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let answer = send(
        &app,
        request("PUT", "/whip/livestreamaaaaaa/session", &[], ""),
    )
    .await;
    answer.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn a_publish_session_lives_through_patch_and_delete() {
    let (app, engine) = app().await;
    let auth = bearer(LIVE_KEY);
    let answer = send(
        &app,
        request(
            "POST",
            &whip_url(LIVE),
            &[SDP, ("authorization", &auth)],
            publisher_offer(),
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
    assert!(
        answer.text().starts_with("v=0"),
        "an SDP answer: {}",
        answer.text()
    );
    let location = answer
        .header(header::LOCATION)
        .unwrap_or_default()
        .to_owned();
    assert!(
        location.starts_with("/whip/livestreamaaaaaa/"),
        "{location}"
    );
    let etag = answer.header(header::ETAG).unwrap_or_default().to_owned();
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "{etag}"
    );
    assert_eq!(
        answer.header("accept-patch"),
        Some("application/trickle-ice-sdpfrag")
    );
    let links: Vec<&str> = answer
        .headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(
        links,
        [
            "<stun:stun.example.net:3478>; rel=\"ice-server\"",
            "<turn:turn.example.net:3478?transport=udp>; rel=\"ice-server\"; username=\"alice\"; credential=\"s3cret\"; credential-type=\"password\"",
        ]
    );
    assert_cors(&answer);

    // One publisher per stream.
    let busy = send(
        &app,
        request(
            "POST",
            &whip_url(LIVE),
            &[SDP, ("authorization", &auth)],
            publisher_offer(),
        ),
    )
    .await;
    busy.assert_error(StatusCode::CONFLICT, "stream_busy");

    // Trickle: 204 with an ETag; a stale If-Match is 412.
    let trickle = send(
        &app,
        request(
            "PATCH",
            &location,
            &[TRICKLE, ("authorization", &auth), ("if-match", &etag)],
            TRICKLE_FRAGMENT,
        ),
    )
    .await;
    assert_eq!(
        trickle.status,
        StatusCode::NO_CONTENT,
        "body: {}",
        trickle.text()
    );
    assert!(trickle.header(header::ETAG).is_some());
    let stale = send(
        &app,
        request(
            "PATCH",
            &location,
            &[TRICKLE, ("authorization", &auth), ("if-match", "\"stale\"")],
            TRICKLE_FRAGMENT,
        ),
    )
    .await;
    stale.assert_error(StatusCode::PRECONDITION_FAILED, "precondition_failed");

    // ICE restart: 200 with a fragment and a new ETag.
    let restart = send(
        &app,
        request(
            "PATCH",
            &location,
            &[TRICKLE, ("authorization", &auth)],
            RESTART_FRAGMENT,
        ),
    )
    .await;
    assert_eq!(restart.status, StatusCode::OK, "body: {}", restart.text());
    assert_eq!(
        restart.header(header::CONTENT_TYPE),
        Some("application/trickle-ice-sdpfrag")
    );
    assert!(
        restart.text().contains("a=ice-ufrag:"),
        "{}",
        restart.text()
    );
    assert_ne!(restart.header(header::ETAG), Some(etag.as_str()));

    // DELETE needs only the session URL (browsers send it from `pagehide` without headers);
    // a second DELETE finds nothing.
    let deleted = send(&app, request("DELETE", &location, &[], "")).await;
    assert_eq!(deleted.status, StatusCode::OK, "body: {}", deleted.text());
    assert_cors(&deleted);
    let again = send(
        &app,
        request("DELETE", &location, &[("authorization", &auth)], ""),
    )
    .await;
    again.assert_error(StatusCode::NOT_FOUND, "session_not_found");
    engine.shutdown().await;
}

#[tokio::test]
async fn a_publish_token_for_the_stream_replaces_the_key() {
    let (app, _engine) = app().await;
    let url = whip_url(PAID);
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
            playback_token("publish", LIVE),
            StatusCode::FORBIDDEN,
            "token_wrong_stream",
        ),
        (
            playback_token("watch", PAID),
            StatusCode::FORBIDDEN,
            "token_wrong_stream",
        ),
    ];
    for (token, status, code) in cases {
        let auth = bearer(&token);
        let headers = [SDP, ("authorization", auth.as_str())];
        let answer = send(&app, request("POST", &url, &headers, publisher_offer())).await;
        answer.assert_error(status, code);
    }
    let token = playback_token("publish", PAID);
    let in_query = format!("{url}?token={token}");
    let answer = send(&app, request("POST", &in_query, &[SDP], publisher_offer())).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
}

#[tokio::test]
async fn publishing_to_a_cancelled_stream_is_409_invalid_transition() {
    let (app, _engine) = app().await;
    let auth = bearer(CANCELLED_KEY);
    let headers = [SDP, ("authorization", auth.as_str())];
    let answer = send(
        &app,
        request("POST", &whip_url(CANCELLED), &headers, publisher_offer()),
    )
    .await;
    answer.assert_error(StatusCode::CONFLICT, "invalid_transition");
}
