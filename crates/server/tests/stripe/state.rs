//! The stand-in's Stripe account: every object it made, the requests it answered, the
//! idempotency keys it saw, and the events it emitted. Guarded by one mutex that is never
//! held across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

use super::Event;
use super::form::Params;

/// The API version the events carry until a client sends its own `Stripe-Version`.
pub const DEFAULT_API_VERSION: &str = "2026-09-30.endive";

/// One request the stand-in answered (or refused), for assertions.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without the query, e.g. `/v1/checkout/sessions`.
    pub path: String,
    /// The decoded form (POST) or query (GET) parameters.
    pub params: Params,
    pub idempotency_key: Option<String>,
    pub stripe_version: Option<String>,
    pub stripe_account: Option<String>,
    /// The status the stand-in answered with.
    pub status: u16,
}

impl RecordedRequest {
    /// The value of a flat parameter, e.g. `payment_intent_data[transfer_data][destination]`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key)
    }

    /// The parameters as nested JSON (`nested()["line_items"][0]["price"]`).
    pub fn nested(&self) -> Value {
        self.params.nested()
    }
}

/// A failure the next request gets instead of its answer.
#[derive(Debug, Clone)]
pub(super) struct InjectedFailure {
    pub status: u16,
    pub message: String,
}

/// The response saved under an idempotency key.
#[derive(Debug, Clone)]
pub(super) struct SavedResponse {
    pub endpoint: String,
    pub params: BTreeMap<String, String>,
    pub status: u16,
    pub body: Value,
}

/// A Checkout Session and what it sells.
#[derive(Debug, Clone)]
pub(super) struct SessionRecord {
    pub json: Value,
    pub subscription: bool,
    pub price_id: String,
    pub amount: i64,
    pub currency: String,
    /// `day`, `week`, `month` or `year` for a recurring price.
    pub interval: Option<String>,
    pub interval_count: u32,
    pub metadata: Value,
    /// `payment_intent_data[metadata]` or `subscription_data[metadata]`.
    pub child_metadata: Value,
    pub destination: Option<String>,
    pub application_fee_amount: Option<i64>,
    pub application_fee_percent: Option<String>,
}

/// A payment intent with its single charge.
#[derive(Debug, Clone)]
pub(super) struct PaymentRecord {
    pub id: String,
    pub charge_id: String,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub customer: String,
    pub metadata: Value,
    pub created: i64,
    pub invoice: Option<String>,
    pub destination: Option<String>,
    pub application_fee_amount: Option<i64>,
    pub refunds: Vec<Value>,
}

/// A subscription: its JSON and the billing anchor its periods are counted from.
#[derive(Debug, Clone)]
pub(super) struct SubscriptionRecord {
    pub json: Value,
    pub anchor: i64,
    pub interval: String,
    pub interval_count: u32,
    /// The index of the current period (0 for the first).
    pub period: u32,
    pub price_id: String,
    pub amount: i64,
    pub currency: String,
    pub customer: String,
}

pub(super) struct StripeState {
    pub products: BTreeMap<String, Value>,
    pub prices: BTreeMap<String, Value>,
    pub sessions: BTreeMap<String, SessionRecord>,
    pub payments: BTreeMap<String, PaymentRecord>,
    pub subscriptions: BTreeMap<String, SubscriptionRecord>,
    pub invoices: BTreeMap<String, Value>,
    pub events: Vec<Event>,
    pub requests: Vec<RecordedRequest>,
    pub idempotency: HashMap<String, SavedResponse>,
    pub failures: VecDeque<InjectedFailure>,
    pub clock_offset_s: i64,
    pub api_version: String,
}

impl StripeState {
    pub fn new() -> StripeState {
        StripeState {
            products: BTreeMap::new(),
            prices: BTreeMap::new(),
            sessions: BTreeMap::new(),
            payments: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            invoices: BTreeMap::new(),
            events: Vec::new(),
            requests: Vec::new(),
            idempotency: HashMap::new(),
            failures: VecDeque::new(),
            clock_offset_s: 0,
            api_version: DEFAULT_API_VERSION.to_owned(),
        }
    }

    /// The stand-in's clock: real time plus whatever the test advanced it by.
    pub fn now(&self) -> i64 {
        unix_now() + self.clock_offset_s
    }

    /// Emits (records and returns) an event of `type_` about `object`.
    pub fn event(&mut self, type_: &str, object: Value, previous: Option<Value>) -> Event {
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let event = Event::from_json(json!({
            "id": new_id("evt_"),
            "object": "event",
            "api_version": self.api_version,
            "created": self.now(),
            "data": data,
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": type_,
        }));
        self.events.push(event.clone());
        event
    }

    pub fn product_json(&self, id: &str, name: &str, metadata: Value) -> Value {
        let now = self.now();
        json!({
            "id": id,
            "object": "product",
            "active": true,
            "created": now,
            "default_price": null,
            "description": null,
            "images": [],
            "livemode": false,
            "marketing_features": [],
            "metadata": metadata,
            "name": name,
            "package_dimensions": null,
            "shippable": null,
            "statement_descriptor": null,
            "tax_code": null,
            "type": "service",
            "unit_label": null,
            "updated": now,
            "url": null,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn price_json(
        &self,
        id: &str,
        product: &str,
        amount: i64,
        currency: &str,
        recurring: Option<(&str, u32)>,
        metadata: Value,
        active: bool,
    ) -> Value {
        let recurring = recurring.map(|(interval, count)| {
            json!({
                "interval": interval,
                "interval_count": count,
                "meter": null,
                "trial_period_days": null,
                "usage_type": "licensed",
            })
        });
        json!({
            "id": id,
            "object": "price",
            "active": active,
            "billing_scheme": "per_unit",
            "created": self.now(),
            "currency": currency,
            "custom_unit_amount": null,
            "livemode": false,
            "lookup_key": null,
            "metadata": metadata,
            "nickname": null,
            "product": product,
            "type": if recurring.is_some() { "recurring" } else { "one_time" },
            "recurring": recurring,
            "tax_behavior": "unspecified",
            "tiers_mode": null,
            "transform_quantity": null,
            "unit_amount": amount,
            "unit_amount_decimal": amount.to_string(),
        })
    }
}

/// Real unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A Stripe-looking id: `prefix` and 24 random letters and digits.
pub fn new_id(prefix: &str) -> String {
    let tail: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

/// The end of period `index` (0-based) of a subscription anchored at `anchor`: calendar
/// months and years (clamped to the month's last day, always from the anchor so a 31st stays
/// the 31st where it exists), days and weeks in seconds.
pub fn period_boundary(anchor: i64, interval: &str, count: u32, index: u32) -> i64 {
    let steps = count.saturating_mul(index);
    let months = match interval {
        "month" => steps,
        "year" => steps.saturating_mul(12),
        "week" => return anchor + i64::from(steps) * 7 * 86_400,
        _ => return anchor + i64::from(steps) * 86_400,
    };
    chrono::DateTime::from_timestamp(anchor, 0)
        .and_then(|start| start.checked_add_months(chrono::Months::new(months)))
        .map(|end| end.timestamp())
        .unwrap_or(i64::MAX)
}
