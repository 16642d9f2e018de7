//! The token wallet behaves the same on SQLite and on Postgres
//! (`GREENROOM_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`; without
//! a reachable Postgres those tests fail): tokens bought through Stripe land in the wallet,
//! enrolling in a paid stream spends its token price once and grants the stream, 200
//! concurrent enrolments from one wallet never overdraw it, 20 concurrent enrolments in one
//! stream spend once, a refunded pack takes back what is left of its tokens, and after any
//! sequence of purchases, spends, refunds and redeliveries the wallet's entries sum to its
//! balance and tokens are neither made nor lost.

use std::collections::{BTreeMap, BTreeSet};

use greenroom_control::wallet::{
    TOKEN_ISSUER_ACCOUNT, channel_account, platform_sales_account, stripe_account, wallet_account,
};
use greenroom_control::{
    Account, Channel, ControlError, EventChange, EventStatus, GrantSource, NewCheckout, NewStream,
    Role, Store, Stream, StreamAccess, StripeEvent, TokenPack, TransferKind,
};
use proptest::prelude::*;

mod common;

use common::{Ctx, charge_refunded, checkout_completed, now_ms};

on_both_backends!(
    enrolling_spends_the_token_price_once_and_grants_the_stream,
    two_hundred_concurrent_enrolments_never_overdraw,
    the_same_stream_enrolled_twenty_times_at_once_spends_once,
    a_refunded_token_pack_takes_back_what_is_left,
);

struct World {
    channel: Channel,
    viewer: Account,
}

async fn world(store: &Store) -> World {
    let creator = store
        .create_account(
            "creator@example.com",
            "a long enough password",
            "Creator",
            Role::Creator,
        )
        .await
        .expect("create an account");
    let channel = store
        .create_channel(&creator.id, "creator", "The Creator", "")
        .await
        .expect("create a channel");
    let viewer = store
        .create_account(
            "viewer@example.com",
            "a long enough password",
            "Viewer",
            Role::Viewer,
        )
        .await
        .expect("create an account");
    World { channel, viewer }
}

async fn priced_stream(
    store: &Store,
    channel: &Channel,
    price_tokens: Option<i64>,
    access: StreamAccess,
) -> Stream {
    store
        .create_stream_from(NewStream {
            title: "Show".to_owned(),
            channel_id: Some(channel.id.clone()),
            access,
            price_tokens,
            ..NewStream::default()
        })
        .await
        .expect("create a stream")
}

fn pack(tokens: i64) -> TokenPack {
    TokenPack {
        id: "pack".to_owned(),
        tokens,
        amount_minor: tokens * 5,
        currency: "usd".to_owned(),
    }
}

/// Buys a pack of `tokens` through a checkout and its completed session.
async fn buy_tokens(store: &Store, viewer: &Account, tokens: i64, n: usize) -> StripeEvent {
    let pack = pack(tokens);
    let checkout = store
        .create_checkout(NewCheckout::for_tokens(&viewer.id, &pack).expect("new checkout"))
        .await
        .expect("create a checkout");
    let event = checkout_completed(
        &format!("evt_buy_{n}"),
        &checkout.id,
        &format!("pi_{n}"),
        pack.amount_minor,
        now_ms() / 1000,
    );
    let outcome = store
        .apply_stripe_event(&event, now_ms(), 500)
        .await
        .expect("apply");
    assert_eq!(outcome.status, EventStatus::Applied);
    assert!(outcome.changes.contains(&EventChange::TokensCredited {
        account_id: viewer.id.clone(),
        tokens
    }));
    event
}

async fn enrolling_spends_the_token_price_once_and_grants_the_stream(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    let show = priced_stream(store, &w.channel, Some(30), StreamAccess::Paid).await;
    let now = now_ms();
    assert_eq!(
        store.wallet_balance(&w.viewer.id).await.expect("balance"),
        0
    );
    assert!(matches!(
        store.enroll_with_tokens(&w.viewer.id, &show.id, now).await,
        Err(ControlError::InsufficientFunds { .. })
    ));
    buy_tokens(store, &w.viewer, 100, 1).await;
    assert_eq!(
        store.wallet_balance(&w.viewer.id).await.expect("balance"),
        100
    );
    // The money went to the platform's sales.
    assert_eq!(
        store
            .balance(&platform_sales_account("usd"))
            .await
            .expect("balance"),
        500
    );
    assert_eq!(
        store
            .balance(&stripe_account("usd"))
            .await
            .expect("balance"),
        -500
    );

    let (grant, posted) = store
        .enroll_with_tokens(&w.viewer.id, &show.id, now)
        .await
        .expect("enroll");
    assert!(!posted.replayed);
    assert_eq!(grant.source, GrantSource::Tokens);
    assert_eq!(grant.stream_id.as_deref(), Some(show.id.as_str()));
    assert_eq!((grant.pass_id, grant.expires_at_ms), (None, None));
    assert_eq!(
        store.wallet_balance(&w.viewer.id).await.expect("balance"),
        70
    );
    assert_eq!(
        store
            .balance(&channel_account(&w.channel.id, "tok"))
            .await
            .expect("balance"),
        30
    );
    assert_eq!(
        store
            .access_to_stream(&w.viewer.id, &show, now, false)
            .await
            .expect("access")
            .id,
        grant.id
    );
    let other = priced_stream(store, &w.channel, Some(30), StreamAccess::Paid).await;
    assert!(
        store
            .access_to_stream(&w.viewer.id, &other, now, false)
            .await
            .is_err()
    );

    // Again: the same grant, nothing spent.
    let (again, replay) = store
        .enroll_with_tokens(&w.viewer.id, &show.id, now + 5)
        .await
        .expect("enroll again");
    assert_eq!(again.id, grant.id);
    assert!(replay.replayed);
    assert_eq!(replay.transfer_id, posted.transfer_id);
    assert_eq!(
        store.wallet_balance(&w.viewer.id).await.expect("balance"),
        70
    );

    let history = store
        .wallet_history(&w.viewer.id, 10)
        .await
        .expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history.iter().map(|e| e.amount_minor).sum::<i64>(), 70);
    assert!(
        history
            .iter()
            .any(|e| e.kind == TransferKind::TokenSpend && e.amount_minor == -30)
    );

    // Not sold for tokens: free, no price; unknown streams are not found.
    let free = priced_stream(store, &w.channel, None, StreamAccess::Free).await;
    let unpriced = priced_stream(store, &w.channel, None, StreamAccess::Paid).await;
    for stream in [&free, &unpriced] {
        assert!(matches!(
            store
                .enroll_with_tokens(&w.viewer.id, &stream.id, now)
                .await,
            Err(ControlError::NotForSale { .. })
        ));
    }
    assert!(matches!(
        store
            .enroll_with_tokens(&w.viewer.id, "aaaaaaaaaaaaaaaa", now)
            .await,
        Err(ControlError::StreamNotFound { .. })
    ));
    // Ended longer ago than its replay access: nothing left to sell.
    let mut over = NewStream {
        title: "Over".to_owned(),
        channel_id: Some(w.channel.id.clone()),
        access: StreamAccess::Paid,
        price_tokens: Some(5),
        replay_access_days: Some(1),
        ..NewStream::default()
    };
    let over_stream = store
        .create_stream_from(over.clone())
        .await
        .expect("create");
    let ended = store.end_stream(&over_stream.id).await.expect("end");
    let ended_at = ended.ended_at_ms.expect("ended");
    assert!(matches!(
        store
            .enroll_with_tokens(&w.viewer.id, &ended.id, ended_at + 2 * 24 * 3600 * 1000)
            .await,
        Err(ControlError::NotForSale { .. })
    ));
    over.title = "Replay".to_owned();
    let replay = store.create_stream_from(over).await.expect("create");
    let replay = store.end_stream(&replay.id).await.expect("end");
    store
        .enroll_with_tokens(&w.viewer.id, &replay.id, now_ms())
        .await
        .expect("a recent replay is sold");
    let after_replay = 70 - 5;
    // Too expensive: nothing moves.
    let dear = priced_stream(
        store,
        &w.channel,
        Some(after_replay + 1),
        StreamAccess::Paid,
    )
    .await;
    assert!(matches!(
        store.enroll_with_tokens(&w.viewer.id, &dear.id, now).await,
        Err(ControlError::InsufficientFunds { .. })
    ));
    assert_eq!(
        store.wallet_balance(&w.viewer.id).await.expect("balance"),
        after_replay
    );
    assert_eq!(
        store
            .grants_for_account(&w.viewer.id)
            .await
            .expect("grants")
            .len(),
        2
    );
}

async fn two_hundred_concurrent_enrolments_never_overdraw(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    // Tokens for 50 of the 200 streams.
    buy_tokens(store, &w.viewer, 500, 1).await;
    let mut streams = Vec::new();
    for _ in 0..200 {
        streams.push(priced_stream(store, &w.channel, Some(10), StreamAccess::Paid).await);
    }
    let now = now_ms();
    let enrolments = streams
        .iter()
        .map(|stream| store.enroll_with_tokens(&w.viewer.id, &stream.id, now));
    let results = futures::future::join_all(enrolments).await;
    let mut enrolled = 0;
    for result in results {
        match result {
            Ok((_, posted)) => {
                assert!(!posted.replayed);
                enrolled += 1;
            }
            Err(ControlError::InsufficientFunds { .. }) => {}
            Err(other) => panic!("unexpected answer: {other}"),
        }
    }
    assert_eq!(enrolled, 50);
    let wallet = wallet_account(&w.viewer.id);
    assert_eq!(store.balance(&wallet).await.expect("balance"), 0);
    assert_eq!(store.ledger_sum(&wallet).await.expect("sum"), 0);
    assert_eq!(
        store
            .balance(&channel_account(&w.channel.id, "tok"))
            .await
            .expect("balance"),
        500
    );
    assert_eq!(
        store
            .grants_for_account(&w.viewer.id)
            .await
            .expect("grants")
            .len(),
        50
    );
}

async fn the_same_stream_enrolled_twenty_times_at_once_spends_once(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    // Exactly one enrolment's worth, so a second spend would also overdraw.
    buy_tokens(store, &w.viewer, 40, 1).await;
    let show = priced_stream(store, &w.channel, Some(40), StreamAccess::Paid).await;
    let now = now_ms();
    let enrolments = (0..20).map(|_| store.enroll_with_tokens(&w.viewer.id, &show.id, now));
    let results = futures::future::join_all(enrolments).await;
    let mut grants = BTreeSet::new();
    let mut fresh = 0;
    for result in results {
        let (grant, posted) = result.expect("every enrolment succeeds");
        grants.insert(grant.id);
        fresh += usize::from(!posted.replayed);
    }
    assert_eq!(grants.len(), 1);
    assert_eq!(fresh, 1);
    assert_eq!(
        store.wallet_balance(&w.viewer.id).await.expect("balance"),
        0
    );
    assert_eq!(
        store
            .wallet_history(&w.viewer.id, 10)
            .await
            .expect("history")
            .len(),
        2
    );
}

async fn a_refunded_token_pack_takes_back_what_is_left(ctx: Ctx) {
    let store = &ctx.store;
    let w = world(store).await;
    buy_tokens(store, &w.viewer, 100, 1).await;
    let show = priced_stream(store, &w.channel, Some(30), StreamAccess::Paid).await;
    store
        .enroll_with_tokens(&w.viewer.id, &show.id, now_ms())
        .await
        .expect("enroll");
    let refund = charge_refunded("evt_r", "pi_1", 500, 500, now_ms() / 1000);
    let outcome = store
        .apply_stripe_event(&refund, now_ms(), 500)
        .await
        .expect("apply");
    assert!(outcome.changes.contains(&EventChange::TokensReclaimed {
        account_id: w.viewer.id.clone(),
        tokens: 70,
        shortfall: 30
    }));
    assert_eq!(
        store.wallet_balance(&w.viewer.id).await.expect("balance"),
        0
    );
    let history = store
        .wallet_history(&w.viewer.id, 10)
        .await
        .expect("history");
    let taken = history
        .iter()
        .find(|e| e.kind == TransferKind::Refund)
        .expect("a refund entry");
    assert_eq!(taken.amount_minor, -70);
    assert!(taken.memo.as_deref().unwrap_or("").contains("shortfall 30"));
    // The money went back; the spent tokens stay with the channel, and the grant they
    // bought stays (it was bought with tokens, not with the refunded payment).
    assert_eq!(
        store
            .balance(&platform_sales_account("usd"))
            .await
            .expect("balance"),
        0
    );
    assert_eq!(
        store
            .balance(&stripe_account("usd"))
            .await
            .expect("balance"),
        0
    );
    assert_eq!(
        store
            .balance(&channel_account(&w.channel.id, "tok"))
            .await
            .expect("balance"),
        30
    );
    assert!(
        store
            .access_to_stream(&w.viewer.id, &show, now_ms(), false)
            .await
            .is_ok()
    );
    let again = store
        .apply_stripe_event(&refund, now_ms(), 500)
        .await
        .expect("apply");
    assert_eq!(again.status, EventStatus::Duplicate);
    assert_eq!(
        store
            .wallet_history(&w.viewer.id, 10)
            .await
            .expect("history")
            .len(),
        3
    );

    // A pack spent entirely: nothing to take back, and a redelivery after the next purchase
    // takes nothing either.
    buy_tokens(store, &w.viewer, 25, 2).await;
    let other = priced_stream(store, &w.channel, Some(25), StreamAccess::Paid).await;
    store
        .enroll_with_tokens(&w.viewer.id, &other.id, now_ms())
        .await
        .expect("enroll");
    let refund = charge_refunded("evt_r2", "pi_2", 125, 125, now_ms() / 1000);
    let outcome = store
        .apply_stripe_event(&refund, now_ms(), 500)
        .await
        .expect("apply");
    assert!(outcome.changes.contains(&EventChange::TokensReclaimed {
        account_id: w.viewer.id.clone(),
        tokens: 0,
        shortfall: 25
    }));
    buy_tokens(store, &w.viewer, 50, 3).await;
    let again = store
        .apply_stripe_event(&refund, now_ms(), 500)
        .await
        .expect("apply");
    assert_eq!(again.status, EventStatus::Duplicate);
    assert_eq!(
        store.wallet_balance(&w.viewer.id).await.expect("balance"),
        50
    );
}

// ---- property: random sequences ---------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Buy(i64),
    Enroll(usize),
    Refund(usize),
    Redeliver(usize),
}

const PRICES: [i64; 6] = [7, 13, 25, 40, 60, 99];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1i64..=200).prop_map(Op::Buy),
        (0..PRICES.len()).prop_map(Op::Enroll),
        (0usize..6).prop_map(Op::Refund),
        (0usize..6).prop_map(Op::Redeliver),
    ]
}

/// Plays `ops` against the store and a model of the wallet; after every step the wallet
/// holds what the model says, its entries sum to its balance and no token or cent is made or
/// lost.
async fn play(ctx: Ctx, ops: Vec<Op>) {
    let store = &ctx.store;
    let w = world(store).await;
    let mut streams = Vec::new();
    for price in PRICES {
        streams.push(priced_stream(store, &w.channel, Some(price), StreamAccess::Paid).await);
    }
    let wallet = wallet_account(&w.viewer.id);
    let mut buys: Vec<(StripeEvent, i64, bool)> = Vec::new();
    let mut enrolled = BTreeMap::new();
    let mut balance = 0i64;
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Buy(tokens) => {
                let event = buy_tokens(store, &w.viewer, *tokens, buys.len()).await;
                buys.push((event, *tokens, false));
                balance += tokens;
            }
            Op::Enroll(i) => {
                let answer = store
                    .enroll_with_tokens(&w.viewer.id, &streams[*i].id, now_ms())
                    .await;
                if enrolled.contains_key(i) {
                    assert!(answer.expect("enrolled before").1.replayed);
                } else if balance >= PRICES[*i] {
                    answer.expect("enough tokens");
                    balance -= PRICES[*i];
                    enrolled.insert(*i, ());
                } else {
                    assert!(
                        matches!(answer, Err(ControlError::InsufficientFunds { .. })),
                        "{answer:?}"
                    );
                }
            }
            Op::Refund(j) => {
                if let Some((_, tokens, refunded_before)) = buys.get_mut(*j) {
                    let event = charge_refunded(
                        &format!("evt_refund_{j}"),
                        &format!("pi_{j}"),
                        *tokens * 5,
                        *tokens * 5,
                        now_ms() / 1000,
                    );
                    let outcome = store
                        .apply_stripe_event(&event, now_ms(), 500)
                        .await
                        .expect("refund");
                    if *refunded_before {
                        assert_eq!(outcome.status, EventStatus::Duplicate);
                    } else {
                        balance -= (*tokens).min(balance);
                        *refunded_before = true;
                    }
                }
            }
            Op::Redeliver(j) => {
                if let Some((event, _, _)) = buys.get(*j) {
                    let outcome = store
                        .apply_stripe_event(event, now_ms(), 500)
                        .await
                        .expect("redeliver");
                    assert_eq!(outcome.status, EventStatus::Duplicate);
                }
            }
        }
        let stored = store.balance(&wallet).await.expect("balance");
        assert_eq!(stored, balance, "step {step}: {op:?}");
        assert!(stored >= 0);
        assert_eq!(
            store.ledger_sum(&wallet).await.expect("sum"),
            stored,
            "step {step}"
        );
        let tokens = store.balance(TOKEN_ISSUER_ACCOUNT).await.expect("balance")
            + stored
            + store
                .balance(&channel_account(&w.channel.id, "tok"))
                .await
                .expect("balance");
        assert_eq!(tokens, 0, "step {step}: tokens made or lost");
        let money = store
            .balance(&stripe_account("usd"))
            .await
            .expect("balance")
            + store
                .balance(&platform_sales_account("usd"))
                .await
                .expect("balance");
        assert_eq!(money, 0, "step {step}: money made or lost");
    }
}

fn run_on(backend: &str, ops: Vec<Op>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        match backend {
            "sqlite" => common::with_sqlite(|ctx| play(ctx, ops)).await,
            _ => common::with_postgres(|ctx| play(ctx, ops)).await,
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn the_wallet_ledger_sums_to_the_balance_on_sqlite(ops in prop::collection::vec(op(), 1..25)) {
        run_on("sqlite", ops);
    }

    #[test]
    fn the_wallet_ledger_sums_to_the_balance_on_postgres(ops in prop::collection::vec(op(), 1..25)) {
        run_on("postgres", ops);
    }
}
