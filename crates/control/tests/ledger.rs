//! The money ledger behaves the same on SQLite and on Postgres (`GREENROOM_TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`; without a reachable Postgres those tests
//! fail): balances never go below zero, also under 200 concurrent spends of one balance, every
//! movement is a ledger row and the rows of an account sum to its balance, and an idempotency
//! key posts its transfer once.

use greenroom_control::{ControlError, Transfer, TransferKind, TransferLeg};

mod common;

use common::Ctx;

on_both_backends!(
    a_purchase_and_a_spend_move_balances_and_leave_rows,
    an_idempotency_key_posts_once_and_refuses_a_different_transfer,
    a_spend_beyond_the_balance_moves_nothing,
    invalid_transfers_are_refused,
    two_hundred_concurrent_spends_never_overdraw,
);

fn purchase(key: &str, wallet: &str, tokens: i64) -> Transfer {
    Transfer {
        idempotency_key: key.to_owned(),
        kind: TransferKind::TokenPurchase,
        currency: "tok".to_owned(),
        legs: vec![
            TransferLeg::external("external:stripe", -tokens),
            TransferLeg::new(wallet, tokens),
        ],
        memo: Some("token pack".to_owned()),
    }
}

fn spend(key: &str, wallet: &str, creator: &str, tokens: i64) -> Transfer {
    Transfer {
        idempotency_key: key.to_owned(),
        kind: TransferKind::TokenSpend,
        currency: "tok".to_owned(),
        legs: vec![
            TransferLeg::new(wallet, -tokens),
            TransferLeg::new(creator, tokens),
        ],
        memo: None,
    }
}

async fn a_purchase_and_a_spend_move_balances_and_leave_rows(ctx: Ctx) {
    let store = &ctx.store;
    let posted = store
        .post_transfer(&purchase("buy-1", "wallet:ann", 500))
        .await
        .expect("purchase");
    assert!(!posted.replayed);
    store
        .post_transfer(&spend("spend-1", "wallet:ann", "creator:bob", 120))
        .await
        .expect("spend");
    assert_eq!(store.balance("wallet:ann").await.expect("balance"), 380);
    assert_eq!(store.balance("creator:bob").await.expect("balance"), 120);
    assert_eq!(
        store.balance("external:stripe").await.expect("balance"),
        -500
    );
    assert_eq!(store.balance("wallet:nobody").await.expect("balance"), 0);
    let history = store
        .ledger_entries("wallet:ann", 10)
        .await
        .expect("history");
    let amounts: Vec<i64> = history.iter().map(|e| e.amount_minor).collect();
    assert_eq!(amounts.iter().sum::<i64>(), 380);
    assert_eq!(history.len(), 2);
    assert!(
        history
            .iter()
            .any(|e| e.kind == TransferKind::TokenSpend && e.amount_minor == -120)
    );
    assert!(
        history
            .iter()
            .any(|e| e.kind == TransferKind::TokenPurchase
                && e.memo.as_deref() == Some("token pack"))
    );
    for account in ["wallet:ann", "creator:bob", "external:stripe"] {
        assert_eq!(
            store.ledger_sum(account).await.expect("sum"),
            store.balance(account).await.expect("balance"),
            "{account}"
        );
    }
}

async fn an_idempotency_key_posts_once_and_refuses_a_different_transfer(ctx: Ctx) {
    let store = &ctx.store;
    let first = store
        .post_transfer(&purchase("checkout-cs_1", "wallet:ann", 100))
        .await
        .expect("purchase");
    let again = store
        .post_transfer(&purchase("checkout-cs_1", "wallet:ann", 100))
        .await
        .expect("replay");
    assert!(again.replayed);
    assert_eq!(again.transfer_id, first.transfer_id);
    assert_eq!(store.balance("wallet:ann").await.expect("balance"), 100);
    let different = store
        .post_transfer(&purchase("checkout-cs_1", "wallet:ann", 999))
        .await;
    assert!(
        matches!(different, Err(ControlError::IdempotencyConflict { .. })),
        "{different:?}"
    );
    assert_eq!(store.balance("wallet:ann").await.expect("balance"), 100);
}

async fn a_spend_beyond_the_balance_moves_nothing(ctx: Ctx) {
    let store = &ctx.store;
    store
        .post_transfer(&purchase("buy", "wallet:ann", 50))
        .await
        .expect("purchase");
    let refused = store
        .post_transfer(&spend("too-much", "wallet:ann", "creator:bob", 51))
        .await;
    match refused {
        Err(ControlError::InsufficientFunds {
            account,
            balance_minor,
            needed_minor,
        }) => {
            assert_eq!(account, "wallet:ann");
            assert_eq!((balance_minor, needed_minor), (50, 51));
        }
        other => panic!("expected insufficient funds, got {other:?}"),
    }
    assert_eq!(store.balance("wallet:ann").await.expect("balance"), 50);
    assert_eq!(store.balance("creator:bob").await.expect("balance"), 0);
    assert_eq!(
        store
            .ledger_entries("creator:bob", 10)
            .await
            .expect("rows")
            .len(),
        0
    );
    // The refused key is free: it posted nothing.
    store
        .post_transfer(&spend("too-much", "wallet:ann", "creator:bob", 50))
        .await
        .expect("the same key, now affordable");
    assert_eq!(store.balance("wallet:ann").await.expect("balance"), 0);
}

async fn invalid_transfers_are_refused(ctx: Ctx) {
    let store = &ctx.store;
    let mut unbalanced = spend("k1", "wallet:a", "creator:b", 5);
    unbalanced.legs[1].amount_minor = 6;
    let mut one_leg = spend("k2", "wallet:a", "creator:b", 5);
    one_leg.legs.truncate(1);
    let mut twice = spend("k3", "wallet:a", "wallet:a", 5);
    twice.memo = None;
    let mut zero = spend("k4", "wallet:a", "creator:b", 0);
    zero.memo = None;
    let mut bad_currency = purchase("k5", "wallet:a", 5);
    bad_currency.currency = "USD".to_owned();
    let empty_key = purchase("", "wallet:a", 5);
    for transfer in [unbalanced, one_leg, twice, zero, bad_currency, empty_key] {
        let answer = store.post_transfer(&transfer).await;
        assert!(
            matches!(answer, Err(ControlError::InvalidTransfer { .. })),
            "{transfer:?}: {answer:?}"
        );
    }
    // An account keeps its currency.
    store
        .post_transfer(&purchase("tokens", "wallet:a", 5))
        .await
        .expect("tokens");
    let mut dollars = purchase("dollars", "wallet:a", 5);
    dollars.currency = "usd".to_owned();
    let answer = store.post_transfer(&dollars).await;
    assert!(
        matches!(answer, Err(ControlError::InvalidTransfer { .. })),
        "{answer:?}"
    );
}

async fn two_hundred_concurrent_spends_never_overdraw(ctx: Ctx) {
    let store = ctx.store.clone();
    // 1000 tokens; 200 spends of 7 (1400 wanted): at most 142 can succeed.
    store
        .post_transfer(&purchase("buy", "wallet:crowd", 1000))
        .await
        .expect("purchase");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .post_transfer(&spend(
                    &format!("spend-{i}"),
                    "wallet:crowd",
                    &format!("creator:{}", i % 5),
                    7,
                ))
                .await
        }));
    }
    let mut succeeded = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => succeeded += 1,
            Err(ControlError::InsufficientFunds { .. }) => refused += 1,
            Err(other) => panic!("unexpected error under concurrency: {other}"),
        }
    }
    assert_eq!(succeeded + refused, 200);
    assert_eq!(
        succeeded, 142,
        "every affordable spend went through, no more"
    );
    let balance = store.balance("wallet:crowd").await.expect("balance");
    assert_eq!(balance, 1000 - 7 * 142);
    assert!(balance >= 0);
    assert_eq!(
        store.ledger_sum("wallet:crowd").await.expect("sum"),
        balance
    );
    let mut creators = 0;
    for c in 0..5 {
        let account = format!("creator:{c}");
        let b = store.balance(&account).await.expect("balance");
        assert_eq!(store.ledger_sum(&account).await.expect("sum"), b);
        creators += b;
    }
    assert_eq!(
        creators,
        7 * 142,
        "what left the wallet reached the creators"
    );
}
