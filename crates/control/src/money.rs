//! Money arithmetic: integer minor units, ISO 4217 currencies, platform fees. No floats.

use crate::ControlError;

/// Basis points in one whole (100 %).
pub const BPS_PER_UNIT: u32 = 10_000;

/// Minor-unit exponent of an ISO 4217 currency code (lowercase or uppercase): 2 for most,
/// 0 for zero-decimal currencies (JPY, KRW, ...), 3 for BHD, JOD, KWD, OMR, TND. `None` for a
/// code that is not three ASCII letters.
pub fn currency_exponent(code: &str) -> Option<u32> {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let upper = code.to_ascii_uppercase();
    const ZERO: [&str; 16] = [
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
        "XAF", "XOF", "XPF",
    ];
    const THREE: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];
    Some(if ZERO.contains(&upper.as_str()) {
        0
    } else if THREE.contains(&upper.as_str()) {
        3
    } else {
        2
    })
}

/// `major` whole units of `currency` in minor units (e.g. 5 USD = 500).
pub fn major_to_minor(major: i64, currency: &str) -> Result<i64, ControlError> {
    let exponent = currency_exponent(currency).ok_or_else(|| ControlError::InvalidAmount {
        reason: format!("{currency:?} is not an ISO 4217 currency code"),
    })?;
    major
        .checked_mul(10_i64.pow(exponent))
        .ok_or_else(|| ControlError::InvalidAmount {
            reason: format!("{major} {currency} is too large"),
        })
}

/// A platform fee taken from an amount: `fee + payee == amount`, both non-negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeSplit {
    pub fee_minor: i64,
    pub payee_minor: i64,
}

/// Splits `amount_minor` (> 0) into the platform's fee at `fee_bps` basis points (0..=10000),
/// rounded half up to the minor unit, and the rest for the payee.
pub fn split_fee(amount_minor: i64, fee_bps: u32) -> Result<FeeSplit, ControlError> {
    if amount_minor <= 0 {
        return Err(ControlError::InvalidAmount {
            reason: format!("the amount must be positive, not {amount_minor}"),
        });
    }
    if fee_bps > BPS_PER_UNIT {
        return Err(ControlError::InvalidAmount {
            reason: format!("a fee of {fee_bps} basis points is over 100 %"),
        });
    }
    let scaled = i128::from(amount_minor) * i128::from(fee_bps);
    let half = i128::from(BPS_PER_UNIT / 2);
    // Fits: at most amount_minor (fee_bps <= 10000).
    let fee_minor = ((scaled + half) / i128::from(BPS_PER_UNIT)) as i64;
    Ok(FeeSplit {
        fee_minor,
        payee_minor: amount_minor - fee_minor,
    })
}

/// Checks `amount_minor` against limits given in major units of `currency` (inclusive).
pub fn check_limits(
    amount_minor: i64,
    currency: &str,
    min_major: i64,
    max_major: i64,
) -> Result<(), ControlError> {
    let min = major_to_minor(min_major, currency)?;
    let max = major_to_minor(max_major, currency)?;
    if amount_minor < min || amount_minor > max {
        return Err(ControlError::InvalidAmount {
            reason: format!(
                "the amount must be between {min_major} and {max_major} {} ({min} to {max} minor units), not {amount_minor}",
                currency.to_ascii_uppercase()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(currency_exponent("usd"), Some(2));
        assert_eq!(currency_exponent("JPY"), Some(0));
        assert_eq!(currency_exponent("kwd"), Some(3));
        assert_eq!(currency_exponent("us"), None);
        assert_eq!(currency_exponent("u$d"), None);
        assert_eq!(major_to_minor(5, "eur").ok(), Some(500));
        assert_eq!(major_to_minor(5, "jpy").ok(), Some(5));
        assert!(major_to_minor(i64::MAX, "usd").is_err());
    }

    #[test]
    fn fees_round_half_up() {
        let s = split_fee(1000, 500).expect("split");
        assert_eq!((s.fee_minor, s.payee_minor), (50, 950));
        // 5 % of 10 minor units is 0.5: rounded up.
        assert_eq!(split_fee(10, 500).expect("split").fee_minor, 1);
        assert_eq!(split_fee(9, 500).expect("split").fee_minor, 0);
        assert_eq!(split_fee(100, 0).expect("split").fee_minor, 0);
        assert_eq!(split_fee(100, 10_000).expect("split").fee_minor, 100);
        assert!(split_fee(0, 500).is_err());
        assert!(split_fee(100, 10_001).is_err());
    }

    #[test]
    fn limits_are_in_major_units() {
        assert!(check_limits(100, "usd", 1, 1000).is_ok());
        assert!(check_limits(99, "usd", 1, 1000).is_err());
        assert!(check_limits(100_000, "usd", 1, 1000).is_ok());
        assert!(check_limits(100_001, "usd", 1, 1000).is_err());
        assert!(check_limits(1000, "jpy", 1, 1000).is_ok());
    }

    proptest! {
        #[test]
        fn a_split_always_adds_up(amount in 1i64..=i64::MAX / 2, bps in 0u32..=10_000) {
            let s = split_fee(amount, bps).expect("split");
            prop_assert_eq!(s.fee_minor + s.payee_minor, amount);
            prop_assert!(s.fee_minor >= 0 && s.payee_minor >= 0);
            // Within half a minor unit of the exact fee.
            let exact = i128::from(amount) * i128::from(bps);
            let fee = i128::from(s.fee_minor) * 10_000;
            prop_assert!((fee - exact).abs() <= 5_000);
        }

        #[test]
        fn a_higher_fee_never_pays_the_payee_more(amount in 1i64..1_000_000_000, a in 0u32..=10_000, b in 0u32..=10_000) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let low = split_fee(amount, lo).expect("split");
            let high = split_fee(amount, hi).expect("split");
            prop_assert!(high.payee_minor <= low.payee_minor);
        }
    }
}
