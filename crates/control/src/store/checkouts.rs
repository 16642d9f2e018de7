//! The checkouts' queries. A tip checkout makes its pending tip in the same transaction.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::grants::corrupt_row;
use super::{Store, now_ms};
use crate::ControlError;
use crate::checkout::{Checkout, CheckoutPurpose, CheckoutStatus, NewCheckout};
use crate::stream::generate_id;

const CHECKOUT_COLUMNS: &str = "id, account_id, purpose, pass_id, stream_id, token_pack, tokens, \
     amount_minor, currency, fee_minor, message, stripe_session_id, status, created_at_ms, \
     completed_at_ms";

impl Store {
    /// Records a checkout before its Stripe session is made (the session carries the id).
    /// Checks: the buyer exists; amounts ([`NewCheckout`]); for a pass, that it exists, is
    /// paid and still sold ([`ControlError::PassInactive`]), costs `amount_minor` in
    /// `currency` ([`ControlError::InvalidAmount`] otherwise) and that the buyer does not
    /// already hold an active grant of it ([`ControlError::AlreadyGranted`]); for a tip, that
    /// the stream exists and belongs to a channel. A tip checkout makes its tip, `pending`.
    pub async fn create_checkout(&self, new: NewCheckout) -> Result<Checkout, ControlError> {
        let new = new.validate()?;
        self.get_account(&new.account_id).await?;
        let now = now_ms();
        let mut tip_channel = None;
        match &new.purpose {
            CheckoutPurpose::Pass { pass_id } => {
                let pass = self.get_pass(pass_id).await?;
                if !pass.kind.is_paid() {
                    return Err(ControlError::InvalidPass {
                        reason: format!("pass {pass_id} is free: claim it instead"),
                    });
                }
                if !pass.active {
                    return Err(ControlError::PassInactive {
                        id: pass_id.clone(),
                    });
                }
                if pass.amount_minor != new.amount_minor || pass.currency != new.currency {
                    return Err(ControlError::InvalidAmount {
                        reason: format!(
                            "pass {pass_id} costs {} {}, not {} {}",
                            pass.amount_minor, pass.currency, new.amount_minor, new.currency
                        ),
                    });
                }
                if self
                    .active_pass_grant(&new.account_id, pass_id, now)
                    .await?
                    .is_some()
                {
                    return Err(ControlError::AlreadyGranted {
                        reason: format!("the account already holds pass {pass_id}"),
                    });
                }
            }
            CheckoutPurpose::Tokens { .. } => {}
            CheckoutPurpose::Tip { stream_id, .. } => {
                let stream = self.get_stream(stream_id).await?;
                let channel = stream.channel_id.ok_or_else(|| ControlError::Forbidden {
                    reason: format!("stream {stream_id} belongs to no channel: it takes no tips"),
                })?;
                tip_channel = Some(channel);
            }
        }
        let checkout = Checkout {
            id: generate_id(),
            account_id: new.account_id,
            purpose: new.purpose,
            amount_minor: new.amount_minor,
            currency: new.currency,
            fee_minor: new.fee_minor,
            stripe_session_id: None,
            status: CheckoutStatus::Open,
            created_at_ms: now,
            completed_at_ms: None,
        };
        let (pass_id, stream_id, pack, tokens, message) = match &checkout.purpose {
            CheckoutPurpose::Pass { pass_id } => (Some(pass_id), None, None, None, None),
            CheckoutPurpose::Tokens { pack_id, tokens } => {
                (None, None, Some(pack_id), Some(*tokens), None)
            }
            CheckoutPurpose::Tip { stream_id, message } => {
                (None, Some(stream_id), None, None, message.as_ref())
            }
        };
        let database = ControlError::database("creating a checkout");
        let mut tx = self.pool.begin().await.map_err(database)?;
        sqlx::query(&format!(
            "INSERT INTO checkouts ({CHECKOUT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13, NULL)"
        ))
        .bind(&checkout.id)
        .bind(&checkout.account_id)
        .bind(checkout.purpose.as_str())
        .bind(pass_id.map(String::as_str))
        .bind(stream_id.map(String::as_str))
        .bind(pack.map(String::as_str))
        .bind(tokens)
        .bind(checkout.amount_minor)
        .bind(&checkout.currency)
        .bind(checkout.fee_minor)
        .bind(message.map(String::as_str))
        .bind(checkout.status.as_str())
        .bind(checkout.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(ControlError::database("creating a checkout"))?;
        if let (Some(stream_id), Some(channel_id)) = (stream_id, tip_channel) {
            sqlx::query(
                "INSERT INTO tips (id, stream_id, channel_id, account_id, checkout_id, \
                 amount_minor, currency, fee_minor, message, status, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10)",
            )
            .bind(generate_id())
            .bind(stream_id)
            .bind(channel_id)
            .bind(&checkout.account_id)
            .bind(&checkout.id)
            .bind(checkout.amount_minor)
            .bind(&checkout.currency)
            .bind(checkout.fee_minor)
            .bind(message.map(String::as_str))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(ControlError::database("creating a tip"))?;
        }
        tx.commit()
            .await
            .map_err(ControlError::database("creating a checkout"))?;
        tracing::info!(checkout = %checkout.id, purpose = checkout.purpose.as_str(), "checkout created");
        Ok(checkout)
    }

    /// Notes the Stripe Checkout session made for a checkout (`cs_...`). Answers
    /// [`ControlError::IdempotencyConflict`] when that session is noted for another checkout.
    pub async fn attach_stripe_session(
        &self,
        checkout_id: &str,
        session_id: &str,
    ) -> Result<Checkout, ControlError> {
        let updated = sqlx::query("UPDATE checkouts SET stripe_session_id = $1 WHERE id = $2")
            .bind(session_id)
            .bind(checkout_id)
            .execute(&self.pool)
            .await
            .map_err(|source| match &source {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    ControlError::IdempotencyConflict {
                        key: session_id.to_owned(),
                    }
                }
                _ => ControlError::Database {
                    operation: "noting a checkout's session",
                    source,
                },
            })?;
        if updated.rows_affected() == 0 {
            return Err(ControlError::CheckoutNotFound {
                id: checkout_id.to_owned(),
            });
        }
        self.get_checkout(checkout_id).await
    }

    /// The checkout with this id.
    pub async fn get_checkout(&self, id: &str) -> Result<Checkout, ControlError> {
        self.find_checkout("id", id).await
    }

    /// The checkout a Stripe session was made for.
    pub async fn checkout_by_session(&self, session_id: &str) -> Result<Checkout, ControlError> {
        self.find_checkout("stripe_session_id", session_id).await
    }

    async fn find_checkout(&self, column: &str, value: &str) -> Result<Checkout, ControlError> {
        let row = sqlx::query(&format!(
            "SELECT {CHECKOUT_COLUMNS} FROM checkouts WHERE {column} = $1"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("reading a checkout"))?
        .ok_or_else(|| ControlError::CheckoutNotFound {
            id: value.to_owned(),
        })?;
        checkout_from_row(&row)
    }
}

fn checkout_from_row(row: &AnyRow) -> Result<Checkout, ControlError> {
    let decode = || ControlError::database("decoding a checkout");
    let id: String = row.try_get("id").map_err(decode())?;
    let corrupt = |reason: String| corrupt_row("decoding a checkout", &id, &reason);
    let purpose: String = row.try_get("purpose").map_err(decode())?;
    let pass_id: Option<String> = row.try_get("pass_id").map_err(decode())?;
    let stream_id: Option<String> = row.try_get("stream_id").map_err(decode())?;
    let pack: Option<String> = row.try_get("token_pack").map_err(decode())?;
    let tokens: Option<i64> = row.try_get("tokens").map_err(decode())?;
    let message: Option<String> = row.try_get("message").map_err(decode())?;
    let purpose = match (purpose.as_str(), pass_id, stream_id, pack, tokens) {
        ("pass", Some(pass_id), ..) => CheckoutPurpose::Pass { pass_id },
        ("tokens", _, _, Some(pack_id), Some(tokens)) => {
            CheckoutPurpose::Tokens { pack_id, tokens }
        }
        ("tip", _, Some(stream_id), ..) => CheckoutPurpose::Tip { stream_id, message },
        _ => return Err(corrupt(format!("purpose {purpose:?} without its fields"))),
    };
    let status: String = row.try_get("status").map_err(decode())?;
    Ok(Checkout {
        status: CheckoutStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("status {status:?}")))?,
        purpose,
        account_id: row.try_get("account_id").map_err(decode())?,
        amount_minor: row.try_get("amount_minor").map_err(decode())?,
        currency: row.try_get("currency").map_err(decode())?,
        fee_minor: row.try_get("fee_minor").map_err(decode())?,
        stripe_session_id: row.try_get("stripe_session_id").map_err(decode())?,
        created_at_ms: row.try_get("created_at_ms").map_err(decode())?,
        completed_at_ms: row.try_get("completed_at_ms").map_err(decode())?,
        id,
    })
}
