//! Streams with an RTSP source: stored, read back and listed for the puller on SQLite and on
//! Postgres (same set-up as `streams_store.rs`: `GREENROOM_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; without a reachable Postgres those tests fail).

use greenroom_control::{ControlError, SourceTransport, Store, StreamSource};

use std::time::Duration;

mod common;

use common::Ctx;

on_both_backends!(
    a_source_reads_back_with_its_transport,
    streams_without_a_source_have_none,
    open_streams_with_sources_skip_ended_and_sourceless_ones,
    an_invalid_source_stores_nothing,
    a_source_survives_reopening,
);

async fn a_source_reads_back_with_its_transport(ctx: Ctx) {
    let source = StreamSource::new("rtsp://cam:pw@10.1.2.3:554/live", Some("udp")).expect("valid");
    let created = ctx
        .store
        .create_stream_with_source("Camera 1", Some(source.clone()))
        .await
        .expect("create");
    assert_eq!(created.source.as_ref(), Some(&source));
    let read = ctx.store.get_stream(&created.id).await.expect("get");
    assert_eq!(read, created);
    let source = read.source.expect("source");
    assert_eq!(source.transport, SourceTransport::Udp);
    assert_eq!(source.url, "rtsp://cam:pw@10.1.2.3:554/live");
    let listed = ctx.store.list_streams().await.expect("list");
    assert_eq!(
        listed[0].source.as_ref().map(|s| s.transport),
        Some(SourceTransport::Udp)
    );
}

async fn streams_without_a_source_have_none(ctx: Ctx) {
    let plain = ctx.store.create_stream("plain").await.expect("create");
    assert_eq!(plain.source, None);
    let none = ctx
        .store
        .create_stream_with_source("also plain", None)
        .await
        .expect("create");
    assert_eq!(
        ctx.store.get_stream(&none.id).await.expect("get").source,
        None
    );
    assert_eq!(
        ctx.store.get_stream(&plain.id).await.expect("get").source,
        None
    );
}

async fn open_streams_with_sources_skip_ended_and_sourceless_ones(ctx: Ctx) {
    let source = |path: &str| StreamSource::new(&format!("rtsp://cam/{path}"), None).ok();
    let first = ctx
        .store
        .create_stream_with_source("first", source("a"))
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_millis(3)).await;
    ctx.store.create_stream("sourceless").await.expect("create");
    let ended = ctx
        .store
        .create_stream_with_source("ended", source("b"))
        .await
        .expect("create");
    ctx.store.end_stream(&ended.id).await.expect("end");
    tokio::time::sleep(Duration::from_millis(3)).await;
    let last = ctx
        .store
        .create_stream_with_source("last", source("c"))
        .await
        .expect("create");
    let open: Vec<String> = ctx
        .store
        .open_streams_with_sources()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(open, [first.id, last.id]);
}

async fn an_invalid_source_stores_nothing(ctx: Ctx) {
    for (url, transport) in [
        ("http://cam/x", None),
        ("rtsp://", None),
        ("rtsp://cam/x", Some("quic")),
    ] {
        assert!(
            matches!(
                StreamSource::new(url, transport),
                Err(ControlError::InvalidSourceUrl { .. })
            ),
            "{url} {transport:?}"
        );
    }
    // A bad title with a good source stores nothing either.
    let source = StreamSource::new("rtsp://cam/x", None).ok();
    assert!(
        ctx.store
            .create_stream_with_source("  ", source)
            .await
            .is_err()
    );
    assert!(ctx.store.list_streams().await.expect("list").is_empty());
}

async fn a_source_survives_reopening(ctx: Ctx) {
    let source = StreamSource::new("rtsps://cam.example/x", None).ok();
    let created = ctx
        .store
        .create_stream_with_source("kept", source)
        .await
        .expect("create");
    let reopened = Store::connect(&ctx.url).await.expect("reopen");
    assert_eq!(
        reopened.get_stream(&created.id).await.expect("get"),
        created
    );
    reopened.close().await;
}
