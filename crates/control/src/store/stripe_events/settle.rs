//! Step 3: the ledger movements of an event, each posted once per key derived from the
//! payment; run again on every redelivery.

use sqlx::Row;

use super::record::revoke_for_payment;
use super::{Buys, Plan};
use crate::ControlError;
use crate::Store;
use crate::ledger::{Transfer, TransferKind, TransferLeg};
use crate::money::split_fee;
use crate::store::tips::tip_by_checkout;
use crate::stripe_event::EventChange;
use crate::wallet::{
    TOKEN_CURRENCY, TOKEN_ISSUER_ACCOUNT, channel_account, platform_fees_account,
    platform_sales_account, stripe_account, wallet_account,
};

impl Store {
    pub(super) async fn settle_event(
        &self,
        plan: &Plan,
        now_ms: i64,
        fee_bps: u32,
        changes: &mut Vec<EventChange>,
    ) -> Result<(), ControlError> {
        match plan {
            Plan::Session {
                checkout,
                session,
                buys,
            } => {
                let payment_intent = session.payment_intent_id.as_deref();
                let key = match payment_intent {
                    Some(pi) => payment_key(pi),
                    None => format!("checkout:{}", checkout.id),
                };
                // What was paid, in the checkout's currency (Stripe may have presented
                // another one; then the checkout's own amount counts).
                let paid = match (&session.amount_total, &session.currency) {
                    (Some(amount), Some(currency)) if *currency == checkout.currency => *amount,
                    _ => checkout.amount_minor,
                };
                let currency = checkout.currency.as_str();
                match buys {
                    Buys::OneTime { pass, .. } if paid > 0 => {
                        let fee = split_fee(paid, fee_bps)?.fee_minor;
                        self.post_once(&Transfer {
                            idempotency_key: key,
                            kind: TransferKind::PassPurchase,
                            currency: currency.to_owned(),
                            legs: sale_legs(currency, paid, fee, &pass.channel_id),
                            memo: Some(format!(
                                "pass {} bought (checkout {})",
                                pass.id, checkout.id
                            )),
                        })
                        .await?;
                    }
                    Buys::OneTime { .. } | Buys::Subscription { .. } => {}
                    Buys::Tokens { tokens } => {
                        if paid > 0 {
                            self.post_once(&Transfer {
                                idempotency_key: key.clone(),
                                kind: TransferKind::TokenPurchase,
                                currency: currency.to_owned(),
                                legs: vec![
                                    TransferLeg::external(stripe_account(currency), -paid),
                                    TransferLeg::new(platform_sales_account(currency), paid),
                                ],
                                memo: Some(format!("token pack (checkout {})", checkout.id)),
                            })
                            .await?;
                        }
                        let credited = self
                            .post_once(&Transfer {
                                idempotency_key: format!("{key}:tokens"),
                                kind: TransferKind::TokenPurchase,
                                currency: TOKEN_CURRENCY.to_owned(),
                                legs: vec![
                                    TransferLeg::external(TOKEN_ISSUER_ACCOUNT, -tokens),
                                    TransferLeg::new(wallet_account(&checkout.account_id), *tokens),
                                ],
                                memo: Some(format!("token pack (checkout {})", checkout.id)),
                            })
                            .await?;
                        if credited.is_some() {
                            changes.push(EventChange::TokensCredited {
                                account_id: checkout.account_id.clone(),
                                tokens: *tokens,
                            });
                        }
                    }
                    Buys::Tip => {
                        if let Some(tip) = tip_by_checkout(&self.pool, &checkout.id).await? {
                            self.post_once(&Transfer {
                                idempotency_key: key,
                                kind: TransferKind::Tip,
                                currency: tip.currency.clone(),
                                legs: sale_legs(
                                    &tip.currency,
                                    tip.amount_minor,
                                    tip.fee_minor,
                                    &tip.channel_id,
                                ),
                                memo: Some(format!("tip {} on stream {}", tip.id, tip.stream_id)),
                            })
                            .await?;
                        }
                    }
                }
                if let Some(pi) = payment_intent {
                    self.settle_refund(pi, now_ms, changes).await?;
                }
            }
            Plan::Invoice { pass, invoice, .. } => {
                if invoice.amount_paid > 0 {
                    let key = match &invoice.payment_intent_id {
                        Some(pi) => payment_key(pi),
                        None => format!("invoice:{}", invoice.id),
                    };
                    let fee = split_fee(invoice.amount_paid, fee_bps)?.fee_minor;
                    self.post_once(&Transfer {
                        idempotency_key: key,
                        kind: TransferKind::PassPurchase,
                        currency: invoice.currency.clone(),
                        legs: sale_legs(
                            &invoice.currency,
                            invoice.amount_paid,
                            fee,
                            &pass.channel_id,
                        ),
                        memo: Some(format!("pass {} invoice {}", pass.id, invoice.id)),
                    })
                    .await?;
                }
                if let Some(pi) = &invoice.payment_intent_id {
                    self.settle_refund(pi, now_ms, changes).await?;
                }
            }
            Plan::Refund {
                payment_intent_id, ..
            } => {
                self.settle_refund(payment_intent_id, now_ms, changes)
                    .await?;
            }
            Plan::Ignore(_) | Plan::Expired { .. } | Plan::Subscription { .. } => {}
        }
        Ok(())
    }

    /// If a payment was refunded in full and its movement is posted: revokes what it bought
    /// (when its own event committed after the refund's), takes its tokens back (what is left
    /// of them) and reverses its money.
    async fn settle_refund(
        &self,
        payment_intent_id: &str,
        now_ms: i64,
        changes: &mut Vec<EventChange>,
    ) -> Result<(), ControlError> {
        let row =
            sqlx::query("SELECT amount_refunded FROM stripe_refunds WHERE payment_intent_id = $1")
                .bind(payment_intent_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(ControlError::database("reading a refund"))?;
        let Some(row) = row else {
            return Ok(());
        };
        let refunded: i64 = row
            .try_get(0)
            .map_err(ControlError::database("reading a refund"))?;
        let key = payment_key(payment_intent_id);
        let (legs, currency) = self.legs_for_key(&key).await?;
        let Some(currency) = currency else {
            // The payment is not posted yet: its own event settles the refund.
            return Ok(());
        };
        let paid: i64 = legs.iter().map(|(_, amount)| amount.max(&0)).sum();
        if refunded < paid {
            return Ok(());
        }
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(ControlError::database("revoking a refunded payment"))?;
        revoke_for_payment(&mut conn, payment_intent_id, now_ms, changes).await?;
        drop(conn);
        // The money's reversal is posted last: once it is, the tokens were settled too (even
        // when none were left to take), so a redelivery takes nothing more.
        let reversal_key = format!("refund:{payment_intent_id}");
        if self.transfer_for_key(&reversal_key).await?.is_some() {
            return Ok(());
        }
        self.reclaim_tokens(payment_intent_id, changes).await?;
        self.post_once(&Transfer {
            idempotency_key: reversal_key,
            kind: TransferKind::Refund,
            currency,
            legs: legs
                .iter()
                .map(|(account, amount)| reverse_leg(account, *amount))
                .collect(),
            memo: Some(format!("refund of {payment_intent_id}")),
        })
        .await?;
        Ok(())
    }

    /// Takes back the tokens a refunded pack credited: what is left of them in the wallet
    /// (a wallet never goes below zero); the shortfall is in the memo.
    async fn reclaim_tokens(
        &self,
        payment_intent_id: &str,
        changes: &mut Vec<EventChange>,
    ) -> Result<(), ControlError> {
        let refund_key = format!("refund:{payment_intent_id}:tokens");
        if self.transfer_for_key(&refund_key).await?.is_some() {
            return Ok(());
        }
        let (legs, _) = self
            .legs_for_key(&format!("{}:tokens", payment_key(payment_intent_id)))
            .await?;
        let Some((wallet, credited)) = legs
            .into_iter()
            .find(|(account, amount)| account.starts_with("wallet:") && *amount > 0)
        else {
            return Ok(());
        };
        let account_id = wallet.trim_start_matches("wallet:").to_owned();
        for _ in 0..5 {
            let balance = self.balance(&wallet).await?;
            let taken = credited.min(balance);
            if taken <= 0 {
                tracing::warn!(payment = %payment_intent_id, wallet = %wallet, credited, "refunded tokens were all spent: none taken back");
                changes.push(EventChange::TokensReclaimed {
                    account_id,
                    tokens: 0,
                    shortfall: credited,
                });
                return Ok(());
            }
            let transfer = Transfer {
                idempotency_key: refund_key.clone(),
                kind: TransferKind::Refund,
                currency: TOKEN_CURRENCY.to_owned(),
                legs: vec![
                    TransferLeg::new(wallet.clone(), -taken),
                    TransferLeg::external(TOKEN_ISSUER_ACCOUNT, taken),
                ],
                memo: Some(format!(
                    "refund of {payment_intent_id}: took back {taken} of {credited} tokens, \
                     shortfall {}",
                    credited - taken
                )),
            };
            match self.post_transfer(&transfer).await {
                Ok(posted) => {
                    if !posted.replayed {
                        changes.push(EventChange::TokensReclaimed {
                            account_id,
                            tokens: taken,
                            shortfall: credited - taken,
                        });
                    }
                    return Ok(());
                }
                // Posted concurrently by another delivery.
                Err(ControlError::IdempotencyConflict { .. }) => return Ok(()),
                // Spent meanwhile: look again.
                Err(ControlError::InsufficientFunds { .. }) => {
                    if self.transfer_for_key(&refund_key).await?.is_some() {
                        return Ok(());
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Err(ControlError::InsufficientFunds {
            account: wallet,
            balance_minor: 0,
            needed_minor: credited,
        })
    }
}

/// The idempotency key of the movement a payment made.
fn payment_key(payment_intent_id: &str) -> String {
    format!("payment:{payment_intent_id}")
}

/// A sale through Stripe: the buyer's money in, the channel's part and the platform's fee
/// out (legs of zero left off).
fn sale_legs(currency: &str, amount: i64, fee: i64, channel_id: &str) -> Vec<TransferLeg> {
    let mut legs = vec![TransferLeg::external(stripe_account(currency), -amount)];
    if amount - fee > 0 {
        legs.push(TransferLeg::new(
            channel_account(channel_id, currency),
            amount - fee,
        ));
    }
    if fee > 0 {
        legs.push(TransferLeg::new(platform_fees_account(currency), fee));
    }
    legs
}

fn reverse_leg(account: &str, amount: i64) -> TransferLeg {
    if account.starts_with("external:") || account == TOKEN_ISSUER_ACCOUNT {
        TransferLeg::external(account, -amount)
    } else {
        TransferLeg::new(account, -amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_sale_moves_exactly_the_amount(amount in 1i64..=1_000_000_000_000, bps in 0u32..=10_000) {
            let fee = split_fee(amount, bps).expect("split").fee_minor;
            let legs = sale_legs("usd", amount, fee, "c1");
            prop_assert_eq!(legs.iter().map(|l| l.amount_minor).sum::<i64>(), 0);
            prop_assert!(legs.iter().all(|l| l.amount_minor != 0));
            let channel: i64 = legs.iter().filter(|l| l.account == "channel:c1:usd").map(|l| l.amount_minor).sum();
            let fees: i64 = legs.iter().filter(|l| l.account == "platform:fees:usd").map(|l| l.amount_minor).sum();
            prop_assert_eq!(channel + fees, amount);
            prop_assert_eq!(fees, fee);
            let reversed: i64 = legs.iter().map(|l| reverse_leg(&l.account, l.amount_minor).amount_minor).sum();
            prop_assert_eq!(reversed, 0);
        }
    }

    #[test]
    fn five_percent_of_999_is_50() {
        let fee = split_fee(999, 500).expect("split").fee_minor;
        let legs = sale_legs("usd", 999, fee, "c1");
        let amounts: Vec<(&str, i64)> = legs
            .iter()
            .map(|l| (l.account.as_str(), l.amount_minor))
            .collect();
        assert_eq!(
            amounts,
            vec![
                ("external:stripe:usd", -999),
                ("channel:c1:usd", 949),
                ("platform:fees:usd", 50)
            ]
        );
        assert!(legs[0].allow_negative && !legs[1].allow_negative);
        assert!(reverse_leg("external:stripe:usd", -999).allow_negative);
        assert!(!reverse_leg("channel:c1:usd", 949).allow_negative);
    }
}
