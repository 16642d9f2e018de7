//! Set-up shared by the store tests: every behaviour runs on a SQLite file in a temporary
//! directory and on a fresh Postgres database (`GREENROOM_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`) created and dropped per test. Without a reachable
//! Postgres the Postgres tests fail: they never skip.

#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;

use std::time::{SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use greenroom_control::{Backend, Store, StripeEvent};
use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// What a behaviour gets: an open store and the URL it was opened with.
pub struct Ctx {
    pub store: Store,
    pub url: String,
}

pub async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let url = Store::sqlite_url(dir.path());
    let store = Store::connect(&url).await.expect("open the SQLite store");
    assert_eq!(store.backend(), Backend::Sqlite);
    body(Ctx {
        store: store.clone(),
        url,
    })
    .await;
    store.close().await;
}

pub fn postgres_admin_url() -> String {
    std::env::var("GREENROOM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

pub async fn with_postgres<F, Fut>(body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let admin_url = postgres_admin_url();
    let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|err| {
        panic!(
            "Postgres tests need a server at {admin_url} (set GREENROOM_TEST_POSTGRES_URL): {err}"
        )
    });
    let database = format!(
        "greenroom_test_{:016x}",
        rand::Rng::random_range(&mut rand::rng(), 0..u64::MAX)
    );
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("the Postgres URL ends with a database name");
    let url = format!("{base}/{database}");

    let outcome = AssertUnwindSafe(async {
        let store = Store::connect(&url).await.expect("open the Postgres store");
        assert_eq!(store.backend(), Backend::Postgres);
        body(Ctx {
            store: store.clone(),
            url: url.clone(),
        })
        .await;
        store.close().await;
    })
    .catch_unwind()
    .await;

    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop the test database");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::common::with_sqlite(super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::common::with_postgres(super::$name).await
                }
            )*
        }
    };
}

/// The wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A Stripe event as its webhook delivers it, read by the store's own parser.
pub fn stripe_event(id: &str, kind: &str, created_s: i64, object: Value) -> StripeEvent {
    let payload = json!({
        "id": id, "object": "event", "api_version": "2025-03-31.basil", "type": kind,
        "created": created_s, "livemode": false,
        "data": {"object": object}
    });
    StripeEvent::parse(payload.to_string().as_bytes()).expect("parse the event")
}

/// `checkout.session.completed` for a paid payment-mode checkout.
pub fn checkout_completed(
    id: &str,
    checkout_id: &str,
    payment_intent: &str,
    amount: i64,
    created_s: i64,
) -> StripeEvent {
    stripe_event(
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

/// `charge.refunded` for `amount_refunded` of a charge of `amount`.
pub fn charge_refunded(
    id: &str,
    payment_intent: &str,
    amount: i64,
    amount_refunded: i64,
    created_s: i64,
) -> StripeEvent {
    stripe_event(
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
