//! Passes, checkouts and grants behave the same on SQLite and on Postgres
//! (`GREENROOM_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`; without
//! a reachable Postgres those tests fail): passes are validated before anything is stored,
//! repricing keeps the price existing grants were bought at, a free pass is claimed once per
//! account, and access follows the pass's scope, the grant's lifetime and the stream's replay
//! window.

use greenroom_control::grant::DAY_MS;
use greenroom_control::{
    Account, Channel, CheckoutPurpose, CheckoutStatus, CompTarget, ControlError, EventStatus,
    GrantSource, NewCheckout, NewPass, NewStream, Pass, PassKind, PassScope, Role, Store, Stream,
    StreamAccess, StripeIds, TipStatus,
};

mod access;
mod catalogue;
mod checkouts;
#[path = "../common/mod.rs"]
mod common;

use common::{Ctx, checkout_completed, now_ms};

on_both_backends!(passes_are_validated_before_anything_is_stored);

struct World {
    channel: Channel,
    viewer: Account,
    other_viewer: Account,
    paid: Stream,
    other_paid: Stream,
    foreign: Stream,
}

async fn account(store: &Store, name: &str, role: Role) -> Account {
    store
        .create_account(
            &format!("{name}@example.com"),
            "a long enough password",
            name,
            role,
        )
        .await
        .expect("create an account")
}

async fn paid_stream(store: &Store, channel: &Channel, title: &str) -> Stream {
    store
        .create_stream_from(NewStream {
            title: title.to_owned(),
            channel_id: Some(channel.id.clone()),
            access: StreamAccess::Paid,
            price_tokens: Some(25),
            replay_access_days: Some(1),
            ..NewStream::default()
        })
        .await
        .expect("create a paid stream")
}

async fn world(store: &Store) -> World {
    let creator = account(store, "creator", Role::Creator).await;
    let channel = store
        .create_channel(&creator.id, "@Creator", "The Creator", "")
        .await
        .expect("create a channel");
    let rival = account(store, "rival", Role::Creator).await;
    let rival_channel = store
        .create_channel(&rival.id, "rival", "Rival", "")
        .await
        .expect("create a channel");
    World {
        paid: paid_stream(store, &channel, "Paid one").await,
        other_paid: paid_stream(store, &channel, "Paid two").await,
        foreign: paid_stream(store, &rival_channel, "Elsewhere").await,
        viewer: account(store, "viewer", Role::Viewer).await,
        other_viewer: account(store, "other", Role::Viewer).await,
        channel,
    }
}

fn new_pass(channel: &Channel, kind: PassKind, scope: PassScope, amount_minor: i64) -> NewPass {
    NewPass {
        channel_id: channel.id.clone(),
        name: "Season pass".to_owned(),
        kind,
        scope,
        stream_ids: Vec::new(),
        amount_minor,
        currency: "usd".to_owned(),
    }
}

fn stripe(n: u32) -> Option<StripeIds> {
    Some(StripeIds {
        product_id: format!("prod_{n}"),
        price_id: format!("price_{n}"),
    })
}

async fn buy(store: &Store, viewer: &Account, pass: &Pass, n: u32) -> greenroom_control::Grant {
    let checkout = store
        .create_checkout(NewCheckout::for_pass(&viewer.id, pass, 500).expect("new checkout"))
        .await
        .expect("create a checkout");
    let event = checkout_completed(
        &format!("evt_buy_{n}"),
        &checkout.id,
        &format!("pi_{n}"),
        pass.amount_minor,
        now_ms() / 1000,
    );
    let outcome = store
        .apply_stripe_event(&event, now_ms(), 500)
        .await
        .expect("apply");
    assert_eq!(outcome.status, EventStatus::Applied);
    store
        .grant_for_checkout(&checkout.id)
        .await
        .expect("read the grant")
        .expect("a grant")
}

async fn passes_are_validated_before_anything_is_stored(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let invalid = |result: Result<Pass, ControlError>| {
        assert!(
            matches!(result, Err(ControlError::InvalidPass { .. })),
            "{result:?}"
        );
    };
    // Paid without Stripe ids, free with them, free with a price, paid below 1 USD.
    invalid(
        store
            .create_pass(
                new_pass(&w.channel, PassKind::OneTime, PassScope::Channel, 500),
                None,
            )
            .await,
    );
    invalid(
        store
            .create_pass(
                new_pass(&w.channel, PassKind::Free, PassScope::Channel, 0),
                stripe(1),
            )
            .await,
    );
    invalid(
        store
            .create_pass(
                new_pass(&w.channel, PassKind::Free, PassScope::Channel, 100),
                None,
            )
            .await,
    );
    invalid(
        store
            .create_pass(
                new_pass(&w.channel, PassKind::Monthly, PassScope::Channel, 99),
                stripe(1),
            )
            .await,
    );
    invalid(
        store
            .create_pass(
                new_pass(
                    &w.channel,
                    PassKind::Yearly,
                    PassScope::Channel,
                    100_000_001,
                ),
                stripe(1),
            )
            .await,
    );
    // A streams pass needs streams, all of its channel.
    invalid(
        store
            .create_pass(
                new_pass(&w.channel, PassKind::Free, PassScope::Streams, 0),
                None,
            )
            .await,
    );
    let mut foreign = new_pass(&w.channel, PassKind::Free, PassScope::Streams, 0);
    foreign.stream_ids = vec![w.paid.id.clone(), w.foreign.id.clone()];
    invalid(store.create_pass(foreign, None).await);
    let mut unknown = new_pass(&w.channel, PassKind::Free, PassScope::Streams, 0);
    unknown.stream_ids = vec!["aaaaaaaaaaaaaaaa".to_owned()];
    invalid(store.create_pass(unknown, None).await);
    let mut nameless = new_pass(&w.channel, PassKind::Free, PassScope::Channel, 0);
    nameless.name = "  ".to_owned();
    invalid(store.create_pass(nameless, None).await);
    let mut orphan = new_pass(&w.channel, PassKind::Free, PassScope::Channel, 0);
    orphan.channel_id = "nochannelatall0".to_owned();
    assert!(matches!(
        store.create_pass(orphan, None).await,
        Err(ControlError::ChannelNotFound { .. })
    ));
    assert!(
        store
            .list_channel_passes(&w.channel.id, true)
            .await
            .expect("list")
            .is_empty(),
        "nothing was stored"
    );

    // Valid ones, normalized.
    let mut streams = new_pass(&w.channel, PassKind::OneTime, PassScope::Streams, 1_000);
    streams.stream_ids = vec![
        w.other_paid.id.clone(),
        w.paid.id.clone(),
        w.paid.id.clone(),
    ];
    streams.currency = "USD".to_owned();
    let pass = store.create_pass(streams, stripe(2)).await.expect("create");
    let mut expected = vec![w.paid.id.clone(), w.other_paid.id.clone()];
    expected.sort();
    assert_eq!(pass.stream_ids, expected);
    assert_eq!(pass.currency, "usd");
    assert_eq!(pass.stripe_price_id.as_deref(), Some("price_2"));
    assert_eq!(store.get_pass(&pass.id).await.expect("get"), pass);
    let prices = store.pass_prices(&pass.id).await.expect("prices");
    assert_eq!(prices.len(), 1);
    assert_eq!(
        (prices[0].amount_minor, prices[0].retired_at_ms),
        (1_000, None)
    );
    let jpy = NewPass {
        currency: "jpy".to_owned(),
        ..new_pass(&w.channel, PassKind::Monthly, PassScope::Channel, 1)
    };
    assert!(
        store.create_pass(jpy, stripe(3)).await.is_ok(),
        "1 JPY is 1 major unit"
    );
    assert!(matches!(
        store.get_pass("nopass").await,
        Err(ControlError::PassNotFound { .. })
    ));
}
