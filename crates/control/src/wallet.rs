//! The token wallet and the names of the ledger accounts commerce moves money between.
//!
//! A viewer buys tokens in packs ([`TokenPack`], configured by the operator) and spends them
//! on paid streams that have a token price (enrolment, see
//! [`Store::enroll_with_tokens`](crate::Store::enroll_with_tokens)). Tokens are ledger units
//! of the currency [`TOKEN_CURRENCY`]: issued from [`TOKEN_ISSUER_ACCOUNT`] into
//! [`wallet_account`], spent into the channel's [`channel_account`] in `tok`.

use serde::{Deserialize, Serialize};

use crate::ControlError;
use crate::money::currency_exponent;

/// The ledger currency of wallet tokens.
pub const TOKEN_CURRENCY: &str = "tok";
/// The outside-world account tokens are issued from (may go negative).
pub const TOKEN_ISSUER_ACCOUNT: &str = "issuer:tokens";

/// A viewer's token wallet: `wallet:{account_id}` (currency `tok`, never negative).
pub fn wallet_account(account_id: &str) -> String {
    format!("wallet:{account_id}")
}

/// A channel's earnings in `currency` (`tok` for tokens spent on its streams):
/// `channel:{channel_id}:{currency}`.
pub fn channel_account(channel_id: &str, currency: &str) -> String {
    format!("channel:{channel_id}:{currency}")
}

/// The platform's fees in `currency`: `platform:fees:{currency}`.
pub fn platform_fees_account(currency: &str) -> String {
    format!("platform:fees:{currency}")
}

/// The platform's token sales in `currency`: `platform:sales:{currency}`.
pub fn platform_sales_account(currency: &str) -> String {
    format!("platform:sales:{currency}")
}

/// Money that came in through Stripe in `currency` (outside world, goes negative):
/// `external:stripe:{currency}`.
pub fn stripe_account(currency: &str) -> String {
    format!("external:stripe:{currency}")
}

/// A pack of tokens the platform sells, e.g. `TokenPack { id: "small", tokens: 100,
/// amount_minor: 499, currency: "usd" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPack {
    /// 1 to 64 characters from `a-z 0-9 _ -`.
    pub id: String,
    /// > 0.
    pub tokens: i64,
    /// > 0, minor units of `currency`.
    pub amount_minor: i64,
    /// Lowercase ISO 4217 code.
    pub currency: String,
}

impl TokenPack {
    /// Checks the pack's fields (for the server's configuration check at start-up).
    pub fn validate(&self) -> Result<(), ControlError> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !id_ok {
            return Err(ControlError::UnknownTokenPack {
                pack: self.id.clone(),
            });
        }
        if self.tokens <= 0 || self.amount_minor <= 0 {
            return Err(ControlError::InvalidAmount {
                reason: format!(
                    "token pack {} must hold tokens and cost something ({} tokens for {})",
                    self.id, self.tokens, self.amount_minor
                ),
            });
        }
        if currency_exponent(&self.currency).is_none()
            || self.currency != self.currency.to_ascii_lowercase()
        {
            return Err(ControlError::InvalidAmount {
                reason: format!(
                    "token pack {}: {:?} is not a lowercase ISO 4217 code",
                    self.id, self.currency
                ),
            });
        }
        Ok(())
    }

    /// The pack with this id among `packs`, or [`ControlError::UnknownTokenPack`].
    pub fn find<'a>(packs: &'a [TokenPack], id: &str) -> Result<&'a TokenPack, ControlError> {
        packs
            .iter()
            .find(|pack| pack.id == id)
            .ok_or_else(|| ControlError::UnknownTokenPack {
                pack: id.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_are_checked_and_found_by_id() {
        let small = TokenPack {
            id: "small".into(),
            tokens: 100,
            amount_minor: 499,
            currency: "usd".into(),
        };
        assert!(small.validate().is_ok());
        let packs = vec![small.clone()];
        assert_eq!(TokenPack::find(&packs, "small").ok(), Some(&small));
        assert!(matches!(
            TokenPack::find(&packs, "huge"),
            Err(ControlError::UnknownTokenPack { .. })
        ));
        for bad in [
            TokenPack {
                id: "Big Pack".into(),
                ..small.clone()
            },
            TokenPack {
                tokens: 0,
                ..small.clone()
            },
            TokenPack {
                amount_minor: 0,
                ..small.clone()
            },
            TokenPack {
                currency: "USD".into(),
                ..small.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn account_names_follow_the_spec() {
        assert_eq!(wallet_account("a1"), "wallet:a1");
        assert_eq!(channel_account("c1", "usd"), "channel:c1:usd");
        assert_eq!(channel_account("c1", TOKEN_CURRENCY), "channel:c1:tok");
        assert_eq!(platform_fees_account("usd"), "platform:fees:usd");
        assert_eq!(platform_sales_account("usd"), "platform:sales:usd");
        assert_eq!(stripe_account("usd"), "external:stripe:usd");
    }
}
