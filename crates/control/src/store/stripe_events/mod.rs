//! Applying Stripe events, exactly once per event id and in any order.
//!
//! Each event is applied in three steps:
//! 1. **Plan** (reads only): find our checkout (the session's or subscription's metadata, the
//!    session id, or the grant of the subscription) and the pass it sells. An event that is
//!    not greenroom's, or of a type it does not act on, is planned as ignored.
//! 2. **Record** (one transaction): insert the `stripe_events` row — the gate: a second
//!    delivery of the same id finds it and changes nothing — together with every state
//!    change: the checkout completed, the grant created, extended or revoked, the tip paid or
//!    refunded, the refund recorded. Rows read to be changed are locked first (a no-op
//!    `UPDATE`) so concurrent events of one subscription take turns.
//! 3. **Settle** (ledger): the money and tokens moved by the payment, and the reversal of a
//!    fully refunded payment, each posted with an idempotency key derived from the payment
//!    (`payment:{payment_intent}`, `payment:{payment_intent}:tokens`, `invoice:{id}`,
//!    `refund:{payment_intent}`, `refund:{payment_intent}:tokens`). Settling runs again on
//!    every redelivery, so a crash between steps 2 and 3 is completed by Stripe's retry, and
//!    otherwise posts nothing twice.
//!
//! Out of order: subscription and invoice events may precede the completed checkout (the
//! grant is upserted by checkout id, found through the subscription's metadata); a
//! subscription state applies only if its event is not older than the last applied
//! (`grants.stripe_state_ms`), and an invoice only moves the expiry forward; a refund that
//! precedes its payment is kept in `stripe_refunds`, so the payment's grant is created revoked
//! and its ledger movement reversed as soon as it is posted. Settling a payment always checks
//! for its refund (and settling a refund for its payment), so the two meet whichever commits
//! last.

mod record;
mod settle;

use super::Store;
use crate::ControlError;
use crate::checkout::{Checkout, CheckoutPurpose};
use crate::money::BPS_PER_UNIT;
use crate::pass::Pass;
use crate::stripe_event::{
    Charge, CheckoutSession, EventOutcome, EventStatus, Invoice, StripeEvent, StripeObject,
    Subscription,
};

/// What an event will do, decided from reads alone.
enum Plan {
    Ignore(String),
    Session {
        checkout: Checkout,
        session: CheckoutSession,
        buys: Buys,
    },
    Expired {
        checkout: Checkout,
    },
    Invoice {
        checkout: Checkout,
        pass: Pass,
        invoice: Invoice,
        price_id: Option<String>,
    },
    Subscription {
        checkout: Checkout,
        pass: Pass,
        subscription: Subscription,
        deleted: bool,
        price_id: Option<String>,
    },
    Refund {
        charge: Charge,
        payment_intent_id: String,
    },
}

/// What a completed checkout session buys.
enum Buys {
    OneTime {
        pass: Pass,
        price_id: Option<String>,
    },
    Subscription {
        pass: Pass,
        price_id: Option<String>,
        subscription_id: String,
    },
    Tokens {
        tokens: i64,
    },
    Tip,
}

impl Store {
    /// Applies a Stripe event (parsed with [`StripeEvent::parse`] after its signature was
    /// checked) at `now_ms`, with the platform's fee on pass sales of `platform_fee_bps`
    /// basis points. Exactly once per event id: a redelivery answers
    /// [`EventStatus::Duplicate`] and changes nothing (it only completes ledger postings a
    /// crash interrupted). An error means nothing was recorded for a new event (or the ledger
    /// could not be settled); the webhook should answer 5xx so Stripe retries.
    pub async fn apply_stripe_event(
        &self,
        event: &StripeEvent,
        now_ms: i64,
        platform_fee_bps: u32,
    ) -> Result<EventOutcome, ControlError> {
        if platform_fee_bps > BPS_PER_UNIT {
            return Err(ControlError::InvalidAmount {
                reason: format!("a fee of {platform_fee_bps} basis points is over 100 %"),
            });
        }
        let seen_before = self.stripe_event_seen(&event.id).await?;
        let plan = self.plan_event(event).await?;
        let mut changes = Vec::new();
        let status = if seen_before {
            EventStatus::Duplicate
        } else {
            match self
                .record_event(event, &plan, now_ms, &mut changes)
                .await?
            {
                Some(status) => status,
                None => {
                    changes.clear();
                    EventStatus::Duplicate
                }
            }
        };
        let mut settled = Vec::new();
        self.settle_event(&plan, now_ms, platform_fee_bps, &mut settled)
            .await?;
        if status != EventStatus::Duplicate {
            changes.extend(settled);
        }
        match &status {
            EventStatus::Applied => {
                tracing::info!(event = %event.id, kind = %event.event_type, changes = changes.len(), "Stripe event applied");
            }
            EventStatus::Duplicate => {
                tracing::debug!(event = %event.id, kind = %event.event_type, "Stripe event delivered again");
            }
            EventStatus::Ignored { reason } => {
                tracing::debug!(event = %event.id, kind = %event.event_type, reason, "Stripe event ignored");
            }
        }
        Ok(EventOutcome {
            event_id: event.id.clone(),
            status,
            changes,
        })
    }

    /// Whether an event id was processed (applied or ignored) before.
    pub async fn stripe_event_seen(&self, event_id: &str) -> Result<bool, ControlError> {
        let row = sqlx::query("SELECT event_id FROM stripe_events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(ControlError::database("looking up a Stripe event"))?;
        Ok(row.is_some())
    }

    // ---- 1. plan --------------------------------------------------------------------------

    async fn plan_event(&self, event: &StripeEvent) -> Result<Plan, ControlError> {
        let ignore = |reason: &str| Ok(Plan::Ignore(reason.to_owned()));
        match &event.object {
            StripeObject::CheckoutSession(session) => {
                let Some(checkout) = self.session_checkout(session).await? else {
                    return ignore("not a greenroom checkout");
                };
                if event.event_type == "checkout.session.expired" {
                    return Ok(Plan::Expired { checkout });
                }
                if !session.is_paid() {
                    return ignore("the payment is not settled yet");
                }
                let buys = match &checkout.purpose {
                    CheckoutPurpose::Pass { pass_id } => {
                        let pass = self.get_pass(pass_id).await?;
                        let price_id = self.pass_price_at(&pass, checkout.created_at_ms).await?;
                        if pass.kind.is_subscription() {
                            let Some(subscription_id) = session.subscription_id.clone() else {
                                return ignore("a subscription pass's session has no subscription");
                            };
                            Buys::Subscription {
                                pass,
                                price_id,
                                subscription_id,
                            }
                        } else {
                            Buys::OneTime { pass, price_id }
                        }
                    }
                    CheckoutPurpose::Tokens { tokens, .. } => Buys::Tokens { tokens: *tokens },
                    CheckoutPurpose::Tip { .. } => Buys::Tip,
                };
                Ok(Plan::Session {
                    checkout,
                    session: session.clone(),
                    buys,
                })
            }
            StripeObject::Invoice(invoice) => {
                let Some((checkout, pass)) = self
                    .subscription_checkout(
                        invoice.checkout_id.as_deref(),
                        invoice.subscription_id.as_deref(),
                    )
                    .await?
                else {
                    return ignore("not a greenroom subscription");
                };
                let price_id = match &invoice.price_id {
                    Some(price) => Some(price.clone()),
                    None => self.pass_price_at(&pass, checkout.created_at_ms).await?,
                };
                Ok(Plan::Invoice {
                    checkout,
                    pass,
                    invoice: invoice.clone(),
                    price_id,
                })
            }
            StripeObject::Subscription(subscription) => {
                let Some((checkout, pass)) = self
                    .subscription_checkout(
                        subscription.checkout_id.as_deref(),
                        Some(&subscription.id),
                    )
                    .await?
                else {
                    return ignore("not a greenroom subscription");
                };
                let price_id = match &subscription.price_id {
                    Some(price) => Some(price.clone()),
                    None => self.pass_price_at(&pass, checkout.created_at_ms).await?,
                };
                Ok(Plan::Subscription {
                    checkout,
                    pass,
                    subscription: subscription.clone(),
                    deleted: event.event_type == "customer.subscription.deleted",
                    price_id,
                })
            }
            StripeObject::Charge(charge) => match &charge.payment_intent_id {
                Some(payment_intent_id) => Ok(Plan::Refund {
                    charge: charge.clone(),
                    payment_intent_id: payment_intent_id.clone(),
                }),
                None => ignore("a charge without a payment intent"),
            },
            StripeObject::Other => Ok(Plan::Ignore(format!(
                "greenroom does not act on {}",
                event.event_type
            ))),
        }
    }

    async fn session_checkout(
        &self,
        session: &CheckoutSession,
    ) -> Result<Option<Checkout>, ControlError> {
        if let Some(id) = &session.checkout_id {
            match self.get_checkout(id).await {
                Ok(checkout) => return Ok(Some(checkout)),
                Err(ControlError::CheckoutNotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        match self.checkout_by_session(&session.id).await {
            Ok(checkout) => Ok(Some(checkout)),
            Err(ControlError::CheckoutNotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The pass checkout behind a subscription: named in its metadata, or the checkout of
    /// the grant that holds the subscription. Only subscription passes count.
    async fn subscription_checkout(
        &self,
        checkout_id: Option<&str>,
        subscription_id: Option<&str>,
    ) -> Result<Option<(Checkout, Pass)>, ControlError> {
        let mut checkout = None;
        if let Some(id) = checkout_id {
            match self.get_checkout(id).await {
                Ok(found) => checkout = Some(found),
                Err(ControlError::CheckoutNotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        if checkout.is_none()
            && let Some(subscription_id) = subscription_id
            && let Some(grant) = self.grant_for_subscription(subscription_id).await?
            && let Some(id) = grant.checkout_id
        {
            checkout = Some(self.get_checkout(&id).await?);
        }
        let Some(checkout) = checkout else {
            return Ok(None);
        };
        let CheckoutPurpose::Pass { pass_id } = &checkout.purpose else {
            return Ok(None);
        };
        let pass = self.get_pass(pass_id).await?;
        if !pass.kind.is_subscription() {
            return Ok(None);
        }
        Ok(Some((checkout, pass)))
    }
}
