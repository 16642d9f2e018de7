//! The token wallet's queries: enrolment in a stream with tokens, balance and history, and
//! the ledger look-ups commerce uses to post each movement once.
//!
//! An enrolment is two steps, each safe to repeat: the spend is posted with the idempotency
//! key `enroll:{account}:{stream}` (at most once, never overdrawing, see
//! [`Store::post_transfer`]), then the token grant is inserted unless the unique index
//! `(account, stream)` of token grants already holds it. A retry after a crash between the
//! two finds the spend posted and completes the grant.

use sqlx::Row;

use super::Store;
use super::grants::{corrupt_row, insert_grant};
use crate::grant::{Grant, GrantSource, replay_window_open};
use crate::ledger::{LedgerEntry, Posted, Transfer, TransferKind, TransferLeg};
use crate::stream::generate_id;
use crate::wallet::{TOKEN_CURRENCY, channel_account, wallet_account};
use crate::{ControlError, StreamAccess};

impl Store {
    /// Spends the token price of a paid stream from the account's wallet and grants the
    /// account that stream (no end). Enrolling again returns the existing grant as it is
    /// (also a revoked one) and spends nothing, also when many enrolments of one stream race.
    /// Answers [`ControlError::NotForSale`] for a stream that is free, has no token price,
    /// belongs to no channel, was cancelled, or ended longer ago than its replay access, and
    /// [`ControlError::InsufficientFunds`] (nothing moved) when the wallet holds too few
    /// tokens. Whether a pass already covers the stream is the caller's to check.
    pub async fn enroll_with_tokens(
        &self,
        account_id: &str,
        stream_id: &str,
        now_ms: i64,
    ) -> Result<(Grant, Posted), ControlError> {
        let stream = self.get_stream(stream_id).await?;
        let key = format!("enroll:{account_id}:{stream_id}");
        if let Some(grant) = self.token_grant(account_id, stream_id).await? {
            let transfer_id = self.transfer_for_key(&key).await?.unwrap_or_default();
            return Ok((
                grant,
                Posted {
                    transfer_id,
                    replayed: true,
                },
            ));
        }
        let not_for_sale = || ControlError::NotForSale {
            id: stream_id.to_owned(),
        };
        if stream.access != StreamAccess::Paid
            || stream.cancelled_at_ms.is_some()
            || !replay_window_open(stream.ended_at_ms, stream.replay_access_days, now_ms)
        {
            return Err(not_for_sale());
        }
        let (Some(price), Some(channel_id)) = (stream.price_tokens, stream.channel_id.clone())
        else {
            return Err(not_for_sale());
        };
        self.get_account(account_id).await?;
        let transfer = Transfer {
            idempotency_key: key.clone(),
            kind: TransferKind::TokenSpend,
            currency: TOKEN_CURRENCY.to_owned(),
            legs: vec![
                TransferLeg::new(wallet_account(account_id), -price),
                TransferLeg::new(channel_account(&channel_id, TOKEN_CURRENCY), price),
            ],
            memo: Some(format!("enrolment in stream {stream_id}")),
        };
        let posted = match self.post_transfer(&transfer).await {
            Ok(posted) => posted,
            // Posted by a concurrent enrolment of the same stream (whose spend made this one
            // look short), or earlier at another price: that spend stands.
            Err(
                error @ (ControlError::InsufficientFunds { .. }
                | ControlError::IdempotencyConflict { .. }),
            ) => match self.transfer_for_key(&key).await? {
                Some(transfer_id) => Posted {
                    transfer_id,
                    replayed: true,
                },
                None => return Err(error),
            },
            Err(error) => return Err(error),
        };
        let grant = Grant {
            id: generate_id(),
            account_id: account_id.to_owned(),
            channel_id,
            pass_id: None,
            stream_id: Some(stream_id.to_owned()),
            source: GrantSource::Tokens,
            checkout_id: None,
            stripe_subscription_id: None,
            stripe_payment_intent_id: None,
            stripe_price_id: None,
            starts_at_ms: now_ms,
            expires_at_ms: None,
            revoked_at_ms: None,
            revoke_reason: None,
            stripe_state_ms: None,
            created_at_ms: now_ms,
        };
        if insert_grant(&self.pool, &grant).await? {
            tracing::info!(account = %account_id, stream = %stream_id, tokens = price, "enrolled with tokens");
        }
        let grant = self
            .token_grant(account_id, stream_id)
            .await?
            .ok_or_else(|| corrupt_row("enrolling with tokens", &grant.id, "the grant vanished"))?;
        Ok((grant, posted))
    }

    /// The tokens in an account's wallet.
    pub async fn wallet_balance(&self, account_id: &str) -> Result<i64, ControlError> {
        self.balance(&wallet_account(account_id)).await
    }

    /// The movements of an account's wallet, newest first (at most `limit`, 1..=1000).
    pub async fn wallet_history(
        &self,
        account_id: &str,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>, ControlError> {
        self.ledger_entries(&wallet_account(account_id), limit)
            .await
    }

    async fn token_grant(
        &self,
        account_id: &str,
        stream_id: &str,
    ) -> Result<Option<Grant>, ControlError> {
        self.grant_of_source(account_id, "stream_id", stream_id, GrantSource::Tokens)
            .await
    }

    /// The transfer posted under an idempotency key, if any.
    pub(super) async fn transfer_for_key(&self, key: &str) -> Result<Option<String>, ControlError> {
        let row = sqlx::query(
            "SELECT transfer_id FROM ledger_entries WHERE idempotency_key = $1 LIMIT 1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("looking up an idempotency key"))?;
        row.map(|row| {
            row.try_get(0)
                .map_err(ControlError::database("looking up an idempotency key"))
        })
        .transpose()
    }

    /// The legs (account, amount) posted under an idempotency key and their currency;
    /// empty when nothing was.
    pub(super) async fn legs_for_key(
        &self,
        key: &str,
    ) -> Result<(Vec<(String, i64)>, Option<String>), ControlError> {
        let rows = sqlx::query(
            "SELECT account, amount_minor, currency FROM ledger_entries \
             WHERE idempotency_key = $1 ORDER BY account",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("reading a posted transfer"))?;
        let mut currency = None;
        let mut legs = Vec::with_capacity(rows.len());
        for row in &rows {
            let decode = || ControlError::database("reading a posted transfer");
            legs.push((
                row.try_get(0).map_err(decode())?,
                row.try_get(1).map_err(decode())?,
            ));
            currency = Some(row.try_get(2).map_err(decode())?);
        }
        Ok((legs, currency))
    }

    /// Posts a transfer unless its key was posted before (with whatever legs: a fee rate
    /// changed since is no conflict). `None` when it had been posted.
    pub(super) async fn post_once(
        &self,
        transfer: &Transfer,
    ) -> Result<Option<Posted>, ControlError> {
        if self
            .transfer_for_key(&transfer.idempotency_key)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        match self.post_transfer(transfer).await {
            Ok(posted) if posted.replayed => Ok(None),
            Ok(posted) => Ok(Some(posted)),
            Err(ControlError::IdempotencyConflict { .. }) => Ok(None),
            // A concurrent post of the same key may make this one look short.
            Err(error @ ControlError::InsufficientFunds { .. }) => {
                match self.transfer_for_key(&transfer.idempotency_key).await? {
                    Some(_) => Ok(None),
                    None => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }
}
