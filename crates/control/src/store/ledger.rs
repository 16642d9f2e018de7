//! The ledger's queries. A transfer is posted in one database transaction: each leg moves its
//! account's balance with a conditional `UPDATE` (never below zero unless the account allows
//! it) and appends its entry; legs are taken in account order so concurrent transfers lock
//! accounts in the same order. The idempotency key is unique per account, so a transfer
//! retried concurrently posts once and the loser finds the winner's entries.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, now_ms};
use crate::ControlError;
use crate::ledger::{LedgerEntry, Posted, Transfer, TransferKind};
use crate::money::currency_exponent;
use crate::stream::generate_id;

/// Longest account name or idempotency key, in bytes.
pub const MAX_LEDGER_NAME_BYTES: usize = 200;

impl Store {
    /// Posts `transfer` once per idempotency key. Fails with
    /// [`ControlError::InsufficientFunds`] (nothing moved) when a leg would take an account
    /// below zero, and with [`ControlError::IdempotencyConflict`] when the key was used for a
    /// different transfer.
    pub async fn post_transfer(&self, transfer: &Transfer) -> Result<Posted, ControlError> {
        validate(transfer)?;
        if let Some(posted) = self.posted_before(transfer).await? {
            return Ok(posted);
        }
        let transfer_id = generate_id();
        let now = now_ms();
        let mut legs = transfer.legs.clone();
        legs.sort_by(|a, b| a.account.cmp(&b.account));
        let database = ControlError::database("posting a transfer");
        let mut tx = self.pool.begin().await.map_err(database)?;
        for leg in &legs {
            // A write first: on SQLite the transaction takes the write lock here, waiting for
            // other writers instead of failing on a read-to-write upgrade.
            sqlx::query(
                "INSERT INTO ledger_accounts (account, currency, balance_minor, allow_negative) \
                 VALUES ($1, $2, 0, $3) ON CONFLICT (account) DO NOTHING",
            )
            .bind(&leg.account)
            .bind(&transfer.currency)
            .bind(i64::from(leg.allow_negative))
            .execute(&mut *tx)
            .await
            .map_err(ControlError::database("opening a ledger account"))?;
            let moved = sqlx::query(
                "UPDATE ledger_accounts SET balance_minor = balance_minor + $1 \
                 WHERE account = $2 AND currency = $3 \
                 AND (allow_negative = 1 OR balance_minor + $1 >= 0)",
            )
            .bind(leg.amount_minor)
            .bind(&leg.account)
            .bind(&transfer.currency)
            .execute(&mut *tx)
            .await
            .map_err(ControlError::database("moving a balance"))?
            .rows_affected();
            if moved == 0 {
                let row = sqlx::query(
                    "SELECT currency, balance_minor FROM ledger_accounts WHERE account = $1",
                )
                .bind(&leg.account)
                .fetch_one(&mut *tx)
                .await
                .map_err(ControlError::database("reading a balance"))?;
                let currency: String = row
                    .try_get(0)
                    .map_err(ControlError::database("reading a balance"))?;
                let balance: i64 = row
                    .try_get(1)
                    .map_err(ControlError::database("reading a balance"))?;
                let _ = tx.rollback().await;
                if currency != transfer.currency {
                    return Err(ControlError::InvalidTransfer {
                        reason: format!(
                            "account {} holds {currency}, not {}",
                            leg.account, transfer.currency
                        ),
                    });
                }
                return Err(ControlError::InsufficientFunds {
                    account: leg.account.clone(),
                    balance_minor: balance,
                    needed_minor: -leg.amount_minor,
                });
            }
            let inserted = sqlx::query(
                "INSERT INTO ledger_entries \
                 (id, transfer_id, idempotency_key, account, amount_minor, currency, kind, memo, \
                  created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(generate_id())
            .bind(&transfer_id)
            .bind(&transfer.idempotency_key)
            .bind(&leg.account)
            .bind(leg.amount_minor)
            .bind(&transfer.currency)
            .bind(transfer.kind.as_db())
            .bind(transfer.memo.as_deref())
            .bind(now)
            .execute(&mut *tx)
            .await;
            if let Err(error) = inserted {
                let _ = tx.rollback().await;
                // Posted concurrently under the same key: answer as a replay.
                if let Some(posted) = self.posted_before(transfer).await? {
                    return Ok(posted);
                }
                return Err(ControlError::database("recording a ledger entry")(error));
            }
        }
        tx.commit()
            .await
            .map_err(ControlError::database("committing a transfer"))?;
        tracing::debug!(transfer = %transfer_id, kind = transfer.kind.as_db(), "transfer posted");
        Ok(Posted {
            transfer_id,
            replayed: false,
        })
    }

    /// The entries already posted under the transfer's key, as a replay (or a conflict when
    /// they differ from it).
    async fn posted_before(&self, transfer: &Transfer) -> Result<Option<Posted>, ControlError> {
        let rows = sqlx::query(
            "SELECT transfer_id, account, amount_minor, currency FROM ledger_entries \
             WHERE idempotency_key = $1",
        )
        .bind(&transfer.idempotency_key)
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("looking up an idempotency key"))?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let decode = ControlError::database("reading ledger entries");
        let transfer_id: String = first.try_get(0).map_err(decode)?;
        let mut posted = BTreeMap::new();
        let mut same_currency = true;
        for row in &rows {
            let decode = ControlError::database("reading ledger entries");
            let account: String = row.try_get(1).map_err(decode)?;
            let amount: i64 = row
                .try_get(2)
                .map_err(ControlError::database("reading ledger entries"))?;
            let currency: String = row
                .try_get(3)
                .map_err(ControlError::database("reading ledger entries"))?;
            same_currency &= currency == transfer.currency;
            posted.insert(account, amount);
        }
        let asked: BTreeMap<String, i64> = transfer
            .legs
            .iter()
            .map(|l| (l.account.clone(), l.amount_minor))
            .collect();
        if posted != asked || !same_currency {
            return Err(ControlError::IdempotencyConflict {
                key: transfer.idempotency_key.clone(),
            });
        }
        Ok(Some(Posted {
            transfer_id,
            replayed: true,
        }))
    }

    /// An account's balance (0 for an account never used).
    pub async fn balance(&self, account: &str) -> Result<i64, ControlError> {
        let row = sqlx::query("SELECT balance_minor FROM ledger_accounts WHERE account = $1")
            .bind(account)
            .fetch_optional(&self.pool)
            .await
            .map_err(ControlError::database("reading a balance"))?;
        match row {
            Some(row) => row
                .try_get(0)
                .map_err(ControlError::database("reading a balance")),
            None => Ok(0),
        }
    }

    /// The sum of an account's entries: always its balance.
    pub async fn ledger_sum(&self, account: &str) -> Result<i64, ControlError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM ledger_entries \
             WHERE account = $1",
        )
        .bind(account)
        .fetch_one(&self.pool)
        .await
        .map_err(ControlError::database("summing ledger entries"))?;
        row.try_get(0)
            .map_err(ControlError::database("summing ledger entries"))
    }

    /// An account's entries, newest first (at most `limit`, 1..=1000).
    pub async fn ledger_entries(
        &self,
        account: &str,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>, ControlError> {
        let rows = sqlx::query(
            "SELECT id, transfer_id, account, amount_minor, currency, kind, memo, created_at_ms \
             FROM ledger_entries WHERE account = $1 \
             ORDER BY created_at_ms DESC, id DESC LIMIT $2",
        )
        .bind(account)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing ledger entries"))?;
        rows.iter().map(entry_from_row).collect()
    }
}

fn entry_from_row(row: &AnyRow) -> Result<LedgerEntry, ControlError> {
    let decode = || ControlError::database("decoding a ledger entry");
    let kind: String = row.try_get(5).map_err(decode())?;
    Ok(LedgerEntry {
        id: row.try_get(0).map_err(decode())?,
        transfer_id: row.try_get(1).map_err(decode())?,
        account: row.try_get(2).map_err(decode())?,
        amount_minor: row.try_get(3).map_err(decode())?,
        currency: row.try_get(4).map_err(decode())?,
        kind: TransferKind::from_db(&kind).ok_or_else(|| ControlError::InvalidTransfer {
            reason: format!("stored transfer kind {kind:?} is unknown"),
        })?,
        memo: row.try_get(6).map_err(decode())?,
        created_at_ms: row.try_get(7).map_err(decode())?,
    })
}

fn validate(transfer: &Transfer) -> Result<(), ControlError> {
    let invalid = |reason: String| Err(ControlError::InvalidTransfer { reason });
    let key = &transfer.idempotency_key;
    if key.is_empty() || key.len() > MAX_LEDGER_NAME_BYTES {
        return invalid(format!(
            "the idempotency key must have 1 to {MAX_LEDGER_NAME_BYTES} bytes"
        ));
    }
    if transfer.currency != "tok"
        && (currency_exponent(&transfer.currency).is_none()
            || transfer.currency != transfer.currency.to_ascii_lowercase())
    {
        return invalid(format!(
            "{:?} is not a lowercase ISO 4217 code or tok",
            transfer.currency
        ));
    }
    if transfer.legs.len() < 2 {
        return invalid("a transfer needs at least two legs".to_owned());
    }
    let mut accounts = BTreeSet::new();
    let mut sum: i128 = 0;
    for leg in &transfer.legs {
        if leg.account.is_empty()
            || leg.account.len() > MAX_LEDGER_NAME_BYTES
            || leg.account.chars().any(char::is_control)
        {
            return invalid(format!("bad account name {:?}", leg.account));
        }
        if leg.amount_minor == 0 {
            return invalid(format!("the leg on {} moves nothing", leg.account));
        }
        if !accounts.insert(leg.account.as_str()) {
            return invalid(format!("account {} appears twice", leg.account));
        }
        sum += i128::from(leg.amount_minor);
    }
    if sum != 0 {
        return invalid(format!("the legs sum to {sum}, not 0"));
    }
    Ok(())
}
