//! Stripe events are applied exactly once and in any order, the same on SQLite and on
//! Postgres (`GREENROOM_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`;
//! without a reachable Postgres those tests fail): a completed checkout grants its pass and
//! splits the money with the platform's fee, a redelivered event changes nothing, the events
//! of a subscription end in the same state whatever their order, stale subscription states
//! are ignored, and refunds — before or after the payment's own event — revoke what the
//! payment bought and reverse its ledger movement, while a partial refund changes no grant.

use greenroom_control::grant::{
    REVOKED_REFUNDED, REVOKED_SUBSCRIPTION_DELETED, SUBSCRIPTION_LEEWAY_MS,
};
use greenroom_control::wallet::{channel_account, platform_fees_account, stripe_account};
use greenroom_control::{
    Account, Channel, CheckoutStatus, ControlError, EventChange, EventOutcome, EventStatus, Grant,
    GrantSource, NewCheckout, NewPass, NewStream, Pass, PassKind, PassScope, Role, Store, Stream,
    StreamAccess, StripeEvent, StripeIds, TipStatus, TransferKind,
};
use serde_json::json;

#[path = "../common/mod.rs"]
mod common;
mod refunds;
mod subscriptions;

use common::{
    Ctx, charge_refunded as refunded, checkout_completed as completed, now_ms,
    stripe_event as event,
};

on_both_backends!(a_completed_checkout_grants_the_pass_and_splits_the_fee);

const FEE_BPS: u32 = 500;
const DAY_S: i64 = 24 * 3600;

fn now_s() -> i64 {
    now_ms() / 1000
}

// ---- Stripe's JSON ----------------------------------------------------------------------

fn subscribed(id: &str, checkout_id: &str, subscription: &str, created_s: i64) -> StripeEvent {
    event(
        id,
        "checkout.session.completed",
        created_s,
        json!({
            "id": format!("cs_{checkout_id}"), "object": "checkout.session",
            "mode": "subscription", "payment_status": "paid",
            "metadata": {"greenroom_checkout": checkout_id},
            "payment_intent": null, "subscription": subscription,
            "amount_total": 500, "currency": "usd"
        }),
    )
}

#[allow(clippy::too_many_arguments)]
fn invoice_paid(
    id: &str,
    checkout_id: &str,
    subscription: &str,
    payment_intent: &str,
    amount: i64,
    period_end_s: i64,
    created_s: i64,
) -> StripeEvent {
    // The 2025-03-31 shape: subscription and metadata under `parent`, the payment under
    // `payments`.
    event(
        id,
        "invoice.paid",
        created_s,
        json!({
            "id": format!("in_{id}"), "object": "invoice", "status": "paid",
            "amount_paid": amount, "currency": "usd",
            "parent": {"type": "subscription_details", "subscription_details": {
                "subscription": subscription,
                "metadata": {"greenroom_checkout": checkout_id}}},
            "payments": {"object": "list", "data": [{"status": "paid",
                "payment": {"type": "payment_intent", "payment_intent": payment_intent}}]},
            "lines": {"object": "list", "data": [{"id": "il_1",
                "period": {"start": period_end_s - 30 * DAY_S, "end": period_end_s}}]}
        }),
    )
}

fn subscription_event(
    id: &str,
    kind: &str,
    checkout_id: &str,
    subscription: &str,
    status: &str,
    period_end_s: i64,
    created_s: i64,
) -> StripeEvent {
    event(
        id,
        &format!("customer.subscription.{kind}"),
        created_s,
        json!({
            "id": subscription, "object": "subscription", "status": status,
            "metadata": {"greenroom_checkout": checkout_id},
            "items": {"object": "list", "data": [{"id": "si_1",
                "current_period_end": period_end_s, "price": {"id": "price_monthly"}}]}
        }),
    )
}

// ---- the world --------------------------------------------------------------------------

struct World {
    channel: Channel,
    viewer: Account,
    stream: Stream,
    one_time: Pass,
    monthly: Pass,
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

async fn world(store: &Store) -> World {
    let creator = account(store, "creator", Role::Creator).await;
    let channel = store
        .create_channel(&creator.id, "creator", "The Creator", "")
        .await
        .expect("create a channel");
    let stream = store
        .create_stream_from(NewStream {
            title: "Paid".to_owned(),
            channel_id: Some(channel.id.clone()),
            access: StreamAccess::Paid,
            ..NewStream::default()
        })
        .await
        .expect("create a stream");
    let pass = |kind, amount_minor| NewPass {
        channel_id: channel.id.clone(),
        name: "Pass".to_owned(),
        kind,
        scope: PassScope::Channel,
        stream_ids: Vec::new(),
        amount_minor,
        currency: "usd".to_owned(),
    };
    let ids = |price: &str| {
        Some(StripeIds {
            product_id: "prod_1".to_owned(),
            price_id: price.to_owned(),
        })
    };
    World {
        one_time: store
            .create_pass(pass(PassKind::OneTime, 999), ids("price_once"))
            .await
            .expect("create a pass"),
        monthly: store
            .create_pass(pass(PassKind::Monthly, 500), ids("price_monthly"))
            .await
            .expect("create a pass"),
        viewer: account(store, "viewer", Role::Viewer).await,
        channel,
        stream,
    }
}

async fn checkout_for(store: &Store, viewer: &Account, pass: &Pass) -> String {
    store
        .create_checkout(NewCheckout::for_pass(&viewer.id, pass, FEE_BPS).expect("new checkout"))
        .await
        .expect("create a checkout")
        .id
}

async fn apply(store: &Store, event: &StripeEvent) -> EventOutcome {
    store
        .apply_stripe_event(event, now_ms(), FEE_BPS)
        .await
        .expect("apply the event")
}

async fn grant_of(store: &Store, checkout_id: &str) -> Grant {
    store
        .grant_for_checkout(checkout_id)
        .await
        .expect("read")
        .expect("a grant")
}

struct Money {
    channel: i64,
    fees: i64,
    stripe: i64,
}

async fn money(store: &Store, channel: &Channel) -> Money {
    let balance = |account: String| async move { store.balance(&account).await.expect("balance") };
    Money {
        channel: balance(channel_account(&channel.id, "usd")).await,
        fees: balance(platform_fees_account("usd")).await,
        stripe: balance(stripe_account("usd")).await,
    }
}

// ---- behaviours -------------------------------------------------------------------------

async fn a_completed_checkout_grants_the_pass_and_splits_the_fee(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let checkout = checkout_for(store, &w.viewer, &w.one_time).await;
    assert!(matches!(
        store
            .access_to_stream(&w.viewer.id, &w.stream, now_ms(), false)
            .await,
        Err(ControlError::AccessRequired { .. })
    ));
    let outcome = apply(store, &completed("evt_1", &checkout, "pi_1", 999, now_s())).await;
    assert_eq!(outcome.status, EventStatus::Applied);
    assert_eq!(outcome.event_id, "evt_1");
    assert!(outcome.changes.contains(&EventChange::CheckoutCompleted {
        checkout_id: checkout.clone()
    }));
    let grant = grant_of(store, &checkout).await;
    assert!(
        outcome
            .changes
            .contains(&EventChange::GrantCreated(grant.clone()))
    );
    assert_eq!(grant.source, GrantSource::Purchase);
    assert_eq!(grant.pass_id.as_deref(), Some(w.one_time.id.as_str()));
    assert_eq!(grant.stripe_payment_intent_id.as_deref(), Some("pi_1"));
    assert_eq!(grant.stripe_price_id.as_deref(), Some("price_once"));
    assert_eq!((grant.expires_at_ms, grant.revoked_at_ms), (None, None));
    assert_eq!(
        store
            .access_to_stream(&w.viewer.id, &w.stream, now_ms(), false)
            .await
            .expect("access")
            .id,
        grant.id
    );

    // 5 % of 9.99 is 0.4995: 50 cents, rounded half up.
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (949, 50, -999));
    let entries = store
        .ledger_entries(&channel_account(&w.channel.id, "usd"), 10)
        .await
        .expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, TransferKind::PassPurchase);

    let stored = store.get_checkout(&checkout).await.expect("checkout");
    assert_eq!(stored.status, CheckoutStatus::Completed);
    assert!(stored.completed_at_ms.is_some());
    assert_eq!(stored.stripe_session_id, Some(format!("cs_{checkout}")));
    assert!(matches!(
        store
            .create_checkout(
                NewCheckout::for_pass(&w.viewer.id, &w.one_time, FEE_BPS).expect("new")
            )
            .await,
        Err(ControlError::AlreadyGranted { .. })
    ));
    assert!(matches!(
        store
            .apply_stripe_event(
                &completed("evt_2", &checkout, "pi_1", 999, now_s()),
                now_ms(),
                10_001
            )
            .await,
        Err(ControlError::InvalidAmount { .. })
    ));
}
