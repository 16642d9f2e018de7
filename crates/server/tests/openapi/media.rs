//! HLS, replays and recordings answer as the document says: an app with HLS on and
//! recordings in a temporary local store.

use super::*;

struct HlsApp {
    app: TestApp,
    store: Store,
    storage: ObjectStore,
    hub: HlsHub,
}

async fn test_app_with_hls() -> HlsApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::connect(&Store::sqlite_url(dir.path()))
        .await
        .expect("open the store");
    let engine = start_engine().await;
    let storage = ObjectStore::local(dir.path().join("media")).expect("local storage");
    let spool = Spool::open(dir.path().join("spool"), storage.clone())
        .await
        .expect("open the spool");
    let recordings = Recordings {
        store: store.clone(),
        storage: storage.clone(),
        spool,
        default_retention_days: 30,
        active: Default::default(),
    };
    let hub = HlsHub::new(HlsOptions::default(), None);
    let state = AppState::new(
        store.clone(),
        engine.clone(),
        "https://live.example.com",
        ADMIN,
    )
    .with_hls(hub.clone(), recordings);
    HlsApp {
        app: TestApp::start(state, store.clone(), engine, dir).await,
        store,
        storage,
        hub,
    }
}

fn admin() -> Vec<(String, String)> {
    vec![("authorization".to_owned(), format!("Bearer {ADMIN}"))]
}

fn admin_json() -> Vec<(String, String)> {
    let mut headers = admin();
    headers.push(("content-type".to_owned(), "application/json".to_owned()));
    headers
}

fn range(value: &str) -> Vec<(String, String)> {
    vec![("range".to_owned(), value.to_owned())]
}

fn error_code(answer: &Answer) -> String {
    answer.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

const NO_SUCH_ID: &str = "zzzzzzzzzzzzzzzz";

#[tokio::test]
async fn stream_recording_settings_answer_as_documented() {
    let spec = spec();
    let hls = test_app_with_hls().await;
    let app = &hls.app;
    let create = ("POST", "/api/v1/streams");

    let answer = app
        .probe(
            &spec,
            create,
            "/api/v1/streams",
            &admin_json(),
            json!({ "title": "rehearsal", "record": false, "recording_retention_days": 7 })
                .to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let stream = answer.json();
    let id = stream["id"].as_str().expect("id");
    assert_eq!(stream["record"], false, "{stream:#}");
    assert_eq!(stream["recording_retention_days"], 7, "{stream:#}");
    assert_eq!(
        stream["hls_url"],
        format!("https://live.example.com/hls/{id}/master.m3u8")
    );
    assert_eq!(
        stream["recordings_url"],
        format!("https://live.example.com/api/v1/streams/{id}/recordings")
    );

    // The defaults: recorded, the server's retention.
    let (id, _) = app.create_stream().await;
    let answer = app
        .probe(
            &spec,
            ("GET", "/api/v1/streams/{id}"),
            &format!("/api/v1/streams/{id}"),
            &admin(),
            Body::empty(),
        )
        .await;
    let stream = answer.json();
    assert_eq!(stream["record"], true, "{stream:#}");
    assert_eq!(
        stream["recording_retention_days"],
        Value::Null,
        "{stream:#}"
    );

    for bad in [
        json!({ "title": "x", "recording_retention_days": 0 }),
        json!({ "title": "x", "recording_retention_days": 3651 }),
        json!({ "title": "x", "recording_retention_days": "7" }),
        json!({ "title": "x", "recording_retention_days": 1.5 }),
        json!({ "title": "x", "record": "yes" }),
    ] {
        let answer = app
            .probe(
                &spec,
                create,
                "/api/v1/streams",
                &admin_json(),
                bad.to_string(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(error_code(&answer), "invalid_recording_setting", "{bad}");
    }
    app.engine.shutdown().await;
}

#[tokio::test]
async fn recordings_and_replays_answer_as_documented() {
    let spec = spec();
    let hls = test_app_with_hls().await;
    let app = &hls.app;
    let (id, _) = app.create_stream().await;
    let list = ("GET", "/api/v1/streams/{id}/recordings");
    let get = ("GET", "/api/v1/recordings/{id}");
    let patch = ("PATCH", "/api/v1/recordings/{id}");
    let delete = ("DELETE", "/api/v1/recordings/{id}");
    let replay_top = ("GET", "/replays/{recording}/{file}");
    let replay_file = ("GET", "/replays/{recording}/{rendition}/{file}");

    // No recording yet.
    let uri = format!("/api/v1/streams/{id}/recordings");
    let answer = app.probe(&spec, list, &uri, &admin(), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!([]));
    let answer = app
        .probe(
            &spec,
            list,
            &format!("/api/v1/streams/{NO_SUCH_ID}/recordings"),
            &admin(),
            Body::empty(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&answer), "stream_not_found");
    let answer = app.send("GET", &uri, &[], Body::empty()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);

    // A finished recording with its replay in storage, and one still being written.
    let ready = hls.store.start_recording(&id).await.expect("start");
    hls.store
        .update_recording_progress(&ready.id, 6_000, 9_000, 3, &["720p".to_owned()], true)
        .await
        .expect("progress");
    let expires_ms = chrono::Utc::now().timestamp_millis() + 7 * 86_400_000;
    hls.store
        .finish_recording(&ready.id, Some(expires_ms))
        .await
        .expect("finish");
    let segment: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let prefix = ready.storage_prefix();
    let files: [(&str, &[u8], &str); 5] = [
        (
            "master.m3u8",
            b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=3000000\n720p/index.m3u8\n",
            "application/vnd.apple.mpegurl",
        ),
        ("thumbnail.jpg", b"\xff\xd8\xff\xe0 not really a JPEG", "image/jpeg"),
        (
            "720p/index.m3u8",
            b"#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000,\nseg0.m4s\n#EXT-X-ENDLIST\n",
            "application/vnd.apple.mpegurl",
        ),
        ("720p/init.mp4", b"\0\0\0\x18ftypiso6", "video/mp4"),
        ("720p/seg0.m4s", &segment, "video/iso.segment"),
    ];
    for (name, body, content_type) in files {
        hls.storage
            .put(
                &format!("{prefix}{name}"),
                Bytes::copy_from_slice(body),
                content_type,
            )
            .await
            .expect("store a replay file");
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let recording = hls.store.start_recording(&id).await.expect("start");

    // Listed newest first, each as documented.
    let answer = app.probe(&spec, list, &uri, &admin(), Body::empty()).await;
    assert_eq!(answer.status, StatusCode::OK);
    let listed = answer.json();
    let ids: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [recording.id.as_str(), ready.id.as_str()],
        "{listed:#}"
    );
    assert_eq!(listed[0]["status"], "recording", "{listed:#}");
    assert_eq!(listed[0]["ended_at"], Value::Null, "{listed:#}");
    assert_eq!(listed[0]["thumbnail_url"], Value::Null, "{listed:#}");
    assert_eq!(listed[0]["expires_at"], Value::Null, "{listed:#}");

    let ready_uri = format!("/api/v1/recordings/{}", ready.id);
    let answer = app
        .probe(&spec, get, &ready_uri, &admin(), Body::empty())
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let view = answer.json();
    assert_eq!(view["status"], "ready", "{view:#}");
    assert_eq!(view["stream_id"], id.as_str(), "{view:#}");
    assert_eq!(view["renditions"], json!(["720p"]), "{view:#}");
    assert_eq!(
        view["replay_url"],
        format!("https://live.example.com/replays/{}/master.m3u8", ready.id)
    );
    assert_eq!(
        view["thumbnail_url"],
        format!(
            "https://live.example.com/replays/{}/thumbnail.jpg",
            ready.id
        )
    );
    assert!(view["expires_at"].is_string(), "{view:#}");
    for method in ["GET", "PATCH", "DELETE"] {
        let operation = (method, "/api/v1/recordings/{id}");
        let uri = format!("/api/v1/recordings/{NO_SUCH_ID}");
        let body = json!({ "expires_at": null }).to_string();
        let answer = app.probe(&spec, operation, &uri, &admin_json(), body).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(error_code(&answer), "recording_not_found", "{method}");
    }

    // The expiry changes; nothing else does.
    for (expires_at, expected) in [
        (json!(null), json!(null)),
        (
            json!("2030-01-01T00:00:00+02:00"),
            json!("2029-12-31T22:00:00.000Z"),
        ),
    ] {
        let body = json!({ "expires_at": expires_at }).to_string();
        let answer = app
            .probe(&spec, patch, &ready_uri, &admin_json(), body)
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.json()["expires_at"], expected);
    }
    for bad in [
        json!({ "expires_at": "next week" }),
        json!({ "expires_at": 5 }),
        json!({}),
        json!({ "expires_at": null, "status": "ready" }),
    ] {
        let answer = app
            .probe(&spec, patch, &ready_uri, &admin_json(), bad.to_string())
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(error_code(&answer), "invalid_recording_setting", "{bad}");
    }
    let answer = app
        .probe(&spec, patch, &ready_uri, &admin_json(), "[]")
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&answer), "invalid_json");
    let answer = app
        .probe(&spec, patch, &ready_uri, &admin(), r#"{"expires_at":null}"#)
        .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A recording still being written is not deleted.
    let answer = app
        .probe(
            &spec,
            delete,
            &format!("/api/v1/recordings/{}", recording.id),
            &admin(),
            Body::empty(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&answer), "invalid_recording_setting");

    // The replay, whole and in ranges.
    let replay = format!("/replays/{}", ready.id);
    for (name, content_type) in [
        ("master.m3u8", "application/vnd.apple.mpegurl"),
        ("thumbnail.jpg", "image/jpeg"),
    ] {
        let uri = format!("{replay}/{name}");
        let answer = app.probe(&spec, replay_top, &uri, &[], Body::empty()).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}");
        assert_eq!(answer.header("content-type"), Some(content_type), "{uri}");
        assert_eq!(answer.header("cache-control"), Some("public, max-age=60"));
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
        let stored = files.iter().find(|f| f.0 == name).expect("file").1;
        assert_eq!(answer.body.as_ref(), stored, "{uri}");
    }
    for (name, content_type, cache) in [
        (
            "index.m3u8",
            "application/vnd.apple.mpegurl",
            "public, max-age=60",
        ),
        (
            "init.mp4",
            "video/mp4",
            "public, max-age=31536000, immutable",
        ),
        (
            "seg0.m4s",
            "video/iso.segment",
            "public, max-age=31536000, immutable",
        ),
    ] {
        let uri = format!("{replay}/720p/{name}");
        let answer = app
            .probe(&spec, replay_file, &uri, &[], Body::empty())
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}");
        assert_eq!(answer.header("content-type"), Some(content_type), "{uri}");
        assert_eq!(answer.header("cache-control"), Some(cache), "{uri}");
    }
    let segment_uri = format!("{replay}/720p/seg0.m4s");
    for (asked, first, last) in [
        ("bytes=0-99", 0, 99),
        ("bytes=4000-", 4000, 4095),
        ("bytes=-10", 4086, 4095),
        ("bytes=4090-9999", 4090, 4095),
    ] {
        let answer = app
            .probe(
                &spec,
                replay_file,
                &segment_uri,
                &range(asked),
                Body::empty(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::PARTIAL_CONTENT, "{asked}");
        assert_eq!(
            answer.header("content-range"),
            Some(format!("bytes {first}-{last}/4096").as_str()),
            "{asked}"
        );
        assert_eq!(answer.body.as_ref(), &segment[first..=last], "{asked}");
    }
    let answer = app
        .probe(
            &spec,
            replay_file,
            &segment_uri,
            &range("bytes=4096-"),
            Body::empty(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(error_code(&answer), "range_not_satisfiable");
    assert_eq!(answer.header("content-range"), Some("bytes */4096"));
    for asked in ["bytes=0-1,5-6", "items=0-1", "bytes=9-2"] {
        let answer = app
            .probe(
                &spec,
                replay_file,
                &segment_uri,
                &range(asked),
                Body::empty(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::RANGE_NOT_SATISFIABLE, "{asked}");
        assert_eq!(error_code(&answer), "range_not_satisfiable", "{asked}");
    }

    // What is not there.
    for (operation, uri, code) in [
        (
            replay_file,
            format!("{replay}/720p/seg7.m4s"),
            "hls_not_found",
        ),
        (
            replay_file,
            format!("{replay}/1080p/index.m3u8"),
            "hls_not_found",
        ),
        (
            replay_file,
            format!("{replay}/720p/seg0.0.m4s"),
            "hls_not_found",
        ),
        (
            replay_file,
            format!("{replay}/../index.m3u8"),
            "hls_not_found",
        ),
        (replay_top, format!("{replay}/poster.png"), "hls_not_found"),
        (
            replay_top,
            format!("/replays/{}/master.m3u8", recording.id),
            "hls_not_found",
        ),
        (
            replay_top,
            format!("/replays/{NO_SUCH_ID}/master.m3u8"),
            "recording_not_found",
        ),
        (
            replay_file,
            format!("/replays/{NO_SUCH_ID}/720p/index.m3u8"),
            "recording_not_found",
        ),
    ] {
        let answer = app.probe(&spec, operation, &uri, &[], Body::empty()).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(error_code(&answer), code, "{uri}");
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    }

    // Deleted: the record and its replay.
    let answer = app
        .probe(&spec, delete, &ready_uri, &admin(), Body::empty())
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let answer = app
        .probe(&spec, get, &ready_uri, &admin(), Body::empty())
        .await;
    assert_eq!(error_code(&answer), "recording_not_found");
    let answer = app
        .probe(
            &spec,
            replay_top,
            &format!("{replay}/master.m3u8"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(error_code(&answer), "recording_not_found");
    assert!(
        hls.storage.list(&prefix).await.expect("list").is_empty(),
        "the replay's files are left in storage"
    );
    app.engine.shutdown().await;
}

#[tokio::test]
async fn hls_answers_as_documented() {
    let spec = spec();
    let hls = test_app_with_hls().await;
    let app = &hls.app;
    let (id, _) = app.create_stream().await;
    let master = ("GET", "/hls/{stream}/master.m3u8");
    let file = ("GET", "/hls/{stream}/{session}/{rendition}/{file}");

    // Not live: the files are not found at once; a stream that does not exist neither.
    let answer = app
        .probe(
            &spec,
            file,
            &format!("/hls/{id}/1/720p/index.m3u8"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&answer), "hls_not_found");
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    let answer = app
        .probe(
            &spec,
            master,
            &format!("/hls/{NO_SUCH_ID}/master.m3u8"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&answer), "stream_not_found");

    // A session that has no segment yet.
    let sink = FrameTaps::open(&hls.hub, &id, SourceProtocol::Rtmp).expect("an HLS session");
    let session = hls.hub.get(&id).expect("the session").session;
    let master_uri = format!("/hls/{id}/master.m3u8");
    let waiting = app.probe(&spec, master, &master_uri, &[], Body::empty());
    let others = async {
        let rendition = format!("/hls/{id}/{session}/720p");
        for query in [
            "_HLS_msn=x",
            "_HLS_msn=-1",
            "_HLS_part=1",
            "_HLS_msn=1&_HLS_msn=2",
        ] {
            let uri = format!("{rendition}/index.m3u8?{query}");
            let answer = app.probe(&spec, file, &uri, &[], Body::empty()).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(error_code(&answer), "invalid_blocking_request", "{uri}");
        }
        for uri in [
            format!("{rendition}/index.m3u8"),
            format!("{rendition}/init.mp4"),
            format!("{rendition}/seg0.m4s"),
            format!("{rendition}/notes.txt"),
            format!("/hls/{id}/{}/720p/index.m3u8", session + 1),
        ] {
            let answer = app.probe(&spec, file, &uri, &[], Body::empty()).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(error_code(&answer), "hls_not_found", "{uri}");
        }
    };
    let (answer, ()) = tokio::join!(waiting, others);
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&answer), "hls_not_ready");
    assert_eq!(answer.header("retry-after"), Some("1"));
    drop(sink);
    app.engine.shutdown().await;
}

#[tokio::test]
async fn paid_streams_gate_hls_and_replays_as_documented() {
    let spec = spec();
    let hls = test_app_with_hls().await;
    let app = &hls.app;
    let creator = [bearer(&app.creator.session), json_content()];
    let body = json!({ "title": "paid", "access": "paid" }).to_string();
    let answer = app
        .probe(
            &spec,
            ("POST", "/api/v1/streams"),
            "/api/v1/streams",
            &creator,
            body,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let id = answer.json()["id"].as_str().expect("id").to_owned();
    let watch = app.playback_token(&spec, &id, "watch").await;
    let replay = app.playback_token(&spec, &id, "replay").await;
    let refused = |answer: &Answer, status: u16, code: &str, what: &str| {
        assert_eq!(answer.status.as_u16(), status, "{what}");
        assert_eq!(error_code(answer), code, "{what}");
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some("*"),
            "{what}"
        );
        if status == 401 {
            assert_eq!(answer.header("www-authenticate"), Some("Bearer"), "{what}");
        }
    };

    // Live HLS: the token is checked before anything is waited for.
    let master = ("GET", "/hls/{stream}/master.m3u8");
    let master_uri = format!("/hls/{id}/master.m3u8");
    for (uri, headers, status, code) in [
        (master_uri.clone(), vec![], 401, "token_required"),
        (
            format!("{master_uri}?token=junk"),
            vec![],
            401,
            "invalid_token",
        ),
        (
            master_uri.clone(),
            vec![bearer(&replay)],
            403,
            "token_wrong_stream",
        ),
        // `?token=` wins over the header.
        (
            format!("{master_uri}?token=junk"),
            vec![bearer(&watch)],
            401,
            "invalid_token",
        ),
    ] {
        let answer = app
            .probe(&spec, master, &uri, &headers, Body::empty())
            .await;
        refused(&answer, status, code, &uri);
    }
    let sink = FrameTaps::open(&hls.hub, &id, SourceProtocol::Rtmp).expect("an HLS session");
    let session = hls.hub.get(&id).expect("the session").session;
    let file = ("GET", "/hls/{stream}/{session}/{rendition}/{file}");
    let playlist = format!("/hls/{id}/{session}/720p/index.m3u8");
    let answer = app.probe(&spec, file, &playlist, &[], Body::empty()).await;
    refused(&answer, 401, "token_required", &playlist);
    let with_token = format!("{playlist}?token={watch}");
    let answer = app
        .probe(&spec, file, &with_token, &[], Body::empty())
        .await;
    refused(&answer, 404, "hls_not_found", "past the gate");
    drop(sink);

    // Replays need a token with the replay right; a playlist fetched with `?token=` carries it.
    let recording = hls.store.start_recording(&id).await.expect("start");
    hls.store
        .update_recording_progress(&recording.id, 2_000, 100, 1, &["720p".to_owned()], true)
        .await
        .expect("progress");
    hls.store
        .finish_recording(&recording.id, None)
        .await
        .expect("finish");
    let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=3000000\n720p/index.m3u8\n";
    hls.storage
        .put(
            &format!("{}master.m3u8", recording.storage_prefix()),
            Bytes::from_static(text.as_bytes()),
            "application/vnd.apple.mpegurl",
        )
        .await
        .expect("store the master playlist");
    let top = ("GET", "/replays/{recording}/{file}");
    let uri = format!("/replays/{}/master.m3u8", recording.id);
    let answer = app.probe(&spec, top, &uri, &[], Body::empty()).await;
    refused(&answer, 401, "token_required", &uri);
    let answer = app
        .probe(&spec, top, &uri, &[bearer(&watch)], Body::empty())
        .await;
    refused(&answer, 403, "token_wrong_stream", &uri);
    let answer = app
        .probe(&spec, top, &uri, &[bearer(&replay)], Body::empty())
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body.as_ref(), text.as_bytes());
    let answer = app
        .probe(
            &spec,
            top,
            &format!("{uri}?token={replay}"),
            &range("bytes=0-9"),
            Body::empty(),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "a rewritten playlist is whole"
    );
    assert!(
        String::from_utf8_lossy(&answer.body)
            .contains(&format!("720p/index.m3u8?token={replay}\n")),
        "{:?}",
        answer.body
    );
    app.engine.shutdown().await;
}
