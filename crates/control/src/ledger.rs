//! The money ledger's records: transfers of integer minor units between accounts.

use serde::Serialize;

/// What a transfer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// A viewer bought tokens (payment provider → wallet).
    TokenPurchase,
    /// A viewer spent tokens on a stream (wallet → creator).
    TokenSpend,
    /// A tip: buyer's payment → creator, less the platform fee.
    Tip,
    /// An access pass bought.
    PassPurchase,
    /// Money back to a buyer.
    Refund,
    /// Money paid out to a creator.
    Payout,
    /// An operator's correction.
    Adjustment,
}

impl TransferKind {
    pub(crate) fn as_db(self) -> &'static str {
        match self {
            TransferKind::TokenPurchase => "token_purchase",
            TransferKind::TokenSpend => "token_spend",
            TransferKind::Tip => "tip",
            TransferKind::PassPurchase => "pass_purchase",
            TransferKind::Refund => "refund",
            TransferKind::Payout => "payout",
            TransferKind::Adjustment => "adjustment",
        }
    }

    pub(crate) fn from_db(value: &str) -> Option<TransferKind> {
        Some(match value {
            "token_purchase" => TransferKind::TokenPurchase,
            "token_spend" => TransferKind::TokenSpend,
            "tip" => TransferKind::Tip,
            "pass_purchase" => TransferKind::PassPurchase,
            "refund" => TransferKind::Refund,
            "payout" => TransferKind::Payout,
            "adjustment" => TransferKind::Adjustment,
            _ => return None,
        })
    }
}

/// One leg of a transfer: `amount_minor` added to (or, negative, taken from) `account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferLeg {
    /// e.g. `wallet:{user}`, `creator:{channel}`, `platform:fees`, `external:stripe`.
    pub account: String,
    pub amount_minor: i64,
    /// The account may go below zero (it stands for the outside world, e.g. the payment
    /// provider). Set when the account is first used; ignored afterwards.
    pub allow_negative: bool,
}

impl TransferLeg {
    /// A leg on an account that can never go below zero.
    pub fn new(account: impl Into<String>, amount_minor: i64) -> TransferLeg {
        TransferLeg {
            account: account.into(),
            amount_minor,
            allow_negative: false,
        }
    }

    /// A leg on an outside-world account that may go below zero.
    pub fn external(account: impl Into<String>, amount_minor: i64) -> TransferLeg {
        TransferLeg {
            allow_negative: true,
            ..TransferLeg::new(account, amount_minor)
        }
    }
}

/// A movement of money: legs that sum to zero, posted at most once per idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The same key posts the same transfer once (a retried request, a redelivered webhook).
    pub idempotency_key: String,
    pub kind: TransferKind,
    /// ISO 4217 code (lowercase), or `tok` for wallet tokens.
    pub currency: String,
    pub legs: Vec<TransferLeg>,
    pub memo: Option<String>,
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub id: String,
    pub transfer_id: String,
    pub account: String,
    pub amount_minor: i64,
    pub currency: String,
    pub kind: TransferKind,
    pub memo: Option<String>,
    pub created_at_ms: i64,
}

/// A posted transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub transfer_id: String,
    /// This key had been posted before: nothing moved this time.
    pub replayed: bool,
}
