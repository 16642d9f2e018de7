//! The streams store behaves the same on SQLite and on Postgres.
//!
//! Every behaviour below runs twice: on a SQLite file in a temporary directory, and on a fresh
//! Postgres database (`GREENROOM_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`) that the test creates and drops, so tests run in
//! parallel. Without a reachable Postgres the Postgres tests fail: they never skip.

use greenroom_control::{ControlError, Store, StreamStatus};

use std::time::Duration;

mod common;

use common::Ctx;

on_both_backends!(
    a_created_stream_reads_back_identically,
    listing_is_newest_first,
    an_unknown_stream_is_not_found,
    ending_is_final_and_idempotent,
    ending_an_unknown_stream_is_not_found,
    the_stream_key_is_checked_before_the_ended_status,
    the_latest_open_stream_skips_ended_ones,
    an_invalid_title_stores_nothing,
    reopening_keeps_the_data_and_reruns_no_migration,
    concurrent_creates_all_land,
    a_key_alone_finds_its_stream,
);

async fn a_key_alone_finds_its_stream(ctx: Ctx) {
    let first = ctx.store.create_stream("one").await.expect("create");
    let second = ctx.store.create_stream("two").await.expect("create");
    for stream in [&first, &second] {
        let found = ctx
            .store
            .stream_for_key(stream.stream_key.expose())
            .await
            .expect("the key finds its stream");
        assert_eq!(found.id, stream.id);
    }
    for wrong in [
        "",
        "sk_wrong",
        &first.stream_key.expose()[1..],
        &"x".repeat(500),
    ] {
        assert!(
            matches!(
                ctx.store.stream_for_key(wrong).await,
                Err(ControlError::InvalidStreamKey { .. })
            ),
            "{wrong:?}"
        );
    }
    ctx.store.end_stream(&first.id).await.expect("end");
    assert!(matches!(
        ctx.store.stream_for_key(first.stream_key.expose()).await,
        Err(ControlError::StreamEnded { .. })
    ));
}

async fn a_created_stream_reads_back_identically(ctx: Ctx) {
    let created = ctx
        .store
        .create_stream("  Launch party ")
        .await
        .expect("create");
    assert_eq!(created.title, "Launch party");
    assert_eq!(created.status, StreamStatus::Created);
    assert_eq!(created.ended_at_ms, None);
    assert!(greenroom_control::is_stream_id(&created.id));
    assert!(created.stream_key.expose().starts_with("sk_"));
    let read = ctx.store.get_stream(&created.id).await.expect("get");
    assert_eq!(read, created);
}

async fn listing_is_newest_first(ctx: Ctx) {
    assert!(ctx.store.list_streams().await.expect("list").is_empty());
    let mut ids = Vec::new();
    for title in ["first", "second", "third"] {
        ids.push(ctx.store.create_stream(title).await.expect("create").id);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let listed: Vec<String> = ctx
        .store
        .list_streams()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    ids.reverse();
    assert_eq!(listed, ids);
}

async fn an_unknown_stream_is_not_found(ctx: Ctx) {
    for id in [
        "aaaaaaaaaaaaaaaa",
        "not-an-id",
        "",
        "'; DROP TABLE streams; --",
    ] {
        match ctx.store.get_stream(id).await {
            Err(ControlError::StreamNotFound { id: got }) => assert_eq!(got, id),
            other => panic!("expected StreamNotFound for {id:?}, got {other:?}"),
        }
    }
}

async fn ending_is_final_and_idempotent(ctx: Ctx) {
    let stream = ctx.store.create_stream("to end").await.expect("create");
    let ended = ctx.store.end_stream(&stream.id).await.expect("end");
    assert_eq!(ended.status, StreamStatus::Ended);
    let ended_at = ended.ended_at_ms.expect("ended_at_ms is set");
    assert!(ended_at >= stream.created_at_ms);
    tokio::time::sleep(Duration::from_millis(3)).await;
    let again = ctx.store.end_stream(&stream.id).await.expect("end again");
    assert_eq!(again, ended, "a second end changes nothing");
    assert_eq!(ctx.store.get_stream(&stream.id).await.expect("get"), ended);
}

async fn ending_an_unknown_stream_is_not_found(ctx: Ctx) {
    for id in ["bbbbbbbbbbbbbbbb", "nope"] {
        assert!(matches!(
            ctx.store.end_stream(id).await,
            Err(ControlError::StreamNotFound { .. })
        ));
    }
}

async fn the_stream_key_is_checked_before_the_ended_status(ctx: Ctx) {
    let stream = ctx.store.create_stream("keyed").await.expect("create");
    let key = stream.stream_key.expose().to_owned();
    let ok = ctx
        .store
        .verify_stream_key(&stream.id, Some(&key))
        .await
        .expect("the right key is accepted");
    assert_eq!(ok.id, stream.id);
    for wrong in [
        None,
        Some(""),
        Some("sk_wrong"),
        Some(&key[..key.len() - 1]),
    ] {
        assert!(
            matches!(
                ctx.store.verify_stream_key(&stream.id, wrong).await,
                Err(ControlError::InvalidStreamKey { .. })
            ),
            "{wrong:?}"
        );
    }
    assert!(matches!(
        ctx.store
            .verify_stream_key("cccccccccccccccc", Some(&key))
            .await,
        Err(ControlError::StreamNotFound { .. })
    ));
    ctx.store.end_stream(&stream.id).await.expect("end");
    assert!(matches!(
        ctx.store.verify_stream_key(&stream.id, Some(&key)).await,
        Err(ControlError::StreamEnded { .. })
    ));
    assert!(matches!(
        ctx.store
            .verify_stream_key(&stream.id, Some("sk_wrong"))
            .await,
        Err(ControlError::InvalidStreamKey { .. })
    ));
}

async fn the_latest_open_stream_skips_ended_ones(ctx: Ctx) {
    assert_eq!(ctx.store.latest_open_stream().await.expect("latest"), None);
    let older = ctx.store.create_stream("older").await.expect("create");
    tokio::time::sleep(Duration::from_millis(3)).await;
    let newer = ctx.store.create_stream("newer").await.expect("create");
    let latest = ctx.store.latest_open_stream().await.expect("latest");
    assert_eq!(latest.map(|s| s.id), Some(newer.id.clone()));
    ctx.store.end_stream(&newer.id).await.expect("end");
    let latest = ctx.store.latest_open_stream().await.expect("latest");
    assert_eq!(latest.map(|s| s.id), Some(older.id.clone()));
    ctx.store.end_stream(&older.id).await.expect("end");
    assert_eq!(ctx.store.latest_open_stream().await.expect("latest"), None);
}

async fn an_invalid_title_stores_nothing(ctx: Ctx) {
    for title in ["", "   ", &"x".repeat(201), "bell\u{7}"] {
        assert!(matches!(
            ctx.store.create_stream(title).await,
            Err(ControlError::InvalidTitle { .. })
        ));
    }
    assert!(ctx.store.list_streams().await.expect("list").is_empty());
    let longest = "x".repeat(200);
    assert_eq!(
        ctx.store
            .create_stream(&longest)
            .await
            .expect("create")
            .title,
        longest
    );
}

async fn reopening_keeps_the_data_and_reruns_no_migration(ctx: Ctx) {
    let stream = ctx.store.create_stream("persistent").await.expect("create");
    let reopened = Store::connect(&ctx.url).await.expect("reopen");
    assert_eq!(reopened.get_stream(&stream.id).await.expect("get"), stream);
    reopened.ping().await.expect("ping");
    reopened.close().await;
}

async fn concurrent_creates_all_land(ctx: Ctx) {
    let creates = (0..16).map(|i| {
        let store = ctx.store.clone();
        tokio::spawn(async move { store.create_stream(&format!("parallel {i}")).await })
    });
    let mut ids = Vec::new();
    for handle in futures::future::join_all(creates).await {
        ids.push(handle.expect("task").expect("create").id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 16);
    assert_eq!(ctx.store.list_streams().await.expect("list").len(), 16);
}

#[tokio::test]
async fn sqlite_uses_the_wal_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::connect(&Store::sqlite_url(dir.path()))
        .await
        .expect("open");
    store.create_stream("wal").await.expect("create");
    assert!(dir.path().join("greenroom.db").exists());
    assert!(
        dir.path().join("greenroom.db-wal").exists(),
        "WAL file present"
    );
    store.close().await;
}

#[tokio::test]
async fn an_unsupported_database_is_refused() {
    assert!(matches!(
        Store::connect("mysql://root@127.0.0.1/db").await,
        Err(ControlError::UnsupportedDatabase { .. })
    ));
}
