//! Access grants: who may watch what, from when to when. A grant comes from a pass (claimed,
//! bought once, subscribed to, or given by the creator) and then covers the pass's scope, or
//! from tokens spent on one stream and then covers that stream.

use serde::Serialize;

/// How long after a subscription's paid period ends its grant still gives access, so a
/// renewal that Stripe reports a little late does not cut a viewer off.
pub const SUBSCRIPTION_LEEWAY_MS: i64 = 10 * 60 * 1000;

/// How long a subscription grant gives access when the only news so far is the completed
/// checkout (which does not say when the paid period ends). The subscription's own events
/// (`invoice.paid`, `customer.subscription.updated`) set the real end.
pub const SUBSCRIPTION_PROVISIONAL_MS: i64 = 24 * 3600 * 1000;

/// Why a grant bought with a payment was revoked when the payment was refunded.
pub const REVOKED_REFUNDED: &str = "refunded";
/// Why a subscription's grant was revoked when Stripe deleted the subscription.
pub const REVOKED_SUBSCRIPTION_DELETED: &str = "subscription_deleted";
/// Prefix of the reason a subscription's grant was revoked for its status
/// (`subscription_status:unpaid`, ...).
pub const REVOKED_SUBSCRIPTION_STATUS: &str = "subscription_status:";
/// A day in milliseconds (replay access is counted in days).
pub const DAY_MS: i64 = 24 * 3600 * 1000;

/// Where a grant comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantSource {
    /// A free pass, claimed.
    Free,
    /// A one-time pass, paid through Stripe Checkout.
    Purchase,
    /// A monthly or yearly pass; lasts while the Stripe subscription is paid.
    Subscription,
    /// Wallet tokens spent on one stream.
    Tokens,
    /// Given by the channel's owner or an operator.
    Comp,
}

impl GrantSource {
    /// `free`, `purchase`, `subscription`, `tokens` or `comp`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantSource::Free => "free",
            GrantSource::Purchase => "purchase",
            GrantSource::Subscription => "subscription",
            GrantSource::Tokens => "tokens",
            GrantSource::Comp => "comp",
        }
    }

    /// The source named `value`.
    pub fn parse(value: &str) -> Option<GrantSource> {
        Some(match value {
            "free" => GrantSource::Free,
            "purchase" => GrantSource::Purchase,
            "subscription" => GrantSource::Subscription,
            "tokens" => GrantSource::Tokens,
            "comp" => GrantSource::Comp,
            _ => return None,
        })
    }
}

/// What a comp grant ([`Store::comp_grant`](crate::Store::comp_grant)) covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompTarget {
    /// Whatever the pass covers.
    Pass(String),
    /// One stream.
    Stream(String),
}

/// A right to watch, as stored. Revoked grants stay as history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub id: String,
    pub account_id: String,
    pub channel_id: String,
    /// The pass it was given for; `None` for a token grant (or a comp for one stream).
    pub pass_id: Option<String>,
    /// The one stream it covers when it has no pass.
    pub stream_id: Option<String>,
    pub source: GrantSource,
    /// The checkout that bought it.
    pub checkout_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    /// The payment that bought it (for a subscription, the latest paid invoice's); a full
    /// refund of this payment revokes the grant.
    pub stripe_payment_intent_id: Option<String>,
    /// The Stripe Price the buyer pays (kept when the pass is repriced).
    pub stripe_price_id: Option<String>,
    pub starts_at_ms: i64,
    /// `None` = no end.
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub revoke_reason: Option<String>,
    /// Stripe time (ms) of the last subscription state applied; older events change nothing.
    pub stripe_state_ms: Option<i64>,
    pub created_at_ms: i64,
}

impl Grant {
    /// Not revoked, started, not expired at `now_ms` (whatever it covers).
    pub fn is_active_at(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none()
            && self.starts_at_ms <= now_ms
            && self.expires_at_ms.is_none_or(|end| end > now_ms)
    }
}

/// Whether replays of a stream that ended at `ended_at_ms` (if it has) may still be watched at
/// `now_ms` by grant holders, given the stream's `replay_access_days` (`None` = as long as the
/// recordings are kept).
pub fn replay_window_open(
    ended_at_ms: Option<i64>,
    replay_access_days: Option<u32>,
    now_ms: i64,
) -> bool {
    match (ended_at_ms, replay_access_days) {
        (Some(ended), Some(days)) => now_ms <= ended.saturating_add(i64::from(days) * DAY_MS),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            id: "g".into(),
            account_id: "a".into(),
            channel_id: "c".into(),
            pass_id: Some("p".into()),
            stream_id: None,
            source: GrantSource::Purchase,
            checkout_id: None,
            stripe_subscription_id: None,
            stripe_payment_intent_id: None,
            stripe_price_id: None,
            starts_at_ms: 100,
            expires_at_ms: Some(200),
            revoked_at_ms: None,
            revoke_reason: None,
            stripe_state_ms: None,
            created_at_ms: 100,
        }
    }

    #[test]
    fn a_grant_is_active_between_start_and_expiry_unless_revoked() {
        let g = grant();
        assert!(!g.is_active_at(99));
        assert!(g.is_active_at(100));
        assert!(g.is_active_at(199));
        assert!(!g.is_active_at(200));
        let forever = Grant {
            expires_at_ms: None,
            ..grant()
        };
        assert!(forever.is_active_at(i64::MAX));
        let revoked = Grant {
            revoked_at_ms: Some(150),
            ..grant()
        };
        assert!(!revoked.is_active_at(150));
    }

    #[test]
    fn replay_windows_count_days_from_the_end() {
        assert!(replay_window_open(None, Some(1), i64::MAX));
        assert!(replay_window_open(Some(0), None, i64::MAX));
        assert!(replay_window_open(Some(0), Some(1), DAY_MS));
        assert!(!replay_window_open(Some(0), Some(1), DAY_MS + 1));
    }

    #[test]
    fn sources_round_trip() {
        for source in [
            GrantSource::Free,
            GrantSource::Purchase,
            GrantSource::Subscription,
            GrantSource::Tokens,
            GrantSource::Comp,
        ] {
            assert_eq!(GrantSource::parse(source.as_str()), Some(source));
        }
        assert_eq!(GrantSource::parse("gift"), None);
    }
}
