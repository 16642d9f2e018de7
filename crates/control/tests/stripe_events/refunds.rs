//! Refunds before and after the payment, partial refunds, tips, events greenroom ignores, and
//! a ledger completed by a redelivery.

use super::*;

crate::on_both_backends!(
    a_refund_after_completion_revokes_and_reverses,
    a_refund_before_completion_revokes_and_reverses,
    a_partial_refund_keeps_the_grant,
    a_paid_tip_is_returned_for_the_live_push,
    foreign_unknown_and_unpaid_events_are_recorded_as_ignored,
    a_redelivery_completes_the_ledger_after_a_crash,
);

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
