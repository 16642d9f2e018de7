//! The calls greenroom makes to Stripe's API, built on async-stripe (1.0.0-rc.10): products
//! and prices for passes, Checkout Sessions for purchases (one-time payments and
//! subscriptions, optionally as Connect destination charges with a platform fee).
//!
//! Invariants:
//! - every create carries the caller's idempotency key (`Idempotency-Key` header), so a retry
//!   of the same operation (by this client after a network error, or by the caller after a
//!   crash) returns the object Stripe made the first time instead of a second one;
//! - amounts are integer minor units; the subscription fee percentage Stripe wants as a
//!   decimal is written from basis points with integer arithmetic only (250 bps → `2.5`);
//! - a failed call is [`ControlError::Stripe`] naming the operation, Stripe's HTTP status
//!   when there was one and Stripe's own error message; the secret key is never printed.
//!
//! How async-stripe is used: the requests are its generated types (`CreateProduct`,
//! `CreatePrice`, `UpdatePrice`, `CreateCheckoutSession`), sent with its hyper client (the
//! base URL is its `ClientBuilder::url`, the idempotency key its
//! `RequestStrategy::Idempotent`), and the answers are parsed into its `Product`, `Price` and
//! `CheckoutSession`. One field goes through the lower-level request builder: the generated
//! `subscription_data.application_fee_percent` is an `f64`, so the session's form is built
//! by the generated type and the exact decimal is appended to the encoded body.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionPaymentIntentDataTransferData,
    CreateCheckoutSessionSubscriptionData, CreateCheckoutSessionSubscriptionDataTransferData,
    ProductData,
};
use stripe_checkout::{CheckoutSession, CheckoutSessionMode};
use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, UpdatePrice,
};
use stripe_product::product::CreateProduct;
use stripe_types::Currency;

use crate::ControlError;
use crate::money::{BPS_PER_UNIT, currency_exponent};

/// Stripe's API, used when no other base URL is configured.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// The metadata key under which greenroom puts its checkout id, on the session and on the
/// payment intent or subscription the session creates.
pub const CHECKOUT_METADATA_KEY: &str = "greenroom_checkout";

/// Each attempt of a call gives up after this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per call: the first and one retry (same idempotency key) after a network error,
/// a timeout, or a 409/429/5xx answer.
const ATTEMPTS: u32 = 2;
const RETRY_BACKOFF: Duration = Duration::from_millis(300);

/// A price's billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Month,
    Year,
}

/// What a Checkout Session sells: a one-time payment or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutMode {
    Payment,
    Subscription,
}

/// The session's single line item (quantity 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutLine {
    /// A Price made beforehand (`price_...`); a recurring one for subscription mode.
    Price(String),
    /// A one-time amount priced inline (`price_data` with `product_data`), e.g. a tip or a
    /// token pack. Payment mode only: Stripe refuses it in subscription mode.
    Inline {
        name: String,
        amount_minor: i64,
        currency: String,
    },
}

/// Everything greenroom puts into a Checkout Session.
#[derive(Debug, Clone)]
pub struct CheckoutSessionRequest {
    pub mode: CheckoutMode,
    pub line: CheckoutLine,
    /// Shown in Stripe's dashboard and returned on the completed session (≤ 200 characters).
    pub client_reference_id: Option<String>,
    /// Put on the session and copied to what the session creates: `payment_intent_data.metadata`
    /// in payment mode, `subscription_data.metadata` in subscription mode (so subscription
    /// and invoice events carry it too). greenroom puts [`CHECKOUT_METADATA_KEY`] here.
    pub metadata: Vec<(String, String)>,
    /// Prefills the buyer's email on Stripe's page.
    pub customer_email: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
    /// Connect: the creator's connected account (`acct_...`) that receives the money as a
    /// destination charge (`payment_intent_data.transfer_data.destination` or
    /// `subscription_data.transfer_data.destination`).
    pub destination: Option<String>,
    /// Payment mode with a destination: the platform's fee in minor units
    /// (`payment_intent_data.application_fee_amount`).
    pub application_fee_minor: Option<i64>,
    /// Subscription mode with a destination: the platform's fee in basis points, sent as
    /// `subscription_data.application_fee_percent` (500 → `5`, 250 → `2.5`).
    pub application_fee_bps: Option<u32>,
    /// Sent as the `Idempotency-Key` header (1 to 255 characters).
    pub idempotency_key: String,
}

/// A Checkout Session Stripe made: its id (`cs_...`) and the page the buyer is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSession {
    pub id: String,
    pub url: String,
}

/// A client of Stripe's API with one secret key. Cheap to clone.
#[derive(Clone)]
pub struct StripeClient {
    inner: stripe::Client,
    api_base: String,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// A client for `secret_key` (`sk_live_...`, `sk_test_...` or a restricted `rk_...`)
    /// talking to `api_base` (e.g. `http://127.0.0.1:PORT` in tests; default
    /// [`DEFAULT_API_BASE`]). Nothing is sent yet.
    pub fn new(secret_key: &str, api_base: Option<&str>) -> Result<StripeClient, ControlError> {
        let config_error = |reason: String| ControlError::Stripe {
            operation: "configure the client",
            status: None,
            reason,
        };
        let secret_key = secret_key.trim();
        if secret_key.is_empty() {
            return Err(config_error("the secret key is empty".to_owned()));
        }
        // async-stripe appends "v1/..." to the base it is given.
        let api_base = format!(
            "{}/",
            api_base.unwrap_or(DEFAULT_API_BASE).trim_end_matches('/')
        );
        if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
            return Err(config_error(format!(
                "the API base {api_base:?} is not an http(s) URL"
            )));
        }
        let inner = stripe::ClientBuilder::new(secret_key)
            .url(api_base.clone())
            .timeout(ATTEMPT_TIMEOUT)
            .app_info(
                "greenroom",
                Some(env!("CARGO_PKG_VERSION").to_owned()),
                None,
            )
            .build()
            .map_err(|err| config_error(err.to_string()))?;
        Ok(StripeClient { inner, api_base })
    }

    /// Creates a Product (`POST /v1/products`) named `name`; returns its id (`prod_...`).
    pub async fn create_product(
        &self,
        name: &str,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> Result<String, ControlError> {
        const OPERATION: &str = "create a product";
        let strategy = idempotent(OPERATION, idempotency_key)?;
        let request = CreateProduct::new(name).metadata(to_map(metadata));
        let product = self
            .call(OPERATION, || {
                request
                    .customize()
                    .request_strategy(strategy.clone())
                    .send(&self.inner)
            })
            .await?;
        Ok(product.id.to_string())
    }

    /// Creates a Price (`POST /v1/prices`) of `amount_minor` `currency` for `product_id`,
    /// one-time or recurring every `recurring` period; returns its id (`price_...`).
    pub async fn create_price(
        &self,
        product_id: &str,
        amount_minor: i64,
        currency: &str,
        recurring: Option<Interval>,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> Result<String, ControlError> {
        const OPERATION: &str = "create a price";
        let strategy = idempotent(OPERATION, idempotency_key)?;
        let mut request = CreatePrice::new(currency_of(currency)?)
            .product(product_id)
            .unit_amount(positive_amount(amount_minor)?)
            .metadata(to_map(metadata));
        if let Some(interval) = recurring {
            request = request.recurring(CreatePriceRecurring::new(match interval {
                Interval::Month => CreatePriceRecurringInterval::Month,
                Interval::Year => CreatePriceRecurringInterval::Year,
            }));
        }
        let price = self
            .call(OPERATION, || {
                request
                    .customize()
                    .request_strategy(strategy.clone())
                    .send(&self.inner)
            })
            .await?;
        Ok(price.id.to_string())
    }

    /// Retires a Price (`POST /v1/prices/{id}` with `active=false`): it can no longer be
    /// bought; subscriptions on it continue. Deactivating an inactive price is harmless.
    pub async fn deactivate_price(&self, price_id: &str) -> Result<(), ControlError> {
        const OPERATION: &str = "deactivate a price";
        let request = UpdatePrice::new(price_id).active(false);
        self.call(OPERATION, || request.customize().send(&self.inner))
            .await?;
        Ok(())
    }

    /// Creates a hosted Checkout Session (`POST /v1/checkout/sessions`) for one item,
    /// quantity 1; returns its id and URL.
    pub async fn create_checkout_session(
        &self,
        request: &CheckoutSessionRequest,
    ) -> Result<CreatedSession, ControlError> {
        const OPERATION: &str = "create a checkout session";
        let strategy = idempotent(OPERATION, &request.idempotency_key)?;
        let (create, fee_percent) = session_form(request)?;
        let session = self
            .call(OPERATION, || {
                let mut form = create.build();
                if let Some(percent) = &fee_percent {
                    let body = form.body.get_or_insert_with(String::new);
                    if !body.is_empty() {
                        body.push('&');
                    }
                    body.push_str("subscription_data[application_fee_percent]=");
                    body.push_str(percent);
                }
                form.customize::<CheckoutSession>()
                    .request_strategy(strategy.clone())
                    .send(&self.inner)
            })
            .await?;
        let url = session.url.clone().ok_or_else(|| ControlError::Stripe {
            operation: OPERATION,
            status: None,
            reason: format!("session {} has no URL", session.id),
        })?;
        Ok(CreatedSession {
            id: session.id.to_string(),
            url,
        })
    }

    /// Runs one API call, retrying once (same request, so the same idempotency key) when
    /// the failure may be transient, and maps the failure.
    async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        mut attempt: F,
    ) -> Result<T, ControlError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StripeError>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(err) if tries < ATTEMPTS && is_transient(&err) => {
                    tracing::warn!(operation, error = %brief(&err), "Stripe call failed, retrying");
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Err(err) => {
                    let error = to_control_error(operation, err);
                    tracing::warn!(operation, error = %error, "Stripe call failed");
                    return Err(error);
                }
            }
        }
    }
}

/// The session's form, and the fee percentage to append to it (subscription mode).
fn session_form(
    request: &CheckoutSessionRequest,
) -> Result<(CreateCheckoutSession, Option<String>), ControlError> {
    let invalid = |reason: &str| ControlError::InvalidAmount {
        reason: reason.to_owned(),
    };
    if request.destination.is_none()
        && (request.application_fee_minor.is_some() || request.application_fee_bps.is_some())
    {
        return Err(invalid(
            "an application fee needs a destination (connected) account",
        ));
    }
    match request.mode {
        CheckoutMode::Payment if request.application_fee_bps.is_some() => {
            return Err(invalid(
                "a payment-mode session takes its fee in minor units, not basis points",
            ));
        }
        CheckoutMode::Subscription if request.application_fee_minor.is_some() => {
            return Err(invalid(
                "a subscription-mode session takes its fee in basis points, not minor units",
            ));
        }
        _ => {}
    }
    if request.application_fee_minor.is_some_and(|fee| fee < 0) {
        return Err(invalid("the application fee is negative"));
    }

    let mut line = CreateCheckoutSessionLineItems::new();
    line.quantity = Some(1);
    match &request.line {
        CheckoutLine::Price(price) => line.price = Some(price.clone()),
        CheckoutLine::Inline {
            name,
            amount_minor,
            currency,
        } => {
            let mut price_data =
                CreateCheckoutSessionLineItemsPriceData::new(currency_of(currency)?);
            price_data.unit_amount = Some(positive_amount(*amount_minor)?);
            price_data.product_data = Some(ProductData::new(name.as_str()));
            line.price_data = Some(price_data);
        }
    }
    let metadata: HashMap<String, String> = request.metadata.iter().cloned().collect();
    let mut create = CreateCheckoutSession::new()
        .line_items(vec![line])
        .metadata(metadata.clone())
        .success_url(request.success_url.as_str())
        .cancel_url(request.cancel_url.as_str());
    if let Some(reference) = &request.client_reference_id {
        create = create.client_reference_id(reference.as_str());
    }
    if let Some(email) = &request.customer_email {
        create = create.customer_email(email.as_str());
    }
    let mut fee_percent = None;
    match request.mode {
        CheckoutMode::Payment => {
            let mut data = CreateCheckoutSessionPaymentIntentData::new();
            data.metadata = Some(metadata);
            if let Some(destination) = &request.destination {
                data.transfer_data = Some(CreateCheckoutSessionPaymentIntentDataTransferData::new(
                    destination.as_str(),
                ));
                data.application_fee_amount = request.application_fee_minor;
            }
            create = create
                .mode(CheckoutSessionMode::Payment)
                .payment_intent_data(data);
        }
        CheckoutMode::Subscription => {
            let mut data = CreateCheckoutSessionSubscriptionData::new();
            data.metadata = Some(metadata);
            if let Some(destination) = &request.destination {
                data.transfer_data = Some(CreateCheckoutSessionSubscriptionDataTransferData::new(
                    destination.as_str(),
                ));
                if let Some(bps) = request.application_fee_bps {
                    fee_percent = Some(percent_from_bps(bps)?);
                }
            }
            create = create
                .mode(CheckoutSessionMode::Subscription)
                .subscription_data(data);
        }
    }
    Ok((create, fee_percent))
}

/// `bps` basis points as the decimal percentage Stripe takes (at most two decimals), with
/// integers only: 500 → `5`, 250 → `2.5`, 5 → `0.05`, 10000 → `100`.
pub fn percent_from_bps(bps: u32) -> Result<String, ControlError> {
    if bps > BPS_PER_UNIT {
        return Err(ControlError::InvalidAmount {
            reason: format!("a fee of {bps} basis points is over 100 %"),
        });
    }
    let (whole, hundredths) = (bps / 100, bps % 100);
    Ok(match hundredths {
        0 => whole.to_string(),
        h if h % 10 == 0 => format!("{whole}.{}", h / 10),
        h => format!("{whole}.{h:02}"),
    })
}

fn idempotent(operation: &'static str, key: &str) -> Result<RequestStrategy, ControlError> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|err| ControlError::Stripe {
            operation,
            status: None,
            reason: format!("unusable idempotency key: {err}"),
        })
}

fn currency_of(code: &str) -> Result<Currency, ControlError> {
    if currency_exponent(code).is_none() {
        return Err(ControlError::InvalidAmount {
            reason: format!("{code:?} is not an ISO 4217 currency code"),
        });
    }
    // Stripe's codes are lowercase; an unknown one parses as `Currency::Unknown` and is
    // sent as written, for Stripe to judge.
    Ok(code
        .to_ascii_lowercase()
        .parse()
        .unwrap_or_else(|_| Currency::Unknown(code.to_ascii_lowercase())))
}

fn positive_amount(amount_minor: i64) -> Result<i64, ControlError> {
    if amount_minor <= 0 {
        return Err(ControlError::InvalidAmount {
            reason: format!("the amount must be positive, not {amount_minor}"),
        });
    }
    Ok(amount_minor)
}

fn to_map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn is_transient(err: &StripeError) -> bool {
    match err {
        StripeError::ClientError(_) | StripeError::Timeout => true,
        StripeError::Stripe(_, status) => matches!(status, 409 | 429 | 500..=599),
        StripeError::JSONDeserialize(_) | StripeError::ConfigError(_) => false,
    }
}

fn brief(err: &StripeError) -> String {
    match err {
        StripeError::Stripe(api, status) => format!(
            "{status}: {}",
            api.message.as_deref().unwrap_or(api.type_.as_str())
        ),
        other => other.to_string(),
    }
}

fn to_control_error(operation: &'static str, err: StripeError) -> ControlError {
    let (status, reason) = match err {
        StripeError::Stripe(api, status) => (
            Some(status),
            api.message
                .clone()
                .unwrap_or_else(|| api.type_.as_str().to_owned()),
        ),
        StripeError::JSONDeserialize(detail) => {
            (None, format!("Stripe's answer could not be read: {detail}"))
        }
        StripeError::ClientError(detail) => (None, format!("could not reach Stripe: {detail}")),
        StripeError::ConfigError(detail) => (None, format!("client configuration: {detail}")),
        StripeError::Timeout => (None, "Stripe did not answer in time".to_owned()),
    };
    ControlError::Stripe {
        operation,
        status,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_percentages_are_exact_decimals() {
        let cases = [
            (0, "0"),
            (5, "0.05"),
            (50, "0.5"),
            (99, "0.99"),
            (250, "2.5"),
            (500, "5"),
            (1234, "12.34"),
            (1010, "10.1"),
            (10_000, "100"),
        ];
        for (bps, text) in cases {
            assert_eq!(percent_from_bps(bps).ok().as_deref(), Some(text), "{bps}");
        }
        assert!(percent_from_bps(10_001).is_err());
    }

    fn request(mode: CheckoutMode) -> CheckoutSessionRequest {
        CheckoutSessionRequest {
            mode,
            line: CheckoutLine::Price("price_1".into()),
            client_reference_id: None,
            metadata: vec![(CHECKOUT_METADATA_KEY.into(), "abc".into())],
            customer_email: None,
            success_url: "https://example.test/ok".into(),
            cancel_url: "https://example.test/no".into(),
            destination: Some("acct_1".into()),
            application_fee_minor: None,
            application_fee_bps: None,
            idempotency_key: "k".into(),
        }
    }

    fn body(request: &CheckoutSessionRequest) -> String {
        let (create, percent) = match session_form(request) {
            Ok(form) => form,
            Err(err) => panic!("{err}"),
        };
        let mut body = create.build().body.unwrap_or_default();
        if let Some(percent) = percent {
            body.push_str(&format!(
                "&subscription_data[application_fee_percent]={percent}"
            ));
        }
        body
    }

    #[test]
    fn payment_mode_puts_connect_and_metadata_on_the_payment_intent() {
        let mut req = request(CheckoutMode::Payment);
        req.application_fee_minor = Some(25);
        let body = body(&req);
        for part in [
            "mode=payment",
            "line_items[0][price]=price_1",
            "line_items[0][quantity]=1",
            "metadata[greenroom_checkout]=abc",
            "payment_intent_data[metadata][greenroom_checkout]=abc",
            "payment_intent_data[application_fee_amount]=25",
            "payment_intent_data[transfer_data][destination]=acct_1",
        ] {
            assert!(body.contains(part), "{part} missing from {body}");
        }
        assert!(!body.contains("subscription_data"), "{body}");
    }

    #[test]
    fn subscription_mode_puts_connect_and_metadata_on_the_subscription() {
        let mut req = request(CheckoutMode::Subscription);
        req.application_fee_bps = Some(250);
        let body = body(&req);
        for part in [
            "mode=subscription",
            "subscription_data[metadata][greenroom_checkout]=abc",
            "subscription_data[transfer_data][destination]=acct_1",
            "subscription_data[application_fee_percent]=2.5",
        ] {
            assert!(body.contains(part), "{part} missing from {body}");
        }
        assert!(!body.contains("payment_intent_data"), "{body}");
    }

    #[test]
    fn mismatched_fees_are_refused_before_calling_stripe() {
        let mut req = request(CheckoutMode::Payment);
        req.application_fee_bps = Some(500);
        assert!(matches!(
            session_form(&req),
            Err(ControlError::InvalidAmount { .. })
        ));
        let mut req = request(CheckoutMode::Subscription);
        req.application_fee_minor = Some(5);
        assert!(session_form(&req).is_err());
        let mut req = request(CheckoutMode::Payment);
        req.destination = None;
        req.application_fee_minor = Some(5);
        assert!(session_form(&req).is_err());
    }

    #[test]
    fn a_client_needs_a_key_and_an_http_base() {
        assert!(StripeClient::new("", None).is_err());
        assert!(StripeClient::new("sk_test_x", Some("ftp://x")).is_err());
    }
}
