//! Stripe's webhook signature scheme: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=...]`,
//! where each `v1` is HMAC-SHA256, keyed with the endpoint's signing secret (`whsec_...`), of
//! `"{t}.{raw body}"`. A payload is accepted when one `v1` matches (compared in constant time)
//! and `t` is within the tolerance of now, so a captured webhook cannot be replayed later.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ControlError;

/// Stripe's default tolerance: five minutes.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Checks `payload` against its `Stripe-Signature` header; returns the signed timestamp.
pub fn verify_stripe_signature(
    payload: &[u8],
    header: &str,
    secret: &str,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<i64, ControlError> {
    let invalid = |reason: &str| ControlError::InvalidSignature {
        reason: reason.to_owned(),
    };
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => timestamp = value.parse::<i64>().ok(),
            "v1" => {
                if let Some(bytes) = decode_hex(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| invalid("no timestamp (t=) in the header"))?;
    if signatures.is_empty() {
        return Err(invalid("no v1 signature in the header"));
    }
    let expected = sign(payload, secret, timestamp);
    if !signatures
        .iter()
        .any(|s| bool::from(s.as_slice().ct_eq(expected.as_slice())))
    {
        return Err(invalid("no v1 signature matches the payload"));
    }
    if (now_unix - timestamp).abs() > tolerance_secs {
        return Err(invalid("the timestamp is outside the tolerance"));
    }
    Ok(timestamp)
}

/// The `Stripe-Signature` header Stripe would send for `payload` at `timestamp`.
pub fn stripe_signature_header(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let hex: String = sign(payload, secret, timestamp)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},v1={hex}")
}

fn sign(payload: &[u8], secret: &str, timestamp: i64) -> Vec<u8> {
    // HMAC takes keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return Vec::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;

    #[test]
    fn a_signature_made_elsewhere_verifies() {
        // HMAC-SHA256("whsec_test_secret", "1700000000.{BODY}"), computed with Python's hmac.
        let header = "t=1700000000,\
            v1=a13d4b1f9003bc2fb6c06224e878b6056185eaa50d40e1e7dc05517f8af41d7b";
        assert_eq!(stripe_signature_header(BODY, SECRET, 1_700_000_000), header);
        assert_eq!(
            verify_stripe_signature(BODY, header, SECRET, 1_700_000_100, 300).ok(),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn forged_stale_and_tampered_payloads_are_refused() {
        let header = stripe_signature_header(BODY, SECRET, 1_700_000_000);
        let now = 1_700_000_000;
        assert!(verify_stripe_signature(BODY, &header, "whsec_other", now, 300).is_err());
        assert!(verify_stripe_signature(b"{}", &header, SECRET, now, 300).is_err());
        assert!(verify_stripe_signature(BODY, &header, SECRET, now + 301, 300).is_err());
        assert!(verify_stripe_signature(BODY, &header, SECRET, now - 301, 300).is_err());
        assert!(verify_stripe_signature(BODY, "v1=00", SECRET, now, 300).is_err());
        assert!(verify_stripe_signature(BODY, "t=1700000000", SECRET, now, 300).is_err());
        assert!(verify_stripe_signature(BODY, "garbage", SECRET, now, 300).is_err());
        // A re-timed header with the old signature fails too.
        let retimed = header.replace("t=1700000000", "t=1700000200");
        assert!(verify_stripe_signature(BODY, &retimed, SECRET, now + 200, 300).is_err());
    }

    #[test]
    fn any_of_several_signatures_may_match_during_secret_rotation() {
        let good = stripe_signature_header(BODY, SECRET, 42);
        let v1 = good
            .split_once(",v1=")
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default();
        let header = format!("t=42,v1={},v0=ignored,v1={v1}", "ab".repeat(32));
        assert!(verify_stripe_signature(BODY, &header, SECRET, 42, 300).is_ok());
    }
}
