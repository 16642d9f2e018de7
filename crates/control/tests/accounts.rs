//! Accounts and their tokens behave the same on SQLite and on Postgres
//! (`GREENROOM_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`; without a
//! reachable Postgres those tests fail).

use greenroom_control::{ControlError, Role, TokenKind};

mod common;

use common::Ctx;

on_both_backends!(
    an_account_signs_in_with_its_password_only,
    an_email_is_taken_once_whatever_its_case,
    bad_emails_and_passwords_are_refused,
    sessions_expire_and_api_tokens_last_until_revoked,
);

async fn an_account_signs_in_with_its_password_only(ctx: Ctx) {
    let store = &ctx.store;
    let ann = store
        .create_account(
            "Ann@Example.com",
            "correct horse battery",
            "Ann",
            Role::Creator,
        )
        .await
        .expect("create");
    assert_eq!(ann.email, "ann@example.com");
    assert_eq!(ann.role, Role::Creator);
    let signed_in = store
        .authenticate("ANN@example.com", "correct horse battery")
        .await
        .expect("sign in");
    assert_eq!(signed_in.id, ann.id);
    for (email, password) in [
        ("ann@example.com", "wrong horse battery"),
        ("bob@example.com", "correct horse battery"),
        ("not an email", "correct horse battery"),
    ] {
        let answer = store.authenticate(email, password).await;
        assert!(
            matches!(answer, Err(ControlError::InvalidCredentials)),
            "{email}: {answer:?}"
        );
    }
    assert_eq!(
        store.get_account(&ann.id).await.expect("get").email,
        ann.email
    );
    assert!(matches!(
        store.get_account("nope").await,
        Err(ControlError::AccountNotFound { .. })
    ));
}

async fn an_email_is_taken_once_whatever_its_case(ctx: Ctx) {
    let store = &ctx.store;
    store
        .create_account("bob@example.com", "a fine password", "Bob", Role::Viewer)
        .await
        .expect("create");
    let again = store
        .create_account("BOB@example.com", "another password", "Bobby", Role::Viewer)
        .await;
    assert!(matches!(again, Err(ControlError::EmailTaken)), "{again:?}");
}

async fn bad_emails_and_passwords_are_refused(ctx: Ctx) {
    let store = &ctx.store;
    let short = store
        .create_account("c@example.com", "short", "C", Role::Viewer)
        .await;
    assert!(
        matches!(short, Err(ControlError::InvalidPassword { .. })),
        "{short:?}"
    );
    let email = store
        .create_account("c-at-example", "long enough password", "C", Role::Viewer)
        .await;
    assert!(
        matches!(email, Err(ControlError::InvalidEmail { .. })),
        "{email:?}"
    );
}

async fn sessions_expire_and_api_tokens_last_until_revoked(ctx: Ctx) {
    let store = &ctx.store;
    let dee = store
        .create_account("dee@example.com", "a fine password", "Dee", Role::Viewer)
        .await
        .expect("create");
    let session = store
        .issue_token(&dee.id, TokenKind::Session, None, Some(60_000))
        .await
        .expect("session");
    assert!(session.secret.starts_with("grs_"));
    let (account, kind) = store
        .account_for_token(&session.secret)
        .await
        .expect("valid");
    assert_eq!(
        (account.id.as_str(), kind),
        (dee.id.as_str(), TokenKind::Session)
    );
    let brief = store
        .issue_token(&dee.id, TokenKind::Session, None, Some(1))
        .await
        .expect("session");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(matches!(
        store.account_for_token(&brief.secret).await,
        Err(ControlError::InvalidCredentials)
    ));
    let api = store
        .issue_token(&dee.id, TokenKind::Api, Some("ci script"), None)
        .await
        .expect("api token");
    assert!(api.secret.starts_with("grt_") && api.expires_at_ms.is_none());
    assert_eq!(
        store.account_for_token(&api.secret).await.expect("valid").1,
        TokenKind::Api
    );
    assert!(store.revoke_token(&dee.id, &api.id).await.expect("revoke"));
    assert!(!store.revoke_token(&dee.id, &api.id).await.expect("again"));
    assert!(matches!(
        store.account_for_token(&api.secret).await,
        Err(ControlError::InvalidCredentials)
    ));
    assert!(matches!(
        store.account_for_token("grt_forged").await,
        Err(ControlError::InvalidCredentials)
    ));
}
