//! The passes' queries: a pass with its streams and its price history, written in one
//! transaction; repricing retires the current Stripe Price and records the new one.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::grants::corrupt_row;
use super::{Store, now_ms};
use crate::pass::{
    NewPass, Pass, PassKind, PassPrice, PassScope, StripeIds, validate_pass_amount,
    validate_pass_name, validate_stripe_id,
};
use crate::stream::generate_id;
use crate::{ControlError, Stream};

const PASS_COLUMNS: &str = "id, channel_id, name, kind, scope, amount_minor, currency, \
     stripe_product_id, stripe_price_id, active, created_at_ms, updated_at_ms";

impl Store {
    /// Creates a pass of a channel (checked with [`NewPass::validate`]; a `streams` pass's
    /// streams must all be streams of the channel). A paid pass is created with its Stripe
    /// product and price, which starts its price history.
    pub async fn create_pass(
        &self,
        new: NewPass,
        stripe: Option<StripeIds>,
    ) -> Result<Pass, ControlError> {
        let new = new.validate(stripe.as_ref())?;
        self.check_channel_exists(&new.channel_id).await?;
        if new.scope == PassScope::Streams {
            self.check_streams_of_channel(&new.channel_id, &new.stream_ids)
                .await?;
        }
        let now = now_ms();
        let pass = Pass {
            id: generate_id(),
            channel_id: new.channel_id,
            name: new.name,
            kind: new.kind,
            scope: new.scope,
            stream_ids: new.stream_ids,
            amount_minor: new.amount_minor,
            currency: new.currency,
            stripe_product_id: stripe.as_ref().map(|ids| ids.product_id.clone()),
            stripe_price_id: stripe.as_ref().map(|ids| ids.price_id.clone()),
            active: true,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let database = ControlError::database("creating a pass");
        let mut tx = self.pool.begin().await.map_err(database)?;
        sqlx::query(&format!(
            "INSERT INTO passes ({PASS_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&pass.id)
        .bind(&pass.channel_id)
        .bind(&pass.name)
        .bind(pass.kind.as_str())
        .bind(pass.scope.as_str())
        .bind(pass.amount_minor)
        .bind(&pass.currency)
        .bind(pass.stripe_product_id.as_deref())
        .bind(pass.stripe_price_id.as_deref())
        .bind(i64::from(pass.active))
        .bind(pass.created_at_ms)
        .bind(pass.updated_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(ControlError::database("creating a pass"))?;
        for stream_id in &pass.stream_ids {
            sqlx::query("INSERT INTO pass_streams (pass_id, stream_id) VALUES ($1, $2)")
                .bind(&pass.id)
                .bind(stream_id)
                .execute(&mut *tx)
                .await
                .map_err(ControlError::database("listing a pass's streams"))?;
        }
        if let Some(price_id) = &pass.stripe_price_id {
            insert_price(&mut tx, price_id, &pass, now).await?;
        }
        tx.commit()
            .await
            .map_err(ControlError::database("creating a pass"))?;
        tracing::info!(pass = %pass.id, channel = %pass.channel_id, kind = pass.kind.as_str(), "pass created");
        Ok(pass)
    }

    /// The pass with this id (active or archived).
    pub async fn get_pass(&self, id: &str) -> Result<Pass, ControlError> {
        let row = sqlx::query(&format!("SELECT {PASS_COLUMNS} FROM passes WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(ControlError::database("reading a pass"))?
            .ok_or_else(|| ControlError::PassNotFound { id: id.to_owned() })?;
        let mut pass = pass_from_row(&row)?;
        pass.stream_ids = self.pass_stream_ids(&pass.id).await?;
        Ok(pass)
    }

    /// A channel's passes, oldest first; archived ones only with `include_inactive`.
    pub async fn list_channel_passes(
        &self,
        channel_id: &str,
        include_inactive: bool,
    ) -> Result<Vec<Pass>, ControlError> {
        let rows = sqlx::query(&format!(
            "SELECT {PASS_COLUMNS} FROM passes WHERE channel_id = $1 AND (active = 1 OR $2 = 1) \
             ORDER BY created_at_ms, id"
        ))
        .bind(channel_id)
        .bind(i64::from(include_inactive))
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing a channel's passes"))?;
        let mut passes = rows
            .iter()
            .map(pass_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let streams = sqlx::query(
            "SELECT ps.pass_id, ps.stream_id FROM pass_streams ps \
             JOIN passes p ON p.id = ps.pass_id WHERE p.channel_id = $1",
        )
        .bind(channel_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing passes' streams"))?;
        attach_streams(&mut passes, &streams)?;
        Ok(passes)
    }

    /// The active passes that would give access to `stream_id`: `channel` passes of its
    /// channel and `streams` passes listing it. Oldest first.
    pub async fn passes_covering_stream(&self, stream_id: &str) -> Result<Vec<Pass>, ControlError> {
        let rows = sqlx::query(&format!(
            "SELECT {PASS_COLUMNS} FROM passes p WHERE p.active = 1 AND ( \
               (p.scope = 'channel' AND p.channel_id = \
                  (SELECT s.channel_id FROM streams s WHERE s.id = $1)) \
               OR (p.scope = 'streams' AND EXISTS \
                  (SELECT 1 FROM pass_streams ps WHERE ps.pass_id = p.id AND ps.stream_id = $1))) \
             ORDER BY p.created_at_ms, p.id"
        ))
        .bind(stream_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("finding the passes of a stream"))?;
        let mut passes = rows
            .iter()
            .map(pass_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        for pass in &mut passes {
            if pass.scope == PassScope::Streams {
                pass.stream_ids = self.pass_stream_ids(&pass.id).await?;
            }
        }
        Ok(passes)
    }

    /// Changes what new buyers of a paid pass pay: `new_price_id` is the Stripe Price the
    /// server made for `new_amount_minor`; it is recorded and becomes the pass's price, the
    /// previous price is retired at `now_ms`. Existing grants and subscriptions keep the price
    /// they were bought at. Kind and currency never change.
    pub async fn reprice_pass(
        &self,
        id: &str,
        new_amount_minor: i64,
        new_price_id: &str,
        now_ms: i64,
    ) -> Result<Pass, ControlError> {
        let pass = self.get_pass(id).await?;
        if !pass.kind.is_paid() {
            return Err(ControlError::InvalidPass {
                reason: format!("pass {id} is free: it has no price"),
            });
        }
        validate_pass_amount(pass.kind, new_amount_minor, &pass.currency)?;
        validate_stripe_id(new_price_id, "price")?;
        let database = ControlError::database("repricing a pass");
        let mut tx = self.pool.begin().await.map_err(database)?;
        // The pass row first: concurrent reprices of one pass take turns from here.
        sqlx::query(
            "UPDATE passes SET amount_minor = $1, stripe_price_id = $2, updated_at_ms = $3 \
             WHERE id = $4",
        )
        .bind(new_amount_minor)
        .bind(new_price_id)
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(ControlError::database("repricing a pass"))?;
        sqlx::query(
            "UPDATE pass_prices SET retired_at_ms = $1 \
             WHERE pass_id = $2 AND retired_at_ms IS NULL AND stripe_price_id <> $3",
        )
        .bind(now_ms)
        .bind(id)
        .bind(new_price_id)
        .execute(&mut *tx)
        .await
        .map_err(ControlError::database("retiring a pass price"))?;
        let repriced = Pass {
            amount_minor: new_amount_minor,
            stripe_price_id: Some(new_price_id.to_owned()),
            updated_at_ms: now_ms,
            ..pass
        };
        insert_price(&mut tx, new_price_id, &repriced, now_ms).await?;
        tx.commit()
            .await
            .map_err(ControlError::database("repricing a pass"))?;
        tracing::info!(pass = %id, amount_minor = new_amount_minor, "pass repriced");
        Ok(repriced)
    }

    /// Every Stripe Price a pass has been sold at, oldest first.
    pub async fn pass_prices(&self, pass_id: &str) -> Result<Vec<PassPrice>, ControlError> {
        let rows = sqlx::query(
            "SELECT stripe_price_id, pass_id, amount_minor, currency, created_at_ms, \
             retired_at_ms FROM pass_prices WHERE pass_id = $1 \
             ORDER BY created_at_ms, stripe_price_id",
        )
        .bind(pass_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing a pass's prices"))?;
        rows.iter()
            .map(|row| {
                let decode = || ControlError::database("decoding a pass price");
                Ok(PassPrice {
                    stripe_price_id: row.try_get(0).map_err(decode())?,
                    pass_id: row.try_get(1).map_err(decode())?,
                    amount_minor: row.try_get(2).map_err(decode())?,
                    currency: row.try_get(3).map_err(decode())?,
                    created_at_ms: row.try_get(4).map_err(decode())?,
                    retired_at_ms: row.try_get(5).map_err(decode())?,
                })
            })
            .collect()
    }

    /// Renames a pass (checked with [`validate_pass_name`]).
    pub async fn rename_pass(&self, id: &str, name: &str) -> Result<Pass, ControlError> {
        let name = validate_pass_name(name)?;
        let updated = sqlx::query("UPDATE passes SET name = $1, updated_at_ms = $2 WHERE id = $3")
            .bind(&name)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(ControlError::database("renaming a pass"))?;
        if updated.rows_affected() == 0 {
            return Err(ControlError::PassNotFound { id: id.to_owned() });
        }
        self.get_pass(id).await
    }

    /// Stops selling a pass; its grants stay. Archiving an archived pass changes nothing.
    pub async fn archive_pass(&self, id: &str) -> Result<Pass, ControlError> {
        sqlx::query(
            "UPDATE passes SET active = 0, updated_at_ms = $1 WHERE id = $2 AND active = 1",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("archiving a pass"))?;
        let pass = self.get_pass(id).await?;
        tracing::info!(pass = %id, "pass archived");
        Ok(pass)
    }

    /// The Stripe Price a checkout made at `at_ms` was sold at: the pass's price current then
    /// (the pass's current price when the history has none).
    pub(crate) async fn pass_price_at(
        &self,
        pass: &Pass,
        at_ms: i64,
    ) -> Result<Option<String>, ControlError> {
        let row = sqlx::query(
            "SELECT stripe_price_id FROM pass_prices WHERE pass_id = $1 AND created_at_ms <= $2 \
             ORDER BY created_at_ms DESC, stripe_price_id DESC LIMIT 1",
        )
        .bind(&pass.id)
        .bind(at_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("finding a pass's price"))?;
        match row {
            Some(row) => Ok(Some(
                row.try_get(0)
                    .map_err(ControlError::database("finding a pass's price"))?,
            )),
            None => Ok(pass.stripe_price_id.clone()),
        }
    }

    async fn pass_stream_ids(&self, pass_id: &str) -> Result<Vec<String>, ControlError> {
        let rows =
            sqlx::query("SELECT stream_id FROM pass_streams WHERE pass_id = $1 ORDER BY stream_id")
                .bind(pass_id)
                .fetch_all(&self.pool)
                .await
                .map_err(ControlError::database("listing a pass's streams"))?;
        rows.iter()
            .map(|row| {
                row.try_get(0)
                    .map_err(ControlError::database("listing a pass's streams"))
            })
            .collect()
    }

    pub(crate) async fn check_channel_exists(&self, channel_id: &str) -> Result<(), ControlError> {
        let row = sqlx::query("SELECT id FROM channels WHERE id = $1")
            .bind(channel_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(ControlError::database("finding a channel"))?;
        match row {
            Some(_) => Ok(()),
            None => Err(ControlError::ChannelNotFound {
                id: channel_id.to_owned(),
            }),
        }
    }

    async fn check_streams_of_channel(
        &self,
        channel_id: &str,
        stream_ids: &[String],
    ) -> Result<(), ControlError> {
        for stream_id in stream_ids {
            let stream: Option<Stream> = match self.get_stream(stream_id).await {
                Ok(stream) => Some(stream),
                Err(ControlError::StreamNotFound { .. }) => None,
                Err(error) => return Err(error),
            };
            if stream.and_then(|s| s.channel_id).as_deref() != Some(channel_id) {
                return Err(ControlError::InvalidPass {
                    reason: format!("stream {stream_id} is not a stream of this channel"),
                });
            }
        }
        Ok(())
    }
}

async fn insert_price(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    price_id: &str,
    pass: &Pass,
    now_ms: i64,
) -> Result<(), ControlError> {
    sqlx::query(
        "INSERT INTO pass_prices (stripe_price_id, pass_id, amount_minor, currency, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(price_id)
    .bind(&pass.id)
    .bind(pass.amount_minor)
    .bind(&pass.currency)
    .bind(now_ms)
    .execute(&mut **tx)
    .await
    .map_err(|source| match &source {
        sqlx::Error::Database(db) if db.is_unique_violation() => ControlError::InvalidPass {
            reason: format!("the Stripe price {price_id} was used before"),
        },
        _ => ControlError::Database {
            operation: "recording a pass price",
            source,
        },
    })?;
    Ok(())
}

fn attach_streams(passes: &mut [Pass], rows: &[AnyRow]) -> Result<(), ControlError> {
    let mut by_pass: HashMap<String, Vec<String>> = HashMap::new();
    for row in rows {
        let decode = || ControlError::database("decoding a pass's stream");
        let pass_id: String = row.try_get(0).map_err(decode())?;
        let stream_id: String = row.try_get(1).map_err(decode())?;
        by_pass.entry(pass_id).or_default().push(stream_id);
    }
    for pass in passes {
        if let Some(mut streams) = by_pass.remove(&pass.id) {
            streams.sort();
            pass.stream_ids = streams;
        }
    }
    Ok(())
}

pub(super) fn pass_from_row(row: &AnyRow) -> Result<Pass, ControlError> {
    let decode = || ControlError::database("decoding a pass");
    let id: String = row.try_get("id").map_err(decode())?;
    let kind: String = row.try_get("kind").map_err(decode())?;
    let scope: String = row.try_get("scope").map_err(decode())?;
    let corrupt = |reason: String| corrupt_row("decoding a pass", &id, &reason);
    let active: i64 = row.try_get("active").map_err(decode())?;
    Ok(Pass {
        kind: PassKind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind:?}")))?,
        scope: PassScope::parse(&scope).ok_or_else(|| corrupt(format!("scope {scope:?}")))?,
        channel_id: row.try_get("channel_id").map_err(decode())?,
        name: row.try_get("name").map_err(decode())?,
        stream_ids: Vec::new(),
        amount_minor: row.try_get("amount_minor").map_err(decode())?,
        currency: row.try_get("currency").map_err(decode())?,
        stripe_product_id: row.try_get("stripe_product_id").map_err(decode())?,
        stripe_price_id: row.try_get("stripe_price_id").map_err(decode())?,
        active: active != 0,
        created_at_ms: row.try_get("created_at_ms").map_err(decode())?,
        updated_at_ms: row.try_get("updated_at_ms").map_err(decode())?,
        id,
    })
}
