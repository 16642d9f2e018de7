//! Checkouts are checked before they are stored and found again by their Stripe session.

use super::*;

crate::on_both_backends!(checkouts_are_checked_and_found_by_session);

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
