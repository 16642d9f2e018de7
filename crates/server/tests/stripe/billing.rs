//! Stripe's side of a purchase, driven by the test: the buyer pays a session, a subscription
//! renews, is cancelled or changes status, a payment is refunded. Each step changes the
//! stand-in's objects and returns the events Stripe would send, in Stripe's order.

use serde_json::{Value, json};

use super::Event;
use super::state::{PaymentRecord, StripeState, SubscriptionRecord, new_id, period_boundary};

impl StripeState {
    /// The buyer completes session `session_id`.
    ///
    /// Payment mode: `[checkout.session.completed]`. Subscription mode:
    /// `[customer.subscription.created, invoice.paid, checkout.session.completed]`.
    pub fn pay(&mut self, session_id: &str) -> Vec<Event> {
        let Some(session) = self.sessions.get(session_id).cloned() else {
            panic!("stripe stand-in: no checkout session {session_id}");
        };
        assert_eq!(
            session.json["status"], "open",
            "stripe stand-in: session {session_id} is not open"
        );
        let now = self.now();
        let customer = new_id("cus_");
        let email = session.json["customer_email"].clone();
        let mut events = Vec::new();
        let mut json = session.json.clone();
        json["status"] = json!("complete");
        json["payment_status"] = json!("paid");
        json["customer"] = json!(customer);
        json["customer_details"] = json!({
            "address": null,
            "email": if email.is_null() { json!("buyer@example.com") } else { email },
            "name": "Test Buyer",
            "phone": null,
            "tax_exempt": "none",
            "tax_ids": [],
        });
        if session.subscription {
            let interval = session
                .interval
                .clone()
                .unwrap_or_else(|| "month".to_owned());
            let subscription_id = new_id("sub_");
            let end = period_boundary(now, &interval, session.interval_count, 1);
            let record = SubscriptionRecord {
                json: Value::Null,
                anchor: now,
                interval,
                interval_count: session.interval_count,
                period: 0,
                price_id: session.price_id.clone(),
                amount: session.amount,
                currency: session.currency.clone(),
                customer: customer.clone(),
            };
            let item_id = new_id("si_");
            let price = self
                .prices
                .get(&session.price_id)
                .cloned()
                .unwrap_or(Value::Null);
            let fee_percent = session
                .application_fee_percent
                .as_deref()
                .and_then(|p| serde_json::from_str::<Value>(p).ok())
                .unwrap_or(Value::Null);
            let transfer_data = match &session.destination {
                Some(destination) => json!({ "amount_percent": null, "destination": destination }),
                None => Value::Null,
            };
            let subscription = json!({
                "id": subscription_id,
                "object": "subscription",
                "application_fee_percent": fee_percent,
                "billing_cycle_anchor": now,
                "cancel_at": null,
                "cancel_at_period_end": false,
                "canceled_at": null,
                "cancellation_details": { "comment": null, "feedback": null, "reason": null },
                "collection_method": "charge_automatically",
                "created": now,
                "currency": session.currency,
                "current_period_end": end,
                "current_period_start": now,
                "customer": customer,
                "ended_at": null,
                "items": {
                    "object": "list",
                    "data": [{
                        "id": item_id,
                        "object": "subscription_item",
                        "created": now,
                        "current_period_end": end,
                        "current_period_start": now,
                        "metadata": {},
                        "price": price,
                        "quantity": 1,
                        "subscription": subscription_id,
                    }],
                    "has_more": false,
                    "total_count": 1,
                    "url": format!("/v1/subscription_items?subscription={subscription_id}"),
                },
                "latest_invoice": null,
                "livemode": false,
                "metadata": session.child_metadata,
                "start_date": now,
                "status": "active",
                "transfer_data": transfer_data,
                "trial_end": null,
                "trial_start": null,
            });
            let mut record = SubscriptionRecord {
                json: subscription,
                ..record
            };
            let invoice = self.paid_invoice(&mut record, "subscription_create");
            self.subscriptions
                .insert(subscription_id.clone(), record.clone());
            events.push(self.event("customer.subscription.created", record.json.clone(), None));
            events.push(self.event("invoice.paid", invoice.clone(), None));
            json["subscription"] = json!(subscription_id);
            json["invoice"] = invoice["id"].clone();
        } else {
            let payment = PaymentRecord {
                id: new_id("pi_"),
                charge_id: new_id("ch_"),
                amount: session.amount,
                amount_refunded: 0,
                currency: session.currency.clone(),
                customer: customer.clone(),
                metadata: session.child_metadata.clone(),
                created: now,
                invoice: None,
                destination: session.destination.clone(),
                application_fee_amount: session.application_fee_amount,
                refunds: Vec::new(),
            };
            json["payment_intent"] = json!(payment.id);
            self.payments.insert(payment.id.clone(), payment);
        }
        if let Some(stored) = self.sessions.get_mut(session_id) {
            stored.json = json.clone();
        }
        events.push(self.event("checkout.session.completed", json, None));
        events
    }

    /// Session `session_id` expires unpaid: `checkout.session.expired`.
    pub fn expire(&mut self, session_id: &str) -> Event {
        let Some(session) = self.sessions.get_mut(session_id) else {
            panic!("stripe stand-in: no checkout session {session_id}");
        };
        assert_eq!(
            session.json["status"], "open",
            "stripe stand-in: session {session_id} is not open"
        );
        session.json["status"] = json!("expired");
        let json = session.json.clone();
        self.event("checkout.session.expired", json, None)
    }

    /// The next period of `subscription_id` is billed and paid:
    /// `[customer.subscription.updated, invoice.paid]`. A past-due subscription becomes
    /// active again.
    pub fn renew(&mut self, subscription_id: &str) -> Vec<Event> {
        let Some(mut record) = self.subscriptions.get(subscription_id).cloned() else {
            panic!("stripe stand-in: no subscription {subscription_id}");
        };
        let status = record.json["status"].as_str().unwrap_or("").to_owned();
        assert!(
            !matches!(status.as_str(), "canceled" | "incomplete_expired"),
            "stripe stand-in: subscription {subscription_id} is {status}"
        );
        let previous = json!({
            "current_period_start": record.json["current_period_start"],
            "current_period_end": record.json["current_period_end"],
            "latest_invoice": record.json["latest_invoice"],
            "status": record.json["status"],
        });
        record.period += 1;
        let start = period_boundary(
            record.anchor,
            &record.interval,
            record.interval_count,
            record.period,
        );
        let end = period_boundary(
            record.anchor,
            &record.interval,
            record.interval_count,
            record.period + 1,
        );
        record.json["current_period_start"] = json!(start);
        record.json["current_period_end"] = json!(end);
        record.json["items"]["data"][0]["current_period_start"] = json!(start);
        record.json["items"]["data"][0]["current_period_end"] = json!(end);
        record.json["status"] = json!("active");
        let invoice = self.paid_invoice(&mut record, "subscription_cycle");
        self.subscriptions
            .insert(subscription_id.to_owned(), record.clone());
        vec![
            self.event("customer.subscription.updated", record.json, Some(previous)),
            self.event("invoice.paid", invoice, None),
        ]
    }

    /// `subscription_id` ends now: `customer.subscription.deleted` (status `canceled`).
    pub fn cancel_subscription(&mut self, subscription_id: &str) -> Event {
        let now = self.now();
        let Some(record) = self.subscriptions.get_mut(subscription_id) else {
            panic!("stripe stand-in: no subscription {subscription_id}");
        };
        record.json["status"] = json!("canceled");
        record.json["canceled_at"] = json!(now);
        record.json["ended_at"] = json!(now);
        record.json["cancellation_details"]["reason"] = json!("cancellation_requested");
        let json = record.json.clone();
        self.event("customer.subscription.deleted", json, None)
    }

    /// `subscription_id` changes to `status` (`past_due`, `unpaid`, `active`, ...):
    /// `customer.subscription.updated` with the old status in `previous_attributes`.
    pub fn update_subscription_status(&mut self, subscription_id: &str, status: &str) -> Event {
        let now = self.now();
        let Some(record) = self.subscriptions.get_mut(subscription_id) else {
            panic!("stripe stand-in: no subscription {subscription_id}");
        };
        let previous = json!({ "status": record.json["status"] });
        record.json["status"] = json!(status);
        if matches!(status, "canceled" | "incomplete_expired") {
            record.json["canceled_at"] = json!(now);
            record.json["ended_at"] = json!(now);
        }
        let json = record.json.clone();
        self.event("customer.subscription.updated", json, Some(previous))
    }

    /// Refunds `amount` (default: all that is left) of `payment_intent`'s charge:
    /// `charge.refunded`, whose `refunded` is true once the whole amount is refunded.
    pub fn refund(&mut self, payment_intent: &str, amount: Option<i64>) -> Event {
        let now = self.now();
        let Some(payment) = self.payments.get_mut(payment_intent) else {
            panic!("stripe stand-in: no payment intent {payment_intent}");
        };
        let left = payment.amount - payment.amount_refunded;
        let amount = amount.unwrap_or(left);
        assert!(
            amount > 0 && amount <= left,
            "stripe stand-in: cannot refund {amount} of {payment_intent}, {left} is left"
        );
        let previous = json!({
            "amount_refunded": payment.amount_refunded,
            "refunded": payment.amount_refunded == payment.amount,
        });
        payment.amount_refunded += amount;
        payment.refunds.insert(
            0,
            json!({
                "id": new_id("re_"),
                "object": "refund",
                "amount": amount,
                "charge": payment.charge_id,
                "created": now,
                "currency": payment.currency,
                "metadata": {},
                "payment_intent": payment.id,
                "reason": null,
                "status": "succeeded",
            }),
        );
        let charge = charge_json(payment);
        self.event("charge.refunded", charge, Some(previous))
    }

    /// Bills the current period of `record`: a paid invoice with its payment intent and
    /// charge. Returns the invoice's JSON and points the subscription's `latest_invoice` at it.
    fn paid_invoice(&mut self, record: &mut SubscriptionRecord, billing_reason: &str) -> Value {
        let now = self.now();
        let subscription_id = record.json["id"].as_str().unwrap_or("").to_owned();
        let start = record.json["current_period_start"].clone();
        let end = record.json["current_period_end"].clone();
        let metadata = record.json["metadata"].clone();
        let invoice_id = new_id("in_");
        let payment = PaymentRecord {
            id: new_id("pi_"),
            charge_id: new_id("ch_"),
            amount: record.amount,
            amount_refunded: 0,
            currency: record.currency.clone(),
            customer: record.customer.clone(),
            metadata: json!({}),
            created: now,
            invoice: Some(invoice_id.clone()),
            destination: record.json["transfer_data"]["destination"]
                .as_str()
                .map(str::to_owned),
            application_fee_amount: None,
            refunds: Vec::new(),
        };
        let invoice = json!({
            "id": invoice_id,
            "object": "invoice",
            "amount_due": record.amount,
            "amount_paid": record.amount,
            "amount_remaining": 0,
            "attempt_count": 1,
            "attempted": true,
            "billing_reason": billing_reason,
            "charge": payment.charge_id,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": record.currency,
            "customer": record.customer,
            "hosted_invoice_url": null,
            "lines": {
                "object": "list",
                "data": [{
                    "id": new_id("il_"),
                    "object": "line_item",
                    "amount": record.amount,
                    "currency": record.currency,
                    "description": "1 × subscription",
                    "metadata": metadata,
                    "parent": {
                        "type": "subscription_item_details",
                        "subscription_item_details": {
                            "subscription": subscription_id,
                            "subscription_item": record.json["items"]["data"][0]["id"],
                        },
                    },
                    "period": { "start": start, "end": end },
                    "pricing": { "price_details": { "price": record.price_id } },
                    "quantity": 1,
                    "subscription": subscription_id,
                }],
                "has_more": false,
                "total_count": 1,
                "url": format!("/v1/invoices/{invoice_id}/lines"),
            },
            "livemode": false,
            "metadata": {},
            "number": null,
            "paid": true,
            "parent": {
                "type": "subscription_details",
                "quote_details": null,
                "subscription_details": { "metadata": metadata, "subscription": subscription_id },
            },
            "payment_intent": payment.id,
            "payments": {
                "object": "list",
                "data": [{
                    "object": "invoice_payment",
                    "amount_paid": record.amount,
                    "is_default": true,
                    "payment": { "type": "payment_intent", "payment_intent": payment.id },
                    "status": "paid",
                }],
                "has_more": false,
            },
            "period_end": now,
            "period_start": now,
            "status": "paid",
            "status_transitions": { "finalized_at": now, "paid_at": now },
            "subscription": subscription_id,
            "subscription_details": { "metadata": metadata },
            "subtotal": record.amount,
            "total": record.amount,
        });
        self.payments.insert(payment.id.clone(), payment);
        self.invoices.insert(invoice_id.clone(), invoice.clone());
        record.json["latest_invoice"] = json!(invoice_id);
        invoice
    }
}

/// A payment's charge as Stripe shows it.
pub(super) fn charge_json(payment: &PaymentRecord) -> Value {
    json!({
        "id": payment.charge_id,
        "object": "charge",
        "amount": payment.amount,
        "amount_captured": payment.amount,
        "amount_refunded": payment.amount_refunded,
        "application_fee_amount": payment.application_fee_amount,
        "captured": true,
        "created": payment.created,
        "currency": payment.currency,
        "customer": payment.customer,
        "invoice": payment.invoice,
        "livemode": false,
        "metadata": payment.metadata,
        "paid": true,
        "payment_intent": payment.id,
        "refunded": payment.amount_refunded == payment.amount,
        "refunds": {
            "object": "list",
            "data": payment.refunds,
            "has_more": false,
            "total_count": payment.refunds.len(),
            "url": format!("/v1/charges/{}/refunds", payment.charge_id),
        },
        "status": "succeeded",
        "transfer_data": payment.destination.as_ref().map(|d| json!({ "amount": null, "destination": d })),
    })
}

/// A payment intent as Stripe shows it.
pub(super) fn payment_intent_json(payment: &PaymentRecord) -> Value {
    json!({
        "id": payment.id,
        "object": "payment_intent",
        "amount": payment.amount,
        "amount_received": payment.amount,
        "application_fee_amount": payment.application_fee_amount,
        "created": payment.created,
        "currency": payment.currency,
        "customer": payment.customer,
        "latest_charge": payment.charge_id,
        "livemode": false,
        "metadata": payment.metadata,
        "status": "succeeded",
        "transfer_data": payment.destination.as_ref().map(|d| json!({ "destination": d })),
    })
}
