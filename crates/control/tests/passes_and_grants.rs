//! Passes, checkouts and grants behave the same on SQLite and on Postgres
//! (`GREENROOM_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`; without
//! a reachable Postgres those tests fail): passes are validated before anything is stored,
//! repricing keeps the price existing grants were bought at, a free pass is claimed once per
//! account, and access follows the pass's scope, the grant's lifetime and the stream's replay
//! window.

use std::time::{SystemTime, UNIX_EPOCH};

use greenroom_control::grant::DAY_MS;
use greenroom_control::{
    Account, Channel, CheckoutPurpose, CheckoutStatus, CompTarget, ControlError, EventStatus,
    GrantSource, NewCheckout, NewPass, NewStream, Pass, PassKind, PassScope, Role, Store, Stream,
    StreamAccess, StripeEvent, StripeIds, TipStatus,
};
use serde_json::json;

mod common;

use common::Ctx;

on_both_backends!(
    passes_are_validated_before_anything_is_stored,
    passes_are_listed_renamed_and_archived,
    repricing_keeps_the_price_existing_grants_were_bought_at,
    a_free_pass_is_claimed_once_per_account,
    access_follows_the_pass_scope_and_the_grant_lifetime,
    replay_access_ends_days_after_the_stream_ended,
    checkouts_are_checked_and_found_by_session,
);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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

/// `checkout.session.completed` for a payment-mode checkout.
fn completed(event_id: &str, checkout_id: &str, payment_intent: &str, amount: i64) -> StripeEvent {
    let payload = json!({
        "id": event_id, "object": "event", "type": "checkout.session.completed",
        "created": now_ms() / 1000,
        "data": {"object": {
            "id": format!("cs_{event_id}"), "object": "checkout.session", "mode": "payment",
            "payment_status": "paid", "metadata": {"greenroom_checkout": checkout_id},
            "payment_intent": payment_intent, "amount_total": amount, "currency": "usd"
        }}
    });
    StripeEvent::parse(payload.to_string().as_bytes()).expect("parse the event")
}

async fn buy(store: &Store, viewer: &Account, pass: &Pass, n: u32) -> greenroom_control::Grant {
    let checkout = store
        .create_checkout(NewCheckout::for_pass(&viewer.id, pass, 500).expect("new checkout"))
        .await
        .expect("create a checkout");
    let event = completed(
        &format!("evt_buy_{n}"),
        &checkout.id,
        &format!("pi_{n}"),
        pass.amount_minor,
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

async fn passes_are_listed_renamed_and_archived(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let channel_pass = store
        .create_pass(
            new_pass(&w.channel, PassKind::Monthly, PassScope::Channel, 500),
            stripe(1),
        )
        .await
        .expect("create");
    let mut streams = new_pass(&w.channel, PassKind::Free, PassScope::Streams, 0);
    streams.stream_ids = vec![w.paid.id.clone()];
    let stream_pass = store.create_pass(streams, None).await.expect("create");
    let listed = store
        .list_channel_passes(&w.channel.id, false)
        .await
        .expect("list");
    assert_eq!(listed, vec![channel_pass.clone(), stream_pass.clone()]);

    let covering: Vec<String> = store
        .passes_covering_stream(&w.paid.id)
        .await
        .expect("covering")
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(
        covering,
        vec![channel_pass.id.clone(), stream_pass.id.clone()]
    );
    let covering_other: Vec<String> = store
        .passes_covering_stream(&w.other_paid.id)
        .await
        .expect("covering")
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(covering_other, vec![channel_pass.id.clone()]);
    assert!(
        store
            .passes_covering_stream(&w.foreign.id)
            .await
            .expect("covering")
            .is_empty()
    );

    let renamed = store
        .rename_pass(&stream_pass.id, "  Opening night ")
        .await
        .expect("rename");
    assert_eq!(renamed.name, "Opening night");
    assert!(matches!(
        store.rename_pass(&stream_pass.id, "").await,
        Err(ControlError::InvalidPass { .. })
    ));
    assert!(matches!(
        store.rename_pass("nopass", "x").await,
        Err(ControlError::PassNotFound { .. })
    ));

    let archived = store.archive_pass(&channel_pass.id).await.expect("archive");
    assert!(!archived.active);
    assert!(
        !store
            .archive_pass(&channel_pass.id)
            .await
            .expect("again")
            .active
    );
    let active = store
        .list_channel_passes(&w.channel.id, false)
        .await
        .expect("list");
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].id, stream_pass.id);
    assert_eq!(
        store
            .list_channel_passes(&w.channel.id, true)
            .await
            .expect("list")
            .len(),
        2
    );
    let covering: Vec<String> = store
        .passes_covering_stream(&w.other_paid.id)
        .await
        .expect("covering")
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert!(covering.is_empty(), "archived passes are not sold");
}

async fn repricing_keeps_the_price_existing_grants_were_bought_at(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let pass = store
        .create_pass(
            new_pass(&w.channel, PassKind::OneTime, PassScope::Channel, 999),
            stripe(1),
        )
        .await
        .expect("create");
    let first = buy(store, &w.viewer, &pass, 1).await;
    assert_eq!(first.stripe_price_id.as_deref(), Some("price_1"));

    let repriced = store
        .reprice_pass(&pass.id, 1_499, "price_2", now_ms())
        .await
        .expect("reprice");
    assert_eq!(repriced.amount_minor, 1_499);
    assert_eq!(repriced.stripe_price_id.as_deref(), Some("price_2"));
    assert_eq!(
        (repriced.kind, repriced.currency.as_str()),
        (PassKind::OneTime, "usd")
    );
    assert_eq!(store.get_pass(&pass.id).await.expect("get"), repriced);
    let prices = store.pass_prices(&pass.id).await.expect("prices");
    assert_eq!(prices.len(), 2);
    let old = prices
        .iter()
        .find(|p| p.stripe_price_id == "price_1")
        .expect("old price kept");
    let new = prices
        .iter()
        .find(|p| p.stripe_price_id == "price_2")
        .expect("new price");
    assert!(old.retired_at_ms.is_some() && old.amount_minor == 999);
    assert!(new.retired_at_ms.is_none() && new.amount_minor == 1_499);

    // The old checkout price no longer sells; the new one does.
    assert!(matches!(
        store
            .create_checkout(NewCheckout::for_pass(&w.other_viewer.id, &pass, 500).expect("new"))
            .await,
        Err(ControlError::InvalidAmount { .. })
    ));
    let second = buy(store, &w.other_viewer, &repriced, 2).await;
    assert_eq!(second.stripe_price_id.as_deref(), Some("price_2"));
    let first_again = store.get_grant(&first.id).await.expect("get");
    assert_eq!(first_again.stripe_price_id.as_deref(), Some("price_1"));

    // A price id is used once; a free pass has no price; the range holds.
    assert!(matches!(
        store
            .reprice_pass(&pass.id, 2_000, "price_1", now_ms())
            .await,
        Err(ControlError::InvalidPass { .. })
    ));
    assert!(matches!(
        store.reprice_pass(&pass.id, 50, "price_3", now_ms()).await,
        Err(ControlError::InvalidPass { .. })
    ));
    let free = store
        .create_pass(
            new_pass(&w.channel, PassKind::Free, PassScope::Channel, 0),
            None,
        )
        .await
        .expect("create");
    assert!(matches!(
        store.reprice_pass(&free.id, 500, "price_4", now_ms()).await,
        Err(ControlError::InvalidPass { .. })
    ));
    assert_eq!(
        store
            .get_pass(&pass.id)
            .await
            .expect("get")
            .stripe_price_id
            .as_deref(),
        Some("price_2"),
        "failed reprices changed nothing"
    );
}

async fn a_free_pass_is_claimed_once_per_account(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let now = now_ms();
    let free = store
        .create_pass(
            new_pass(&w.channel, PassKind::Free, PassScope::Channel, 0),
            None,
        )
        .await
        .expect("create");
    let first = store
        .claim_free_pass(&w.viewer.id, &free.id, now)
        .await
        .expect("claim");
    assert_eq!(first.source, GrantSource::Free);
    assert_eq!(first.expires_at_ms, None);
    let again = store
        .claim_free_pass(&w.viewer.id, &free.id, now + 1)
        .await
        .expect("claim again");
    assert_eq!(again, first);

    // Claims racing: one grant.
    let claims = (0..10).map(|i| store.claim_free_pass(&w.other_viewer.id, &free.id, now + i));
    let grants = futures::future::join_all(claims).await;
    let ids: std::collections::BTreeSet<String> =
        grants.into_iter().map(|g| g.expect("claim").id).collect();
    assert_eq!(ids.len(), 1);
    let free_grants = store
        .grants_for_account(&w.other_viewer.id)
        .await
        .expect("grants");
    assert_eq!(free_grants.len(), 1);

    // Paid passes are bought, archived ones are not claimed any more (but a claim stays).
    let paid = store
        .create_pass(
            new_pass(&w.channel, PassKind::OneTime, PassScope::Channel, 500),
            stripe(1),
        )
        .await
        .expect("create");
    assert!(matches!(
        store.claim_free_pass(&w.viewer.id, &paid.id, now).await,
        Err(ControlError::InvalidPass { .. })
    ));
    store.archive_pass(&free.id).await.expect("archive");
    assert_eq!(
        store
            .claim_free_pass(&w.viewer.id, &free.id, now)
            .await
            .expect("claimed before")
            .id,
        first.id
    );
    let late = account(store, "late", Role::Viewer).await;
    assert!(matches!(
        store.claim_free_pass(&late.id, &free.id, now).await,
        Err(ControlError::PassInactive { .. })
    ));
    assert!(matches!(
        store.claim_free_pass(&late.id, "nopass", now).await,
        Err(ControlError::PassNotFound { .. })
    ));
    // The claim gives access to the channel's streams.
    let paid_stream = store.get_stream(&w.paid.id).await.expect("stream");
    assert_eq!(
        store
            .access_to_stream(&w.viewer.id, &paid_stream, now + 10, false)
            .await
            .expect("access")
            .id,
        first.id
    );
}

async fn access_follows_the_pass_scope_and_the_grant_lifetime(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let now = now_ms();
    let required = |result: Result<greenroom_control::Grant, ControlError>| {
        assert!(
            matches!(result, Err(ControlError::AccessRequired { .. })),
            "{result:?}"
        );
    };
    required(
        store
            .access_to_stream(&w.viewer.id, &w.paid, now, false)
            .await,
    );

    // A streams pass covers the streams it lists only.
    let mut listing = new_pass(&w.channel, PassKind::Free, PassScope::Streams, 0);
    listing.stream_ids = vec![w.paid.id.clone()];
    let listing = store.create_pass(listing, None).await.expect("create");
    let grant = store
        .claim_free_pass(&w.viewer.id, &listing.id, now)
        .await
        .expect("claim");
    assert_eq!(
        store
            .access_to_stream(&w.viewer.id, &w.paid, now, false)
            .await
            .expect("access")
            .id,
        grant.id
    );
    required(
        store
            .access_to_stream(&w.viewer.id, &w.other_paid, now, false)
            .await,
    );
    required(
        store
            .access_to_stream(&w.viewer.id, &w.foreign, now, false)
            .await,
    );
    required(
        store
            .access_to_stream(&w.other_viewer.id, &w.paid, now, false)
            .await,
    );
    // Not before it starts.
    required(
        store
            .access_to_stream(&w.viewer.id, &w.paid, now - 1, false)
            .await,
    );

    // A comp of a channel pass covers every stream of the channel until it expires.
    let channel_pass = store
        .create_pass(
            new_pass(&w.channel, PassKind::Monthly, PassScope::Channel, 500),
            stripe(1),
        )
        .await
        .expect("create");
    let comp = store
        .comp_grant(
            &w.other_viewer.id,
            CompTarget::Pass(channel_pass.id.clone()),
            Some(now + 1_000),
            now,
        )
        .await
        .expect("comp");
    assert_eq!(comp.source, GrantSource::Comp);
    for stream in [&w.paid, &w.other_paid] {
        assert_eq!(
            store
                .access_to_stream(&w.other_viewer.id, stream, now + 999, false)
                .await
                .expect("access")
                .id,
            comp.id
        );
    }
    required(
        store
            .access_to_stream(&w.other_viewer.id, &w.foreign, now, false)
            .await,
    );
    required(
        store
            .access_to_stream(&w.other_viewer.id, &w.paid, now + 1_000, false)
            .await,
    );

    // A comp of one stream; the longest grant wins.
    let forever = store
        .comp_grant(
            &w.other_viewer.id,
            CompTarget::Stream(w.paid.id.clone()),
            None,
            now,
        )
        .await
        .expect("comp");
    assert_eq!(
        store
            .access_to_stream(&w.other_viewer.id, &w.paid, now + 10, false)
            .await
            .expect("access")
            .id,
        forever.id
    );

    // Revoked grants give nothing; revoking again changes nothing.
    let revoked = store
        .revoke_grant(&grant.id, "banned", now + 5)
        .await
        .expect("revoke");
    assert_eq!(revoked.revoked_at_ms, Some(now + 5));
    assert_eq!(revoked.revoke_reason.as_deref(), Some("banned"));
    assert_eq!(
        store
            .revoke_grant(&grant.id, "again", now + 9)
            .await
            .expect("revoke again"),
        revoked
    );
    required(
        store
            .access_to_stream(&w.viewer.id, &w.paid, now + 10, false)
            .await,
    );
    assert!(matches!(
        store.revoke_grant("nogrant", "x", now).await,
        Err(ControlError::PassNotFound { .. })
    ));
    let history = store
        .grants_for_account(&w.viewer.id)
        .await
        .expect("grants");
    assert_eq!(history.len(), 1, "revoked grants stay as history");
}

async fn replay_access_ends_days_after_the_stream_ended(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let now = now_ms();
    let pass = store
        .create_pass(
            new_pass(&w.channel, PassKind::Free, PassScope::Channel, 0),
            None,
        )
        .await
        .expect("create");
    store
        .claim_free_pass(&w.viewer.id, &pass.id, now - 10)
        .await
        .expect("claim");
    // Not ended: replays (of earlier sessions) are open.
    assert!(
        store
            .access_to_stream(&w.viewer.id, &w.paid, now, true)
            .await
            .is_ok()
    );
    let ended = store.end_stream(&w.paid.id).await.expect("end");
    let ended_at = ended.ended_at_ms.expect("ended");
    assert!(
        store
            .access_to_stream(&w.viewer.id, &ended, ended_at + DAY_MS, true)
            .await
            .is_ok()
    );
    let late = store
        .access_to_stream(&w.viewer.id, &ended, ended_at + DAY_MS + 1, true)
        .await;
    assert!(
        matches!(late, Err(ControlError::ReplayAccessExpired { .. })),
        "{late:?}"
    );
    // A stream without a replay limit keeps its replays open.
    let unlimited = Stream {
        replay_access_days: None,
        ..ended.clone()
    };
    assert!(
        store
            .access_to_stream(&w.viewer.id, &unlimited, ended_at + 400 * DAY_MS, true)
            .await
            .is_ok()
    );
    // Without a grant the answer is access required, whatever the window.
    assert!(matches!(
        store
            .access_to_stream(&w.other_viewer.id, &ended, ended_at + DAY_MS + 1, true)
            .await,
        Err(ControlError::AccessRequired { .. })
    ));
}

async fn checkouts_are_checked_and_found_by_session(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let pass = store
        .create_pass(
            new_pass(&w.channel, PassKind::OneTime, PassScope::Channel, 999),
            stripe(1),
        )
        .await
        .expect("create");
    let new = NewCheckout::for_pass(&w.viewer.id, &pass, 500).expect("new");
    assert_eq!((new.amount_minor, new.fee_minor), (999, 50));
    let checkout = store.create_checkout(new.clone()).await.expect("create");
    assert_eq!(checkout.status, CheckoutStatus::Open);
    assert_eq!(
        checkout.purpose,
        CheckoutPurpose::Pass {
            pass_id: pass.id.clone()
        }
    );
    let attached = store
        .attach_stripe_session(&checkout.id, "cs_test_1")
        .await
        .expect("attach");
    assert_eq!(attached.stripe_session_id.as_deref(), Some("cs_test_1"));
    assert_eq!(
        store
            .checkout_by_session("cs_test_1")
            .await
            .expect("by session"),
        attached
    );
    assert_eq!(
        store.get_checkout(&checkout.id).await.expect("get"),
        attached
    );
    assert!(matches!(
        store.checkout_by_session("cs_nope").await,
        Err(ControlError::CheckoutNotFound { .. })
    ));
    let second = store.create_checkout(new.clone()).await.expect("another");
    assert!(matches!(
        store.attach_stripe_session(&second.id, "cs_test_1").await,
        Err(ControlError::IdempotencyConflict { .. })
    ));
    assert!(matches!(
        store.attach_stripe_session("nocheckout", "cs_test_2").await,
        Err(ControlError::CheckoutNotFound { .. })
    ));

    // The amount must be the pass's; a free pass is claimed; an archived one is not sold;
    // a holder does not buy again.
    let cheap = NewCheckout {
        amount_minor: 500,
        ..new.clone()
    };
    assert!(matches!(
        store.create_checkout(cheap).await,
        Err(ControlError::InvalidAmount { .. })
    ));
    let free = store
        .create_pass(
            new_pass(&w.channel, PassKind::Free, PassScope::Channel, 0),
            None,
        )
        .await
        .expect("create");
    assert!(NewCheckout::for_pass(&w.viewer.id, &free, 500).is_err());
    buy(store, &w.viewer, &pass, 7).await;
    assert!(matches!(
        store.create_checkout(new.clone()).await,
        Err(ControlError::AlreadyGranted { .. })
    ));
    store.archive_pass(&pass.id).await.expect("archive");
    let other = NewCheckout::for_pass(&w.other_viewer.id, &pass, 500).expect("new");
    assert!(matches!(
        store.create_checkout(other).await,
        Err(ControlError::PassInactive { .. })
    ));

    // A tip checkout makes a pending tip, not listed until paid.
    let tip = NewCheckout::for_tip(
        &w.viewer.id,
        &w.paid.id,
        Some("great show"),
        999,
        "usd",
        500,
        (1, 1000),
    )
    .expect("new tip");
    let tip_checkout = store.create_checkout(tip).await.expect("create");
    let pending = store.tip_for_checkout(&tip_checkout.id).await.expect("tip");
    assert_eq!(pending.status, TipStatus::Pending);
    assert_eq!((pending.amount_minor, pending.fee_minor), (999, 50));
    assert_eq!(pending.channel_id, w.channel.id);
    assert_eq!(pending.message.as_deref(), Some("great show"));
    assert!(
        store
            .tips_for_stream(&w.paid.id, 10)
            .await
            .expect("tips")
            .is_empty()
    );
    let operator_stream = store.create_stream("No channel").await.expect("stream");
    let orphan_tip = NewCheckout::for_tip(
        &w.viewer.id,
        &operator_stream.id,
        None,
        500,
        "usd",
        500,
        (1, 1000),
    )
    .expect("new tip");
    assert!(matches!(
        store.create_checkout(orphan_tip).await,
        Err(ControlError::Forbidden { .. })
    ));
    let nobody = NewCheckout {
        account_id: "nobodyatall00000".to_owned(),
        ..new
    };
    assert!(matches!(
        store.create_checkout(nobody).await,
        Err(ControlError::AccountNotFound { .. })
    ));
}
