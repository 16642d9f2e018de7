//! The one error type of this crate.

use std::io;

/// Everything that can go wrong in [`ObjectStore`](crate::ObjectStore) or
/// [`Spool`](crate::Spool). Each variant carries enough context (key, operation) to find the
/// object in the logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The object does not exist (local file missing, S3 `NoSuchKey` or 404 on HEAD).
    #[error("object {key:?} not found")]
    NotFound { key: String },
    /// The key (or prefix) breaks the rules of [`validate_key`](crate::validate_key).
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// A `Range` header that does not parse (`bytes=a-b`, `bytes=a-`, `bytes=-n`).
    #[error("invalid range {header:?}: {reason}")]
    InvalidRange {
        header: String,
        reason: &'static str,
    },
    /// The range parsed but lies outside an object of `len` bytes (HTTP 416).
    #[error("range not satisfiable for an object of {len} bytes")]
    RangeNotSatisfiable { len: u64 },
    /// A local file-system error on `key` (or on a spool or root path when `key` names one).
    #[error("i/o error on {key:?}: {source}")]
    Io {
        key: String,
        #[source]
        source: io::Error,
    },
    /// An S3 request failed; `message` is the SDK's own text (with its error chain).
    #[error("s3 {op} {key:?} failed: {message}")]
    S3 {
        op: &'static str,
        key: String,
        message: String,
    },
    /// The store or spool was configured wrongly (missing credentials, bad prefix, ...).
    #[error("storage config: {0}")]
    Config(String),
}

impl StorageError {
    /// True for [`StorageError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    pub(crate) fn io(key: impl Into<String>, source: io::Error) -> Self {
        StorageError::Io {
            key: key.into(),
            source,
        }
    }

    /// An I/O error on `key`, or [`StorageError::NotFound`] when the file is missing (or a
    /// parent of it is a file, so it cannot exist).
    pub(crate) fn io_or_not_found(key: &str, source: io::Error) -> Self {
        if is_missing(&source) {
            StorageError::NotFound {
                key: key.to_owned(),
            }
        } else {
            StorageError::io(key, source)
        }
    }
}

/// The file is not there: missing, or a parent path component is a plain file.
pub(crate) fn is_missing(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}
