//! A channel's passes: listed, renamed and archived, and repriced without touching the price
//! existing grants were bought at.

use super::*;

crate::on_both_backends!(
    passes_are_listed_renamed_and_archived,
    repricing_keeps_the_price_existing_grants_were_bought_at,
);

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
