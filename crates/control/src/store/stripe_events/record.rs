//! Step 2: the event's row and its state changes, in one transaction.

use sqlx::{AnyConnection, Row};

use super::{Buys, Plan};
use crate::ControlError;
use crate::Store;
use crate::checkout::Checkout;
use crate::grant::{
    Grant, GrantSource, REVOKED_REFUNDED, REVOKED_SUBSCRIPTION_DELETED,
    REVOKED_SUBSCRIPTION_STATUS, SUBSCRIPTION_LEEWAY_MS, SUBSCRIPTION_PROVISIONAL_MS,
};
use crate::pass::Pass;
use crate::store::grants::{GRANT_COLUMNS, grant_from_row, insert_grant};
use crate::store::tips::{TIP_COLUMNS, tip_from_row};
use crate::stream::generate_id;
use crate::stripe_event::{
    Charge, CheckoutSession, EventChange, EventStatus, Invoice, StripeEvent, Subscription,
};
use crate::tip::TipStatus;

/// Statuses after which a subscription may become active again (its grant is restored then).
const RESTORABLE_STATUSES: [&str; 3] = ["unpaid", "incomplete", "paused"];

impl Store {
    /// Records the event and its state changes in one transaction; `None` when the event id
    /// was recorded before (by a concurrent delivery).
    pub(super) async fn record_event(
        &self,
        event: &StripeEvent,
        plan: &Plan,
        now_ms: i64,
        changes: &mut Vec<EventChange>,
    ) -> Result<Option<EventStatus>, ControlError> {
        let database = ControlError::database("recording a Stripe event");
        let mut tx = self.pool.begin().await.map_err(database)?;
        // The gate, and on SQLite the write lock, first.
        let inserted = sqlx::query(
            "INSERT INTO stripe_events (event_id, event_type, created_s, received_at_ms, outcome) \
             VALUES ($1, $2, $3, $4, 'applied') ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&event.id)
        .bind(&event.event_type)
        .bind(event.created_s)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(ControlError::database("recording a Stripe event"))?;
        if inserted.rows_affected() == 0 {
            let _ = tx.rollback().await;
            return Ok(None);
        }
        let conn: &mut AnyConnection = &mut tx;
        let status = match plan {
            Plan::Ignore(reason) => EventStatus::Ignored {
                reason: reason.clone(),
            },
            Plan::Session {
                checkout,
                session,
                buys,
            } => {
                record_session(conn, event, checkout, session, buys, now_ms, changes).await?;
                EventStatus::Applied
            }
            Plan::Expired { checkout } => {
                let expired = sqlx::query(
                    "UPDATE checkouts SET status = 'expired' WHERE id = $1 AND status = 'open'",
                )
                .bind(&checkout.id)
                .execute(&mut *conn)
                .await
                .map_err(ControlError::database("expiring a checkout"))?;
                if expired.rows_affected() > 0 {
                    changes.push(EventChange::CheckoutExpired {
                        checkout_id: checkout.id.clone(),
                    });
                }
                EventStatus::Applied
            }
            Plan::Invoice {
                checkout,
                pass,
                invoice,
                price_id,
            } => {
                record_invoice(
                    conn, event, checkout, pass, invoice, price_id, now_ms, changes,
                )
                .await?;
                EventStatus::Applied
            }
            Plan::Subscription {
                checkout,
                pass,
                subscription,
                deleted,
                price_id,
            } => {
                record_subscription(
                    conn,
                    event,
                    checkout,
                    pass,
                    subscription,
                    *deleted,
                    price_id,
                    now_ms,
                    changes,
                )
                .await?
            }
            Plan::Refund {
                charge,
                payment_intent_id,
            } => {
                record_refund(conn, charge, payment_intent_id, now_ms, changes).await?;
                EventStatus::Applied
            }
        };
        if let EventStatus::Ignored { reason } = &status {
            sqlx::query("UPDATE stripe_events SET outcome = $1 WHERE event_id = $2")
                .bind(format!("ignored: {reason}"))
                .bind(&event.id)
                .execute(&mut *tx)
                .await
                .map_err(ControlError::database("recording a Stripe event"))?;
        }
        tx.commit()
            .await
            .map_err(ControlError::database("recording a Stripe event"))?;
        Ok(Some(status))
    }
}

async fn record_session(
    conn: &mut AnyConnection,
    event: &StripeEvent,
    checkout: &Checkout,
    session: &CheckoutSession,
    buys: &Buys,
    now_ms: i64,
    changes: &mut Vec<EventChange>,
) -> Result<(), ControlError> {
    let started_ms = event.created_ms().min(now_ms);
    let completed = sqlx::query(
        "UPDATE checkouts SET status = 'completed', completed_at_ms = $1, \
         stripe_session_id = COALESCE(stripe_session_id, $2) \
         WHERE id = $3 AND status <> 'completed'",
    )
    .bind(now_ms)
    .bind(&session.id)
    .bind(&checkout.id)
    .execute(&mut *conn)
    .await
    .map_err(ControlError::database("completing a checkout"))?;
    if completed.rows_affected() > 0 {
        changes.push(EventChange::CheckoutCompleted {
            checkout_id: checkout.id.clone(),
        });
    }
    let paid = session.amount_total.unwrap_or(checkout.amount_minor);
    let refunded = match &session.payment_intent_id {
        Some(pi) => full_refund_known(conn, pi, paid).await?,
        None => false,
    };
    match buys {
        Buys::OneTime { pass, price_id } => {
            let grant = Grant {
                id: generate_id(),
                account_id: checkout.account_id.clone(),
                channel_id: pass.channel_id.clone(),
                pass_id: Some(pass.id.clone()),
                stream_id: None,
                source: GrantSource::Purchase,
                checkout_id: Some(checkout.id.clone()),
                stripe_subscription_id: None,
                stripe_payment_intent_id: session.payment_intent_id.clone(),
                stripe_price_id: price_id.clone(),
                starts_at_ms: started_ms,
                expires_at_ms: None,
                revoked_at_ms: refunded.then_some(now_ms),
                revoke_reason: refunded.then(|| REVOKED_REFUNDED.to_owned()),
                stripe_state_ms: None,
                created_at_ms: now_ms,
            };
            if insert_grant(&mut *conn, &grant).await?
                && let Some(grant) = grant_by_checkout(conn, &checkout.id).await?
            {
                changes.push(EventChange::GrantCreated(grant));
            }
        }
        Buys::Subscription {
            pass,
            price_id,
            subscription_id,
        } => {
            let (mut grant, created) = upsert_subscription_grant(
                conn,
                checkout,
                pass,
                Some(subscription_id),
                price_id,
                started_ms,
                now_ms,
            )
            .await?;
            let before = grant.expires_at_ms;
            grant.expires_at_ms = later(
                grant.expires_at_ms,
                started_ms.saturating_add(SUBSCRIPTION_PROVISIONAL_MS),
            );
            write_grant(conn, &grant).await?;
            if created {
                changes.push(EventChange::GrantCreated(grant));
            } else if grant.expires_at_ms != before {
                changes.push(EventChange::GrantExtended(grant));
            }
        }
        Buys::Tokens { .. } => {}
        Buys::Tip => {
            let status = if refunded {
                TipStatus::Refunded
            } else {
                TipStatus::Paid
            };
            let row = sqlx::query(&format!(
                "UPDATE tips SET status = $1, paid_at_ms = $2, stripe_payment_intent_id = $3 \
                 WHERE checkout_id = $4 AND status = 'pending' RETURNING {TIP_COLUMNS}"
            ))
            .bind(status.as_str())
            .bind(now_ms)
            .bind(session.payment_intent_id.as_deref())
            .bind(&checkout.id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(ControlError::database("marking a tip paid"))?;
            if let Some(row) = row {
                let tip = tip_from_row(&row)?;
                changes.push(match status {
                    TipStatus::Paid => EventChange::TipPaid(tip),
                    _ => EventChange::TipRefunded(tip),
                });
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn record_invoice(
    conn: &mut AnyConnection,
    event: &StripeEvent,
    checkout: &Checkout,
    pass: &Pass,
    invoice: &Invoice,
    price_id: &Option<String>,
    now_ms: i64,
    changes: &mut Vec<EventChange>,
) -> Result<(), ControlError> {
    let started_ms = event.created_ms().min(now_ms);
    let (mut grant, created) = upsert_subscription_grant(
        conn,
        checkout,
        pass,
        invoice.subscription_id.as_deref(),
        price_id,
        started_ms,
        now_ms,
    )
    .await?;
    let before = grant.expires_at_ms;
    if let Some(end_s) = invoice.period_end_s {
        grant.expires_at_ms = later(
            grant.expires_at_ms,
            end_s
                .saturating_mul(1000)
                .saturating_add(SUBSCRIPTION_LEEWAY_MS),
        );
    }
    if let Some(pi) = &invoice.payment_intent_id {
        grant.stripe_payment_intent_id = Some(pi.clone());
    }
    if let Some(price) = &invoice.price_id {
        grant.stripe_price_id = Some(price.clone());
    }
    write_grant(conn, &grant).await?;
    if created {
        changes.push(EventChange::GrantCreated(grant));
    } else if grant.expires_at_ms != before {
        changes.push(EventChange::GrantExtended(grant));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn record_subscription(
    conn: &mut AnyConnection,
    event: &StripeEvent,
    checkout: &Checkout,
    pass: &Pass,
    subscription: &Subscription,
    deleted: bool,
    price_id: &Option<String>,
    now_ms: i64,
    changes: &mut Vec<EventChange>,
) -> Result<EventStatus, ControlError> {
    let state_ms = event.created_ms();
    let (mut grant, created) = upsert_subscription_grant(
        conn,
        checkout,
        pass,
        Some(&subscription.id),
        price_id,
        state_ms.min(now_ms),
        now_ms,
    )
    .await?;
    if grant
        .stripe_state_ms
        .is_some_and(|applied| applied > state_ms)
    {
        return Ok(EventStatus::Ignored {
            reason: "an older subscription state than the one applied".to_owned(),
        });
    }
    if !deleted && grant.revoke_reason.as_deref() == Some(REVOKED_SUBSCRIPTION_DELETED) {
        return Ok(EventStatus::Ignored {
            reason: "the subscription was deleted".to_owned(),
        });
    }
    let before = grant.clone();
    grant.stripe_state_ms = Some(state_ms);
    if let Some(price) = &subscription.price_id {
        grant.stripe_price_id = Some(price.clone());
    }
    if deleted {
        if grant.revoked_at_ms.is_none() {
            grant.revoked_at_ms = Some(now_ms);
            grant.revoke_reason = Some(REVOKED_SUBSCRIPTION_DELETED.to_owned());
        }
    } else {
        match subscription.status.as_str() {
            "active" | "trialing" | "past_due" => {
                if let Some(end_s) = subscription.current_period_end_s {
                    grant.expires_at_ms = Some(
                        end_s
                            .saturating_mul(1000)
                            .saturating_add(SUBSCRIPTION_LEEWAY_MS),
                    );
                }
                let restorable = grant.revoke_reason.as_deref().is_some_and(|reason| {
                    reason
                        .strip_prefix(REVOKED_SUBSCRIPTION_STATUS)
                        .is_some_and(|status| RESTORABLE_STATUSES.contains(&status))
                });
                if restorable {
                    grant.revoked_at_ms = None;
                    grant.revoke_reason = None;
                }
            }
            "canceled" | "unpaid" | "incomplete_expired" | "incomplete" | "paused"
                if grant.revoked_at_ms.is_none() =>
            {
                grant.revoked_at_ms = Some(now_ms);
                grant.revoke_reason = Some(format!(
                    "{REVOKED_SUBSCRIPTION_STATUS}{}",
                    subscription.status
                ));
            }
            // Revoked already, or a status this version does not know: only the state time
            // moves.
            _ => {}
        }
    }
    write_grant(conn, &grant).await?;
    if created {
        changes.push(EventChange::GrantCreated(grant));
    } else if before.revoked_at_ms.is_none() && grant.revoked_at_ms.is_some() {
        changes.push(EventChange::GrantRevoked(grant));
    } else if before.revoked_at_ms.is_some() && grant.revoked_at_ms.is_none() {
        changes.push(EventChange::GrantRestored(grant));
    } else if before.expires_at_ms != grant.expires_at_ms {
        changes.push(EventChange::GrantExtended(grant));
    }
    Ok(EventStatus::Applied)
}

async fn record_refund(
    conn: &mut AnyConnection,
    charge: &Charge,
    payment_intent_id: &str,
    now_ms: i64,
    changes: &mut Vec<EventChange>,
) -> Result<(), ControlError> {
    let full = charge.is_fully_refunded();
    let amount_refunded = if full {
        charge.amount_refunded.max(charge.amount)
    } else {
        charge.amount_refunded
    };
    sqlx::query(
        "INSERT INTO stripe_refunds (payment_intent_id, amount_refunded, refunded_at_ms) \
         VALUES ($1, $2, $3) ON CONFLICT (payment_intent_id) DO UPDATE \
         SET amount_refunded = excluded.amount_refunded, refunded_at_ms = excluded.refunded_at_ms \
         WHERE stripe_refunds.amount_refunded < excluded.amount_refunded",
    )
    .bind(payment_intent_id)
    .bind(amount_refunded)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .map_err(ControlError::database("recording a refund"))?;
    changes.push(EventChange::RefundRecorded {
        payment_intent_id: payment_intent_id.to_owned(),
        amount_refunded,
        full,
    });
    if full {
        revoke_for_payment(conn, payment_intent_id, now_ms, changes).await?;
    }
    Ok(())
}

/// Revokes the grants bought with a payment and marks its paid tip refunded.
pub(super) async fn revoke_for_payment(
    conn: &mut AnyConnection,
    payment_intent_id: &str,
    now_ms: i64,
    changes: &mut Vec<EventChange>,
) -> Result<(), ControlError> {
    let rows = sqlx::query(&format!(
        "UPDATE grants SET revoked_at_ms = $1, revoke_reason = $2 \
         WHERE stripe_payment_intent_id = $3 AND revoked_at_ms IS NULL RETURNING {GRANT_COLUMNS}"
    ))
    .bind(now_ms)
    .bind(REVOKED_REFUNDED)
    .bind(payment_intent_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(ControlError::database("revoking refunded grants"))?;
    for row in &rows {
        changes.push(EventChange::GrantRevoked(grant_from_row(row)?));
    }
    let rows = sqlx::query(&format!(
        "UPDATE tips SET status = 'refunded' \
         WHERE stripe_payment_intent_id = $1 AND status = 'paid' RETURNING {TIP_COLUMNS}"
    ))
    .bind(payment_intent_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(ControlError::database("marking refunded tips"))?;
    for row in &rows {
        changes.push(EventChange::TipRefunded(tip_from_row(row)?));
    }
    Ok(())
}

/// Whether a refund of at least `paid` was recorded for the payment.
async fn full_refund_known(
    conn: &mut AnyConnection,
    payment_intent_id: &str,
    paid: i64,
) -> Result<bool, ControlError> {
    let row =
        sqlx::query("SELECT amount_refunded FROM stripe_refunds WHERE payment_intent_id = $1")
            .bind(payment_intent_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(ControlError::database("reading a refund"))?;
    match row {
        Some(row) => {
            let refunded: i64 = row
                .try_get(0)
                .map_err(ControlError::database("reading a refund"))?;
            Ok(refunded >= paid)
        }
        None => Ok(false),
    }
}

/// The subscription grant of a checkout, made (giving no access yet) if this is the first
/// news of it, locked for this transaction, with the earliest start and the subscription id
/// merged in. Whether it was made now.
async fn upsert_subscription_grant(
    conn: &mut AnyConnection,
    checkout: &Checkout,
    pass: &Pass,
    subscription_id: Option<&str>,
    price_id: &Option<String>,
    started_ms: i64,
    now_ms: i64,
) -> Result<(Grant, bool), ControlError> {
    let fresh = Grant {
        id: generate_id(),
        account_id: checkout.account_id.clone(),
        channel_id: pass.channel_id.clone(),
        pass_id: Some(pass.id.clone()),
        stream_id: None,
        source: GrantSource::Subscription,
        checkout_id: Some(checkout.id.clone()),
        stripe_subscription_id: subscription_id.map(str::to_owned),
        stripe_payment_intent_id: None,
        stripe_price_id: price_id.clone(),
        starts_at_ms: started_ms,
        // No access until a paid period is known.
        expires_at_ms: Some(started_ms),
        revoked_at_ms: None,
        revoke_reason: None,
        stripe_state_ms: None,
        created_at_ms: now_ms,
    };
    let created = insert_grant(&mut *conn, &fresh).await?;
    // Lock the row; what the next statement reads is then what other transactions committed.
    sqlx::query("UPDATE grants SET stripe_state_ms = stripe_state_ms WHERE checkout_id = $1")
        .bind(&checkout.id)
        .execute(&mut *conn)
        .await
        .map_err(ControlError::database("locking a subscription grant"))?;
    let mut grant = grant_by_checkout(conn, &checkout.id)
        .await?
        .ok_or_else(|| ControlError::InvalidWebhook {
            reason: format!(
                "subscription {} is held by another checkout's grant",
                subscription_id.unwrap_or("?")
            ),
        })?;
    grant.starts_at_ms = grant.starts_at_ms.min(started_ms);
    if grant.stripe_subscription_id.is_none() {
        grant.stripe_subscription_id = subscription_id.map(str::to_owned);
    }
    Ok((grant, created))
}

async fn grant_by_checkout(
    conn: &mut AnyConnection,
    checkout_id: &str,
) -> Result<Option<Grant>, ControlError> {
    let row = sqlx::query(&format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE checkout_id = $1"
    ))
    .bind(checkout_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(ControlError::database("reading a checkout's grant"))?;
    row.as_ref().map(grant_from_row).transpose()
}

/// Stores the fields of a grant that Stripe events change.
async fn write_grant(conn: &mut AnyConnection, grant: &Grant) -> Result<(), ControlError> {
    sqlx::query(
        "UPDATE grants SET starts_at_ms = $1, expires_at_ms = $2, revoked_at_ms = $3, \
         revoke_reason = $4, stripe_state_ms = $5, stripe_subscription_id = $6, \
         stripe_payment_intent_id = $7, stripe_price_id = $8 WHERE id = $9",
    )
    .bind(grant.starts_at_ms)
    .bind(grant.expires_at_ms)
    .bind(grant.revoked_at_ms)
    .bind(grant.revoke_reason.as_deref())
    .bind(grant.stripe_state_ms)
    .bind(grant.stripe_subscription_id.as_deref())
    .bind(grant.stripe_payment_intent_id.as_deref())
    .bind(grant.stripe_price_id.as_deref())
    .bind(&grant.id)
    .execute(&mut *conn)
    .await
    .map_err(ControlError::database("updating a grant"))?;
    Ok(())
}

/// The later of an expiry and a candidate (`None`, no end, stays).
fn later(expires_at_ms: Option<i64>, candidate_ms: i64) -> Option<i64> {
    expires_at_ms.map(|current| current.max(candidate_ms))
}
