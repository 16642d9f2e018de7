//! Paid streams: grants and playback tokens.

use super::*;

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
