//! Access passes a channel sells: what they cover (the whole channel or listed streams), how
//! they are paid (free, once, monthly, yearly) and at what price. The rules are checked here,
//! before anything is stored; [`Store`](crate::Store) persists passes and their price history.

use serde::Serialize;

use crate::ControlError;
use crate::money::{currency_exponent, major_to_minor};

/// Longest pass name, in characters.
pub const MAX_PASS_NAME_CHARS: usize = 80;
/// Most streams a `streams`-scoped pass may list.
pub const MAX_PASS_STREAMS: usize = 100;
/// Highest price of a paid pass, in major units of its currency.
pub const MAX_PASS_PRICE_MAJOR: i64 = 1_000_000;
/// Lowest price of a paid pass, in major units of its currency.
pub const MIN_PASS_PRICE_MAJOR: i64 = 1;

/// How a pass is paid for. It never changes after creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PassKind {
    /// Claimed without payment, once per account, no end.
    Free,
    /// Paid once, no end.
    OneTime,
    /// A monthly Stripe subscription.
    Monthly,
    /// A yearly Stripe subscription.
    Yearly,
}

impl PassKind {
    /// `free`, `one_time`, `monthly` or `yearly`, as stored and as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            PassKind::Free => "free",
            PassKind::OneTime => "one_time",
            PassKind::Monthly => "monthly",
            PassKind::Yearly => "yearly",
        }
    }

    /// The kind named `value` (see [`PassKind::as_str`]).
    pub fn parse(value: &str) -> Option<PassKind> {
        Some(match value {
            "free" => PassKind::Free,
            "one_time" => PassKind::OneTime,
            "monthly" => PassKind::Monthly,
            "yearly" => PassKind::Yearly,
            _ => return None,
        })
    }

    /// Bought through Stripe (every kind but free).
    pub fn is_paid(self) -> bool {
        self != PassKind::Free
    }

    /// Sold as a Stripe subscription (monthly or yearly).
    pub fn is_subscription(self) -> bool {
        matches!(self, PassKind::Monthly | PassKind::Yearly)
    }
}

/// What a pass covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PassScope {
    /// Every stream of the pass's channel, present and future.
    Channel,
    /// The streams listed in [`Pass::stream_ids`].
    Streams,
}

impl PassScope {
    /// `channel` or `streams`.
    pub fn as_str(self) -> &'static str {
        match self {
            PassScope::Channel => "channel",
            PassScope::Streams => "streams",
        }
    }

    /// The scope named `value`.
    pub fn parse(value: &str) -> Option<PassScope> {
        match value {
            "channel" => Some(PassScope::Channel),
            "streams" => Some(PassScope::Streams),
            _ => None,
        }
    }
}

/// A pass as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pass {
    pub id: String,
    pub channel_id: String,
    pub name: String,
    pub kind: PassKind,
    pub scope: PassScope,
    /// The streams a `streams`-scoped pass covers, sorted; empty for a `channel` pass.
    pub stream_ids: Vec<String>,
    /// What new buyers pay, in minor units of `currency`; 0 for a free pass.
    pub amount_minor: i64,
    /// Lowercase ISO 4217 code.
    pub currency: String,
    /// The Stripe Product (paid passes only).
    pub stripe_product_id: Option<String>,
    /// The Stripe Price new buyers pay (paid passes only); earlier ones are in the pass's
    /// price history.
    pub stripe_price_id: Option<String>,
    /// Sold to new buyers; an archived pass (false) keeps its grants.
    pub active: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One Stripe Price a pass has been sold at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassPrice {
    pub stripe_price_id: String,
    pub pass_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub created_at_ms: i64,
    /// When a newer price replaced it; `None` for the current price.
    pub retired_at_ms: Option<i64>,
}

/// What a new pass is made of; checked by [`NewPass::validate`] (and by
/// [`Store::create_pass`](crate::Store::create_pass), which also checks the streams belong to
/// the channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPass {
    pub channel_id: String,
    /// 1 to [`MAX_PASS_NAME_CHARS`] characters, trimmed, no control characters.
    pub name: String,
    pub kind: PassKind,
    pub scope: PassScope,
    /// For [`PassScope::Streams`]: 1 to [`MAX_PASS_STREAMS`] stream ids of the channel
    /// (duplicates are dropped); must be empty for [`PassScope::Channel`].
    pub stream_ids: Vec<String>,
    /// 0 for a free pass; otherwise [`MIN_PASS_PRICE_MAJOR`] to [`MAX_PASS_PRICE_MAJOR`] major
    /// units in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code (stored lowercase).
    pub currency: String,
}

/// The Stripe objects a paid pass is sold with (created by the server's Stripe client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeIds {
    pub product_id: String,
    pub price_id: String,
}

impl NewPass {
    /// Checks the pass's own fields and returns it normalized: name trimmed, currency
    /// lowercase, stream ids deduplicated and sorted. `stripe` must be given for a paid pass
    /// and absent for a free one. Whether the streams exist in the channel is the store's to
    /// check.
    pub fn validate(&self, stripe: Option<&StripeIds>) -> Result<NewPass, ControlError> {
        let name = validate_pass_name(&self.name)?;
        let currency = validate_currency(&self.currency)?;
        validate_pass_amount(self.kind, self.amount_minor, &currency)?;
        match (self.kind.is_paid(), stripe) {
            (true, None) => return Err(invalid("a paid pass needs a Stripe product and price")),
            (false, Some(_)) => return Err(invalid("a free pass has no Stripe product or price")),
            (true, Some(ids)) => {
                validate_stripe_id(&ids.product_id, "product")?;
                validate_stripe_id(&ids.price_id, "price")?;
            }
            (false, None) => {}
        }
        let mut stream_ids = self.stream_ids.clone();
        stream_ids.sort();
        stream_ids.dedup();
        match self.scope {
            PassScope::Channel if !stream_ids.is_empty() => {
                return Err(invalid("a channel pass lists no streams"));
            }
            PassScope::Streams if stream_ids.is_empty() || stream_ids.len() > MAX_PASS_STREAMS => {
                return Err(invalid(&format!(
                    "a streams pass lists 1 to {MAX_PASS_STREAMS} streams, not {}",
                    stream_ids.len()
                )));
            }
            _ => {}
        }
        Ok(NewPass {
            channel_id: self.channel_id.clone(),
            name,
            kind: self.kind,
            scope: self.scope,
            stream_ids,
            amount_minor: self.amount_minor,
            currency,
        })
    }
}

/// Checks a pass name and returns it trimmed: 1 to [`MAX_PASS_NAME_CHARS`] characters, no
/// control characters.
pub fn validate_pass_name(name: &str) -> Result<String, ControlError> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_PASS_NAME_CHARS {
        return Err(invalid(&format!(
            "the name must have 1 to {MAX_PASS_NAME_CHARS} characters, not {chars}"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("the name must not contain control characters"));
    }
    Ok(name.to_owned())
}

/// Checks a pass price: 0 for a free pass, [`MIN_PASS_PRICE_MAJOR`] to
/// [`MAX_PASS_PRICE_MAJOR`] major units (in minor units) for a paid one.
pub fn validate_pass_amount(
    kind: PassKind,
    amount_minor: i64,
    currency: &str,
) -> Result<(), ControlError> {
    if !kind.is_paid() {
        return if amount_minor == 0 {
            Ok(())
        } else {
            Err(invalid("a free pass costs 0"))
        };
    }
    let min = major_to_minor(MIN_PASS_PRICE_MAJOR, currency).map_err(to_invalid_pass)?;
    let max = major_to_minor(MAX_PASS_PRICE_MAJOR, currency).map_err(to_invalid_pass)?;
    if amount_minor < min || amount_minor > max {
        return Err(invalid(&format!(
            "a paid pass costs {min} to {max} minor units of {currency}, not {amount_minor}"
        )));
    }
    Ok(())
}

/// Lowercases and checks an ISO 4217 code (three letters, see
/// [`currency_exponent`](crate::money::currency_exponent)).
fn validate_currency(currency: &str) -> Result<String, ControlError> {
    let currency = currency.trim().to_ascii_lowercase();
    if currency_exponent(&currency).is_none() {
        return Err(invalid(&format!(
            "{currency:?} is not an ISO 4217 currency code"
        )));
    }
    Ok(currency)
}

/// A Stripe object id: 1 to 255 visible ASCII characters.
pub(crate) fn validate_stripe_id(id: &str, what: &str) -> Result<(), ControlError> {
    if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(&format!("{id:?} is not a Stripe {what} id")));
    }
    Ok(())
}

fn to_invalid_pass(error: ControlError) -> ControlError {
    invalid(&error.to_string())
}

fn invalid(reason: &str) -> ControlError {
    ControlError::InvalidPass {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(kind: PassKind, amount_minor: i64, currency: &str) -> NewPass {
        NewPass {
            channel_id: "c".to_owned(),
            name: " Season ".to_owned(),
            kind,
            scope: PassScope::Channel,
            stream_ids: Vec::new(),
            amount_minor,
            currency: currency.to_owned(),
        }
    }

    fn ids() -> StripeIds {
        StripeIds {
            product_id: "prod_1".to_owned(),
            price_id: "price_1".to_owned(),
        }
    }

    #[test]
    fn kinds_and_scopes_round_trip() {
        for kind in [
            PassKind::Free,
            PassKind::OneTime,
            PassKind::Monthly,
            PassKind::Yearly,
        ] {
            assert_eq!(PassKind::parse(kind.as_str()), Some(kind));
        }
        for scope in [PassScope::Channel, PassScope::Streams] {
            assert_eq!(PassScope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(PassKind::parse("weekly"), None);
        assert!(PassKind::Monthly.is_subscription() && !PassKind::OneTime.is_subscription());
    }

    #[test]
    fn paid_passes_cost_one_to_a_million_major_units() {
        let ok = pass(PassKind::OneTime, 100, "USD")
            .validate(Some(&ids()))
            .expect("valid");
        assert_eq!((ok.name.as_str(), ok.currency.as_str()), ("Season", "usd"));
        assert!(
            pass(PassKind::OneTime, 99, "usd")
                .validate(Some(&ids()))
                .is_err()
        );
        assert!(
            pass(PassKind::Monthly, 100_000_000, "usd")
                .validate(Some(&ids()))
                .is_ok()
        );
        assert!(
            pass(PassKind::Monthly, 100_000_001, "usd")
                .validate(Some(&ids()))
                .is_err()
        );
        assert!(
            pass(PassKind::Yearly, 1, "jpy")
                .validate(Some(&ids()))
                .is_ok()
        );
        assert!(
            pass(PassKind::Yearly, 0, "jpy")
                .validate(Some(&ids()))
                .is_err()
        );
        assert!(
            pass(PassKind::Yearly, 500, "dollars")
                .validate(Some(&ids()))
                .is_err()
        );
    }

    #[test]
    fn free_means_zero_and_no_stripe() {
        assert!(pass(PassKind::Free, 0, "usd").validate(None).is_ok());
        assert!(pass(PassKind::Free, 100, "usd").validate(None).is_err());
        assert!(
            pass(PassKind::Free, 0, "usd")
                .validate(Some(&ids()))
                .is_err()
        );
        assert!(pass(PassKind::OneTime, 500, "usd").validate(None).is_err());
        let blank = StripeIds {
            product_id: String::new(),
            price_id: "price_1".to_owned(),
        };
        assert!(
            pass(PassKind::OneTime, 500, "usd")
                .validate(Some(&blank))
                .is_err()
        );
    }

    #[test]
    fn scope_and_streams_agree() {
        let mut streams = pass(PassKind::Free, 0, "usd");
        streams.scope = PassScope::Streams;
        assert!(streams.validate(None).is_err(), "no streams");
        streams.stream_ids = vec!["b".into(), "a".into(), "b".into()];
        assert_eq!(
            streams.validate(None).expect("valid").stream_ids,
            vec!["a".to_owned(), "b".to_owned()]
        );
        streams.stream_ids = (0..=MAX_PASS_STREAMS).map(|i| i.to_string()).collect();
        assert!(streams.validate(None).is_err(), "too many");
        let mut channel = pass(PassKind::Free, 0, "usd");
        channel.stream_ids = vec!["a".into()];
        assert!(channel.validate(None).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert!(validate_pass_name("").is_err());
        assert!(validate_pass_name("   ").is_err());
        assert!(validate_pass_name(&"é".repeat(80)).is_ok());
        assert!(validate_pass_name(&"é".repeat(81)).is_err());
        assert!(validate_pass_name("a\nb").is_err());
    }
}
