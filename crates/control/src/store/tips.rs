//! The tips' queries. Tips are made with their checkout
//! ([`Store::create_checkout`](crate::Store::create_checkout)) and paid or refunded by Stripe
//! events ([`Store::apply_stripe_event`](crate::Store::apply_stripe_event)).

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::Store;
use super::grants::corrupt_row;
use crate::ControlError;
use crate::tip::{Tip, TipStatus};

pub(super) const TIP_COLUMNS: &str = "id, stream_id, channel_id, account_id, checkout_id, \
     amount_minor, currency, fee_minor, message, status, stripe_payment_intent_id, \
     created_at_ms, paid_at_ms";

impl Store {
    /// The paid tips of a stream, newest first (at most `limit`, 1..=100). Pending tips
    /// (unpaid checkouts) and refunded ones are not shown.
    pub async fn tips_for_stream(
        &self,
        stream_id: &str,
        limit: u32,
    ) -> Result<Vec<Tip>, ControlError> {
        let rows = sqlx::query(&format!(
            "SELECT {TIP_COLUMNS} FROM tips WHERE stream_id = $1 AND status = 'paid' \
             ORDER BY created_at_ms DESC, id DESC LIMIT $2"
        ))
        .bind(stream_id)
        .bind(i64::from(limit.clamp(1, 100)))
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing a stream's tips"))?;
        rows.iter().map(tip_from_row).collect()
    }

    /// The tip a checkout was made for.
    pub async fn tip_for_checkout(&self, checkout_id: &str) -> Result<Tip, ControlError> {
        tip_by_checkout(&self.pool, checkout_id)
            .await?
            .ok_or_else(|| ControlError::CheckoutNotFound {
                id: checkout_id.to_owned(),
            })
    }
}

pub(super) async fn tip_by_checkout<'c, E>(
    executor: E,
    checkout_id: &str,
) -> Result<Option<Tip>, ControlError>
where
    E: Executor<'c, Database = Any>,
{
    let row = sqlx::query(&format!(
        "SELECT {TIP_COLUMNS} FROM tips WHERE checkout_id = $1"
    ))
    .bind(checkout_id)
    .fetch_optional(executor)
    .await
    .map_err(ControlError::database("reading a tip"))?;
    row.as_ref().map(tip_from_row).transpose()
}

pub(super) fn tip_from_row(row: &AnyRow) -> Result<Tip, ControlError> {
    let decode = || ControlError::database("decoding a tip");
    let id: String = row.try_get(0).map_err(decode())?;
    let status: String = row.try_get(9).map_err(decode())?;
    Ok(Tip {
        status: TipStatus::parse(&status)
            .ok_or_else(|| corrupt_row("decoding a tip", &id, &format!("status {status:?}")))?,
        stream_id: row.try_get(1).map_err(decode())?,
        channel_id: row.try_get(2).map_err(decode())?,
        account_id: row.try_get(3).map_err(decode())?,
        checkout_id: row.try_get(4).map_err(decode())?,
        amount_minor: row.try_get(5).map_err(decode())?,
        currency: row.try_get(6).map_err(decode())?,
        fee_minor: row.try_get(7).map_err(decode())?,
        message: row.try_get(8).map_err(decode())?,
        stripe_payment_intent_id: row.try_get(10).map_err(decode())?,
        created_at_ms: row.try_get(11).map_err(decode())?,
        paid_at_ms: row.try_get(12).map_err(decode())?,
        id,
    })
}
