//! Stripe events are applied exactly once and in any order, the same on SQLite and on
//! Postgres (`GREENROOM_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`;
//! without a reachable Postgres those tests fail): a completed checkout grants its pass and
//! splits the money with the platform's fee, a redelivered event changes nothing, the events
//! of a subscription end in the same state whatever their order, stale subscription states
//! are ignored, and refunds — before or after the payment's own event — revoke what the
//! payment bought and reverse its ledger movement, while a partial refund changes no grant.

use std::time::{SystemTime, UNIX_EPOCH};

use greenroom_control::grant::{
    REVOKED_REFUNDED, REVOKED_SUBSCRIPTION_DELETED, SUBSCRIPTION_LEEWAY_MS,
};
use greenroom_control::wallet::{channel_account, platform_fees_account, stripe_account};
use greenroom_control::{
    Account, Channel, CheckoutStatus, ControlError, EventChange, EventOutcome, EventStatus, Grant,
    GrantSource, NewCheckout, NewPass, NewStream, Pass, PassKind, PassScope, Role, Store, Stream,
    StreamAccess, StripeEvent, StripeIds, TipStatus, TransferKind,
};
use serde_json::{Value, json};

mod common;

use common::Ctx;

on_both_backends!(
    a_completed_checkout_grants_the_pass_and_splits_the_fee,
    the_same_event_twice_is_a_duplicate,
    subscription_events_in_any_order_end_in_the_same_state,
    a_stale_subscription_state_is_ignored,
    a_refund_after_completion_revokes_and_reverses,
    a_refund_before_completion_revokes_and_reverses,
    a_partial_refund_keeps_the_grant,
    a_paid_tip_is_returned_for_the_live_push,
    foreign_unknown_and_unpaid_events_are_recorded_as_ignored,
    a_redelivery_completes_the_ledger_after_a_crash,
);

const FEE_BPS: u32 = 500;
const DAY_S: i64 = 24 * 3600;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn now_s() -> i64 {
    now_ms() / 1000
}

// ---- Stripe's JSON ----------------------------------------------------------------------

fn event(id: &str, kind: &str, created_s: i64, object: Value) -> StripeEvent {
    let payload = json!({
        "id": id, "object": "event", "api_version": "2025-03-31.basil", "type": kind,
        "created": created_s, "livemode": false,
        "data": {"object": object}
    });
    StripeEvent::parse(payload.to_string().as_bytes()).expect("parse the event")
}

fn completed(
    id: &str,
    checkout_id: &str,
    payment_intent: &str,
    amount: i64,
    created_s: i64,
) -> StripeEvent {
    event(
        id,
        "checkout.session.completed",
        created_s,
        json!({
            "id": format!("cs_{checkout_id}"), "object": "checkout.session", "mode": "payment",
            "payment_status": "paid", "status": "complete",
            "client_reference_id": checkout_id,
            "metadata": {"greenroom_checkout": checkout_id},
            "payment_intent": payment_intent, "subscription": null,
            "amount_total": amount, "currency": "usd"
        }),
    )
}

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

fn refunded(
    id: &str,
    payment_intent: &str,
    amount: i64,
    amount_refunded: i64,
    created_s: i64,
) -> StripeEvent {
    event(
        id,
        "charge.refunded",
        created_s,
        json!({
            "id": format!("ch_{payment_intent}"), "object": "charge",
            "payment_intent": payment_intent, "amount": amount,
            "amount_refunded": amount_refunded, "refunded": amount_refunded >= amount,
            "currency": "usd"
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

async fn the_same_event_twice_is_a_duplicate(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let checkout = checkout_for(store, &w.viewer, &w.one_time).await;
    let event = completed("evt_1", &checkout, "pi_1", 999, now_s());
    assert_eq!(apply(store, &event).await.status, EventStatus::Applied);
    let again = apply(store, &event).await;
    assert_eq!(again.status, EventStatus::Duplicate);
    assert!(again.changes.is_empty());
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (949, 50, -999));
    assert_eq!(
        store
            .grants_for_account(&w.viewer.id)
            .await
            .expect("grants")
            .len(),
        1
    );
    // Another event about the same payment (Stripe sends completed and
    // async_payment_succeeded) adds nothing either.
    let mut sibling = completed("evt_2", &checkout, "pi_1", 999, now_s());
    sibling.event_type = "checkout.session.async_payment_succeeded".to_owned();
    let outcome = apply(store, &sibling).await;
    assert_eq!(outcome.status, EventStatus::Applied);
    assert!(outcome.changes.is_empty(), "{:?}", outcome.changes);
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (949, 50, -999));

    // Ten deliveries at once: one applies.
    let other = account(store, "other", Role::Viewer).await;
    let checkout = checkout_for(store, &other, &w.one_time).await;
    let event = completed("evt_3", &checkout, "pi_3", 999, now_s());
    let deliveries = (0..10).map(|_| store.apply_stripe_event(&event, now_ms(), FEE_BPS));
    let outcomes = futures::future::join_all(deliveries).await;
    let applied = outcomes
        .iter()
        .filter(|o| o.as_ref().expect("apply").status == EventStatus::Applied)
        .count();
    assert_eq!(applied, 1);
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (2 * 949, 2 * 50, -2 * 999));
    assert_eq!(
        store
            .grants_for_account(&other.id)
            .await
            .expect("grants")
            .len(),
        1
    );
}

/// The grant's state with the per-checkout ids left out: source, expiry, revoked, reason,
/// Stripe state time, start, price.
type Shape = (
    GrantSource,
    Option<i64>,
    bool,
    Option<String>,
    Option<i64>,
    i64,
    Option<String>,
);

fn shape(grant: &Grant) -> Shape {
    (
        grant.source,
        grant.expires_at_ms,
        grant.revoked_at_ms.is_some(),
        grant.revoke_reason.clone(),
        grant.stripe_state_ms,
        grant.starts_at_ms,
        grant.stripe_price_id.clone(),
    )
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut all = Vec::new();
    for rest in permutations(n - 1) {
        for at in 0..=rest.len() {
            let mut p = rest.clone();
            p.insert(at, n - 1);
            all.push(p);
        }
    }
    all
}

async fn subscription_events_in_any_order_end_in_the_same_state(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let t0 = now_s() - 600;
    let period_end = t0 + 30 * DAY_S;
    // Without deletion (completed, invoice.paid, updated: 6 orders) and with it (24 orders).
    for with_deletion in [false, true] {
        let n = if with_deletion { 4 } else { 3 };
        let orders = permutations(n);
        // A viewer per batch: a holder of the pass cannot open another checkout for it.
        let viewer = account(store, &format!("batch{n}"), Role::Viewer).await;
        let mut checkouts = Vec::new();
        for _ in &orders {
            checkouts.push(checkout_for(store, &viewer, &w.monthly).await);
        }
        let mut shapes = Vec::new();
        for (run, (order, checkout)) in orders.iter().zip(&checkouts).enumerate() {
            let tag = format!("{with_deletion}_{run}");
            let sub = format!("sub_{tag}");
            let pi = format!("pi_{tag}");
            let events = [
                subscribed(&format!("evt_c_{tag}"), checkout, &sub, t0),
                invoice_paid(
                    &format!("evt_i_{tag}"),
                    checkout,
                    &sub,
                    &pi,
                    500,
                    period_end,
                    t0,
                ),
                subscription_event(
                    &format!("evt_u_{tag}"),
                    "updated",
                    checkout,
                    &sub,
                    "active",
                    period_end,
                    t0 + 1,
                ),
                subscription_event(
                    &format!("evt_d_{tag}"),
                    "deleted",
                    checkout,
                    &sub,
                    "canceled",
                    period_end,
                    t0 + 100,
                ),
            ];
            for &i in order {
                let outcome = apply(store, &events[i]).await;
                assert_ne!(outcome.status, EventStatus::Duplicate, "{order:?}");
            }
            let grant = grant_of(store, checkout).await;
            assert_eq!(grant.stripe_subscription_id.as_deref(), Some(sub.as_str()));
            assert_eq!(grant.stripe_payment_intent_id.as_deref(), Some(pi.as_str()));
            let access = store
                .access_to_stream(&viewer.id, &w.stream, now_ms(), false)
                .await;
            if !with_deletion {
                assert!(access.is_ok(), "{order:?}: {access:?}");
            }
            shapes.push((order.clone(), shape(&grant)));
            let status = store.get_checkout(checkout).await.expect("checkout").status;
            assert_eq!(status, CheckoutStatus::Completed);
        }
        let expected = if with_deletion {
            (
                GrantSource::Subscription,
                Some(period_end * 1000 + SUBSCRIPTION_LEEWAY_MS),
                true,
                Some(REVOKED_SUBSCRIPTION_DELETED.to_owned()),
                Some((t0 + 100) * 1000),
                t0 * 1000,
                Some("price_monthly".to_owned()),
            )
        } else {
            (
                GrantSource::Subscription,
                Some(period_end * 1000 + SUBSCRIPTION_LEEWAY_MS),
                false,
                None,
                Some((t0 + 1) * 1000),
                t0 * 1000,
                Some("price_monthly".to_owned()),
            )
        };
        for (order, shape) in &shapes {
            assert_eq!(shape, &expected, "order {order:?}");
        }
    }
    // Every run's invoice was posted once: 30 payments of 5.00, 0.25 fee each.
    let m = money(store, &w.channel).await;
    assert_eq!(
        (m.channel, m.fees, m.stripe),
        (30 * 475, 30 * 25, -30 * 500)
    );
}

async fn a_stale_subscription_state_is_ignored(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let checkout = checkout_for(store, &w.viewer, &w.monthly).await;
    let t0 = now_s() - 600;
    let p1 = t0 + 30 * DAY_S;
    let p2 = p1 + 30 * DAY_S;
    let sub = "sub_1";
    let expiry = |end_s: i64| Some(end_s * 1000 + SUBSCRIPTION_LEEWAY_MS);
    apply(store, &subscribed("evt_c", &checkout, sub, t0)).await;
    apply(
        store,
        &invoice_paid("evt_i1", &checkout, sub, "pi_1", 500, p1, t0),
    )
    .await;
    let renewed = apply(
        store,
        &subscription_event("evt_u2", "updated", &checkout, sub, "active", p2, t0 + 20),
    )
    .await;
    assert_eq!(renewed.status, EventStatus::Applied);
    assert_eq!(grant_of(store, &checkout).await.expires_at_ms, expiry(p2));

    // Older states arriving late change nothing.
    for (id, status, end) in [("evt_u1", "canceled", p1), ("evt_u0", "past_due", p1)] {
        let stale = apply(
            store,
            &subscription_event(id, "updated", &checkout, sub, status, end, t0 + 10),
        )
        .await;
        assert!(
            matches!(stale.status, EventStatus::Ignored { .. }),
            "{stale:?}"
        );
        let grant = grant_of(store, &checkout).await;
        assert_eq!(
            (grant.expires_at_ms, grant.revoked_at_ms),
            (expiry(p2), None)
        );
        assert_eq!(grant.stripe_state_ms, Some((t0 + 20) * 1000));
    }
    // An older invoice does not pull the expiry back.
    apply(
        store,
        &invoice_paid("evt_i0", &checkout, sub, "pi_0", 500, p1 - DAY_S, t0 - 5),
    )
    .await;
    assert_eq!(grant_of(store, &checkout).await.expires_at_ms, expiry(p2));

    // unpaid revokes, a newer active restores; past_due keeps access until the period end.
    let unpaid = apply(
        store,
        &subscription_event("evt_u3", "updated", &checkout, sub, "unpaid", p2, t0 + 30),
    )
    .await;
    assert!(
        matches!(unpaid.changes.as_slice(), [EventChange::GrantRevoked(_)]),
        "{unpaid:?}"
    );
    assert!(
        store
            .access_to_stream(&w.viewer.id, &w.stream, now_ms(), false)
            .await
            .is_err()
    );
    let active = apply(
        store,
        &subscription_event("evt_u4", "updated", &checkout, sub, "active", p2, t0 + 40),
    )
    .await;
    assert!(
        matches!(active.changes.as_slice(), [EventChange::GrantRestored(_)]),
        "{active:?}"
    );
    let past_due = apply(
        store,
        &subscription_event("evt_u5", "updated", &checkout, sub, "past_due", p2, t0 + 50),
    )
    .await;
    assert_eq!(past_due.status, EventStatus::Applied);
    assert!(
        store
            .access_to_stream(&w.viewer.id, &w.stream, now_ms(), false)
            .await
            .is_ok()
    );
    assert!(matches!(
        store
            .access_to_stream(
                &w.viewer.id,
                &w.stream,
                p2 * 1000 + SUBSCRIPTION_LEEWAY_MS,
                false
            )
            .await,
        Err(ControlError::AccessRequired { .. })
    ));
    // canceled revokes at once.
    let canceled = apply(
        store,
        &subscription_event("evt_u6", "updated", &checkout, sub, "canceled", p2, t0 + 60),
    )
    .await;
    assert!(
        matches!(canceled.changes.as_slice(), [EventChange::GrantRevoked(_)]),
        "{canceled:?}"
    );
    assert!(
        store
            .access_to_stream(&w.viewer.id, &w.stream, now_ms(), false)
            .await
            .is_err()
    );
}

async fn a_refund_after_completion_revokes_and_reverses(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let checkout = checkout_for(store, &w.viewer, &w.one_time).await;
    apply(store, &completed("evt_1", &checkout, "pi_1", 999, now_s())).await;
    let refund = refunded("evt_r", "pi_1", 999, 999, now_s());
    let outcome = apply(store, &refund).await;
    assert_eq!(outcome.status, EventStatus::Applied);
    assert!(outcome.changes.contains(&EventChange::RefundRecorded {
        payment_intent_id: "pi_1".to_owned(),
        amount_refunded: 999,
        full: true
    }));
    let revoked: Vec<&Grant> = outcome.revoked_grants().collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].revoke_reason.as_deref(), Some(REVOKED_REFUNDED));
    assert!(matches!(
        store
            .access_to_stream(&w.viewer.id, &w.stream, now_ms(), false)
            .await,
        Err(ControlError::AccessRequired { .. })
    ));
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (0, 0, 0));
    let entries = store
        .ledger_entries(&channel_account(&w.channel.id, "usd"), 10)
        .await
        .expect("entries");
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .any(|e| e.kind == TransferKind::Refund && e.amount_minor == -949)
    );
    assert_eq!(apply(store, &refund).await.status, EventStatus::Duplicate);
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (0, 0, 0));

    // A subscription's refunded invoice revokes it too.
    let sub_checkout = checkout_for(store, &w.viewer, &w.monthly).await;
    let t0 = now_s() - 60;
    apply(store, &subscribed("evt_s", &sub_checkout, "sub_1", t0)).await;
    apply(
        store,
        &invoice_paid(
            "evt_i",
            &sub_checkout,
            "sub_1",
            "pi_2",
            500,
            t0 + 30 * DAY_S,
            t0,
        ),
    )
    .await;
    assert!(
        store
            .access_to_stream(&w.viewer.id, &w.stream, now_ms(), false)
            .await
            .is_ok()
    );
    let outcome = apply(store, &refunded("evt_r2", "pi_2", 500, 500, now_s())).await;
    assert_eq!(outcome.revoked_grants().count(), 1);
    assert!(
        store
            .access_to_stream(&w.viewer.id, &w.stream, now_ms(), false)
            .await
            .is_err()
    );
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (0, 0, 0));
}

async fn a_refund_before_completion_revokes_and_reverses(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let checkout = checkout_for(store, &w.viewer, &w.one_time).await;
    let early = apply(store, &refunded("evt_r", "pi_1", 999, 999, now_s())).await;
    assert_eq!(early.status, EventStatus::Applied);
    assert_eq!(early.revoked_grants().count(), 0, "nothing bought yet");
    let late = apply(store, &completed("evt_1", &checkout, "pi_1", 999, now_s())).await;
    let created = late
        .changes
        .iter()
        .find_map(|c| match c {
            EventChange::GrantCreated(grant) => Some(grant.clone()),
            _ => None,
        })
        .expect("a grant");
    assert!(created.revoked_at_ms.is_some(), "created already revoked");
    assert_eq!(created.revoke_reason.as_deref(), Some(REVOKED_REFUNDED));
    assert!(matches!(
        store
            .access_to_stream(&w.viewer.id, &w.stream, now_ms(), false)
            .await,
        Err(ControlError::AccessRequired { .. })
    ));
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (0, 0, 0));
    assert_eq!(
        store
            .ledger_entries(&channel_account(&w.channel.id, "usd"), 10)
            .await
            .expect("entries")
            .len(),
        2,
        "the purchase and its reversal"
    );

    // The same for a subscription invoice refunded before Stripe said it was paid.
    let sub_checkout = checkout_for(store, &w.viewer, &w.monthly).await;
    let t0 = now_s() - 60;
    apply(store, &refunded("evt_r2", "pi_2", 500, 500, now_s())).await;
    apply(store, &subscribed("evt_s", &sub_checkout, "sub_1", t0)).await;
    let paid = apply(
        store,
        &invoice_paid(
            "evt_i",
            &sub_checkout,
            "sub_1",
            "pi_2",
            500,
            t0 + 30 * DAY_S,
            t0,
        ),
    )
    .await;
    assert_eq!(paid.revoked_grants().count(), 1, "{paid:?}");
    assert!(grant_of(store, &sub_checkout).await.revoked_at_ms.is_some());
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (0, 0, 0));
}

async fn a_partial_refund_keeps_the_grant(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let checkout = checkout_for(store, &w.viewer, &w.one_time).await;
    apply(store, &completed("evt_1", &checkout, "pi_1", 999, now_s())).await;
    let partial = apply(store, &refunded("evt_r1", "pi_1", 999, 500, now_s())).await;
    assert_eq!(
        partial.changes,
        vec![EventChange::RefundRecorded {
            payment_intent_id: "pi_1".to_owned(),
            amount_refunded: 500,
            full: false
        }]
    );
    assert!(
        store
            .access_to_stream(&w.viewer.id, &w.stream, now_ms(), false)
            .await
            .is_ok()
    );
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (949, 50, -999));
    // The rest refunded later: now it is full.
    let rest = apply(store, &refunded("evt_r2", "pi_1", 999, 999, now_s())).await;
    assert_eq!(rest.revoked_grants().count(), 1);
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (0, 0, 0));
}

async fn a_paid_tip_is_returned_for_the_live_push(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let new = NewCheckout::for_tip(
        &w.viewer.id,
        &w.stream.id,
        Some("love it"),
        999,
        "usd",
        FEE_BPS,
        (1, 1000),
    )
    .expect("new tip");
    let checkout = store.create_checkout(new).await.expect("create");
    let outcome = apply(
        store,
        &completed("evt_1", &checkout.id, "pi_1", 999, now_s()),
    )
    .await;
    let tips: Vec<_> = outcome.paid_tips().cloned().collect();
    assert_eq!(tips.len(), 1);
    let tip = &tips[0];
    assert_eq!(tip.status, TipStatus::Paid);
    assert_eq!(tip.message.as_deref(), Some("love it"));
    assert_eq!((tip.amount_minor, tip.fee_minor), (999, 50));
    assert_eq!(tip.stripe_payment_intent_id.as_deref(), Some("pi_1"));
    assert!(tip.paid_at_ms.is_some());
    assert_eq!(
        store.tips_for_stream(&w.stream.id, 10).await.expect("tips"),
        tips
    );
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (949, 50, -999));
    let entries = store
        .ledger_entries(&channel_account(&w.channel.id, "usd"), 10)
        .await
        .expect("entries");
    assert_eq!(entries[0].kind, TransferKind::Tip);
    let again = apply(
        store,
        &completed("evt_1", &checkout.id, "pi_1", 999, now_s()),
    )
    .await;
    assert_eq!(again.paid_tips().count(), 0);

    let refund = apply(store, &refunded("evt_r", "pi_1", 999, 999, now_s())).await;
    assert!(
        refund
            .changes
            .iter()
            .any(|c| matches!(c, EventChange::TipRefunded(t) if t.status == TipStatus::Refunded))
    );
    assert!(
        store
            .tips_for_stream(&w.stream.id, 10)
            .await
            .expect("tips")
            .is_empty()
    );
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (0, 0, 0));
}

async fn foreign_unknown_and_unpaid_events_are_recorded_as_ignored(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let payout = event(
        "evt_p",
        "payout.paid",
        now_s(),
        json!({"id": "po_1", "object": "payout"}),
    );
    assert!(matches!(
        apply(store, &payout).await.status,
        EventStatus::Ignored { .. }
    ));
    assert_eq!(apply(store, &payout).await.status, EventStatus::Duplicate);
    assert!(store.stripe_event_seen("evt_p").await.expect("seen"));

    let foreign = completed("evt_f", "notourcheckout", "pi_9", 999, now_s());
    assert!(matches!(
        apply(store, &foreign).await.status,
        EventStatus::Ignored { .. }
    ));
    let foreign_invoice = invoice_paid("evt_fi", "nope", "sub_nope", "pi_8", 500, now_s(), now_s());
    assert!(matches!(
        apply(store, &foreign_invoice).await.status,
        EventStatus::Ignored { .. }
    ));

    // Completed but not paid yet (a bank debit): nothing until the payment succeeds.
    let checkout = checkout_for(store, &w.viewer, &w.one_time).await;
    let unpaid = event(
        "evt_u",
        "checkout.session.completed",
        now_s(),
        json!({"id": "cs_u", "mode": "payment", "payment_status": "unpaid",
               "metadata": {"greenroom_checkout": checkout}, "payment_intent": "pi_u",
               "amount_total": 999, "currency": "usd"}),
    );
    assert!(matches!(
        apply(store, &unpaid).await.status,
        EventStatus::Ignored { .. }
    ));
    assert!(
        store
            .grant_for_checkout(&checkout)
            .await
            .expect("read")
            .is_none()
    );
    let succeeded = event(
        "evt_s",
        "checkout.session.async_payment_succeeded",
        now_s(),
        json!({"id": "cs_u", "mode": "payment", "payment_status": "paid",
               "metadata": {"greenroom_checkout": checkout}, "payment_intent": "pi_u",
               "amount_total": 999, "currency": "usd"}),
    );
    assert_eq!(apply(store, &succeeded).await.status, EventStatus::Applied);
    assert!(
        store
            .grant_for_checkout(&checkout)
            .await
            .expect("read")
            .is_some()
    );

    // An abandoned session expires its checkout.
    let abandoned = checkout_for(
        store,
        &account(store, "other", Role::Viewer).await,
        &w.one_time,
    )
    .await;
    let expired = event(
        "evt_x",
        "checkout.session.expired",
        now_s(),
        json!({"id": "cs_x", "status": "expired", "payment_status": "unpaid",
               "metadata": {"greenroom_checkout": abandoned}}),
    );
    let outcome = apply(store, &expired).await;
    assert_eq!(
        outcome.changes,
        vec![EventChange::CheckoutExpired {
            checkout_id: abandoned.clone()
        }]
    );
    assert_eq!(
        store.get_checkout(&abandoned).await.expect("get").status,
        CheckoutStatus::Expired
    );
    assert!(matches!(
        StripeEvent::parse(b"{\"not\": \"an event\"}"),
        Err(ControlError::InvalidWebhook { .. })
    ));
}

async fn a_redelivery_completes_the_ledger_after_a_crash(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let checkout = checkout_for(store, &w.viewer, &w.one_time).await;
    let event = completed("evt_1", &checkout, "pi_1", 999, now_s());
    // The event was recorded, then the process died before the ledger was posted.
    let pool = sqlx::AnyPool::connect(&ctx.url).await.expect("connect");
    sqlx::query(
        "INSERT INTO stripe_events (event_id, event_type, created_s, received_at_ms, outcome) \
         VALUES ($1, $2, $3, $4, 'applied')",
    )
    .bind(&event.id)
    .bind(&event.event_type)
    .bind(event.created_s)
    .bind(now_ms())
    .execute(&pool)
    .await
    .expect("record the event");
    pool.close().await;
    let m = money(store, &w.channel).await;
    assert_eq!((m.channel, m.fees, m.stripe), (0, 0, 0));
    // Stripe retries: the event is a duplicate, and the payment is posted now, once.
    for _ in 0..2 {
        let outcome = apply(store, &event).await;
        assert_eq!(outcome.status, EventStatus::Duplicate);
        assert!(outcome.changes.is_empty());
        let m = money(store, &w.channel).await;
        assert_eq!((m.channel, m.fees, m.stripe), (949, 50, -999));
    }
}
