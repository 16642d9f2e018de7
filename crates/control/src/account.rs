//! Accounts (creators and viewers) and their tokens (page sessions, API tokens).

use serde::Serialize;

use crate::ControlError;

/// Shortest and longest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Longest email address, in bytes (RFC 5321).
pub const MAX_EMAIL_BYTES: usize = 254;

/// What an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Creator,
}

impl Role {
    pub(crate) fn as_db(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Creator => "creator",
        }
    }

    pub(crate) fn from_db(value: &str) -> Option<Role> {
        match value {
            "viewer" => Some(Role::Viewer),
            "creator" => Some(Role::Creator),
            _ => None,
        }
    }
}

/// An account. The password hash never leaves the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: String,
    /// Lowercased.
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub created_at_ms: i64,
}

/// The two kinds of bearer token an account can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A page session (cookie), with an expiry.
    Session,
    /// An API token for scripts, valid until revoked.
    Api,
}

impl TokenKind {
    pub(crate) fn as_db(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Api => "api",
        }
    }

    pub(crate) fn prefix(self) -> &'static str {
        match self {
            TokenKind::Session => "grs_",
            TokenKind::Api => "grt_",
        }
    }
}

/// A token just issued: `secret` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// Names the token (to list or revoke it) without revealing it.
    pub id: String,
    pub secret: String,
    pub kind: TokenKind,
    pub expires_at_ms: Option<i64>,
}

/// Checks and normalizes an email address: trimmed, lowercased, one `@` with text on both
/// sides and a dot in the domain, no spaces or control characters.
pub fn normalize_email(email: &str) -> Result<String, ControlError> {
    let email = email.trim().to_lowercase();
    let invalid = || ControlError::InvalidEmail {
        reason: "expected an address like name@example.com".to_owned(),
    };
    if email.is_empty() || email.len() > MAX_EMAIL_BYTES {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid());
    }
    Ok(email)
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), ControlError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(ControlError::InvalidPassword {
            reason: format!(
                "a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("  Ann@Example.COM ").ok().as_deref(),
            Some("ann@example.com")
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@example",
            "a b@example.com",
            "a@b@c.d",
            "ann@.com",
            "ann@example.",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        assert!(check_password("short").is_err());
        assert!(check_password("long enough password").is_ok());
        assert!(check_password(&"x".repeat(257)).is_err());
    }
}
