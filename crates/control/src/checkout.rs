//! Checkouts: one Stripe Checkout session greenroom opened, for a pass, a token pack or a tip.
//! The checkout's id travels in the session's metadata
//! ([`CHECKOUT_METADATA_KEY`](crate::stripe_client::CHECKOUT_METADATA_KEY)), so Stripe's
//! webhooks find it; its amount and fee are fixed when it is made.

use serde::Serialize;

use crate::ControlError;
use crate::money::{check_limits, currency_exponent, split_fee};
use crate::pass::{Pass, PassKind};
use crate::wallet::TokenPack;

/// Longest tip message, in characters.
pub const MAX_TIP_MESSAGE_CHARS: usize = 280;

/// What a checkout buys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum CheckoutPurpose {
    /// A paid pass (one-time or subscription).
    Pass { pass_id: String },
    /// Wallet tokens from a configured pack.
    Tokens { pack_id: String, tokens: i64 },
    /// A tip to the channel of a stream, with an optional message shown to the creator.
    Tip {
        stream_id: String,
        message: Option<String>,
    },
}

impl CheckoutPurpose {
    /// `pass`, `tokens` or `tip`, as stored.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckoutPurpose::Pass { .. } => "pass",
            CheckoutPurpose::Tokens { .. } => "tokens",
            CheckoutPurpose::Tip { .. } => "tip",
        }
    }
}

/// Where a checkout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutStatus {
    /// Made, not paid yet.
    Open,
    /// Stripe reported the payment.
    Completed,
    /// Stripe expired the session unpaid.
    Expired,
}

impl CheckoutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutStatus::Open => "open",
            CheckoutStatus::Completed => "completed",
            CheckoutStatus::Expired => "expired",
        }
    }

    pub fn parse(value: &str) -> Option<CheckoutStatus> {
        match value {
            "open" => Some(CheckoutStatus::Open),
            "completed" => Some(CheckoutStatus::Completed),
            "expired" => Some(CheckoutStatus::Expired),
            _ => None,
        }
    }
}

/// A checkout as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkout {
    pub id: String,
    /// The buyer.
    pub account_id: String,
    #[serde(flatten)]
    pub purpose: CheckoutPurpose,
    /// What the buyer pays, in minor units of `currency`.
    pub amount_minor: i64,
    pub currency: String,
    /// The platform's part of `amount_minor` (what a tip pays the platform).
    pub fee_minor: i64,
    pub stripe_session_id: Option<String>,
    pub status: CheckoutStatus,
    pub created_at_ms: i64,
    pub completed_at_ms: Option<i64>,
}

/// What a new checkout is made of. The constructors [`NewCheckout::for_pass`],
/// [`NewCheckout::for_tokens`] and [`NewCheckout::for_tip`] fill in amount, currency and fee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCheckout {
    pub account_id: String,
    pub purpose: CheckoutPurpose,
    /// > 0.
    pub amount_minor: i64,
    /// ISO 4217 code (stored lowercase).
    pub currency: String,
    /// 0..=amount.
    pub fee_minor: i64,
}

impl NewCheckout {
    /// A checkout for `pass` at its current price, the platform's fee (`fee_bps` basis points)
    /// noted. The store checks the pass is still sold.
    pub fn for_pass(
        account_id: &str,
        pass: &Pass,
        fee_bps: u32,
    ) -> Result<NewCheckout, ControlError> {
        if pass.kind == PassKind::Free {
            return Err(ControlError::InvalidPass {
                reason: format!("pass {} is free: claim it instead", pass.id),
            });
        }
        Ok(NewCheckout {
            account_id: account_id.to_owned(),
            purpose: CheckoutPurpose::Pass {
                pass_id: pass.id.clone(),
            },
            amount_minor: pass.amount_minor,
            currency: pass.currency.clone(),
            fee_minor: split_fee(pass.amount_minor, fee_bps)?.fee_minor,
        })
    }

    /// A checkout for a token pack (the platform sells tokens: no fee).
    pub fn for_tokens(account_id: &str, pack: &TokenPack) -> Result<NewCheckout, ControlError> {
        pack.validate()?;
        Ok(NewCheckout {
            account_id: account_id.to_owned(),
            purpose: CheckoutPurpose::Tokens {
                pack_id: pack.id.clone(),
                tokens: pack.tokens,
            },
            amount_minor: pack.amount_minor,
            currency: pack.currency.to_ascii_lowercase(),
            fee_minor: 0,
        })
    }

    /// A checkout for a tip of `amount_minor` to the channel of `stream_id`, within
    /// `limits_major` (inclusive, major units of `currency`), the platform's fee
    /// (`fee_bps` basis points, rounded half up) fixed now. The message is trimmed (an empty
    /// one is none) and has at most [`MAX_TIP_MESSAGE_CHARS`] characters.
    pub fn for_tip(
        account_id: &str,
        stream_id: &str,
        message: Option<&str>,
        amount_minor: i64,
        currency: &str,
        fee_bps: u32,
        limits_major: (i64, i64),
    ) -> Result<NewCheckout, ControlError> {
        let currency = currency.to_ascii_lowercase();
        check_limits(amount_minor, &currency, limits_major.0, limits_major.1)?;
        Ok(NewCheckout {
            account_id: account_id.to_owned(),
            purpose: CheckoutPurpose::Tip {
                stream_id: stream_id.to_owned(),
                message: validate_tip_message(message)?,
            },
            amount_minor,
            fee_minor: split_fee(amount_minor, fee_bps)?.fee_minor,
            currency,
        })
    }

    /// Checks amounts, currency, fee and purpose fields; returns the checkout normalized
    /// (currency lowercase, message trimmed).
    pub(crate) fn validate(&self) -> Result<NewCheckout, ControlError> {
        let invalid = |reason: String| Err(ControlError::InvalidAmount { reason });
        let currency = self.currency.trim().to_ascii_lowercase();
        if currency_exponent(&currency).is_none() {
            return invalid(format!("{currency:?} is not an ISO 4217 currency code"));
        }
        if self.amount_minor <= 0 {
            return invalid(format!(
                "a checkout's amount must be positive, not {}",
                self.amount_minor
            ));
        }
        if self.fee_minor < 0 || self.fee_minor > self.amount_minor {
            return invalid(format!(
                "the fee {} is not between 0 and the amount {}",
                self.fee_minor, self.amount_minor
            ));
        }
        let purpose = match &self.purpose {
            CheckoutPurpose::Tokens { pack_id, tokens } => {
                if pack_id.is_empty() {
                    return Err(ControlError::UnknownTokenPack {
                        pack: pack_id.clone(),
                    });
                }
                if *tokens <= 0 {
                    return invalid(format!("a token pack holds tokens, not {tokens}"));
                }
                self.purpose.clone()
            }
            CheckoutPurpose::Tip { stream_id, message } => CheckoutPurpose::Tip {
                stream_id: stream_id.clone(),
                message: validate_tip_message(message.as_deref())?,
            },
            CheckoutPurpose::Pass { .. } => self.purpose.clone(),
        };
        Ok(NewCheckout {
            account_id: self.account_id.clone(),
            purpose,
            amount_minor: self.amount_minor,
            currency,
            fee_minor: self.fee_minor,
        })
    }
}

/// Trims a tip message: empty is none; at most [`MAX_TIP_MESSAGE_CHARS`] characters, no
/// control characters but line breaks.
pub fn validate_tip_message(message: Option<&str>) -> Result<Option<String>, ControlError> {
    let Some(message) = message.map(str::trim).filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    let chars = message.chars().count();
    if chars > MAX_TIP_MESSAGE_CHARS {
        return Err(ControlError::InvalidAmount {
            reason: format!(
                "a tip message has at most {MAX_TIP_MESSAGE_CHARS} characters, not {chars}"
            ),
        });
    }
    if message.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ControlError::InvalidAmount {
            reason: "a tip message must not contain control characters".to_owned(),
        });
    }
    Ok(Some(message.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tip_checkout_checks_limits_and_fixes_the_fee() {
        let tip =
            NewCheckout::for_tip("a", "s", Some("  hi "), 999, "USD", 500, (1, 1000)).expect("tip");
        assert_eq!(tip.fee_minor, 50);
        assert_eq!(tip.currency, "usd");
        assert_eq!(
            tip.purpose,
            CheckoutPurpose::Tip {
                stream_id: "s".into(),
                message: Some("hi".into())
            }
        );
        assert!(NewCheckout::for_tip("a", "s", None, 99, "usd", 500, (1, 1000)).is_err());
        assert!(NewCheckout::for_tip("a", "s", None, 100_001, "usd", 500, (1, 1000)).is_err());
        let long = "x".repeat(MAX_TIP_MESSAGE_CHARS + 1);
        assert!(NewCheckout::for_tip("a", "s", Some(&long), 100, "usd", 500, (1, 1000)).is_err());
        assert_eq!(validate_tip_message(Some("   ")).ok(), Some(None));
        assert!(validate_tip_message(Some("a\u{0}b")).is_err());
    }

    #[test]
    fn a_checkout_needs_a_positive_amount_and_a_fee_within_it() {
        let base = NewCheckout {
            account_id: "a".into(),
            purpose: CheckoutPurpose::Tokens {
                pack_id: "small".into(),
                tokens: 100,
            },
            amount_minor: 499,
            currency: "EUR".into(),
            fee_minor: 0,
        };
        assert_eq!(base.validate().expect("valid").currency, "eur");
        for bad in [
            NewCheckout {
                amount_minor: 0,
                ..base.clone()
            },
            NewCheckout {
                fee_minor: 500,
                ..base.clone()
            },
            NewCheckout {
                currency: "euro".into(),
                ..base.clone()
            },
            NewCheckout {
                purpose: CheckoutPurpose::Tokens {
                    pack_id: "small".into(),
                    tokens: 0,
                },
                ..base.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
