//! Tips: money a viewer gives the channel of a stream, with an optional message. A tip is
//! made `pending` with its checkout, becomes `paid` when Stripe reports the payment (the
//! server then shows it to the creator live) and `refunded` when the payment is refunded.

use serde::Serialize;

/// Where a tip is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TipStatus {
    /// Its checkout is not paid yet.
    Pending,
    /// Paid; the channel has its part.
    Paid,
    /// The payment was refunded in full.
    Refunded,
}

impl TipStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TipStatus::Pending => "pending",
            TipStatus::Paid => "paid",
            TipStatus::Refunded => "refunded",
        }
    }

    pub fn parse(value: &str) -> Option<TipStatus> {
        match value {
            "pending" => Some(TipStatus::Pending),
            "paid" => Some(TipStatus::Paid),
            "refunded" => Some(TipStatus::Refunded),
            _ => None,
        }
    }
}

/// A tip as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tip {
    pub id: String,
    pub stream_id: String,
    pub channel_id: String,
    /// The tipper.
    pub account_id: String,
    pub checkout_id: String,
    /// What the tipper pays, in minor units of `currency`.
    pub amount_minor: i64,
    pub currency: String,
    /// The platform's part; the channel gets `amount_minor - fee_minor`.
    pub fee_minor: i64,
    pub message: Option<String>,
    pub status: TipStatus,
    pub stripe_payment_intent_id: Option<String>,
    pub created_at_ms: i64,
    pub paid_at_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for status in [TipStatus::Pending, TipStatus::Paid, TipStatus::Refunded] {
            assert_eq!(TipStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TipStatus::parse("lost"), None);
    }
}
