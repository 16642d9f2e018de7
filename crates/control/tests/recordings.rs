//! Recordings and the streams' recording settings behave the same on SQLite and on Postgres
//! (same set-up as `streams_store.rs`: `GREENROOM_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; without a reachable Postgres those tests fail).

use greenroom_control::{ControlError, NewStream, RecordingStatus, Store};

use std::time::Duration;

mod common;

use common::Ctx;

on_both_backends!(
    a_recording_goes_from_recording_to_ready,
    finishing_twice_changes_nothing,
    a_failed_recording_is_final,
    recordings_are_listed_newest_first_per_stream,
    recordings_in_progress_are_the_unfinished_ones,
    expired_recordings_are_the_due_ones_of_any_status,
    an_expiry_can_be_set_and_cleared,
    deleting_a_recording_removes_only_it,
    an_unknown_recording_is_not_found,
    only_open_streams_start_recordings,
    invalid_progress_stores_nothing,
    new_streams_record_with_the_default_retention,
    recording_settings_are_stored_and_survive_reopening,
    updating_recording_settings_changes_only_what_is_given,
    retention_outside_one_to_3650_days_is_refused,
);

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|&name| name.to_owned()).collect()
}

async fn a_recording_goes_from_recording_to_ready(ctx: Ctx) {
    let stream = ctx.store.create_stream("recorded").await.expect("create");
    let started = ctx.store.start_recording(&stream.id).await.expect("start");
    assert!(greenroom_control::is_stream_id(&started.id));
    assert_eq!(started.stream_id, stream.id);
    assert_eq!(started.status, RecordingStatus::Recording);
    assert!(started.started_at_ms >= stream.created_at_ms);
    assert_eq!(started.ended_at_ms, None);
    assert_eq!(
        (started.duration_ms, started.size_bytes, started.segments),
        (0, 0, 0)
    );
    assert!(started.variants.is_empty());
    assert!(!started.has_thumbnail);
    assert_eq!(started.expires_at_ms, None);
    assert_eq!(
        started.storage_prefix(),
        format!("recordings/{}/{}/", stream.id, started.id)
    );
    assert_eq!(
        ctx.store.get_recording(&started.id).await.expect("get"),
        started
    );

    let progressed = ctx
        .store
        .update_recording_progress(
            &started.id,
            12_000,
            3_456_789,
            6,
            &names(&["1080p", "720p"]),
            true,
        )
        .await
        .expect("progress");
    assert_eq!(progressed.status, RecordingStatus::Recording);
    assert_eq!(progressed.duration_ms, 12_000);
    assert_eq!(progressed.size_bytes, 3_456_789);
    assert_eq!(progressed.segments, 6);
    assert_eq!(progressed.variants, names(&["1080p", "720p"]));
    assert!(progressed.has_thumbnail);

    let expires = started.started_at_ms + 7 * 86_400_000;
    let ready = ctx
        .store
        .finish_recording(&started.id, Some(expires))
        .await
        .expect("finish");
    assert_eq!(ready.status, RecordingStatus::Ready);
    assert!(
        ready
            .ended_at_ms
            .is_some_and(|t| t >= started.started_at_ms)
    );
    assert_eq!(ready.expires_at_ms, Some(expires));
    assert_eq!(ready.variants, progressed.variants);
    assert_eq!(ready.size_bytes, progressed.size_bytes);
    assert_eq!(
        ctx.store.get_recording(&ready.id).await.expect("get"),
        ready
    );

    // Progress after the end is ignored.
    let late = ctx
        .store
        .update_recording_progress(&ready.id, 99_000, 1, 99, &names(&["480p"]), false)
        .await
        .expect("late progress");
    assert_eq!(late, ready);
}

async fn finishing_twice_changes_nothing(ctx: Ctx) {
    let stream = ctx.store.create_stream("twice").await.expect("create");
    let recording = ctx.store.start_recording(&stream.id).await.expect("start");
    let first = ctx
        .store
        .finish_recording(&recording.id, None)
        .await
        .expect("finish");
    assert_eq!(first.status, RecordingStatus::Ready);
    assert_eq!(first.expires_at_ms, None);
    tokio::time::sleep(Duration::from_millis(3)).await;
    let second = ctx
        .store
        .finish_recording(&recording.id, Some(1))
        .await
        .expect("finish again");
    assert_eq!(second, first, "a second finish changes nothing");
    let failed = ctx
        .store
        .fail_recording(&recording.id, "too late")
        .await
        .expect("fail after ready");
    assert_eq!(failed, first, "a ready recording cannot fail");
}

async fn a_failed_recording_is_final(ctx: Ctx) {
    let stream = ctx.store.create_stream("failing").await.expect("create");
    let recording = ctx.store.start_recording(&stream.id).await.expect("start");
    let failed = ctx
        .store
        .fail_recording(&recording.id, "disk full")
        .await
        .expect("fail");
    assert_eq!(failed.status, RecordingStatus::Failed);
    assert!(failed.ended_at_ms.is_some());
    tokio::time::sleep(Duration::from_millis(3)).await;
    for after in [
        ctx.store.finish_recording(&recording.id, Some(5)).await,
        ctx.store.fail_recording(&recording.id, "again").await,
        ctx.store
            .update_recording_progress(&recording.id, 1, 1, 1, &[], true)
            .await,
    ] {
        assert_eq!(after.expect("a failed recording is returned"), failed);
    }
}

async fn recordings_are_listed_newest_first_per_stream(ctx: Ctx) {
    let stream = ctx.store.create_stream("many").await.expect("create");
    let other = ctx.store.create_stream("other").await.expect("create");
    assert!(
        ctx.store
            .list_recordings(&stream.id)
            .await
            .expect("list")
            .is_empty()
    );
    let mut ids = Vec::new();
    for _ in 0..3 {
        let recording = ctx.store.start_recording(&stream.id).await.expect("start");
        ctx.store
            .finish_recording(&recording.id, None)
            .await
            .expect("finish");
        ids.push(recording.id);
        ctx.store
            .start_recording(&other.id)
            .await
            .expect("start other");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let listed: Vec<String> = ctx
        .store
        .list_recordings(&stream.id)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.reverse();
    assert_eq!(listed, ids);
    assert_eq!(
        ctx.store
            .list_recordings(&other.id)
            .await
            .expect("list")
            .len(),
        3
    );
    for unknown in ["dddddddddddddddd", "nope"] {
        assert!(matches!(
            ctx.store.list_recordings(unknown).await,
            Err(ControlError::StreamNotFound { .. })
        ));
    }
}

async fn recordings_in_progress_are_the_unfinished_ones(ctx: Ctx) {
    let stream = ctx.store.create_stream("restart").await.expect("create");
    assert!(
        ctx.store
            .recordings_in_progress()
            .await
            .expect("list")
            .is_empty()
    );
    let mut started = Vec::new();
    for _ in 0..4 {
        started.push(
            ctx.store
                .start_recording(&stream.id)
                .await
                .expect("start")
                .id,
        );
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    ctx.store
        .finish_recording(&started[1], None)
        .await
        .expect("finish");
    ctx.store
        .fail_recording(&started[2], "crashed")
        .await
        .expect("fail");
    // A restarted store still sees them, oldest first.
    let reopened = Store::connect(&ctx.url).await.expect("reopen");
    let open: Vec<String> = reopened
        .recordings_in_progress()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(open, [started[0].clone(), started[3].clone()]);
    reopened.close().await;
}

async fn expired_recordings_are_the_due_ones_of_any_status(ctx: Ctx) {
    let stream = ctx.store.create_stream("expiring").await.expect("create");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            ctx.store
                .start_recording(&stream.id)
                .await
                .expect("start")
                .id,
        );
    }
    // ids[0]: ready, expires at 1_000; ids[1]: failed, at 2_000; ids[2]: still recording, at
    // 3_000 (exactly now); ids[3]: ready, at 4_000 (later); ids[4]: ready, kept.
    ctx.store
        .finish_recording(&ids[0], Some(1_000))
        .await
        .expect("finish");
    ctx.store.fail_recording(&ids[1], "x").await.expect("fail");
    ctx.store
        .set_recording_expiry(&ids[1], Some(2_000))
        .await
        .expect("expiry");
    ctx.store
        .set_recording_expiry(&ids[2], Some(3_000))
        .await
        .expect("expiry");
    ctx.store
        .finish_recording(&ids[3], Some(4_000))
        .await
        .expect("finish");
    ctx.store
        .finish_recording(&ids[4], None)
        .await
        .expect("finish");

    let expired = |now_ms, limit| {
        let store = ctx.store.clone();
        async move {
            store
                .expired_recordings(now_ms, limit)
                .await
                .expect("expired")
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<String>>()
        }
    };
    assert!(expired(999, 100).await.is_empty());
    assert_eq!(
        expired(3_000, 100).await,
        [ids[0].clone(), ids[1].clone(), ids[2].clone()]
    );
    assert_eq!(expired(3_000, 2).await, [ids[0].clone(), ids[1].clone()]);
    assert!(expired(3_000, 0).await.is_empty());
    assert_eq!(expired(i64::MAX, 100).await.len(), 4);
}

async fn an_expiry_can_be_set_and_cleared(ctx: Ctx) {
    let stream = ctx.store.create_stream("kept").await.expect("create");
    let recording = ctx.store.start_recording(&stream.id).await.expect("start");
    let ready = ctx
        .store
        .finish_recording(&recording.id, Some(10))
        .await
        .expect("finish");
    let later = ctx
        .store
        .set_recording_expiry(&recording.id, Some(20))
        .await
        .expect("set");
    assert_eq!(later.expires_at_ms, Some(20));
    assert_eq!(later.status, RecordingStatus::Ready);
    assert_eq!(later.ended_at_ms, ready.ended_at_ms);
    assert!(
        ctx.store
            .expired_recordings(15, 10)
            .await
            .expect("expired")
            .is_empty()
    );
    let kept = ctx
        .store
        .set_recording_expiry(&recording.id, None)
        .await
        .expect("clear");
    assert_eq!(kept.expires_at_ms, None);
    assert!(
        ctx.store
            .expired_recordings(i64::MAX, 10)
            .await
            .expect("expired")
            .is_empty()
    );
}

async fn deleting_a_recording_removes_only_it(ctx: Ctx) {
    let stream = ctx.store.create_stream("pruned").await.expect("create");
    let gone = ctx.store.start_recording(&stream.id).await.expect("start");
    let kept = ctx.store.start_recording(&stream.id).await.expect("start");
    assert!(ctx.store.delete_recording(&gone.id).await.expect("delete"));
    assert!(
        !ctx.store
            .delete_recording(&gone.id)
            .await
            .expect("delete again")
    );
    assert!(matches!(
        ctx.store.get_recording(&gone.id).await,
        Err(ControlError::RecordingNotFound { .. })
    ));
    let left: Vec<String> = ctx
        .store
        .list_recordings(&stream.id)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, [kept.id]);
    assert_eq!(
        ctx.store.get_stream(&stream.id).await.expect("get"),
        stream,
        "the stream stays"
    );
}

async fn an_unknown_recording_is_not_found(ctx: Ctx) {
    for id in [
        "eeeeeeeeeeeeeeee",
        "not-an-id",
        "",
        "'; DROP TABLE recordings; --",
    ] {
        let not_found = |result: Result<_, ControlError>| match result {
            Err(ControlError::RecordingNotFound { id: got }) => assert_eq!(got, id),
            other => panic!("expected RecordingNotFound for {id:?}, got {other:?}"),
        };
        not_found(ctx.store.get_recording(id).await);
        not_found(ctx.store.finish_recording(id, None).await);
        not_found(ctx.store.fail_recording(id, "x").await);
        not_found(ctx.store.set_recording_expiry(id, Some(1)).await);
        not_found(
            ctx.store
                .update_recording_progress(id, 1, 1, 1, &names(&["720p"]), false)
                .await,
        );
        assert!(!ctx.store.delete_recording(id).await.expect("delete"));
    }
}

async fn only_open_streams_start_recordings(ctx: Ctx) {
    for id in ["ffffffffffffffff", "nope"] {
        assert!(matches!(
            ctx.store.start_recording(id).await,
            Err(ControlError::StreamNotFound { .. })
        ));
    }
    let stream = ctx.store.create_stream("ended").await.expect("create");
    ctx.store.end_stream(&stream.id).await.expect("end");
    assert!(matches!(
        ctx.store.start_recording(&stream.id).await,
        Err(ControlError::StreamEnded { .. })
    ));
    assert!(
        ctx.store
            .list_recordings(&stream.id)
            .await
            .expect("list")
            .is_empty()
    );
}

async fn invalid_progress_stores_nothing(ctx: Ctx) {
    let stream = ctx.store.create_stream("progress").await.expect("create");
    let recording = ctx.store.start_recording(&stream.id).await.expect("start");
    let good = names(&["720p"]);
    let bad_variants = [
        names(&["720p", ""]),
        names(&["a,b"]),
        names(&["x".repeat(33).as_str()]),
    ];
    let attempts = [
        (-1, 0, 0, &good),
        (0, -1, 0, &good),
        (0, 0, -1, &good),
        (1, 1, 1, &bad_variants[0]),
        (1, 1, 1, &bad_variants[1]),
        (1, 1, 1, &bad_variants[2]),
    ];
    for (duration_ms, size_bytes, segments, variants) in attempts {
        assert!(
            matches!(
                ctx.store
                    .update_recording_progress(
                        &recording.id,
                        duration_ms,
                        size_bytes,
                        segments,
                        variants,
                        true
                    )
                    .await,
                Err(ControlError::InvalidRecordingProgress { .. })
            ),
            "{duration_ms} {size_bytes} {segments} {variants:?}"
        );
    }
    assert_eq!(
        ctx.store.get_recording(&recording.id).await.expect("get"),
        recording
    );
}

async fn new_streams_record_with_the_default_retention(ctx: Ctx) {
    let plain = ctx.store.create_stream("plain").await.expect("create");
    let ladder = ctx
        .store
        .create_stream_with("ladder", None, true)
        .await
        .expect("create");
    for stream in [plain, ladder] {
        assert!(stream.record);
        assert_eq!(stream.recording_retention_days, None);
        assert_eq!(ctx.store.get_stream(&stream.id).await.expect("get"), stream);
    }
}

async fn recording_settings_are_stored_and_survive_reopening(ctx: Ctx) {
    let off = ctx
        .store
        .create_stream_from(NewStream {
            title: "  not recorded ".to_owned(),
            record: false,
            ..NewStream::default()
        })
        .await
        .expect("create");
    assert_eq!(off.title, "not recorded");
    assert!(!off.record);
    assert_eq!(off.recording_retention_days, None);
    let month = ctx
        .store
        .create_stream_from(NewStream {
            title: "a month".to_owned(),
            simulcast_ladder: true,
            recording_retention_days: Some(30),
            ..NewStream::default()
        })
        .await
        .expect("create");
    assert!(month.record);
    assert!(month.simulcast_ladder);
    assert_eq!(month.recording_retention_days, Some(30));
    let reopened = Store::connect(&ctx.url).await.expect("reopen");
    for stream in [&off, &month] {
        assert_eq!(&reopened.get_stream(&stream.id).await.expect("get"), stream);
    }
    let listed = reopened.list_streams().await.expect("list");
    assert_eq!(listed, [month, off]);
    reopened.close().await;
}

async fn updating_recording_settings_changes_only_what_is_given(ctx: Ctx) {
    let stream = ctx.store.create_stream("patched").await.expect("create");
    let unchanged = ctx
        .store
        .update_stream_recording(&stream.id, None, None)
        .await
        .expect("no-op");
    assert_eq!(unchanged, stream);

    let off = ctx
        .store
        .update_stream_recording(&stream.id, Some(false), None)
        .await
        .expect("record off");
    assert!(!off.record);
    assert_eq!(off.recording_retention_days, None);

    let kept_long = ctx
        .store
        .update_stream_recording(&stream.id, None, Some(Some(3650)))
        .await
        .expect("retention");
    assert!(!kept_long.record, "record stays off");
    assert_eq!(kept_long.recording_retention_days, Some(3650));

    let both = ctx
        .store
        .update_stream_recording(&stream.id, Some(true), Some(Some(1)))
        .await
        .expect("both");
    assert!(both.record);
    assert_eq!(both.recording_retention_days, Some(1));

    let default = ctx
        .store
        .update_stream_recording(&stream.id, None, Some(None))
        .await
        .expect("back to the default");
    assert!(default.record);
    assert_eq!(default.recording_retention_days, None);

    assert_eq!(
        default,
        greenroom_control::Stream {
            record: true,
            recording_retention_days: None,
            ..stream.clone()
        }
    );
    assert_eq!(
        ctx.store.get_stream(&stream.id).await.expect("get"),
        default
    );

    for id in ["gggggggggggggggg", "nope"] {
        assert!(matches!(
            ctx.store
                .update_stream_recording(id, Some(false), None)
                .await,
            Err(ControlError::StreamNotFound { .. })
        ));
        assert!(matches!(
            ctx.store.update_stream_recording(id, None, None).await,
            Err(ControlError::StreamNotFound { .. })
        ));
    }
}

async fn retention_outside_one_to_3650_days_is_refused(ctx: Ctx) {
    for days in [0, 3651, u32::MAX] {
        let created = ctx
            .store
            .create_stream_from(NewStream {
                title: "bad retention".to_owned(),
                recording_retention_days: Some(days),
                ..NewStream::default()
            })
            .await;
        match created {
            Err(err @ ControlError::InvalidRetention { .. }) => {
                assert!(err.to_string().contains("1 to 3650"), "{err}");
            }
            other => panic!("expected InvalidRetention for {days}, got {other:?}"),
        }
    }
    assert!(ctx.store.list_streams().await.expect("list").is_empty());

    let stream = ctx
        .store
        .create_stream_from(NewStream {
            title: "good retention".to_owned(),
            recording_retention_days: Some(7),
            ..NewStream::default()
        })
        .await
        .expect("create");
    for days in [0, 3651] {
        assert!(matches!(
            ctx.store
                .update_stream_recording(&stream.id, Some(false), Some(Some(days)))
                .await,
            Err(ControlError::InvalidRetention { .. })
        ));
    }
    // Checked before the stream is looked up, and nothing changed.
    assert!(matches!(
        ctx.store
            .update_stream_recording("nope", None, Some(Some(0)))
            .await,
        Err(ControlError::InvalidRetention { .. })
    ));
    assert_eq!(ctx.store.get_stream(&stream.id).await.expect("get"), stream);
}
