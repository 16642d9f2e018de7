//! Who may watch: a free pass claimed once per account, access by pass scope and grant
//! lifetime, and the replay window after a stream ends.

use super::*;

crate::on_both_backends!(
    a_free_pass_is_claimed_once_per_account,
    access_follows_the_pass_scope_and_the_grant_lifetime,
    replay_access_ends_days_after_the_stream_ended,
);

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
