//! Channels behave the same on SQLite and on Postgres (`GREENROOM_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; without a reachable Postgres those tests fail):
//! one per creator account, unique lowercase handles also under concurrent creates, checked
//! profiles and Stripe account ids.

use greenroom_control::{
    Account, ChannelUpdate, ControlError, NewStream, Role, Store, StreamAccess,
};

mod common;

use common::Ctx;

on_both_backends!(
    a_creator_gets_one_channel_found_by_any_spelling_of_its_handle,
    only_a_creator_account_can_have_a_channel,
    a_handle_is_taken_once_whatever_its_case,
    bad_handles_names_and_bios_store_nothing,
    concurrent_creates_of_one_handle_let_exactly_one_win,
    concurrent_creates_by_one_account_let_exactly_one_win,
    a_channel_profile_and_stripe_account_can_change,
    a_channel_lists_its_streams_newest_first,
    streams_go_only_in_channels_that_exist,
);

async fn creator(store: &Store, name: &str) -> Account {
    store
        .create_account(
            &format!("{name}@example.com"),
            "correct horse battery",
            name,
            Role::Creator,
        )
        .await
        .expect("create a creator")
}

async fn a_creator_gets_one_channel_found_by_any_spelling_of_its_handle(ctx: Ctx) {
    let store = &ctx.store;
    let ann = creator(store, "ann").await;
    assert_eq!(
        store.channel_for_account(&ann.id).await.expect("read"),
        None
    );
    let channel = store
        .create_channel(
            &ann.id,
            " @Ann_Live ",
            " Ann Live ",
            "  Streams on Sundays\n ",
        )
        .await
        .expect("create the channel");
    assert_eq!(channel.handle, "ann_live");
    assert_eq!(channel.display_name, "Ann Live");
    assert_eq!(channel.bio, "Streams on Sundays");
    assert_eq!(channel.account_id, ann.id);
    assert_eq!(channel.stripe_account_id, None);
    for spelling in ["ann_live", "@ann_live", "@ANN_Live", " Ann_live "] {
        assert_eq!(
            store.get_channel_by_handle(spelling).await.expect("found"),
            channel,
            "{spelling}"
        );
    }
    assert_eq!(
        store.get_channel(&channel.id).await.expect("by id"),
        channel
    );
    assert_eq!(
        store.channel_for_account(&ann.id).await.expect("read"),
        Some(channel.clone())
    );
    assert!(matches!(
        store.create_channel(&ann.id, "ann_other", "Ann", "").await,
        Err(ControlError::ChannelExists { .. })
    ));
    for missing in ["nobody", "@x", "not a handle!", ""] {
        assert!(
            matches!(
                store.get_channel_by_handle(missing).await,
                Err(ControlError::ChannelNotFound { .. })
            ),
            "{missing:?}"
        );
    }
    for missing in ["aaaaaaaaaaaaaaaa", "nope"] {
        assert!(matches!(
            store.get_channel(missing).await,
            Err(ControlError::ChannelNotFound { .. })
        ));
    }
    let found = store
        .channels_by_ids(&[
            channel.id.clone(),
            "aaaaaaaaaaaaaaaa".to_owned(),
            "x".to_owned(),
        ])
        .await
        .expect("by ids");
    assert_eq!(found, vec![channel]);
    assert!(store.channels_by_ids(&[]).await.expect("none").is_empty());
}

async fn only_a_creator_account_can_have_a_channel(ctx: Ctx) {
    let store = &ctx.store;
    let viewer = store
        .create_account(
            "val@example.com",
            "correct horse battery",
            "Val",
            Role::Viewer,
        )
        .await
        .expect("create a viewer");
    assert!(matches!(
        store.create_channel(&viewer.id, "val", "Val", "").await,
        Err(ControlError::Forbidden { .. })
    ));
    assert!(matches!(
        store
            .create_channel("aaaaaaaaaaaaaaaa", "ghost", "Ghost", "")
            .await,
        Err(ControlError::AccountNotFound { .. })
    ));
    assert!(matches!(
        store.get_channel_by_handle("val").await,
        Err(ControlError::ChannelNotFound { .. })
    ));
}

async fn a_handle_is_taken_once_whatever_its_case(ctx: Ctx) {
    let store = &ctx.store;
    let ann = creator(store, "ann").await;
    let bob = creator(store, "bob").await;
    store
        .create_channel(&ann.id, "music", "Ann", "")
        .await
        .expect("first");
    let taken = store.create_channel(&bob.id, "@MUSIC", "Bob", "").await;
    assert!(
        matches!(&taken, Err(ControlError::HandleTaken { handle }) if handle == "music"),
        "{taken:?}"
    );
    assert_eq!(
        store.channel_for_account(&bob.id).await.expect("read"),
        None
    );
    store
        .create_channel(&bob.id, "music_2", "Bob", "")
        .await
        .expect("another handle");
}

async fn bad_handles_names_and_bios_store_nothing(ctx: Ctx) {
    let store = &ctx.store;
    let ann = creator(store, "ann").await;
    let long_bio = "b".repeat(1001);
    for (handle, name, bio) in [
        ("ab", "Ann", ""),
        ("ann-live", "Ann", ""),
        ("admin", "Ann", ""),
        ("@Discover", "Ann", ""),
        ("annlive", "", ""),
        ("annlive", &"n".repeat(81), ""),
        ("annlive", "Ann", long_bio.as_str()),
    ] {
        assert!(
            matches!(
                store.create_channel(&ann.id, handle, name, bio).await,
                Err(ControlError::InvalidChannel { .. })
            ),
            "{handle:?} {name:?}"
        );
    }
    assert_eq!(
        store.channel_for_account(&ann.id).await.expect("read"),
        None
    );
}

async fn concurrent_creates_of_one_handle_let_exactly_one_win(ctx: Ctx) {
    let store = &ctx.store;
    let mut accounts = Vec::new();
    for i in 0..8 {
        accounts.push(creator(store, &format!("c{i}")).await);
    }
    let attempts = accounts.iter().map(|account| {
        let store = store.clone();
        let account = account.id.clone();
        tokio::spawn(async move { store.create_channel(&account, "popular", "P", "").await })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let mut won = 0;
    for outcome in outcomes {
        match outcome.expect("the task ran") {
            Ok(channel) => {
                won += 1;
                assert_eq!(channel.handle, "popular");
            }
            Err(ControlError::HandleTaken { handle }) => assert_eq!(handle, "popular"),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
}

async fn concurrent_creates_by_one_account_let_exactly_one_win(ctx: Ctx) {
    let store = &ctx.store;
    let ann = creator(store, "ann").await;
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        let account = ann.id.clone();
        tokio::spawn(async move {
            store
                .create_channel(&account, &format!("ann_{i}"), "Ann", "")
                .await
        })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let mut won = Vec::new();
    for outcome in outcomes {
        match outcome.expect("the task ran") {
            Ok(channel) => won.push(channel),
            Err(ControlError::ChannelExists { account }) => assert_eq!(account, ann.id),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won.len(), 1);
    assert_eq!(
        store.channel_for_account(&ann.id).await.expect("read"),
        won.pop()
    );
}

async fn a_channel_profile_and_stripe_account_can_change(ctx: Ctx) {
    let store = &ctx.store;
    let ann = creator(store, "ann").await;
    let channel = store
        .create_channel(&ann.id, "ann", "Ann", "")
        .await
        .expect("create");
    let same = store
        .update_channel(&channel.id, ChannelUpdate::default())
        .await
        .expect("no change");
    assert_eq!(same, channel);

    let changed = store
        .update_channel(
            &channel.id,
            ChannelUpdate {
                display_name: Some(" Ann B ".to_owned()),
                bio: Some("New bio".to_owned()),
                stripe_account_id: Some(Some("acct_1Ab2Cd".to_owned())),
            },
        )
        .await
        .expect("change");
    assert_eq!(changed.display_name, "Ann B");
    assert_eq!(changed.bio, "New bio");
    assert_eq!(changed.stripe_account_id.as_deref(), Some("acct_1Ab2Cd"));
    assert_eq!(changed.handle, "ann");
    assert_eq!(store.get_channel(&channel.id).await.expect("read"), changed);

    for bad in [
        ChannelUpdate {
            stripe_account_id: Some(Some("cus_123".to_owned())),
            ..ChannelUpdate::default()
        },
        ChannelUpdate {
            stripe_account_id: Some(Some("acct_".to_owned())),
            ..ChannelUpdate::default()
        },
        ChannelUpdate {
            display_name: Some(String::new()),
            bio: Some("fine".to_owned()),
            ..ChannelUpdate::default()
        },
        ChannelUpdate {
            bio: Some("x".repeat(1001)),
            ..ChannelUpdate::default()
        },
    ] {
        assert!(
            matches!(
                store.update_channel(&channel.id, bad.clone()).await,
                Err(ControlError::InvalidChannel { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(store.get_channel(&channel.id).await.expect("read"), changed);

    let disconnected = store
        .update_channel(
            &channel.id,
            ChannelUpdate {
                stripe_account_id: Some(None),
                ..ChannelUpdate::default()
            },
        )
        .await
        .expect("disconnect");
    assert_eq!(disconnected.stripe_account_id, None);
    assert_eq!(disconnected.bio, "New bio");

    for missing in ["aaaaaaaaaaaaaaaa", "nope"] {
        assert!(matches!(
            store
                .update_channel(
                    missing,
                    ChannelUpdate {
                        bio: Some("x".to_owned()),
                        ..ChannelUpdate::default()
                    }
                )
                .await,
            Err(ControlError::ChannelNotFound { .. })
        ));
    }
}

async fn a_channel_lists_its_streams_newest_first(ctx: Ctx) {
    let store = &ctx.store;
    let ann = creator(store, "ann").await;
    let bob = creator(store, "bob").await;
    let anns = store
        .create_channel(&ann.id, "ann", "Ann", "")
        .await
        .expect("ann's");
    let bobs = store
        .create_channel(&bob.id, "bob", "Bob", "")
        .await
        .expect("bob's");
    let mut created = Vec::new();
    for (i, channel) in [&anns, &bobs, &anns].into_iter().enumerate() {
        created.push(
            store
                .create_stream_from(NewStream {
                    title: format!("stream {i}"),
                    channel_id: Some(channel.id.clone()),
                    ..NewStream::default()
                })
                .await
                .expect("create"),
        );
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    store.create_stream("an operator's").await.expect("admin");
    let listed = store.list_channel_streams(&anns.id).await.expect("list");
    let ids: Vec<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, vec![created[2].id.as_str(), created[0].id.as_str()]);
    assert!(
        listed
            .iter()
            .all(|s| s.channel_id.as_deref() == Some(anns.id.as_str()))
    );
    assert_eq!(listed[0], created[2]);

    store.end_stream(&created[0].id).await.expect("end");
    let open = store
        .channel_open_streams(&anns.id, 10)
        .await
        .expect("open");
    assert_eq!(open, vec![created[2].clone()]);
    assert!(
        store
            .list_channel_streams("aaaaaaaaaaaaaaaa")
            .await
            .expect("none")
            .is_empty()
    );
}

async fn streams_go_only_in_channels_that_exist(ctx: Ctx) {
    let store = &ctx.store;
    for channel_id in ["aaaaaaaaaaaaaaaa", "bad"] {
        assert!(matches!(
            store
                .create_stream_from(NewStream {
                    title: "x".to_owned(),
                    channel_id: Some(channel_id.to_owned()),
                    access: StreamAccess::Paid,
                    ..NewStream::default()
                })
                .await,
            Err(ControlError::ChannelNotFound { .. })
        ));
    }
    assert!(store.list_streams().await.expect("list").is_empty());
}
