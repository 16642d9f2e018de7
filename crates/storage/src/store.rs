//! [`ObjectStore`]: the one facade over a local directory or an S3-compatible bucket.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::local::LocalStore;
use crate::s3::{S3Config, S3Store};
use crate::{ByteRange, StorageError, validate_key, validate_prefix};

/// Where objects live; what a binary's typed config turns into.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// A directory on this machine (created if missing).
    Local { dir: PathBuf },
    /// A bucket of any S3-compatible service.
    S3(S3Config),
}

/// An object read back: the bytes served (the whole object, or the range asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub body: Bytes,
    /// Length of the whole object, whatever range was served.
    pub total_len: u64,
    /// The inclusive `(start, end)` actually served, when a range was asked for.
    pub range: Option<(u64, u64)>,
    pub content_type: String,
}

/// What a listing or a HEAD tells about an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectMeta {
    pub key: String,
    pub len: u64,
}

/// Object storage for recordings and replays: a local directory or an S3-compatible bucket.
///
/// Cheap to clone (an `Arc` inside). Every key is checked with [`validate_key`] (prefixes with
/// [`validate_prefix`]) before anything is touched.
#[derive(Clone)]
pub struct ObjectStore {
    backend: Arc<Backend>,
}

enum Backend {
    Local(LocalStore),
    S3(S3Store),
}

impl ObjectStore {
    /// A store in the directory `dir`, created if missing. Keys become relative paths under it.
    pub fn local(dir: PathBuf) -> Result<ObjectStore, StorageError> {
        Ok(ObjectStore::from_backend(Backend::Local(LocalStore::open(
            dir,
        )?)))
    }

    /// A store in an S3-compatible bucket. Fails with [`StorageError::Config`] on an empty
    /// bucket, a bad prefix or endpoint, or missing credentials. Sends no request.
    pub fn s3(config: S3Config) -> Result<ObjectStore, StorageError> {
        Ok(ObjectStore::from_backend(Backend::S3(S3Store::new(
            config,
        )?)))
    }

    /// [`ObjectStore::local`] or [`ObjectStore::s3`], as the config says.
    pub fn from_config(config: StoreConfig) -> Result<ObjectStore, StorageError> {
        match config {
            StoreConfig::Local { dir } => ObjectStore::local(dir),
            StoreConfig::S3(s3) => ObjectStore::s3(s3),
        }
    }

    fn from_backend(backend: Backend) -> ObjectStore {
        ObjectStore {
            backend: Arc::new(backend),
        }
    }

    /// Stores `body` under `key`, replacing any previous object. Local: written to a temporary
    /// file in the same directory, fsynced, then renamed, so a reader sees the old object or the
    /// new one, never a part. S3: one `PutObject` carrying `content_type`.
    pub async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        validate_key(key)?;
        match &*self.backend {
            Backend::Local(local) => local.put(key, body).await,
            Backend::S3(s3) => s3.put(key, body, content_type).await,
        }
    }

    /// Reads an object, or the byte `range` of it. A range outside the object is
    /// [`StorageError::RangeNotSatisfiable`]; a missing object is [`StorageError::NotFound`].
    pub async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Object, StorageError> {
        validate_key(key)?;
        match &*self.backend {
            Backend::Local(local) => local.get(key, range).await,
            Backend::S3(s3) => s3.get(key, range).await,
        }
    }

    /// The length of an object, without reading it.
    pub async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        validate_key(key)?;
        match &*self.backend {
            Backend::Local(local) => local.head(key).await,
            Backend::S3(s3) => s3.head(key).await,
        }
    }

    /// Removes an object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        match &*self.backend {
            Backend::Local(local) => local.delete(key).await,
            Backend::S3(s3) => s3.delete(key).await,
        }
    }

    /// Removes every object whose key starts with `prefix` (usually dir-like:
    /// `recordings/abc/`) and returns how many were removed. An empty prefix is refused
    /// ([`StorageError::InvalidKey`]): this never empties the whole store.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        validate_prefix(prefix)?;
        if prefix.is_empty() {
            return Err(StorageError::InvalidKey {
                key: String::new(),
                reason: "delete_prefix refuses the empty prefix",
            });
        }
        match &*self.backend {
            Backend::Local(local) => local.delete_prefix(prefix).await,
            Backend::S3(s3) => s3.delete_prefix(prefix).await,
        }
    }

    /// Every object whose key starts with `prefix` (empty: all), sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        validate_prefix(prefix)?;
        let mut objects = match &*self.backend {
            Backend::Local(local) => local.list(prefix).await?,
            Backend::S3(s3) => s3.list(prefix).await?,
        };
        objects.sort();
        Ok(objects)
    }

    /// For logs: `local:/srv/greenroom` or `s3://bucket/prefix @ http://127.0.0.1:9000`.
    /// Never contains credentials.
    pub fn describe(&self) -> String {
        match &*self.backend {
            Backend::Local(local) => local.describe(),
            Backend::S3(s3) => s3.describe(),
        }
    }
}

impl fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ObjectStore")
            .field(&self.describe())
            .finish()
    }
}
