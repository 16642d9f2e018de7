//! Accounts for external identities (`Store::account_for_external`) are found or created once,
//! also under concurrent first sights, on SQLite and on Postgres.

use greenroom_control::{ControlError, Role};

mod common;

use common::Ctx;

on_both_backends!(
    an_external_subject_maps_to_one_account,
    concurrent_first_sights_create_one_account,
    a_taken_or_missing_email_gets_a_made_up_address,
);

async fn an_external_subject_maps_to_one_account(ctx: Ctx) {
    let store = &ctx.store;
    let first = store
        .account_for_external(
            "https://id.example.com|u1",
            Some("Ann@Example.com"),
            Some("Ann"),
            Role::Creator,
        )
        .await
        .expect("created");
    assert_eq!(first.email, "ann@example.com");
    assert_eq!(first.display_name, "Ann");
    assert_eq!(first.role, Role::Creator);
    // Later sights return it unchanged, whatever the claims say now.
    let again = store
        .account_for_external("https://id.example.com|u1", None, None, Role::Viewer)
        .await
        .expect("found");
    assert_eq!(again, first);
    assert_eq!(store.get_account(&first.id).await.expect("get"), first);
    // No password: signing in with one fails.
    assert!(matches!(
        store
            .authenticate("ann@example.com", "anything at all")
            .await,
        Err(ControlError::InvalidCredentials)
    ));
    // The same `sub` from another issuer is another person.
    let other = store
        .account_for_external("https://other.example|u1", None, None, Role::Viewer)
        .await
        .expect("created");
    assert_ne!(other.id, first.id);
    assert_eq!(other.display_name, "viewer");
    assert_eq!(other.role, Role::Viewer);
    assert!(
        store
            .account_for_external("", None, None, Role::Viewer)
            .await
            .is_err()
    );
}

async fn concurrent_first_sights_create_one_account(ctx: Ctx) {
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = ctx.store.clone();
            tokio::spawn(async move {
                store
                    .account_for_external(
                        "https://id.example.com|racer",
                        Some("racer@example.com"),
                        Some("Racer"),
                        Role::Viewer,
                    )
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("join").expect("account").id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
}

async fn a_taken_or_missing_email_gets_a_made_up_address(ctx: Ctx) {
    let store = &ctx.store;
    let local = store
        .create_account(
            "taken@example.com",
            "a long enough password",
            "Local",
            Role::Viewer,
        )
        .await
        .expect("local account");
    let external = store
        .account_for_external(
            "https://id.example.com|u2",
            Some("taken@example.com"),
            Some("   "),
            Role::Viewer,
        )
        .await
        .expect("created");
    assert_ne!(external.id, local.id, "never linked to a local account");
    assert!(
        external.email.ends_with("@external.invalid") && external.email.len() == 32 + 17,
        "{}",
        external.email
    );
    assert_eq!(external.display_name, "viewer");
    let no_email = store
        .account_for_external(
            "https://id.example.com|u3",
            Some("not-an-email"),
            None,
            Role::Viewer,
        )
        .await
        .expect("created");
    assert!(no_email.email.ends_with("@external.invalid"));
    assert_ne!(no_email.email, external.email);
}
