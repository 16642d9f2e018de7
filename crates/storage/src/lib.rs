//! greenroom-storage: object storage for HLS recordings and replays.
//!
//! Two parts:
//! - [`ObjectStore`]: put, get (with HTTP byte ranges), head, list, delete and delete-by-prefix
//!   over a local directory (the default) or a bucket of any S3-compatible service
//!   ([`S3Config`]). Cheap to clone; one enum inside, no trait objects.
//! - [`Spool`]: a durable upload queue in front of a store, so an S3 outage never loses an
//!   object: entries wait on local disk, are retried forever with backoff, resume after a
//!   restart, and stay readable ([`Spool::read_pending`]) until they are uploaded.
//!
//! Invariants:
//! - Every key is checked by [`validate_key`] (prefixes by [`validate_prefix`]) before any file
//!   or request is touched: non-empty, at most 1024 bytes, relative, no `..`/`.`/empty
//!   segment, no backslash, NUL or control character.
//! - The local store never reads or writes outside its root: a valid key joined to the root
//!   stays under it, and the store itself creates no symlink. Writes are atomic (temporary
//!   file, fsync, rename), so a reader never sees half an object.
//! - A spool entry is durable (data and meta fsynced, meta last) before
//!   [`Spool::enqueue`] returns `Ok`, and nothing is deleted from the spool before the store
//!   confirmed the put.
//! - Entries of one key are uploaded in enqueue order, so the last body enqueued wins.
//! - This crate reads no environment variable: credentials and paths come in typed config.

mod error;
mod key;
mod local;
mod range;
mod s3;
mod spool;
mod store;

pub use error::StorageError;
pub use key::{MAX_KEY_LEN, content_type_for, validate_key, validate_prefix};
pub use range::ByteRange;
pub use s3::{MAX_PAGE_SIZE, S3Config};
pub use spool::{Spool, SpoolOptions, SpoolStats};
pub use store::{Object, ObjectMeta, ObjectStore, StoreConfig};
