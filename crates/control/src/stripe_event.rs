//! Stripe webhook events, parsed into the few typed fields greenroom acts on, and the outcome
//! of applying one ([`Store::apply_stripe_event`](crate::Store::apply_stripe_event)).
//!
//! The parser reads Stripe's JSON with small serde structs of its own, tolerant of unknown
//! fields and of the shapes different API versions give the same fact:
//! - an invoice's subscription: `subscription` (older versions and the newest) or
//!   `parent.subscription_details.subscription` (2025-03-31 and later); its metadata:
//!   `subscription_details.metadata`, `parent.subscription_details.metadata` or the metadata
//!   of a subscription line; its payment: `payment_intent` (before 2025-03-31) or
//!   `payments.data[].payment.payment_intent`;
//! - a subscription's period end: `current_period_end` (before 2025-03-31) or
//!   `items.data[].current_period_end`;
//! - an expandable reference: an id string or an object with an `id`.
//!
//! Events of other types parse as [`StripeObject::Other`] and are recorded as ignored.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::ControlError;
use crate::grant::Grant;
use crate::stripe_client::CHECKOUT_METADATA_KEY;
use crate::tip::Tip;

/// Largest webhook payload accepted, in bytes (Stripe's events are a few KiB).
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// A Stripe event, as far as greenroom reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEvent {
    /// `evt_...`: processing happens once per id.
    pub id: String,
    /// e.g. `checkout.session.completed`.
    pub event_type: String,
    /// When Stripe made the event (unix seconds); orders subscription states.
    pub created_s: i64,
    pub object: StripeObject,
}

/// The object an event carries, for the types greenroom acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeObject {
    /// `checkout.session.completed`, `.async_payment_succeeded`, `.expired`.
    CheckoutSession(CheckoutSession),
    /// `invoice.paid`.
    Invoice(Invoice),
    /// `customer.subscription.created`, `.updated`, `.deleted`.
    Subscription(Subscription),
    /// `charge.refunded`.
    Charge(Charge),
    /// Any other event type.
    Other,
}

/// The fields of a Checkout Session greenroom reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    /// `cs_...`.
    pub id: String,
    /// Our checkout: `metadata.greenroom_checkout`, else `client_reference_id`.
    pub checkout_id: Option<String>,
    /// `payment`, `subscription` or `setup`.
    pub mode: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: Option<String>,
    pub payment_intent_id: Option<String>,
    pub subscription_id: Option<String>,
    /// What the buyer paid, in minor units (after discounts).
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
}

impl CheckoutSession {
    /// The payment is settled (`paid`, or `no_payment_required` for a free trial or a 100 %
    /// discount).
    pub fn is_paid(&self) -> bool {
        matches!(
            self.payment_status.as_deref(),
            Some("paid" | "no_payment_required")
        )
    }
}

/// The fields of an invoice greenroom reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// `in_...`.
    pub id: String,
    pub subscription_id: Option<String>,
    /// Our checkout, from the subscription's metadata copied onto the invoice.
    pub checkout_id: Option<String>,
    /// The latest end of the invoice's line periods (unix seconds): the paid period's end.
    pub period_end_s: Option<i64>,
    /// Minor units.
    pub amount_paid: i64,
    pub currency: String,
    pub payment_intent_id: Option<String>,
    /// The Stripe Price of the first line that names one.
    pub price_id: Option<String>,
}

/// The fields of a subscription greenroom reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `sub_...`.
    pub id: String,
    /// `active`, `trialing`, `past_due`, `canceled`, `unpaid`, `incomplete`,
    /// `incomplete_expired`, `paused`.
    pub status: String,
    /// End of the current period (unix seconds).
    pub current_period_end_s: Option<i64>,
    /// Our checkout: `metadata.greenroom_checkout`.
    pub checkout_id: Option<String>,
    pub price_id: Option<String>,
}

/// The fields of a charge greenroom reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// `ch_...`.
    pub id: String,
    pub payment_intent_id: Option<String>,
    /// Minor units charged.
    pub amount: i64,
    /// Minor units refunded so far.
    pub amount_refunded: i64,
    /// Refunded in full.
    pub refunded: bool,
    pub currency: String,
}

impl Charge {
    /// Refunded in full (`refunded`, or everything charged given back).
    pub fn is_fully_refunded(&self) -> bool {
        self.refunded || (self.amount > 0 && self.amount_refunded >= self.amount)
    }
}

impl StripeEvent {
    /// Parses a webhook payload (after its signature was checked). Answers
    /// [`ControlError::InvalidWebhook`] for anything that is not a Stripe event, and for an
    /// event of a type greenroom acts on whose object lacks a field it needs.
    pub fn parse(payload: &[u8]) -> Result<StripeEvent, ControlError> {
        if payload.len() > MAX_EVENT_BYTES {
            return Err(invalid(format!(
                "the payload has {} bytes, at most {MAX_EVENT_BYTES} are read",
                payload.len()
            )));
        }
        let raw: RawEvent = serde_json::from_slice(payload)
            .map_err(|error| invalid(format!("not a Stripe event: {error}")))?;
        if raw
            .object
            .as_deref()
            .is_some_and(|object| object != "event")
        {
            return Err(invalid(format!(
                "the payload is a {:?}, not an event",
                raw.object.unwrap_or_default()
            )));
        }
        if raw.id.is_empty() || raw.id.len() > 255 {
            return Err(invalid("the event has no usable id".to_owned()));
        }
        let object = raw.data.object;
        let what = |error: serde_json::Error| {
            invalid(format!("{} event {}: {error}", raw.event_type, raw.id))
        };
        let object = match raw.event_type.as_str() {
            "checkout.session.completed"
            | "checkout.session.async_payment_succeeded"
            | "checkout.session.expired" => StripeObject::CheckoutSession(
                serde_json::from_value::<RawSession>(object)
                    .map_err(what)?
                    .into(),
            ),
            "invoice.paid" => StripeObject::Invoice(
                serde_json::from_value::<RawInvoice>(object)
                    .map_err(what)?
                    .into(),
            ),
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => StripeObject::Subscription(
                serde_json::from_value::<RawSubscription>(object)
                    .map_err(what)?
                    .into(),
            ),
            "charge.refunded" => StripeObject::Charge(
                serde_json::from_value::<RawCharge>(object)
                    .map_err(what)?
                    .into(),
            ),
            _ => StripeObject::Other,
        };
        Ok(StripeEvent {
            id: raw.id,
            event_type: raw.event_type,
            created_s: raw.created,
            object,
        })
    }

    /// [`StripeEvent::created_s`] in milliseconds.
    pub fn created_ms(&self) -> i64 {
        self.created_s.saturating_mul(1000)
    }
}

fn invalid(reason: String) -> ControlError {
    ControlError::InvalidWebhook { reason }
}

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventOutcome {
    pub event_id: String,
    pub status: EventStatus,
    /// What changed, in order; empty for a duplicate or an ignored event.
    pub changes: Vec<EventChange>,
}

impl EventOutcome {
    /// The tips this event made paid (for the server to show the creator live).
    pub fn paid_tips(&self) -> impl Iterator<Item = &Tip> {
        self.changes.iter().filter_map(|change| match change {
            EventChange::TipPaid(tip) => Some(tip),
            _ => None,
        })
    }

    /// The grants this event revoked.
    pub fn revoked_grants(&self) -> impl Iterator<Item = &Grant> {
        self.changes.iter().filter_map(|change| match change {
            EventChange::GrantRevoked(grant) => Some(grant),
            _ => None,
        })
    }
}

/// Whether an event was applied now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EventStatus {
    /// First delivery; its effects are stored.
    Applied,
    /// This event id was processed before: nothing changed.
    Duplicate,
    /// Recorded, but nothing to do (another type, not greenroom's, unpaid, or a stale
    /// subscription state).
    Ignored { reason: String },
}

/// One effect of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum EventChange {
    CheckoutCompleted {
        checkout_id: String,
    },
    CheckoutExpired {
        checkout_id: String,
    },
    /// A new grant (possibly already revoked, when its payment was refunded first).
    GrantCreated(Grant),
    /// A grant's expiry moved (renewal, subscription update).
    GrantExtended(Grant),
    GrantRevoked(Grant),
    /// A subscription came back (e.g. `unpaid` then `active`).
    GrantRestored(Grant),
    TipPaid(Tip),
    TipRefunded(Tip),
    TokensCredited {
        account_id: String,
        tokens: i64,
    },
    /// Tokens taken back from a wallet for a refunded pack; `shortfall` were spent already.
    TokensReclaimed {
        account_id: String,
        tokens: i64,
        shortfall: i64,
    },
    /// A refund of a payment was recorded (`full`: everything given back).
    RefundRecorded {
        payment_intent_id: String,
        amount_refunded: i64,
        full: bool,
    },
}

// ---- Stripe's JSON, as much as greenroom reads -------------------------------------------

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    #[serde(default)]
    object: Option<String>,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: serde_json::Value,
}

/// An expandable reference: the id, or the expanded object with its id.
#[derive(Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    fn into_id(self) -> String {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }

    fn id(&self) -> &str {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

fn id_of(reference: Option<Expandable>) -> Option<String> {
    reference
        .map(Expandable::into_id)
        .filter(|id| !id.is_empty())
}

/// Metadata values are strings; anything else is skipped.
type Metadata = Option<HashMap<String, serde_json::Value>>;

fn checkout_in(metadata: &Metadata) -> Option<String> {
    metadata
        .as_ref()?
        .get(CHECKOUT_METADATA_KEY)?
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

#[derive(Deserialize)]
struct RawSession {
    id: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    payment_status: Option<String>,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    client_reference_id: Option<String>,
    #[serde(default)]
    payment_intent: Option<Expandable>,
    #[serde(default)]
    subscription: Option<Expandable>,
    #[serde(default)]
    amount_total: Option<i64>,
    #[serde(default)]
    currency: Option<String>,
}

impl From<RawSession> for CheckoutSession {
    fn from(raw: RawSession) -> CheckoutSession {
        CheckoutSession {
            checkout_id: checkout_in(&raw.metadata)
                .or(raw.client_reference_id.filter(|id| !id.is_empty())),
            id: raw.id,
            mode: raw.mode,
            payment_status: raw.payment_status,
            payment_intent_id: id_of(raw.payment_intent),
            subscription_id: id_of(raw.subscription),
            amount_total: raw.amount_total,
            currency: raw.currency.map(|c| c.to_ascii_lowercase()),
        }
    }
}

#[derive(Deserialize, Default)]
struct RawList<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
}

#[derive(Deserialize)]
struct RawSubscriptionDetails {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    subscription: Option<Expandable>,
}

#[derive(Deserialize)]
struct RawInvoiceParent {
    #[serde(default)]
    subscription_details: Option<RawSubscriptionDetails>,
}

#[derive(Deserialize)]
struct RawPeriod {
    #[serde(default)]
    end: Option<i64>,
}

#[derive(Deserialize)]
struct RawPriceRef {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct RawPriceDetails {
    #[serde(default)]
    price: Option<Expandable>,
}

#[derive(Deserialize)]
struct RawPricing {
    #[serde(default)]
    price_details: Option<RawPriceDetails>,
}

#[derive(Deserialize)]
struct RawLine {
    #[serde(default)]
    period: Option<RawPeriod>,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    subscription: Option<Expandable>,
    /// Before 2025-03-31.
    #[serde(default)]
    price: Option<RawPriceRef>,
    /// 2025-03-31 and later.
    #[serde(default)]
    pricing: Option<RawPricing>,
}

impl RawLine {
    fn price_id(self) -> Option<String> {
        self.price
            .and_then(|price| price.id)
            .or_else(|| id_of(self.pricing?.price_details?.price))
    }
}

#[derive(Deserialize)]
struct RawAssociatedPayment {
    #[serde(default)]
    payment_intent: Option<Expandable>,
}

#[derive(Deserialize)]
struct RawInvoicePayment {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    payment: Option<RawAssociatedPayment>,
}

#[derive(Deserialize)]
struct RawInvoice {
    id: String,
    #[serde(default)]
    subscription: Option<Expandable>,
    #[serde(default)]
    subscription_details: Option<RawSubscriptionDetails>,
    #[serde(default)]
    parent: Option<RawInvoiceParent>,
    #[serde(default)]
    lines: Option<RawList<RawLine>>,
    amount_paid: i64,
    currency: String,
    #[serde(default)]
    payment_intent: Option<Expandable>,
    #[serde(default)]
    payments: Option<RawList<RawInvoicePayment>>,
}

impl From<RawInvoice> for Invoice {
    fn from(raw: RawInvoice) -> Invoice {
        let parent = raw.parent.and_then(|parent| parent.subscription_details);
        let lines = raw.lines.map(|lines| lines.data).unwrap_or_default();
        let period_end_s = lines
            .iter()
            .filter_map(|line| line.period.as_ref()?.end)
            .max();
        let line_checkout = lines.iter().find_map(|line| checkout_in(&line.metadata));
        let mut subscription_id = id_of(raw.subscription);
        let mut checkout_id = raw
            .subscription_details
            .as_ref()
            .and_then(|details| checkout_in(&details.metadata));
        if let Some(parent) = parent {
            checkout_id = checkout_id.or_else(|| checkout_in(&parent.metadata));
            subscription_id = subscription_id.or_else(|| id_of(parent.subscription));
        }
        let line_subscription = lines
            .iter()
            .filter_map(|line| line.subscription.as_ref())
            .map(|subscription| subscription.id().to_owned())
            .find(|id| !id.is_empty());
        let price_id = lines.into_iter().find_map(RawLine::price_id);
        let payment_intent_id = id_of(raw.payment_intent).or_else(|| {
            raw.payments?
                .data
                .into_iter()
                .filter(|p| p.status.as_deref().is_none_or(|s| s == "paid"))
                .find_map(|p| id_of(p.payment?.payment_intent))
        });
        Invoice {
            id: raw.id,
            subscription_id: subscription_id.or(line_subscription),
            checkout_id: checkout_id.or(line_checkout),
            period_end_s,
            amount_paid: raw.amount_paid,
            currency: raw.currency.to_ascii_lowercase(),
            payment_intent_id,
            price_id,
        }
    }
}

#[derive(Deserialize)]
struct RawItem {
    #[serde(default)]
    current_period_end: Option<i64>,
    #[serde(default)]
    price: Option<RawPriceRef>,
}

#[derive(Deserialize)]
struct RawSubscription {
    id: String,
    status: String,
    #[serde(default)]
    current_period_end: Option<i64>,
    #[serde(default)]
    items: Option<RawList<RawItem>>,
    #[serde(default)]
    metadata: Metadata,
}

impl From<RawSubscription> for Subscription {
    fn from(raw: RawSubscription) -> Subscription {
        let items = raw.items.map(|items| items.data).unwrap_or_default();
        let item_end = items
            .iter()
            .filter_map(|item| item.current_period_end)
            .max();
        let price_id = items
            .into_iter()
            .find_map(|item| item.price.and_then(|price| price.id));
        Subscription {
            checkout_id: checkout_in(&raw.metadata),
            id: raw.id,
            status: raw.status,
            current_period_end_s: raw.current_period_end.or(item_end),
            price_id,
        }
    }
}

#[derive(Deserialize)]
struct RawCharge {
    id: String,
    #[serde(default)]
    payment_intent: Option<Expandable>,
    amount: i64,
    amount_refunded: i64,
    #[serde(default)]
    refunded: bool,
    currency: String,
}

impl From<RawCharge> for Charge {
    fn from(raw: RawCharge) -> Charge {
        Charge {
            id: raw.id,
            payment_intent_id: id_of(raw.payment_intent),
            amount: raw.amount,
            amount_refunded: raw.amount_refunded,
            refunded: raw.refunded,
            currency: raw.currency.to_ascii_lowercase(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<StripeEvent, ControlError> {
        StripeEvent::parse(value.to_string().as_bytes())
    }

    #[test]
    fn garbage_is_an_invalid_webhook() {
        for payload in [
            &b""[..],
            b"not json",
            b"[]",
            b"{\"id\":\"evt_1\"}",
            b"{\"id\":\"evt_1\",\"object\":\"charge\",\"type\":\"x\",\"created\":1,\"data\":{\"object\":{}}}",
        ] {
            assert!(
                matches!(
                    StripeEvent::parse(payload),
                    Err(ControlError::InvalidWebhook { .. })
                ),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        // A type greenroom acts on without the fields it needs.
        let missing = parse(json!({
            "id": "evt_1", "object": "event", "type": "charge.refunded", "created": 1,
            "data": {"object": {"id": "ch_1"}}
        }));
        assert!(matches!(missing, Err(ControlError::InvalidWebhook { .. })));
    }

    #[test]
    fn unknown_types_and_fields_are_tolerated() {
        let event = parse(json!({
            "id": "evt_1", "object": "event", "api_version": "2099-01-01", "type": "payout.paid",
            "created": 1_700_000_000, "livemode": false, "pending_webhooks": 1,
            "data": {"object": {"id": "po_1", "whatever": [1, 2, 3]}}
        }))
        .expect("parse");
        assert_eq!(event.object, StripeObject::Other);
        assert_eq!(event.created_ms(), 1_700_000_000_000);
    }

    #[test]
    fn a_checkout_session_names_its_checkout_payment_and_subscription() {
        let event = parse(json!({
            "id": "evt_1", "object": "event", "type": "checkout.session.completed",
            "created": 1_700_000_000,
            "data": {"object": {
                "id": "cs_test_1", "object": "checkout.session", "mode": "payment",
                "payment_status": "paid", "status": "complete",
                "client_reference_id": "fallback",
                "metadata": {"greenroom_checkout": "chk1", "n": 1},
                "payment_intent": {"id": "pi_1", "object": "payment_intent"},
                "subscription": null, "amount_total": 999, "currency": "USD",
                "customer_details": {"email": "a@example.com"}
            }}
        }))
        .expect("parse");
        let StripeObject::CheckoutSession(session) = event.object else {
            panic!("not a session: {event:?}");
        };
        assert_eq!(session.checkout_id.as_deref(), Some("chk1"));
        assert_eq!(session.payment_intent_id.as_deref(), Some("pi_1"));
        assert_eq!(session.subscription_id, None);
        assert_eq!(session.amount_total, Some(999));
        assert_eq!(session.currency.as_deref(), Some("usd"));
        assert!(session.is_paid());
    }

    #[test]
    fn an_invoice_is_read_in_old_and_new_api_shapes() {
        let old = parse(json!({
            "id": "evt_1", "type": "invoice.paid", "created": 10,
            "data": {"object": {
                "id": "in_1", "object": "invoice", "subscription": "sub_1",
                "subscription_details": {"metadata": {"greenroom_checkout": "chk1"}},
                "amount_paid": 500, "currency": "eur", "payment_intent": "pi_1",
                "lines": {"object": "list", "data": [
                    {"id": "il_1", "period": {"start": 1, "end": 2_000}, "price": {"id": "price_1"}}
                ]}
            }}
        }))
        .expect("parse");
        let new = parse(json!({
            "id": "evt_2", "type": "invoice.paid", "created": 10,
            "data": {"object": {
                "id": "in_1", "object": "invoice",
                "parent": {"type": "subscription_details", "subscription_details": {
                    "subscription": "sub_1", "metadata": {"greenroom_checkout": "chk1"}}},
                "amount_paid": 500, "currency": "eur",
                "payments": {"data": [{"status": "paid",
                    "payment": {"type": "payment_intent", "payment_intent": "pi_1"}}]},
                "lines": {"data": [
                    {"id": "il_1", "period": {"start": 1, "end": 2_000},
                     "pricing": {"type": "price_details", "price_details": {"price": "price_1"}}}
                ]}
            }}
        }))
        .expect("parse");
        for event in [old, new] {
            let StripeObject::Invoice(invoice) = event.object else {
                panic!("not an invoice");
            };
            assert_eq!(invoice.subscription_id.as_deref(), Some("sub_1"));
            assert_eq!(invoice.checkout_id.as_deref(), Some("chk1"));
            assert_eq!(invoice.period_end_s, Some(2_000));
            assert_eq!(invoice.payment_intent_id.as_deref(), Some("pi_1"));
            assert_eq!(invoice.price_id.as_deref(), Some("price_1"));
            assert_eq!(invoice.amount_paid, 500);
        }
    }

    #[test]
    fn a_subscription_period_end_is_read_from_either_place() {
        for object in [
            json!({"id": "sub_1", "status": "active", "current_period_end": 99,
                   "metadata": {"greenroom_checkout": "chk1"}}),
            json!({"id": "sub_1", "status": "active",
                   "items": {"data": [{"id": "si_1", "current_period_end": 99,
                                       "price": {"id": "price_1"}}]},
                   "metadata": {"greenroom_checkout": "chk1"}}),
        ] {
            let event = parse(json!({
                "id": "evt_1", "type": "customer.subscription.updated", "created": 10,
                "data": {"object": object, "previous_attributes": {"status": "incomplete"}}
            }))
            .expect("parse");
            let StripeObject::Subscription(sub) = event.object else {
                panic!("not a subscription");
            };
            assert_eq!(sub.current_period_end_s, Some(99));
            assert_eq!(sub.checkout_id.as_deref(), Some("chk1"));
            assert_eq!(sub.status, "active");
        }
    }

    #[test]
    fn a_charge_says_whether_it_is_fully_refunded() {
        let event = parse(json!({
            "id": "evt_1", "type": "charge.refunded", "created": 10,
            "data": {"object": {"id": "ch_1", "payment_intent": "pi_1", "amount": 999,
                                "amount_refunded": 500, "refunded": false, "currency": "usd"}}
        }))
        .expect("parse");
        let StripeObject::Charge(charge) = event.object else {
            panic!("not a charge");
        };
        assert!(!charge.is_fully_refunded());
        assert!(
            Charge {
                amount_refunded: 999,
                ..charge.clone()
            }
            .is_fully_refunded()
        );
        assert!(
            Charge {
                refunded: true,
                ..charge
            }
            .is_fully_refunded()
        );
    }
}
