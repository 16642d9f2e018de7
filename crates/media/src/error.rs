//! The error type of greenroom-media.

/// A payload or bitstream that could not be parsed or rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The input ended before a structure was complete.
    #[error("{what} truncated: needed {needed} bytes, got {len}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed to read it.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
    /// A VP8 rewrite asked for a field the payload descriptor does not carry.
    #[error("VP8 payload descriptor has no {field} field to rewrite")]
    Vp8FieldAbsent {
        /// The missing field.
        field: &'static str,
    },
    /// An AVCC NAL unit length size outside 1..=4.
    #[error("invalid AVCC NAL length size {0} (expected 1..=4)")]
    InvalidLengthSize(usize),
    /// A NAL unit too large to be length-prefixed.
    #[error("NAL unit of {len} bytes does not fit a {length_size}-byte length prefix")]
    NalTooLarge {
        /// Length of the NAL unit.
        len: usize,
        /// Size of the length prefix in bytes.
        length_size: usize,
    },
    /// A field holds a value the format does not allow.
    #[error("invalid {what}: {value}")]
    Invalid {
        /// The field that was read.
        what: &'static str,
        /// The value found.
        value: u32,
    },
    /// A valid value this crate (or the target format) cannot handle.
    #[error("unsupported {what}: {value}")]
    Unsupported {
        /// The field that was read.
        what: &'static str,
        /// The value found.
        value: u32,
    },
    /// A unit larger than the format or a configured limit allows.
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
}
