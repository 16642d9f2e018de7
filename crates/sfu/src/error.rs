//! The error type of greenroom-sfu.

/// Invalid input to the forwarding core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    /// A simulcast rid other than "q", "h" or "f".
    #[error("unknown simulcast rid {rid:?} (expected \"q\", \"h\" or \"f\")")]
    UnknownRid {
        /// The rid as received.
        rid: String,
    },
}
