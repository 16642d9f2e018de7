//! Streams with an RTSP source: stored, read back and listed for the puller on SQLite and on
//! Postgres (same set-up as `streams_store.rs`: `GREENROOM_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; without a reachable Postgres those tests fail).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use greenroom_control::{Backend, ControlError, SourceTransport, Store, StreamSource};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// What a behaviour gets: an open store and the URL it was opened with.
struct Ctx {
    store: Store,
    url: String,
}

async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let url = Store::sqlite_url(dir.path());
    let store = Store::connect(&url).await.expect("open the SQLite store");
    assert_eq!(store.backend(), Backend::Sqlite);
    body(Ctx {
        store: store.clone(),
        url,
    })
    .await;
    store.close().await;
}

fn postgres_admin_url() -> String {
    std::env::var("GREENROOM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn with_postgres<F, Fut>(body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let admin_url = postgres_admin_url();
    let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|err| {
        panic!(
            "Postgres tests need a server at {admin_url} (set GREENROOM_TEST_POSTGRES_URL): {err}"
        )
    });
    let database = format!(
        "greenroom_test_{:016x}",
        rand::Rng::random_range(&mut rand::rng(), 0..u64::MAX)
    );
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("the Postgres URL ends with a database name");
    let url = format!("{base}/{database}");

    let outcome = AssertUnwindSafe(async {
        let store = Store::connect(&url).await.expect("open the Postgres store");
        assert_eq!(store.backend(), Backend::Postgres);
        body(Ctx {
            store: store.clone(),
            url: url.clone(),
        })
        .await;
        store.close().await;
    })
    .catch_unwind()
    .await;

    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop the test database");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::with_sqlite(super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::with_postgres(super::$name).await
                }
            )*
        }
    };
}

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
