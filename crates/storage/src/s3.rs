//! The S3-compatible backend of [`ObjectStore`](crate::ObjectStore), on `aws-sdk-s3`.
//!
//! Works with AWS and with any service that speaks the S3 API and SigV4 (MinIO, Ceph RGW, R2,
//! s3s-fs, ...): a custom `endpoint`, path-style addressing when asked, and checksums only where
//! S3 requires them (the SDK's newer default of a CRC on every request is not understood
//! everywhere). Bodies are signed, so the signature also covers their integrity.

use std::fmt;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::Bytes;

use crate::{ByteRange, Object, ObjectMeta, StorageError, content_type_for, validate_prefix};

/// Most keys S3 returns in one listing page, and accepts in one `DeleteObjects`.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// How to reach a bucket of an S3-compatible service. The library reads nothing from the
/// environment: the binary fills this in (secrets from its own environment).
#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Signing region; `us-east-1` by default (what most S3-compatible services expect).
    pub region: String,
    /// Base URL of an S3-compatible service, e.g. `http://127.0.0.1:9000`; `None` for AWS.
    pub endpoint: Option<String>,
    /// Both keys are required: anonymous access is not supported.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// `http://host/bucket/key` instead of `http://bucket.host/key` (MinIO, s3s-fs, ...).
    pub path_style: bool,
    /// Folder inside the bucket that holds every key (`greenroom` and `greenroom/` both mean
    /// `greenroom/...`); empty for the bucket's root.
    pub prefix: String,
    /// Keys asked for per listing page, and per `DeleteObjects` batch: 1 to
    /// [`MAX_PAGE_SIZE`]. Only tests want less than the default 1000.
    pub list_page_size: u32,
}

impl S3Config {
    /// A config for `bucket` with the defaults: region `us-east-1`, AWS endpoint,
    /// virtual-hosted style, no prefix, no credentials (set them before use).
    pub fn new(bucket: impl Into<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            ..S3Config::default()
        }
    }
}

impl Default for S3Config {
    fn default() -> S3Config {
        S3Config {
            bucket: String::new(),
            region: "us-east-1".to_owned(),
            endpoint: None,
            access_key_id: None,
            secret_access_key: None,
            path_style: false,
            prefix: String::new(),
            list_page_size: MAX_PAGE_SIZE,
        }
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("path_style", &self.path_style)
            .field("prefix", &self.prefix)
            .field("list_page_size", &self.list_page_size)
            .finish()
    }
}

pub(crate) struct S3Store {
    client: Client,
    bucket: String,
    /// Empty, or ends with `/`.
    prefix: String,
    page_size: u32,
    description: String,
}

impl S3Store {
    pub(crate) fn new(config: S3Config) -> Result<S3Store, StorageError> {
        let S3Config {
            bucket,
            region,
            endpoint,
            access_key_id,
            secret_access_key,
            path_style,
            prefix,
            list_page_size,
        } = config;
        if bucket.is_empty() {
            return Err(StorageError::Config("s3 bucket is empty".to_owned()));
        }
        if region.is_empty() {
            return Err(StorageError::Config("s3 region is empty".to_owned()));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&list_page_size) {
            return Err(StorageError::Config(format!(
                "s3 list_page_size {list_page_size} is not within 1..={MAX_PAGE_SIZE}"
            )));
        }
        let prefix = normalize_prefix(&prefix)?;
        if let Some(endpoint) = &endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(StorageError::Config(format!(
                "s3 endpoint {endpoint:?} is not an http:// or https:// URL"
            )));
        }
        let (access_key_id, secret_access_key) = match (access_key_id, secret_access_key) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => (id, secret),
            _ => {
                return Err(StorageError::Config(
                    "s3 needs both access_key_id and secret_access_key (anonymous access is not supported)"
                        .to_owned(),
                ));
            }
        };

        let description = match &endpoint {
            Some(endpoint) => format!("s3://{bucket}/{prefix} @ {endpoint}"),
            None => format!("s3://{bucket}/{prefix} @ aws {region}"),
        };
        let credentials = Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "greenroom-config",
        );
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(120))
            .build();
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(credentials)
            .force_path_style(path_style)
            .timeout_config(timeouts)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(S3Store {
            client: Client::from_conf(builder.build()),
            bucket,
            prefix,
            page_size: list_page_size,
            description,
        })
    }

    pub(crate) fn describe(&self) -> String {
        self.description.clone()
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub(crate) async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| sdk_error("PutObject", key, e))?;
        Ok(())
    }

    pub(crate) async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<Object, StorageError> {
        let mut request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key));
        if let Some(range) = range {
            request = request.range(range.to_header());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if range.is_some() && is_status(&e, 416) => {
                // The 416 body does not say the length; ask for it.
                let len = self.head(key).await?.len;
                return Err(StorageError::RangeNotSatisfiable { len });
            }
            Err(e) => return Err(sdk_error("GetObject", key, e)),
        };
        let content_type = response
            .content_type()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| content_type_for(key))
            .to_owned();
        let content_range = response.content_range().map(str::to_owned);
        let body = response
            .body
            .collect()
            .await
            .map_err(|e| StorageError::S3 {
                op: "GetObject",
                key: key.to_owned(),
                message: format!("reading the body: {}", DisplayErrorContext(&e)),
            })?
            .into_bytes();
        let body_len = body.len() as u64;
        let Some(range) = range else {
            return Ok(Object {
                body,
                total_len: body_len,
                range: None,
                content_type,
            });
        };
        match content_range {
            Some(header) => {
                let (start, end, total_len) =
                    parse_content_range(&header).ok_or_else(|| StorageError::S3 {
                        op: "GetObject",
                        key: key.to_owned(),
                        message: format!("unreadable Content-Range {header:?}"),
                    })?;
                if end - start + 1 != body_len {
                    return Err(StorageError::S3 {
                        op: "GetObject",
                        key: key.to_owned(),
                        message: format!(
                            "Content-Range {header:?} does not match a body of {body_len} bytes"
                        ),
                    });
                }
                Ok(Object {
                    body,
                    total_len,
                    range: Some((start, end)),
                    content_type,
                })
            }
            None => {
                // The service ignored the Range header and sent the whole object: cut it here.
                let (start, end) = range.resolve(body_len)?;
                let (from, to) = (index(start, key)?, index(end, key)?);
                Ok(Object {
                    body: body.slice(from..=to),
                    total_len: body_len,
                    range: Some((start, end)),
                    content_type,
                })
            }
        }
    }

    pub(crate) async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let response = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| sdk_error("HeadObject", key, e))?;
        let len = response
            .content_length()
            .and_then(|len| u64::try_from(len).ok())
            .ok_or_else(|| StorageError::S3 {
                op: "HeadObject",
                key: key.to_owned(),
                message: "no valid Content-Length in the response".to_owned(),
            })?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            len,
        })
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| sdk_error("DeleteObject", key, e))
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let full_prefix = self.full_key(prefix);
        let page_size = i32::try_from(self.page_size).unwrap_or(1000);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full_prefix)
                .max_keys(page_size)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("ListObjectsV2", prefix, e))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                // Folder markers (`a/b/`) some tools create are not objects.
                if key.is_empty() || key.ends_with('/') {
                    continue;
                }
                out.push(ObjectMeta {
                    key: key.to_owned(),
                    len: object
                        .size()
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0),
                });
            }
            match (page.is_truncated(), page.next_continuation_token()) {
                (Some(true), Some(next)) if !next.is_empty() => token = Some(next.to_owned()),
                (Some(true), _) => {
                    return Err(StorageError::S3 {
                        op: "ListObjectsV2",
                        key: prefix.to_owned(),
                        message: "truncated page without a continuation token".to_owned(),
                    });
                }
                _ => break,
            }
        }
        Ok(out)
    }

    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        // List everything first: deleting while paging could make a service skip keys.
        let objects = self.list(prefix).await?;
        let batch_size = usize::try_from(self.page_size).unwrap_or(1000);
        let mut deleted = 0u64;
        for batch in objects.chunks(batch_size) {
            let ids = batch
                .iter()
                .map(|o| {
                    ObjectIdentifier::builder()
                        .key(self.full_key(&o.key))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| build_error(prefix, &e))?;
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(|e| build_error(prefix, &e))?;
            let response = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| sdk_error("DeleteObjects", prefix, e))?;
            let errors = response.errors();
            if let Some(first) = errors.first() {
                return Err(StorageError::S3 {
                    op: "DeleteObjects",
                    key: first.key().unwrap_or(prefix).to_owned(),
                    message: format!(
                        "{} of {} keys not deleted; first: {} {}",
                        errors.len(),
                        batch.len(),
                        first.code().unwrap_or("?"),
                        first.message().unwrap_or("")
                    ),
                });
            }
            deleted += batch.len() as u64;
        }
        Ok(deleted)
    }
}

/// `greenroom`, `greenroom/` -> `greenroom/`; `` -> ``.
fn normalize_prefix(prefix: &str) -> Result<String, StorageError> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let normalized = format!("{trimmed}/");
    validate_prefix(&normalized)
        .map_err(|e| StorageError::Config(format!("s3 prefix {prefix:?}: {e}")))?;
    Ok(normalized)
}

fn is_status<E>(err: &SdkError<E>, status: u16) -> bool {
    err.raw_response()
        .is_some_and(|r| r.status().as_u16() == status)
}

/// Maps an SDK error: `NoSuchKey`, or a 404 that is not `NoSuchBucket` (HEAD has no body to
/// say more), is [`StorageError::NotFound`]; anything else keeps the SDK's text.
fn sdk_error<E>(op: &'static str, key: &str, err: SdkError<E>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code();
    let not_found =
        code == Some("NoSuchKey") || (is_status(&err, 404) && code != Some("NoSuchBucket"));
    if not_found {
        return StorageError::NotFound {
            key: key.to_owned(),
        };
    }
    StorageError::S3 {
        op,
        key: key.to_owned(),
        message: DisplayErrorContext(&err).to_string(),
    }
}

fn build_error(key: &str, err: &aws_sdk_s3::error::BuildError) -> StorageError {
    StorageError::S3 {
        op: "DeleteObjects",
        key: key.to_owned(),
        message: err.to_string(),
    }
}

fn index(offset: u64, key: &str) -> Result<usize, StorageError> {
    usize::try_from(offset).map_err(|_| StorageError::S3 {
        op: "GetObject",
        key: key.to_owned(),
        message: "offset does not fit in memory".to_owned(),
    })
}

/// `bytes 0-99/1000` -> `(0, 99, 1000)`.
fn parse_content_range(header: &str) -> Option<(u64, u64, u64)> {
    let spec = header.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = spec.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end): (u64, u64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    let total: u64 = total.trim().parse().ok()?;
    (start <= end && end < total).then_some((start, end, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> S3Config {
        S3Config {
            access_key_id: Some("id".to_owned()),
            secret_access_key: Some("secret".to_owned()),
            endpoint: Some("http://127.0.0.1:9".to_owned()),
            ..S3Config::new("bucket")
        }
    }

    fn config_error(config: S3Config) -> String {
        match S3Store::new(config) {
            Err(StorageError::Config(message)) => message,
            Err(other) => panic!("expected a config error, got {other}"),
            Ok(_) => panic!("expected a config error"),
        }
    }

    #[test]
    fn content_range_parses() {
        assert_eq!(parse_content_range("bytes 0-99/1000"), Some((0, 99, 1000)));
        assert_eq!(parse_content_range("bytes 5-5/6"), Some((5, 5, 6)));
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("bytes 5-4/6"), None);
        assert_eq!(parse_content_range("bytes 0-6/6"), None);
        assert_eq!(parse_content_range("0-1/2"), None);
    }

    #[test]
    fn prefixes_are_normalized_to_folders() {
        assert_eq!(normalize_prefix("").ok().as_deref(), Some(""));
        assert_eq!(normalize_prefix("/").ok().as_deref(), Some(""));
        assert_eq!(normalize_prefix("gr").ok().as_deref(), Some("gr/"));
        assert_eq!(
            normalize_prefix("/gr/live/").ok().as_deref(),
            Some("gr/live/")
        );
        assert!(normalize_prefix("gr/../x").is_err());
    }

    #[test]
    fn config_is_checked() {
        assert!(S3Store::new(config()).is_ok());
        assert!(
            config_error(S3Config {
                secret_access_key: None,
                ..config()
            })
            .contains("both")
        );
        assert!(
            config_error(S3Config {
                access_key_id: None,
                secret_access_key: None,
                ..config()
            })
            .contains("anonymous")
        );
        assert!(
            config_error(S3Config {
                bucket: String::new(),
                ..config()
            })
            .contains("bucket")
        );
        assert!(
            config_error(S3Config {
                endpoint: Some("127.0.0.1:9000".into()),
                ..config()
            })
            .contains("endpoint")
        );
        assert!(
            config_error(S3Config {
                list_page_size: 0,
                ..config()
            })
            .contains("page")
        );
        assert!(
            config_error(S3Config {
                list_page_size: 1001,
                ..config()
            })
            .contains("page")
        );
        assert!(
            config_error(S3Config {
                prefix: "a/../b".into(),
                ..config()
            })
            .contains("prefix")
        );
    }

    #[test]
    fn describe_and_debug_hide_the_secret() {
        let store = S3Store::new(S3Config {
            prefix: "gr".into(),
            ..config()
        })
        .expect("store");
        assert_eq!(store.describe(), "s3://bucket/gr/ @ http://127.0.0.1:9");
        let debug = format!("{:?}", config());
        assert!(!debug.contains("\"secret\""), "{debug}");
        assert!(debug.contains("redacted"));
    }
}
