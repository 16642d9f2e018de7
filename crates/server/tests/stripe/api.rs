//! The HTTP side of the stand-in: authentication, idempotency keys, and the endpoints
//! greenroom calls, validated the way Stripe validates them, answering Stripe-shaped JSON.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::form::Params;
use super::params::*;
use super::state::{
    InjectedFailure, RecordedRequest, SavedResponse, SessionRecord, StripeState, new_id,
};

/// Stripe's error answer: `{"error": {"type", "message", "param"?, "code"?}}`.
#[derive(Debug, Clone)]
pub(super) struct ApiError {
    pub(super) status: u16,
    pub(super) type_: &'static str,
    pub(super) code: Option<&'static str>,
    pub(super) message: String,
    pub(super) param: Option<String>,
}

impl ApiError {
    pub(super) fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            type_: "invalid_request_error",
            code: None,
            message: message.into(),
            param: None,
        }
    }

    pub(super) fn param(mut self, param: impl Into<String>) -> ApiError {
        self.param = Some(param.into());
        self
    }

    pub(super) fn code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub(super) fn invalid(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(400, message).param(param)
    }

    pub(super) fn missing(param: &str) -> ApiError {
        ApiError::new(400, format!("Missing required param: {param}."))
            .param(param)
            .code("parameter_missing")
    }

    pub(super) fn unknown_param(param: &str) -> ApiError {
        ApiError::new(400, format!("Received unknown parameter: {param}"))
            .param(param)
            .code("parameter_unknown")
    }

    /// An object named in a parameter that does not exist (400), or in the URL (404).
    pub(super) fn no_such(status: u16, kind: &str, id: &str, param: &str) -> ApiError {
        ApiError::new(status, format!("No such {kind}: '{id}'"))
            .param(param)
            .code("resource_missing")
    }

    pub(super) fn body(&self) -> Value {
        let mut error = json!({ "type": self.type_, "message": self.message });
        if let Some(param) = &self.param {
            error["param"] = json!(param);
        }
        if let Some(code) = self.code {
            error["code"] = json!(code);
            error["doc_url"] = json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            ));
        }
        json!({ "error": error })
    }
}

type Answer = Result<Value, ApiError>;

/// The single handler: every request to the stand-in comes through here.
pub(super) async fn handle(
    State(shared): State<Arc<Mutex<StripeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = if method == Method::POST {
        Params::parse(&String::from_utf8_lossy(&body))
    } else {
        Params::parse(uri.query().unwrap_or(""))
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut request = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        params,
        idempotency_key: header("idempotency-key"),
        stripe_version: header("stripe-version"),
        stripe_account: header("stripe-account"),
        status: 0,
    };
    let authorization = header("authorization");
    let (status, body, replayed) = {
        let mut state = match shared.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (status, body, replayed) = state.serve(&request, authorization.as_deref());
        request.status = status;
        state.requests.push(request);
        (status, body, replayed)
    };
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&new_id("req_")) {
        headers.insert("request-id", id);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

impl StripeState {
    /// Answers one request: `(status, body, replayed from an idempotency key)`.
    fn serve(
        &mut self,
        request: &RecordedRequest,
        authorization: Option<&str>,
    ) -> (u16, Value, bool) {
        if let Some(InjectedFailure { status, message }) = self.failures.pop_front() {
            let type_ = if status >= 500 {
                "api_error"
            } else {
                "invalid_request_error"
            };
            let mut error = ApiError::new(status, message);
            error.type_ = type_;
            return (status, error.body(), false);
        }
        if let Err(error) = authenticate(authorization) {
            return (error.status, error.body(), false);
        }
        if let Some(version) = &request.stripe_version {
            self.api_version = version.clone();
        }
        let endpoint = format!("{} {}", request.method, request.path);
        let key = request
            .idempotency_key
            .clone()
            .filter(|_| request.method == "POST");
        if let Some(key) = &key
            && let Some(saved) = self.idempotency.get(key)
        {
            if saved.endpoint != endpoint {
                let error = ApiError::new(
                    400,
                    format!(
                        "Keys for idempotent requests can only be used for the same endpoint they were first used for ('{}' vs '{}'). Try using a key other than '{key}' if you meant to execute a different request.",
                        request.path,
                        saved.endpoint.split_once(' ').map_or("", |(_, p)| p),
                    ),
                );
                return (400, idempotency_error(error).body(), false);
            }
            if saved.params != request.params.canonical() {
                let error = ApiError::new(
                    400,
                    format!(
                        "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
                    ),
                );
                return (400, idempotency_error(error).body(), false);
            }
            return (saved.status, saved.body.clone(), true);
        }
        let connected = request.stripe_account.is_some();
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        let params = &request.params;
        let answer = match (request.method.as_str(), segments.as_slice()) {
            ("POST", ["v1", "products"]) => self.create_product(params),
            ("POST", ["v1", "prices"]) => self.create_price(params),
            ("GET", ["v1", "prices", id]) => self.retrieve_price(id),
            ("POST", ["v1", "prices", id]) => self.update_price(id, params),
            ("POST", ["v1", "checkout", "sessions"]) => self.create_session(params, connected),
            ("GET", ["v1", "checkout", "sessions", id]) => self.retrieve_session(id),
            (method, _) => Err(ApiError::new(
                404,
                format!(
                    "Unrecognized request URL ({method}: {}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
                    request.path
                ),
            )),
        };
        match answer {
            Ok(body) => {
                if let Some(key) = key {
                    self.idempotency.insert(
                        key,
                        SavedResponse {
                            endpoint,
                            params: request.params.canonical(),
                            status: 200,
                            body: body.clone(),
                        },
                    );
                }
                (200, body, false)
            }
            // Stripe saves no result for a request that failed validation.
            Err(error) => (error.status, error.body(), false),
        }
    }

    fn create_product(&mut self, params: &Params) -> Answer {
        reject_unknown(
            params,
            &[
                "name",
                "active",
                "description",
                "id",
                "images[#]",
                "metadata",
                "metadata[*]",
                "statement_descriptor",
                "tax_code",
                "type",
                "unit_label",
                "url",
                "expand[#]",
            ],
        )?;
        let name = required(params, "name")?;
        let metadata = parse_metadata(params, "metadata")?;
        let id = match params.get("id") {
            Some(id) if self.products.contains_key(id) => {
                return Err(ApiError::invalid("id", "Product already exists.")
                    .code("resource_already_exists"));
            }
            Some(id) => id.to_owned(),
            None => new_id("prod_"),
        };
        let mut product = self.product_json(&id, name, metadata);
        if let Some(active) = params.get("active") {
            product["active"] = json!(boolean(active, "active")?);
        }
        self.products.insert(id, product.clone());
        Ok(product)
    }

    fn create_price(&mut self, params: &Params) -> Answer {
        reject_unknown(
            params,
            &[
                "currency",
                "product",
                "product_data[name]",
                "product_data[metadata][*]",
                "unit_amount",
                "recurring[interval]",
                "recurring[interval_count]",
                "recurring[usage_type]",
                "metadata",
                "metadata[*]",
                "nickname",
                "lookup_key",
                "active",
                "tax_behavior",
                "expand[#]",
            ],
        )?;
        let currency = currency(params, "currency")?;
        let product = match (params.get("product"), params.get("product_data[name]")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "product",
                    "You may only specify one of these parameters: product, product_data.",
                ));
            }
            (Some(product), None) => {
                if !self.products.contains_key(product) {
                    return Err(ApiError::no_such(400, "product", product, "product"));
                }
                product.to_owned()
            }
            (None, Some(name)) => {
                let id = new_id("prod_");
                let product = self.product_json(&id, name, json!({}));
                self.products.insert(id.clone(), product);
                id
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "product",
                    "You must specify either `product` or `product_data` when creating a price.",
                ));
            }
        };
        let amount = match params.get("unit_amount") {
            Some(text) => non_negative(text, "unit_amount")?,
            None => {
                return Err(ApiError::invalid(
                    "unit_amount",
                    "You must pass either `unit_amount`, `unit_amount_decimal`, or `custom_unit_amount` when creating a price with `billing_scheme=per_unit`.",
                ));
            }
        };
        let recurring = recurring(params, "recurring")?;
        let mut active = true;
        if let Some(text) = params.get("active") {
            active = boolean(text, "active")?;
        }
        let metadata = parse_metadata(params, "metadata")?;
        let id = new_id("price_");
        let price = self.price_json(
            &id,
            &product,
            amount,
            &currency,
            recurring.as_ref().map(|(i, c)| (i.as_str(), *c)),
            metadata,
            active,
        );
        self.prices.insert(id, price.clone());
        Ok(price)
    }

    fn retrieve_price(&self, id: &str) -> Answer {
        self.prices
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::no_such(404, "price", id, "price"))
    }

    fn update_price(&mut self, id: &str, params: &Params) -> Answer {
        reject_unknown(
            params,
            &[
                "active",
                "metadata",
                "metadata[*]",
                "nickname",
                "lookup_key",
                "expand[#]",
            ],
        )?;
        let active = params
            .get("active")
            .map(|text| boolean(text, "active"))
            .transpose()?;
        let metadata = params
            .has("metadata")
            .then(|| parse_metadata(params, "metadata"))
            .transpose()?;
        let price = self
            .prices
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such(404, "price", id, "price"))?;
        if let Some(active) = active {
            price["active"] = json!(active);
        }
        if let (Some(Value::Object(new)), Some(Value::Object(old))) =
            (metadata, price.get_mut("metadata"))
        {
            for (k, v) in new {
                // An empty value unsets the key.
                if v.as_str() == Some("") {
                    old.remove(&k);
                } else {
                    old.insert(k, v);
                }
            }
        }
        if let Some(nickname) = params.get("nickname") {
            price["nickname"] = json!(nickname);
        }
        Ok(price.clone())
    }

    fn retrieve_session(&self, id: &str) -> Answer {
        self.sessions
            .get(id)
            .map(|s| s.json.clone())
            .ok_or_else(|| ApiError::no_such(404, "checkout.session", id, "session"))
    }

    fn create_session(&mut self, params: &Params, connected: bool) -> Answer {
        reject_unknown(
            params,
            &[
                "mode",
                "success_url",
                "cancel_url",
                "client_reference_id",
                "customer",
                "customer_email",
                "currency",
                "locale",
                "ui_mode",
                "expires_at",
                "allow_promotion_codes",
                "expand[#]",
                "metadata",
                "metadata[*]",
                "line_items[#][price]",
                "line_items[#][quantity]",
                "line_items[#][price_data][currency]",
                "line_items[#][price_data][unit_amount]",
                "line_items[#][price_data][product]",
                "line_items[#][price_data][product_data][name]",
                "line_items[#][price_data][product_data][description]",
                "line_items[#][price_data][product_data][metadata][*]",
                "line_items[#][price_data][recurring][interval]",
                "line_items[#][price_data][recurring][interval_count]",
                "payment_intent_data[metadata]",
                "payment_intent_data[metadata][*]",
                "payment_intent_data[application_fee_amount]",
                "payment_intent_data[transfer_data][destination]",
                "payment_intent_data[transfer_data][amount]",
                "payment_intent_data[on_behalf_of]",
                "payment_intent_data[description]",
                "payment_intent_data[receipt_email]",
                "subscription_data[metadata]",
                "subscription_data[metadata][*]",
                "subscription_data[application_fee_percent]",
                "subscription_data[transfer_data][destination]",
                "subscription_data[transfer_data][amount_percent]",
                "subscription_data[on_behalf_of]",
                "subscription_data[description]",
                "subscription_data[trial_period_days]",
            ],
        )?;
        let mode = required(params, "mode")?;
        let subscription = match mode {
            "payment" => false,
            "subscription" => true,
            "setup" => {
                return Err(ApiError::invalid(
                    "mode",
                    "The stand-in supports `payment` and `subscription` mode only.",
                ));
            }
            other => {
                return Err(ApiError::invalid(
                    "mode",
                    format!(
                        "Invalid mode: must be one of payment, setup, or subscription (got {other:?})"
                    ),
                ));
            }
        };
        let success_url = url(params, "success_url", true)?.unwrap_or_default();
        let cancel_url = url(params, "cancel_url", false)?;
        if let Some(reference) = params.get("client_reference_id")
            && reference.chars().count() > 200
        {
            return Err(ApiError::invalid(
                "client_reference_id",
                "Invalid string: client_reference_id must be at most 200 characters",
            ));
        }
        let customer_email = params.get("customer_email");
        if let Some(email) = customer_email
            && !looks_like_email(email)
        {
            return Err(ApiError::invalid(
                "customer_email",
                format!("Invalid email address: {email}"),
            ));
        }

        // The line items.
        let indices = params.indices("line_items");
        if indices.is_empty() {
            return Err(ApiError::missing("line_items"));
        }
        let mut lines = Vec::new();
        for index in indices {
            lines.push(self.line_item(params, index)?);
        }
        let currency = lines[0].currency.clone();
        if lines.iter().any(|line| line.currency != currency) {
            return Err(ApiError::invalid(
                "line_items",
                "All prices on a Checkout Session must have the same currency.",
            ));
        }
        let recurring_lines = lines.iter().filter(|line| line.interval.is_some()).count();
        if !subscription && recurring_lines > 0 {
            return Err(ApiError::invalid(
                "line_items",
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.",
            ));
        }
        if subscription && recurring_lines == 0 {
            return Err(ApiError::invalid(
                "line_items",
                "You must provide at least one recurring price in `subscription` mode when using prices.",
            ));
        }
        let amount_total: i64 = lines.iter().map(|line| line.amount * line.quantity).sum();

        // Connect and the metadata copied to what the session creates.
        let metadata = parse_metadata(params, "metadata")?;
        let (child_metadata, destination, fee_amount, fee_percent) = if subscription {
            if params.has("payment_intent_data") {
                return Err(ApiError::invalid(
                    "payment_intent_data",
                    "You can not pass `payment_intent_data` in `subscription` mode.",
                ));
            }
            let destination = destination(params, "subscription_data[transfer_data][destination]")?;
            let fee_percent = match params.get("subscription_data[application_fee_percent]") {
                None => None,
                Some(text) => Some(percent(text, "subscription_data[application_fee_percent]")?),
            };
            if fee_percent.is_some()
                && destination.is_none()
                && !connected
                && params.get("subscription_data[on_behalf_of]").is_none()
            {
                return Err(ApiError::invalid(
                    "subscription_data[application_fee_percent]",
                    "Can only apply an application_fee_percent when the subscription is attempting a direct payment (using an OAuth key or Stripe-Account header) or destination payment (using `transfer_data[destination]`).",
                ));
            }
            (
                parse_metadata(params, "subscription_data[metadata]")?,
                destination,
                None,
                fee_percent,
            )
        } else {
            if params.has("subscription_data") {
                return Err(ApiError::invalid(
                    "subscription_data",
                    "You can not pass `subscription_data` in `payment` mode.",
                ));
            }
            let destination =
                destination(params, "payment_intent_data[transfer_data][destination]")?;
            let fee_amount = match params.get("payment_intent_data[application_fee_amount]") {
                None => None,
                Some(text) => Some(non_negative(
                    text,
                    "payment_intent_data[application_fee_amount]",
                )?),
            };
            if fee_amount.is_some()
                && destination.is_none()
                && !connected
                && params.get("payment_intent_data[on_behalf_of]").is_none()
            {
                return Err(ApiError::invalid(
                    "payment_intent_data[application_fee_amount]",
                    "Can only apply an application_fee_amount when the PaymentIntent is attempting a direct payment (using an OAuth key or Stripe-Account header) or destination payment (using `transfer_data[destination]`).",
                ));
            }
            if let Some(fee) = fee_amount
                && fee > amount_total
            {
                return Err(ApiError::invalid(
                    "payment_intent_data[application_fee_amount]",
                    format!(
                        "The application fee ({fee}) must not be greater than the amount of the payment ({amount_total})."
                    ),
                ));
            }
            (
                parse_metadata(params, "payment_intent_data[metadata]")?,
                destination,
                fee_amount,
                None,
            )
        };

        let now = self.now();
        let id = new_id("cs_test_");
        // Two halves: one `json!` this large exceeds the macro recursion limit.
        let mut json = json!({
            "id": id,
            "object": "checkout.session",
            "adaptive_pricing": null,
            "after_expiration": null,
            "allow_promotion_codes": null,
            "amount_subtotal": amount_total,
            "amount_total": amount_total,
            "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
            "billing_address_collection": null,
            "cancel_url": cancel_url,
            "client_reference_id": params.get("client_reference_id"),
            "client_secret": null,
            "consent": null,
            "consent_collection": null,
            "created": now,
            "currency": currency,
            "custom_fields": [],
            "custom_text": {
                "after_submit": null,
                "shipping_address": null,
                "submit": null,
                "terms_of_service_acceptance": null,
            },
            "customer": params.get("customer"),
            "customer_creation": if subscription { Value::Null } else { json!("if_required") },
            "customer_details": null,
            "customer_email": customer_email,
            "expires_at": now + 24 * 3600,
        });
        let rest = json!({
            "invoice": null,
            "invoice_creation": null,
            "livemode": false,
            "locale": null,
            "metadata": metadata.clone(),
            "mode": mode,
            "payment_intent": null,
            "payment_link": null,
            "payment_method_collection": if subscription { json!("always") } else { Value::Null },
            "payment_method_options": {},
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "phone_number_collection": { "enabled": false },
            "recovered_from": null,
            "setup_intent": null,
            "shipping_address_collection": null,
            "shipping_cost": null,
            "shipping_options": [],
            "status": "open",
            "submit_type": null,
            "subscription": null,
            "success_url": success_url,
            "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
            "ui_mode": "hosted_page",
            "url": format!("https://checkout.stripe.com/c/pay/{id}"),
        });
        if let (Value::Object(json), Value::Object(rest)) = (&mut json, rest) {
            json.extend(rest);
        }
        let line = &lines[0];
        self.sessions.insert(
            id,
            SessionRecord {
                json: json.clone(),
                subscription,
                price_id: line.price_id.clone(),
                amount: amount_total,
                currency,
                interval: line.interval.clone(),
                interval_count: line.interval_count,
                metadata,
                child_metadata,
                destination,
                application_fee_amount: fee_amount,
                application_fee_percent: fee_percent,
            },
        );
        Ok(json)
    }

    /// One `line_items[index]`: an existing active price, or `price_data` (which makes an
    /// inactive inline price, as Stripe does).
    fn line_item(&mut self, params: &Params, index: usize) -> Result<Line, ApiError> {
        let prefix = format!("line_items[{index}]");
        let quantity_param = format!("{prefix}[quantity]");
        let quantity = match params.get(&quantity_param) {
            None => return Err(ApiError::missing(&quantity_param)),
            Some(text) => match text.parse::<i64>() {
                Ok(q) if q > 0 => q,
                _ => {
                    return Err(ApiError::invalid(
                        &quantity_param,
                        format!("Invalid positive integer: {text}"),
                    ));
                }
            },
        };
        let price_param = format!("{prefix}[price]");
        let data = format!("{prefix}[price_data]");
        match (params.get(&price_param), params.has(&data)) {
            (Some(_), true) | (None, false) => Err(ApiError::invalid(
                &prefix,
                format!("You must specify either `price` or `price_data` in {prefix}."),
            )),
            (Some(price_id), false) => {
                let price = self
                    .prices
                    .get(price_id)
                    .ok_or_else(|| ApiError::no_such(400, "price", price_id, &price_param))?;
                if price["active"] != json!(true) {
                    return Err(ApiError::invalid(
                        &price_param,
                        "The price specified is inactive. This field only accepts active prices.",
                    ));
                }
                Ok(Line {
                    price_id: price_id.to_owned(),
                    amount: price["unit_amount"].as_i64().unwrap_or(0),
                    quantity,
                    currency: price["currency"].as_str().unwrap_or("").to_owned(),
                    interval: price["recurring"]["interval"].as_str().map(str::to_owned),
                    interval_count: price["recurring"]["interval_count"]
                        .as_u64()
                        .and_then(|c| u32::try_from(c).ok())
                        .unwrap_or(1),
                })
            }
            (None, true) => {
                let currency = currency(params, &format!("{data}[currency]"))?;
                let amount_param = format!("{data}[unit_amount]");
                let amount = match params.get(&amount_param) {
                    Some(text) => non_negative(text, &amount_param)?,
                    None => return Err(ApiError::missing(&amount_param)),
                };
                let product = match params.get(&format!("{data}[product]")) {
                    Some(product) => {
                        if !self.products.contains_key(product) {
                            return Err(ApiError::no_such(
                                400,
                                "product",
                                product,
                                &format!("{data}[product]"),
                            ));
                        }
                        product.to_owned()
                    }
                    None => {
                        let name_param = format!("{data}[product_data][name]");
                        let name = match params.get(&name_param) {
                            Some(name) if !name.is_empty() => name,
                            _ => return Err(ApiError::missing(&name_param)),
                        };
                        let id = new_id("prod_");
                        let product = self.product_json(&id, name, json!({}));
                        self.products.insert(id.clone(), product);
                        id
                    }
                };
                let recurring = recurring(params, &format!("{data}[recurring]"))?;
                let id = new_id("price_");
                let price = self.price_json(
                    &id,
                    &product,
                    amount,
                    &currency,
                    recurring.as_ref().map(|(i, c)| (i.as_str(), *c)),
                    json!({}),
                    false,
                );
                self.prices.insert(id.clone(), price);
                Ok(Line {
                    price_id: id,
                    amount,
                    quantity,
                    currency,
                    interval: recurring.as_ref().map(|(i, _)| i.clone()),
                    interval_count: recurring.map_or(1, |(_, c)| c),
                })
            }
        }
    }
}

/// A resolved line item.
struct Line {
    price_id: String,
    amount: i64,
    quantity: i64,
    currency: String,
    interval: Option<String>,
    interval_count: u32,
}
