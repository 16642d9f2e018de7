//! A stand-in for Stripe, for integration tests: an in-process HTTP server on 127.0.0.1 that
//! answers the API calls greenroom makes with Stripe's JSON objects and Stripe's validation
//! errors, plus test controls that play the buyer and Stripe's billing (pay a session, renew,
//! cancel, refund) and return the events Stripe would send, delivered with Stripe's real
//! webhook signature.
//!
//! ```ignore
//! mod stripe;
//! let stripe = stripe::StripeStandin::start("whsec_test").await;
//! let client = StripeClient::new(stripe::TEST_SECRET_KEY, Some(&stripe.api_base()))?;
//! // ... greenroom creates a checkout session through `client` ...
//! for event in stripe.pay(&session_id) {
//!     assert!(stripe.deliver(&event, &webhook_url).await.status().is_success());
//! }
//! ```
//!
//! API (all under `/v1`, form-encoded like Stripe, `Authorization: Bearer sk_test_...`):
//! `POST /products`, `POST /prices`, `GET /prices/{id}`, `POST /prices/{id}`,
//! `POST /checkout/sessions`, `GET /checkout/sessions/{id}`. Unknown parameters, missing
//! required ones, unknown or inactive prices, a recurring price in payment mode (and the
//! reverse), an application fee without a destination, and an idempotency key reused with
//! other parameters are refused with Stripe's error JSON and status. Every request is
//! recorded. The server stops when the `StripeStandin` is dropped.

#![allow(dead_code)]

mod api;
mod billing;
pub mod form;
mod params;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use state::{InjectedFailure, StripeState};
pub use state::{RecordedRequest, unix_now};

/// A secret key the stand-in accepts (it accepts any `sk_test_...`).
pub const TEST_SECRET_KEY: &str = "sk_test_greenroom_standin";

/// A Stripe event: `id`, `object: "event"`, `type`, `created`, `data.object`, `api_version`,
/// `livemode`, and `data.previous_attributes` for updates.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    json: Value,
}

impl Event {
    /// Wraps an event's JSON (e.g. a hand-made or edited one).
    pub fn from_json(json: Value) -> Event {
        Event { json }
    }

    pub fn id(&self) -> &str {
        self.json["id"].as_str().unwrap_or("")
    }

    /// The event's `type`, e.g. `checkout.session.completed`.
    pub fn type_(&self) -> &str {
        self.json["type"].as_str().unwrap_or("")
    }

    pub fn created(&self) -> i64 {
        self.json["created"].as_i64().unwrap_or(0)
    }

    /// `data.object`: the session, subscription, invoice or charge.
    pub fn object(&self) -> &Value {
        &self.json["data"]["object"]
    }

    pub fn json(&self) -> &Value {
        &self.json
    }

    /// The exact bytes delivered (and signed).
    pub fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(&self.json).unwrap_or_default()
    }

    /// The same event with another `created` (to stage out-of-order deliveries).
    pub fn with_created(mut self, created: i64) -> Event {
        self.json["created"] = created.into();
        self
    }
}

/// The first event of `type_` in `events`; panics when there is none.
pub fn event_of<'a>(events: &'a [Event], type_: &str) -> &'a Event {
    events
        .iter()
        .find(|e| e.type_() == type_)
        .unwrap_or_else(|| panic!("no {type_} event among {:?}", types(events)))
}

/// The types of `events`, in order.
pub fn types(events: &[Event]) -> Vec<&str> {
    events.iter().map(Event::type_).collect()
}

/// How a delivery is signed: `Stripe-Signature: t={timestamp},v1={HMAC-SHA256(secret,
/// "{timestamp}.{payload}")}`. Another secret forges it, an old timestamp makes it stale.
#[derive(Debug, Clone, Copy)]
pub struct Signing<'a> {
    pub timestamp: i64,
    pub secret: &'a str,
}

/// The running stand-in.
pub struct StripeStandin {
    addr: SocketAddr,
    webhook_secret: String,
    state: Arc<Mutex<StripeState>>,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for StripeStandin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeStandin")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for StripeStandin {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.abort();
    }
}

impl StripeStandin {
    /// Starts the stand-in on `127.0.0.1:0`; events are signed with `webhook_secret`.
    pub async fn start(webhook_secret: &str) -> StripeStandin {
        let state = Arc::new(Mutex::new(StripeState::new()));
        let app = axum::Router::new()
            .fallback(api::handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("stripe stand-in: bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("stripe stand-in: local address");
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = signal.await;
                })
                .await;
        });
        StripeStandin {
            addr,
            webhook_secret: webhook_secret.to_owned(),
            state,
            http: reqwest::Client::new(),
            shutdown: Some(shutdown),
            task,
        }
    }

    /// `http://127.0.0.1:PORT`, the base URL for `StripeClient::new`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }

    fn lock(&self) -> MutexGuard<'_, StripeState> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    // --- Inspection -------------------------------------------------------------------

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// The requests to `method` `path` (e.g. `"POST", "/v1/checkout/sessions"`).
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<RecordedRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .cloned()
            .collect()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Every event emitted so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    pub fn product(&self, id: &str) -> Option<Value> {
        self.lock().products.get(id).cloned()
    }

    pub fn price(&self, id: &str) -> Option<Value> {
        self.lock().prices.get(id).cloned()
    }

    pub fn session(&self, id: &str) -> Option<Value> {
        self.lock().sessions.get(id).map(|s| s.json.clone())
    }

    pub fn subscription(&self, id: &str) -> Option<Value> {
        self.lock().subscriptions.get(id).map(|s| s.json.clone())
    }

    pub fn invoice(&self, id: &str) -> Option<Value> {
        self.lock().invoices.get(id).cloned()
    }

    pub fn payment_intent(&self, id: &str) -> Option<Value> {
        self.lock()
            .payments
            .get(id)
            .map(billing::payment_intent_json)
    }

    /// The charge of payment intent `payment_intent`.
    pub fn charge(&self, payment_intent: &str) -> Option<Value> {
        self.lock()
            .payments
            .get(payment_intent)
            .map(billing::charge_json)
    }

    // --- Controls -----------------------------------------------------------------------

    /// The next API request gets `status` with `message` (type `api_error` for 5xx,
    /// `invalid_request_error` otherwise) instead of its answer.
    pub fn fail_next_request(&self, status: u16, message: &str) {
        self.lock().failures.push_back(InjectedFailure {
            status,
            message: message.to_owned(),
        });
    }

    /// The stand-in's clock (unix seconds): real time plus what the test advanced.
    pub fn now(&self) -> i64 {
        self.lock().now()
    }

    /// Moves the stand-in's clock forward (objects' and events' `created`, periods).
    /// Signatures keep using the real clock.
    pub fn advance_clock(&self, secs: i64) {
        self.lock().clock_offset_s += secs;
    }

    /// The buyer pays session `session_id` (panics unless it exists and is open).
    ///
    /// Payment mode → `[checkout.session.completed]` (payment_status `paid`, `payment_intent`
    /// `pi_...`, `amount_total`, `currency`, `metadata`, `client_reference_id`; the payment
    /// intent carries `payment_intent_data.metadata`).
    /// Subscription mode → `[customer.subscription.created, invoice.paid,
    /// checkout.session.completed]`: the subscription (`sub_...`, status `active`,
    /// `subscription_data.metadata`, `current_period_end` = +1 interval, also under
    /// `items.data[0]`), its first invoice (`amount_paid`, `subscription`,
    /// `lines.data[0].period{start,end}`, `subscription_details.metadata` and
    /// `parent.subscription_details{subscription,metadata}`), then the session with
    /// `subscription` and `invoice`.
    pub fn pay(&self, session_id: &str) -> Vec<Event> {
        self.lock().pay(session_id)
    }

    /// Session `session_id` expires unpaid → `checkout.session.expired`.
    pub fn expire(&self, session_id: &str) -> Event {
        self.lock().expire(session_id)
    }

    /// Bills and pays the next period → `[customer.subscription.updated, invoice.paid]`
    /// (periods counted from the start: calendar months or years).
    pub fn renew(&self, subscription_id: &str) -> Vec<Event> {
        self.lock().renew(subscription_id)
    }

    /// Cancels now → `customer.subscription.deleted` (status `canceled`).
    pub fn cancel_subscription(&self, subscription_id: &str) -> Event {
        self.lock().cancel_subscription(subscription_id)
    }

    /// Sets the status (`past_due`, `unpaid`, ...) → `customer.subscription.updated`.
    pub fn update_subscription_status(&self, subscription_id: &str, status: &str) -> Event {
        self.lock()
            .update_subscription_status(subscription_id, status)
    }

    /// Refunds `amount` (default: the rest) of a payment → `charge.refunded` (charge with
    /// `amount`, `amount_refunded`, `refunded`, `payment_intent`, `metadata`).
    pub fn refund(&self, payment_intent: &str, amount: Option<i64>) -> Event {
        self.lock().refund(payment_intent, amount)
    }

    // --- Webhooks -----------------------------------------------------------------------

    /// POSTs `event` to `url` the way Stripe does, signed now with the webhook secret.
    /// Delivering the same event again is a redelivery (same id, same bytes).
    pub async fn deliver(&self, event: &Event, url: &str) -> reqwest::Response {
        let signing = Signing {
            timestamp: unix_now(),
            secret: &self.webhook_secret,
        };
        self.deliver_with(event, url, signing).await
    }

    /// POSTs `event` signed as `signing` says (stale or forged deliveries).
    pub async fn deliver_with(
        &self,
        event: &Event,
        url: &str,
        signing: Signing<'_>,
    ) -> reqwest::Response {
        let payload = event.payload();
        let signature = greenroom_control::stripe_signature::stripe_signature_header(
            &payload,
            signing.secret,
            signing.timestamp,
        );
        self.http
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "user-agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header("stripe-signature", signature)
            .body(payload)
            .send()
            .await
            .unwrap_or_else(|err| {
                panic!("stripe stand-in: delivering {} to {url}: {err}", event.id())
            })
    }
}
