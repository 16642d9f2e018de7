//! Request parameters checked the way Stripe checks them: the API key, required and unknown
//! parameters, amounts, booleans, currencies, recurring prices, metadata, Connect
//! destinations, fee percentages, URLs and e-mail addresses.

use serde_json::{Map, Value};

use super::api::ApiError;
use super::form::Params;

pub(super) fn authenticate(authorization: Option<&str>) -> Result<(), ApiError> {
    let Some(key) = authorization.and_then(|value| value.strip_prefix("Bearer ")) else {
        return Err(ApiError::new(
            401,
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        ));
    };
    let key = key.trim();
    if key.len() > "sk_test_".len() && key.starts_with("sk_test_") {
        return Ok(());
    }
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let head: String = key.chars().take(8).collect();
    Err(ApiError::new(
        401,
        format!("Invalid API Key provided: {head}****{tail}"),
    ))
}

pub(super) fn idempotency_error(mut error: ApiError) -> ApiError {
    error.type_ = "idempotency_error";
    error
}

pub(super) fn reject_unknown(params: &Params, patterns: &[&str]) -> Result<(), ApiError> {
    match params.unknown_key(patterns) {
        Some(key) => Err(ApiError::unknown_param(key)),
        None => Ok(()),
    }
}

pub(super) fn required<'a>(params: &'a Params, param: &str) -> Result<&'a str, ApiError> {
    match params.get(param) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(ApiError::missing(param)),
    }
}

pub(super) fn non_negative(text: &str, param: &str) -> Result<i64, ApiError> {
    match text.parse::<i64>() {
        Ok(value) if value >= 0 => Ok(value),
        _ => Err(ApiError::invalid(
            param,
            format!("Invalid non-negative integer: {text}"),
        )),
    }
}

pub(super) fn boolean(text: &str, param: &str) -> Result<bool, ApiError> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid(param, format!("Invalid boolean: {text}"))),
    }
}

pub(super) fn currency(params: &Params, param: &str) -> Result<String, ApiError> {
    let code = required(params, param)?;
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(code.to_owned())
    } else {
        Err(ApiError::invalid(
            param,
            format!(
                "Invalid currency: {code}. Stripe currently supports these currencies: usd, eur, gbp, jpy, ..."
            ),
        ))
    }
}

/// `{prefix}[interval]` (and `[interval_count]`) when the price is recurring.
pub(super) fn recurring(params: &Params, prefix: &str) -> Result<Option<(String, u32)>, ApiError> {
    if !params.has(prefix) {
        return Ok(None);
    }
    let interval_param = format!("{prefix}[interval]");
    let interval = required(params, &interval_param)?;
    if !matches!(interval, "day" | "week" | "month" | "year") {
        return Err(ApiError::invalid(
            &interval_param,
            format!("Invalid {interval_param}: must be one of day, month, week, or year"),
        ));
    }
    let count_param = format!("{prefix}[interval_count]");
    let count = match params.get(&count_param) {
        None => 1,
        Some(text) => match text.parse::<u32>() {
            Ok(count) if count >= 1 => count,
            _ => {
                return Err(ApiError::invalid(
                    &count_param,
                    format!("Invalid positive integer: {text}"),
                ));
            }
        },
    };
    Ok(Some((interval.to_owned(), count)))
}

/// Stripe's metadata rules: at most 50 keys, keys up to 40 characters without brackets,
/// values up to 500 characters.
pub(super) fn parse_metadata(params: &Params, prefix: &str) -> Result<Value, ApiError> {
    let pairs = params.map_under(prefix);
    if pairs.len() > 50 {
        return Err(ApiError::invalid(
            prefix,
            "Invalid metadata: metadata may have at most 50 keys",
        ));
    }
    let mut map = Map::new();
    for (key, value) in pairs {
        if key.is_empty() || key.chars().count() > 40 {
            return Err(ApiError::invalid(
                &format!("{prefix}[{key}]"),
                "Invalid metadata: metadata keys must be 1 to 40 characters long",
            ));
        }
        if value.chars().count() > 500 {
            return Err(ApiError::invalid(
                &format!("{prefix}[{key}]"),
                "Invalid metadata: metadata values must be at most 500 characters long",
            ));
        }
        map.insert(key, Value::String(value));
    }
    Ok(Value::Object(map))
}

pub(super) fn destination(params: &Params, param: &str) -> Result<Option<String>, ApiError> {
    match params.get(param) {
        None => Ok(None),
        Some(account) if account.starts_with("acct_") && account.len() > 5 => {
            Ok(Some(account.to_owned()))
        }
        Some(account) => Err(ApiError::no_such(400, "destination", account, param)),
    }
}

/// A decimal percentage between 0 and 100 with at most two decimals, kept as written.
pub(super) fn percent(text: &str, param: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::invalid(
            param,
            format!(
                "Invalid decimal: {text}. Must be between 0 and 100 with at most two decimal places."
            ),
        )
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 2
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || (text.contains('.') && fraction.is_empty())
    {
        return Err(invalid());
    }
    let whole: u64 = whole.parse().map_err(|_| invalid())?;
    let hundredths: u64 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
    if whole * 100 + hundredths > 10_000 {
        return Err(invalid());
    }
    Ok(text.to_owned())
}

pub(super) fn url(
    params: &Params,
    param: &str,
    required_param: bool,
) -> Result<Option<String>, ApiError> {
    match params.get(param) {
        None | Some("") if required_param => Err(ApiError::missing(param)),
        None => Ok(None),
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(Some(url.to_owned()))
        }
        Some(_) => Err(ApiError::invalid(param, "Not a valid URL").code("url_invalid")),
    }
}

pub(super) fn looks_like_email(text: &str) -> bool {
    text.split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
}
