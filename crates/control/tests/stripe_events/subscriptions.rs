//! Redeliveries and subscription events in any order.

use super::*;

crate::on_both_backends!(
    the_same_event_twice_is_a_duplicate,
    subscription_events_in_any_order_end_in_the_same_state,
    a_stale_subscription_state_is_ignored,
);

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
