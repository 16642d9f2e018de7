//! A stream's lifecycle (scheduled, idle, live, ended, cancelled), its public settings, the
//! discovery listings and its calendar event behave the same on SQLite and on Postgres
//! (`GREENROOM_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`; without
//! a reachable Postgres those tests fail).

use greenroom_control::{
    Channel, ControlError, NewStream, Role, Store, Stream, StreamAccess, StreamSettingsUpdate,
    StreamState, StreamStatus, ics,
};

mod common;

use common::{Ctx, now_ms};

on_both_backends!(
    new_settings_read_back_identically,
    out_of_range_settings_store_nothing,
    an_idle_stream_can_be_scheduled_and_rescheduled_until_it_starts,
    only_a_scheduled_stream_that_never_started_can_be_cancelled,
    a_scheduled_stream_that_never_started_cannot_be_ended,
    the_first_publish_is_recorded_once_and_refused_after_the_end,
    a_cancel_racing_a_first_publish_lets_exactly_one_win,
    settings_change_with_patch_semantics_and_keep_the_access_rules,
    upcoming_lists_channel_streams_soonest_first,
    live_candidates_are_open_channel_streams_latest_started_first,
    a_stored_stream_renders_as_a_calendar_event,
);

const HOUR_MS: i64 = 3_600_000;

async fn channel(store: &Store, handle: &str) -> Channel {
    let account = store
        .create_account(
            &format!("{handle}@example.com"),
            "correct horse battery",
            handle,
            Role::Creator,
        )
        .await
        .expect("create a creator");
    store
        .create_channel(&account.id, handle, handle, "")
        .await
        .expect("create a channel")
}

async fn stream_in(store: &Store, channel: &Channel, title: &str, at_ms: Option<i64>) -> Stream {
    store
        .create_stream_from(NewStream {
            title: title.to_owned(),
            channel_id: Some(channel.id.clone()),
            scheduled_at_ms: at_ms,
            ..NewStream::default()
        })
        .await
        .expect("create a stream")
}

fn is_transition(
    result: &Result<Stream, ControlError>,
    expected_state: &str,
    expected_action: &str,
) -> bool {
    matches!(
        result,
        Err(ControlError::InvalidTransition { state, action, .. })
            if *state == expected_state && *action == expected_action
    )
}

async fn new_settings_read_back_identically(ctx: Ctx) {
    let store = &ctx.store;
    let ann = channel(store, "ann").await;
    let at = now_ms() + 2 * HOUR_MS;
    let created = store
        .create_stream_from(NewStream {
            title: "Launch".to_owned(),
            channel_id: Some(ann.id.clone()),
            description: "  The launch, live.\nBring snacks.  ".to_owned(),
            scheduled_at_ms: Some(at),
            access: StreamAccess::Paid,
            price_tokens: Some(250),
            replay_access_days: Some(30),
            ..NewStream::default()
        })
        .await
        .expect("create");
    assert_eq!(created.description, "The launch, live.\nBring snacks.");
    assert_eq!(created.channel_id.as_deref(), Some(ann.id.as_str()));
    assert_eq!(created.scheduled_at_ms, Some(at));
    assert_eq!(created.started_at_ms, None);
    assert_eq!(created.cancelled_at_ms, None);
    assert_eq!(created.access, StreamAccess::Paid);
    assert_eq!(created.price_tokens, Some(250));
    assert_eq!(created.replay_access_days, Some(30));
    assert_eq!(created.state(false), StreamState::Scheduled);
    assert!(!created.is_free());
    assert_eq!(store.get_stream(&created.id).await.expect("read"), created);

    let plain = store.create_stream("an operator's").await.expect("create");
    assert_eq!(plain.channel_id, None);
    assert_eq!(plain.description, "");
    assert_eq!(plain.access, StreamAccess::Free);
    assert!(plain.is_free());
    assert_eq!(plain.state(false), StreamState::Idle);
    assert_eq!(plain.state(true), StreamState::Live);
    assert_eq!(store.get_stream(&plain.id).await.expect("read"), plain);
}

async fn out_of_range_settings_store_nothing(ctx: Ctx) {
    let store = &ctx.store;
    let ann = channel(store, "ann").await;
    let now = now_ms();
    let base = || NewStream {
        title: "x".to_owned(),
        channel_id: Some(ann.id.clone()),
        ..NewStream::default()
    };
    let cases = [
        NewStream {
            description: "d".repeat(5001),
            ..base()
        },
        NewStream {
            scheduled_at_ms: Some(now - 1000),
            ..base()
        },
        NewStream {
            scheduled_at_ms: Some(now + 400 * 24 * HOUR_MS),
            ..base()
        },
        NewStream {
            price_tokens: Some(10),
            ..base()
        },
        NewStream {
            access: StreamAccess::Paid,
            price_tokens: Some(0),
            ..base()
        },
        NewStream {
            access: StreamAccess::Paid,
            price_tokens: Some(1_000_001),
            ..base()
        },
        NewStream {
            replay_access_days: Some(0),
            ..base()
        },
        NewStream {
            replay_access_days: Some(3651),
            ..base()
        },
    ];
    for case in cases {
        let outcome = store.create_stream_from(case.clone()).await;
        assert!(
            matches!(outcome, Err(ControlError::InvalidStreamSetting { .. })),
            "{case:?}: {outcome:?}"
        );
    }
    assert!(store.list_streams().await.expect("list").is_empty());
    store
        .create_stream_from(NewStream {
            description: "d".repeat(5000),
            access: StreamAccess::Paid,
            price_tokens: Some(1_000_000),
            replay_access_days: Some(3650),
            scheduled_at_ms: Some(now + 300 * 24 * HOUR_MS),
            ..base()
        })
        .await
        .expect("the limits themselves are fine");
}

async fn an_idle_stream_can_be_scheduled_and_rescheduled_until_it_starts(ctx: Ctx) {
    let store = &ctx.store;
    let ann = channel(store, "ann").await;
    let now = now_ms();
    let stream = stream_in(store, &ann, "s", None).await;
    assert_eq!(stream.state(false), StreamState::Idle);

    let scheduled = store
        .schedule_stream(&stream.id, now + HOUR_MS, now)
        .await
        .expect("schedule an idle stream");
    assert_eq!(scheduled.scheduled_at_ms, Some(now + HOUR_MS));
    assert_eq!(scheduled.state(false), StreamState::Scheduled);
    let moved = store
        .schedule_stream(&stream.id, now + 3 * HOUR_MS, now)
        .await
        .expect("reschedule");
    assert_eq!(moved.scheduled_at_ms, Some(now + 3 * HOUR_MS));

    for bad in [now, now - 1, now + 367 * 24 * HOUR_MS] {
        assert!(matches!(
            store.schedule_stream(&stream.id, bad, now).await,
            Err(ControlError::InvalidStreamSetting { .. })
        ));
    }
    assert!(matches!(
        store
            .schedule_stream("aaaaaaaaaaaaaaaa", now + HOUR_MS, now)
            .await,
        Err(ControlError::StreamNotFound { .. })
    ));

    store
        .mark_stream_started(&stream.id, now + 10)
        .await
        .expect("goes live");
    let late = store.schedule_stream(&stream.id, now + HOUR_MS, now).await;
    assert!(is_transition(&late, "idle", "schedule"), "{late:?}");
    store.end_stream(&stream.id).await.expect("end");
    let ended = store.schedule_stream(&stream.id, now + HOUR_MS, now).await;
    assert!(is_transition(&ended, "ended", "schedule"), "{ended:?}");
    assert_eq!(
        store
            .get_stream(&stream.id)
            .await
            .expect("read")
            .scheduled_at_ms,
        Some(now + 3 * HOUR_MS)
    );
}

async fn only_a_scheduled_stream_that_never_started_can_be_cancelled(ctx: Ctx) {
    let store = &ctx.store;
    let ann = channel(store, "ann").await;
    let now = now_ms();
    let scheduled = stream_in(store, &ann, "s", Some(now + HOUR_MS)).await;
    let cancelled = store
        .cancel_stream(&scheduled.id, now + 5)
        .await
        .expect("cancel");
    assert_eq!(cancelled.status, StreamStatus::Ended);
    assert_eq!(cancelled.cancelled_at_ms, Some(now + 5));
    assert_eq!(cancelled.ended_at_ms, Some(now + 5));
    assert_eq!(cancelled.state(false), StreamState::Cancelled);
    assert_eq!(cancelled.state(true), StreamState::Cancelled);
    assert_eq!(
        store
            .cancel_stream(&scheduled.id, now + 50)
            .await
            .expect("again: nothing changes"),
        cancelled
    );
    assert!(matches!(
        store
            .verify_stream_key(&scheduled.id, Some(scheduled.stream_key.expose()))
            .await,
        Err(ControlError::StreamEnded { .. })
    ));
    let publish = store.mark_stream_started(&scheduled.id, now + 60).await;
    assert!(
        is_transition(&publish, "cancelled", "publish"),
        "{publish:?}"
    );
    assert_eq!(
        store
            .end_stream(&scheduled.id)
            .await
            .expect("end: as it is"),
        cancelled
    );

    let idle = stream_in(store, &ann, "idle", None).await;
    let refused = store.cancel_stream(&idle.id, now).await;
    assert!(is_transition(&refused, "idle", "cancel"), "{refused:?}");

    let started = stream_in(store, &ann, "started", Some(now + HOUR_MS)).await;
    store
        .mark_stream_started(&started.id, now)
        .await
        .expect("goes live");
    let refused = store.cancel_stream(&started.id, now).await;
    assert!(is_transition(&refused, "idle", "cancel"), "{refused:?}");

    store.end_stream(&idle.id).await.expect("end");
    let refused = store.cancel_stream(&idle.id, now).await;
    assert!(is_transition(&refused, "ended", "cancel"), "{refused:?}");
    assert!(matches!(
        store.cancel_stream("aaaaaaaaaaaaaaaa", now).await,
        Err(ControlError::StreamNotFound { .. })
    ));
}

async fn a_scheduled_stream_that_never_started_cannot_be_ended(ctx: Ctx) {
    let store = &ctx.store;
    let ann = channel(store, "ann").await;
    let now = now_ms();
    let scheduled = stream_in(store, &ann, "s", Some(now + HOUR_MS)).await;
    let refused = store.end_stream(&scheduled.id).await;
    assert!(is_transition(&refused, "scheduled", "end"), "{refused:?}");
    assert_eq!(
        store.get_stream(&scheduled.id).await.expect("read"),
        scheduled
    );

    store
        .mark_stream_started(&scheduled.id, now)
        .await
        .expect("goes live early");
    let ended = store.end_stream(&scheduled.id).await.expect("end");
    assert_eq!(ended.state(false), StreamState::Ended);
    assert_eq!(ended.cancelled_at_ms, None);

    let idle = stream_in(store, &ann, "never scheduled", None).await;
    let ended = store
        .end_stream(&idle.id)
        .await
        .expect("end an idle stream");
    assert_eq!(ended.state(false), StreamState::Ended);
}

async fn the_first_publish_is_recorded_once_and_refused_after_the_end(ctx: Ctx) {
    let store = &ctx.store;
    let ann = channel(store, "ann").await;
    let now = now_ms();
    let stream = stream_in(store, &ann, "s", Some(now + HOUR_MS)).await;
    let first = store
        .mark_stream_started(&stream.id, now + 1)
        .await
        .expect("first publish");
    assert_eq!(first.started_at_ms, Some(now + 1));
    assert_eq!(first.state(false), StreamState::Idle);
    assert_eq!(first.state(true), StreamState::Live);
    let second = store
        .mark_stream_started(&stream.id, now + 99)
        .await
        .expect("second publish");
    assert_eq!(second.started_at_ms, Some(now + 1));
    assert_eq!(second, first);
    store.end_stream(&stream.id).await.expect("end");
    let after = store.mark_stream_started(&stream.id, now + 200).await;
    assert!(is_transition(&after, "ended", "publish"), "{after:?}");
    assert!(matches!(
        store.mark_stream_started("aaaaaaaaaaaaaaaa", now).await,
        Err(ControlError::StreamNotFound { .. })
    ));
}

async fn a_cancel_racing_a_first_publish_lets_exactly_one_win(ctx: Ctx) {
    let store = &ctx.store;
    let ann = channel(store, "ann").await;
    let now = now_ms();
    let (mut cancels, mut starts) = (0, 0);
    for round in 0..12 {
        let stream = stream_in(store, &ann, &format!("race {round}"), Some(now + HOUR_MS)).await;
        let cancel = {
            let store = store.clone();
            let id = stream.id.clone();
            tokio::spawn(async move { store.cancel_stream(&id, now + 1).await })
        };
        let start = {
            let store = store.clone();
            let id = stream.id.clone();
            tokio::spawn(async move { store.mark_stream_started(&id, now + 2).await })
        };
        let (cancel, start) = (
            cancel.await.expect("cancel ran"),
            start.await.expect("start ran"),
        );
        let stored = store.get_stream(&stream.id).await.expect("read");
        match (&cancel, &start) {
            (Ok(_), Err(ControlError::InvalidTransition { action, .. })) => {
                assert_eq!(*action, "publish");
                assert_eq!(stored.state(false), StreamState::Cancelled);
                assert_eq!(stored.started_at_ms, None);
                cancels += 1;
            }
            (Err(ControlError::InvalidTransition { action, .. }), Ok(_)) => {
                assert_eq!(*action, "cancel");
                assert_eq!(stored.state(false), StreamState::Idle);
                assert_eq!(stored.cancelled_at_ms, None);
                starts += 1;
            }
            other => panic!("round {round}: not exactly one winner: {other:?}"),
        }
    }
    assert_eq!(cancels + starts, 12);
}

async fn settings_change_with_patch_semantics_and_keep_the_access_rules(ctx: Ctx) {
    let store = &ctx.store;
    let ann = channel(store, "ann").await;
    let stream = stream_in(store, &ann, "s", None).await;
    let same = store
        .update_stream_settings(&stream.id, StreamSettingsUpdate::default())
        .await
        .expect("no change");
    assert_eq!(same, stream);

    let priced_while_free = store
        .update_stream_settings(
            &stream.id,
            StreamSettingsUpdate {
                price_tokens: Some(Some(5)),
                ..StreamSettingsUpdate::default()
            },
        )
        .await;
    assert!(
        matches!(
            priced_while_free,
            Err(ControlError::InvalidStreamSetting { .. })
        ),
        "{priced_while_free:?}"
    );

    let paid = store
        .update_stream_settings(
            &stream.id,
            StreamSettingsUpdate {
                description: Some("now paid".to_owned()),
                access: Some(StreamAccess::Paid),
                price_tokens: Some(Some(40)),
                replay_access_days: Some(Some(7)),
            },
        )
        .await
        .expect("become paid");
    assert_eq!(paid.description, "now paid");
    assert_eq!(paid.access, StreamAccess::Paid);
    assert_eq!(paid.price_tokens, Some(40));
    assert_eq!(paid.replay_access_days, Some(7));

    let repriced = store
        .update_stream_settings(
            &stream.id,
            StreamSettingsUpdate {
                price_tokens: Some(Some(60)),
                ..StreamSettingsUpdate::default()
            },
        )
        .await
        .expect("a paid stream's price changes alone");
    assert_eq!(repriced.price_tokens, Some(60));
    assert_eq!(repriced.description, "now paid");

    let unlimited = store
        .update_stream_settings(
            &stream.id,
            StreamSettingsUpdate {
                replay_access_days: Some(None),
                ..StreamSettingsUpdate::default()
            },
        )
        .await
        .expect("clear the replay limit");
    assert_eq!(unlimited.replay_access_days, None);

    let free = store
        .update_stream_settings(
            &stream.id,
            StreamSettingsUpdate {
                access: Some(StreamAccess::Free),
                ..StreamSettingsUpdate::default()
            },
        )
        .await
        .expect("back to free");
    assert_eq!(free.access, StreamAccess::Free);
    assert_eq!(free.price_tokens, None, "free clears the token price");

    for bad in [
        StreamSettingsUpdate {
            access: Some(StreamAccess::Free),
            price_tokens: Some(Some(3)),
            ..StreamSettingsUpdate::default()
        },
        StreamSettingsUpdate {
            access: Some(StreamAccess::Paid),
            price_tokens: Some(Some(0)),
            ..StreamSettingsUpdate::default()
        },
        StreamSettingsUpdate {
            replay_access_days: Some(Some(0)),
            ..StreamSettingsUpdate::default()
        },
        StreamSettingsUpdate {
            description: Some("d".repeat(5001)),
            ..StreamSettingsUpdate::default()
        },
    ] {
        assert!(
            matches!(
                store.update_stream_settings(&stream.id, bad.clone()).await,
                Err(ControlError::InvalidStreamSetting { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(store.get_stream(&stream.id).await.expect("read"), free);

    let operators = store.create_stream("operator").await.expect("create");
    let admin_only = store
        .update_stream_settings(
            &operators.id,
            StreamSettingsUpdate {
                access: Some(StreamAccess::Paid),
                ..StreamSettingsUpdate::default()
            },
        )
        .await
        .expect("an operator's stream may be paid (only the admin watches it)");
    assert_eq!(admin_only.access, StreamAccess::Paid);
    assert_eq!(
        store
            .update_stream_settings(
                &operators.id,
                StreamSettingsUpdate {
                    description: Some("about".to_owned()),
                    ..StreamSettingsUpdate::default()
                },
            )
            .await
            .expect("describe")
            .description,
        "about"
    );
    for missing in ["aaaaaaaaaaaaaaaa", "nope"] {
        assert!(matches!(
            store
                .update_stream_settings(
                    missing,
                    StreamSettingsUpdate {
                        description: Some("x".to_owned()),
                        ..StreamSettingsUpdate::default()
                    },
                )
                .await,
            Err(ControlError::StreamNotFound { .. })
        ));
    }
}

async fn upcoming_lists_channel_streams_soonest_first(ctx: Ctx) {
    let store = &ctx.store;
    let ann = channel(store, "ann").await;
    let bob = channel(store, "bob").await;
    let now = now_ms();
    let later = stream_in(store, &ann, "later", Some(now + 5 * HOUR_MS)).await;
    let soon = stream_in(store, &bob, "soon", Some(now + HOUR_MS / 2)).await;
    let middle = stream_in(store, &ann, "middle", Some(now + 2 * HOUR_MS)).await;
    stream_in(store, &ann, "not scheduled", None).await;
    let cancelled = stream_in(store, &bob, "cancelled", Some(now + 3 * HOUR_MS)).await;
    store
        .cancel_stream(&cancelled.id, now)
        .await
        .expect("cancel");
    let started = stream_in(store, &bob, "started", Some(now + 4 * HOUR_MS)).await;
    store
        .mark_stream_started(&started.id, now)
        .await
        .expect("start");
    store
        .create_stream_from(NewStream {
            title: "operator's".to_owned(),
            scheduled_at_ms: Some(now + HOUR_MS),
            ..NewStream::default()
        })
        .await
        .expect("an operator's scheduled stream");

    let titles =
        |streams: Vec<Stream>| -> Vec<String> { streams.into_iter().map(|s| s.title).collect() };
    assert_eq!(
        titles(store.upcoming_streams(now, 100).await.expect("list")),
        vec!["soon", "middle", "later"]
    );
    assert_eq!(
        titles(store.upcoming_streams(now, 2).await.expect("list")),
        vec!["soon", "middle"]
    );
    assert_eq!(
        titles(store.upcoming_streams(now, 0).await.expect("list")),
        vec!["soon"],
        "the limit is at least one"
    );
    // Seen from 1.5 h later, "soon" started (or should have) an hour ago: still listed; from
    // 2 h later it is past the grace hour.
    assert_eq!(
        titles(
            store
                .upcoming_streams(soon.scheduled_at_ms.unwrap_or_default() + HOUR_MS, 100)
                .await
                .expect("list")
        ),
        vec!["soon", "middle", "later"]
    );
    assert_eq!(
        titles(
            store
                .upcoming_streams(soon.scheduled_at_ms.unwrap_or_default() + HOUR_MS + 1, 100)
                .await
                .expect("list")
        ),
        vec!["middle", "later"]
    );
    assert!(later.scheduled_at_ms > middle.scheduled_at_ms);
}

async fn live_candidates_are_open_channel_streams_latest_started_first(ctx: Ctx) {
    let store = &ctx.store;
    let ann = channel(store, "ann").await;
    let now = now_ms();
    let never = stream_in(store, &ann, "never started", None).await;
    let early = stream_in(store, &ann, "started early", None).await;
    let late = stream_in(store, &ann, "started late", None).await;
    let ended = stream_in(store, &ann, "ended", None).await;
    store
        .mark_stream_started(&early.id, now)
        .await
        .expect("start");
    store
        .mark_stream_started(&late.id, now + 10)
        .await
        .expect("start");
    store.end_stream(&ended.id).await.expect("end");
    store.create_stream("operator's").await.expect("create");

    let open = store.open_channel_streams(100).await.expect("list");
    let ids: Vec<&str> = open.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![late.id.as_str(), early.id.as_str(), never.id.as_str()]
    );
    assert_eq!(store.open_channel_streams(1).await.expect("list").len(), 1);
}

async fn a_stored_stream_renders_as_a_calendar_event(ctx: Ctx) {
    let store = &ctx.store;
    let ann = channel(store, "ann").await;
    let at = now_ms() + 2 * HOUR_MS;
    let stream = store
        .create_stream_from(NewStream {
            title: "Q&A; live, with \\ backslash".to_owned(),
            channel_id: Some(ann.id.clone()),
            description: format!("Line one\nLine two {}", "long ".repeat(40)),
            scheduled_at_ms: Some(at),
            ..NewStream::default()
        })
        .await
        .expect("create");
    let watch = format!("https://tv.example.com/watch/{}", stream.id);
    let text = ics::render_event(&stream, Some(&ann), &watch, "tv.example.com", at - HOUR_MS);
    assert!(text.ends_with("END:VCALENDAR\r\n"));
    assert!(!text.replace("\r\n", "").contains('\n'), "bare LF");
    assert!(!text.replace("\r\n", "").contains('\r'), "bare CR");
    for line in text.split_terminator("\r\n") {
        assert!(line.len() <= 75, "{line:?} is {} octets", line.len());
    }
    let unfolded = ics::unfold(&text);
    let lines: Vec<&str> = unfolded.split_terminator("\r\n").collect();
    assert_eq!(lines[0], "BEGIN:VCALENDAR");
    assert!(lines.contains(&"VERSION:2.0"));
    assert!(lines.contains(&format!("UID:{}@tv.example.com", stream.id).as_str()));
    assert!(lines.contains(&format!("DTSTART:{}", ics::utc_time(at)).as_str()));
    assert!(lines.contains(&format!("DTEND:{}", ics::utc_time(at + HOUR_MS)).as_str()));
    assert!(lines.contains(&format!("DTSTAMP:{}", ics::utc_time(at - HOUR_MS)).as_str()));
    assert!(lines.contains(&"SUMMARY:Q&A\\; live\\, with \\\\ backslash"));
    assert!(lines.contains(&format!("URL:{watch}").as_str()));
    assert!(lines.contains(&"STATUS:CONFIRMED"));
    let description = lines
        .iter()
        .find(|l| l.starts_with("DESCRIPTION:"))
        .expect("a description");
    assert!(description.contains("ann (@ann)\\n\\nLine one\\nLine two long"));
    let dtstart = lines
        .iter()
        .find(|l| l.starts_with("DTSTART:"))
        .expect("a start");
    assert_eq!(dtstart.len(), "DTSTART:".len() + 16);
    assert!(dtstart.ends_with('Z'));

    let cancelled = store
        .cancel_stream(&stream.id, now_ms())
        .await
        .expect("cancel");
    let text = ics::render_event(&cancelled, Some(&ann), &watch, "tv.example.com", now_ms());
    assert!(text.contains("\r\nSTATUS:CANCELLED\r\n"));
    assert!(text.contains(&format!("UID:{}@tv.example.com", stream.id)));
}
