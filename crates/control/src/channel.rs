//! A creator's channel: its `@handle`, its public profile and the Stripe account that receives
//! its money. The rules that make a handle, a display name, a bio or a Stripe account id valid
//! live here; the queries are in the store.

use serde::Serialize;

use crate::ControlError;

/// Shortest and longest handle, in characters (all ASCII).
pub const MIN_HANDLE_CHARS: usize = 3;
pub const MAX_HANDLE_CHARS: usize = 30;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 80;
/// Longest bio, in characters.
pub const MAX_BIO_CHARS: usize = 1000;
/// Longest random part of a Stripe account id (`acct_` + this many characters at most).
pub const MAX_STRIPE_ACCOUNT_SUFFIX: usize = 64;

/// Handles no channel may take: they name pages and API paths, or could pass for the staff.
pub const RESERVED_HANDLES: &[&str] = &[
    "admin",
    "api",
    "studio",
    "watch",
    "me",
    "new",
    "settings",
    "discover",
    "help",
    "support",
    "greenroom",
];

/// A creator's channel. One per account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Channel {
    /// 16 lowercase base32 characters.
    pub id: String,
    /// The account that owns it (a creator).
    pub account_id: String,
    /// Lowercase, without the `@`, see [`normalize_handle`].
    pub handle: String,
    pub display_name: String,
    pub bio: String,
    /// The creator's Stripe Connect account (`acct_...`); `None` until connected.
    pub stripe_account_id: Option<String>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
}

/// A change to a channel with PATCH semantics: `None` leaves a field as it is;
/// `stripe_account_id: Some(None)` disconnects the Stripe account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelUpdate {
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub stripe_account_id: Option<Option<String>>,
}

fn invalid(reason: impl Into<String>) -> ControlError {
    ControlError::InvalidChannel {
        reason: reason.into(),
    }
}

/// Checks a handle and returns it as stored: one leading `@` dropped, surrounding spaces
/// trimmed, ASCII lowercased; then [`MIN_HANDLE_CHARS`] to [`MAX_HANDLE_CHARS`] characters
/// from `a-z 0-9 _`, and not one of [`RESERVED_HANDLES`].
pub fn normalize_handle(handle: &str) -> Result<String, ControlError> {
    let trimmed = handle.trim();
    let handle = trimmed
        .strip_prefix('@')
        .unwrap_or(trimmed)
        .to_ascii_lowercase();
    if !handle
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(invalid(
            "a handle is made of the letters a-z, the digits 0-9 and _",
        ));
    }
    if !(MIN_HANDLE_CHARS..=MAX_HANDLE_CHARS).contains(&handle.len()) {
        return Err(invalid(format!(
            "a handle has {MIN_HANDLE_CHARS} to {MAX_HANDLE_CHARS} characters"
        )));
    }
    if RESERVED_HANDLES.contains(&handle.as_str()) {
        return Err(invalid(format!("the handle @{handle} is reserved")));
    }
    Ok(handle)
}

/// Checks a display name and returns it trimmed: 1 to [`MAX_DISPLAY_NAME_CHARS`] characters,
/// no control characters.
pub fn validate_display_name(name: &str) -> Result<String, ControlError> {
    let name = name.trim();
    let chars = name.chars().count();
    if !(1..=MAX_DISPLAY_NAME_CHARS).contains(&chars) {
        return Err(invalid(format!(
            "a display name has 1 to {MAX_DISPLAY_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            "a display name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Checks a bio and returns it trimmed: at most [`MAX_BIO_CHARS`] characters; line breaks and
/// tabs are the only control characters allowed.
pub fn validate_bio(bio: &str) -> Result<String, ControlError> {
    let bio = bio.trim();
    if bio.chars().count() > MAX_BIO_CHARS {
        return Err(invalid(format!(
            "a bio has at most {MAX_BIO_CHARS} characters"
        )));
    }
    if bio
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(invalid(
            "a bio must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(bio.to_owned())
}

/// Checks a Stripe Connect account id: `acct_` followed by 1 to
/// [`MAX_STRIPE_ACCOUNT_SUFFIX`] characters from `A-Z a-z 0-9`. Returned trimmed.
pub fn validate_stripe_account_id(id: &str) -> Result<String, ControlError> {
    let id = id.trim();
    let valid = id.strip_prefix("acct_").is_some_and(|rest| {
        (1..=MAX_STRIPE_ACCOUNT_SUFFIX).contains(&rest.len())
            && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !valid {
        return Err(invalid(
            "a Stripe account id looks like acct_ followed by 1 to 64 letters and digits",
        ));
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_lowercased_and_checked() {
        assert_eq!(normalize_handle("@Ann_42").ok().as_deref(), Some("ann_42"));
        assert_eq!(normalize_handle("  bob ").ok().as_deref(), Some("bob"));
        assert_eq!(normalize_handle(&"a".repeat(30)).ok(), Some("a".repeat(30)));
        for bad in [
            "",
            "@",
            "ab",
            "@ab",
            "@@ann",
            "ann-b",
            "ann b",
            "ann.b",
            "ånn",
            "\u{212A}im", // KELVIN SIGN lowercases to 'k' in Unicode, not in ASCII
            &"a".repeat(31),
        ] {
            assert!(
                matches!(
                    normalize_handle(bad),
                    Err(ControlError::InvalidChannel { .. })
                ),
                "{bad:?}"
            );
        }
        for reserved in RESERVED_HANDLES {
            assert!(normalize_handle(reserved).is_err(), "{reserved}");
            assert!(
                normalize_handle(&format!("@{}", reserved.to_uppercase())).is_err(),
                "{reserved}"
            );
        }
    }

    #[test]
    fn display_names_and_bios_are_bounded() {
        assert_eq!(
            validate_display_name("  Ann  ").ok().as_deref(),
            Some("Ann")
        );
        assert!(validate_display_name("").is_err());
        assert!(validate_display_name("   ").is_err());
        assert!(validate_display_name(&"é".repeat(80)).is_ok());
        assert!(validate_display_name(&"é".repeat(81)).is_err());
        assert!(validate_display_name("a\nb").is_err());
        assert_eq!(validate_bio("").ok().as_deref(), Some(""));
        assert!(validate_bio("line one\nline two\tx").is_ok());
        assert!(validate_bio(&"é".repeat(1000)).is_ok());
        assert!(validate_bio(&"é".repeat(1001)).is_err());
        assert!(validate_bio("bell\u{7}").is_err());
    }

    #[test]
    fn stripe_account_ids_look_like_acct() {
        assert_eq!(
            validate_stripe_account_id(" acct_1AbC ").ok().as_deref(),
            Some("acct_1AbC")
        );
        assert!(validate_stripe_account_id(&format!("acct_{}", "x".repeat(64))).is_ok());
        for bad in [
            "",
            "acct_",
            "acct",
            "cus_123",
            "acct_12-3",
            "acct_ab cd",
            "ACCT_123",
            &format!("acct_{}", "x".repeat(65)),
        ] {
            assert!(validate_stripe_account_id(bad).is_err(), "{bad:?}");
        }
    }
}
