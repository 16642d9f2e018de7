//! Playback gating (DESIGN decision 5): whether a stream is paid, answered from memory, and the
//! check of a presented playback token against the signing key alone.
//!
//! [`AccessCache`] keeps, per stream, what the gates need (paid or free, ended) and, per
//! recording, the recording row, for a few seconds. A request that finds an entry never waits
//! for the database: a stale entry is answered and refreshed in the background, so the
//! per-segment path of HLS and replays reads memory only (the database is read once per stream
//! and per [`DEFAULT_TTL`] at most, and on the very first request). The API calls
//! [`AccessCache::invalidate`] after it changes a stream, so a change is seen at once on this
//! node.
//!
//! Invariants:
//! - no lock is held across an `.await`; at most one background refresh per entry at a time;
//! - a free stream needs no token (a presented one is ignored); a paid one needs a genuine,
//!   unexpired token naming that stream and the right asked for;
//! - errors: no token → `token_required`, malformed or forged → `invalid_token`, expired →
//!   `token_expired`, another stream or right → `token_wrong_stream`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use greenroom_control::playback_token::{PlaybackClaims, PlaybackRight, PlaybackTokens};
use greenroom_control::{ControlError, Recording, Store, Stream};
use greenroom_ingest::IngestError;

use crate::api::ApiError;

/// How long an entry is answered without a refresh.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// Past this many entries, old ones are dropped when a new one is added.
const MAX_ENTRIES: usize = 10_000;

/// What the gates need to know about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGate {
    pub id: String,
    /// Watching needs a playback token.
    pub paid: bool,
    pub ended: bool,
    /// Cancelled before it ever went live (also ended).
    pub cancelled: bool,
}

impl StreamGate {
    fn of(stream: &Stream) -> StreamGate {
        StreamGate {
            id: stream.id.clone(),
            paid: !stream.is_free(),
            ended: stream.is_ended(),
            cancelled: stream.cancelled_at_ms.is_some(),
        }
    }
}

/// Why a playback token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    TokenRequired,
    InvalidToken { reason: String },
    TokenExpired,
    TokenWrongStream,
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> ApiError {
        match denied {
            Denied::TokenRequired => ApiError::TokenRequired,
            Denied::InvalidToken { reason } => ApiError::InvalidToken { reason },
            Denied::TokenExpired => ApiError::TokenExpired,
            Denied::TokenWrongStream => ApiError::TokenWrongStream,
        }
    }
}

impl Denied {
    /// The WHIP/WHEP answer for `stream`.
    pub fn into_ingest(self, stream: &str) -> IngestError {
        match self {
            Denied::TokenRequired => IngestError::TokenRequired {
                stream: stream.to_owned(),
            },
            Denied::InvalidToken { reason } => IngestError::InvalidToken { reason },
            Denied::TokenExpired => IngestError::TokenExpired,
            Denied::TokenWrongStream => IngestError::TokenWrongStream {
                stream: stream.to_owned(),
            },
        }
    }
}

/// Checks `token` for `right` on `stream` at `now_unix` (seconds), with the key alone.
pub fn check_token(
    tokens: &PlaybackTokens,
    token: Option<&str>,
    stream: &str,
    right: PlaybackRight,
    now_unix: i64,
) -> Result<PlaybackClaims, Denied> {
    let token = token.ok_or(Denied::TokenRequired)?;
    let claims = tokens.verify(token, now_unix).map_err(|err| match err {
        ControlError::TokenExpired { .. } => Denied::TokenExpired,
        ControlError::InvalidToken { reason } => Denied::InvalidToken { reason },
        other => Denied::InvalidToken {
            reason: other.to_string(),
        },
    })?;
    if !claims.allows(stream, right) {
        return Err(Denied::TokenWrongStream);
    }
    Ok(claims)
}

/// Where a generated playback key is kept in the data directory.
pub const PLAYBACK_KEY_FILE: &str = "playback.key";

/// Playback tokens signed with a fresh random key (nothing survives a restart); for states
/// built without a configured key.
pub fn random_playback_tokens() -> PlaybackTokens {
    let key: [u8; 32] = rand::random();
    // 32 bytes is the minimum, so this cannot fail.
    PlaybackTokens::new(&key).unwrap_or_else(|_| unreachable!("a 32-byte key is accepted"))
}

/// The signing key: the configured one, else the one kept in `data_dir/playback.key`, else a
/// new random one written there (mode 0600) for the next starts. `data_dir` must exist.
pub fn resolve_playback_key(
    configured: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<PlaybackTokens> {
    use anyhow::Context;
    use std::io::{ErrorKind, Write};
    let from_text = |text: &str, origin: &str| {
        PlaybackTokens::new(text.trim().as_bytes()).map_err(|_| {
            anyhow::anyhow!(
                "the playback key {origin} is shorter than {} bytes",
                greenroom_control::playback_token::MIN_KEY_BYTES
            )
        })
    };
    if let Some(key) = configured {
        return from_text(key, "configured");
    }
    let path = data_dir.join(PLAYBACK_KEY_FILE);
    let read = |path: &std::path::Path| -> anyhow::Result<Option<PlaybackTokens>> {
        match std::fs::read_to_string(path) {
            Ok(text) => from_text(
                &text,
                &format!("in {} (delete the file to make a new one)", path.display()),
            )
            .map(Some),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    };
    if let Some(tokens) = read(&path)? {
        return Ok(tokens);
    }
    let key: String = rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(key.as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write the playback key to {}", path.display()))?;
            tracing::info!(path = %path.display(), "playback key generated");
            from_text(&key, "generated")
        }
        // Another process made it in between: use theirs.
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            read(&path)?.with_context(|| format!("{} vanished while starting", path.display()))
        }
        Err(err) => {
            Err(err).with_context(|| format!("cannot write the playback key to {}", path.display()))
        }
    }
}

/// The current time in unix seconds.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

struct Entry<T> {
    value: T,
    loaded: Instant,
    refreshing: bool,
}

/// A small map of entries loaded from the store, answered stale while refreshed.
struct Table<T> {
    entries: Mutex<HashMap<String, Entry<T>>>,
}

impl<T: Clone> Table<T> {
    fn new() -> Table<T> {
        Table {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<T>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry, and whether the caller should refresh it (it is stale and nobody is).
    fn get(&self, key: &str, ttl: Duration) -> Option<(T, bool)> {
        let mut entries = self.lock();
        let entry = entries.get_mut(key)?;
        let refresh = entry.loaded.elapsed() >= ttl && !entry.refreshing;
        if refresh {
            entry.refreshing = true;
        }
        Some((entry.value.clone(), refresh))
    }

    fn put(&self, key: String, value: T, ttl: Duration) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, e| e.loaded.elapsed() < ttl);
        }
        entries.insert(
            key,
            Entry {
                value,
                loaded: Instant::now(),
                refreshing: false,
            },
        );
    }

    fn remove<Q: ?Sized + Hash + Eq>(&self, key: &Q)
    where
        String: std::borrow::Borrow<Q>,
    {
        self.lock().remove(key);
    }

    fn refresh_failed(&self, key: &str) {
        if let Some(entry) = self.lock().get_mut(key) {
            entry.refreshing = false;
        }
    }
}

struct Inner {
    store: Store,
    ttl: Duration,
    streams: Table<StreamGate>,
    recordings: Table<Recording>,
}

/// Stream access and recordings, from memory; cheap to clone.
#[derive(Clone)]
pub struct AccessCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AccessCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessCache")
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl AccessCache {
    pub fn new(store: Store) -> AccessCache {
        AccessCache::with_ttl(store, DEFAULT_TTL)
    }

    pub fn with_ttl(store: Store, ttl: Duration) -> AccessCache {
        AccessCache {
            inner: Arc::new(Inner {
                store,
                ttl,
                streams: Table::new(),
                recordings: Table::new(),
            }),
        }
    }

    /// What the gates know about stream `id`: from memory, or read once from the store
    /// ([`ControlError::StreamNotFound`] is not remembered).
    pub async fn stream(&self, id: &str) -> Result<StreamGate, ControlError> {
        if let Some((gate, refresh)) = self.inner.streams.get(id, self.inner.ttl) {
            if refresh {
                let this = self.clone();
                let id = id.to_owned();
                tokio::spawn(async move {
                    let _ = this.load_stream(&id).await;
                });
            }
            return Ok(gate);
        }
        self.load_stream(id).await
    }

    async fn load_stream(&self, id: &str) -> Result<StreamGate, ControlError> {
        match self.inner.store.get_stream(id).await {
            Ok(stream) => {
                let gate = StreamGate::of(&stream);
                self.inner
                    .streams
                    .put(id.to_owned(), gate.clone(), self.inner.ttl);
                Ok(gate)
            }
            Err(err @ ControlError::StreamNotFound { .. }) => {
                self.inner.streams.remove(id);
                Err(err)
            }
            Err(err) => {
                self.inner.streams.refresh_failed(id);
                Err(err)
            }
        }
    }

    /// Recording `id`: from memory, or read once from the store.
    pub async fn recording(&self, id: &str) -> Result<Recording, ControlError> {
        if let Some((recording, refresh)) = self.inner.recordings.get(id, self.inner.ttl) {
            if refresh {
                let this = self.clone();
                let id = id.to_owned();
                tokio::spawn(async move {
                    let _ = this.load_recording(&id).await;
                });
            }
            return Ok(recording);
        }
        self.load_recording(id).await
    }

    async fn load_recording(&self, id: &str) -> Result<Recording, ControlError> {
        match self.inner.store.get_recording(id).await {
            Ok(recording) => {
                self.inner
                    .recordings
                    .put(id.to_owned(), recording.clone(), self.inner.ttl);
                Ok(recording)
            }
            Err(err @ ControlError::RecordingNotFound { .. }) => {
                self.inner.recordings.remove(id);
                Err(err)
            }
            Err(err) => {
                self.inner.recordings.refresh_failed(id);
                Err(err)
            }
        }
    }

    /// Forgets what is known about stream `id` (call after changing it): the next request
    /// reads the store.
    pub fn invalidate(&self, stream: &str) {
        self.inner.streams.remove(stream);
    }

    /// Forgets recording `id` (after it was finished, changed or deleted).
    pub fn invalidate_recording(&self, recording: &str) {
        self.inner.recordings.remove(recording);
    }

    /// Lets `token` through for `right` on stream `stream` when the stream is paid; a free
    /// stream lets anyone through. Store errors (not found, database) come first.
    pub async fn authorize(
        &self,
        tokens: &PlaybackTokens,
        stream: &str,
        token: Option<&str>,
        right: PlaybackRight,
    ) -> Result<StreamGate, GateError> {
        let gate = self.stream(stream).await?;
        if gate.paid {
            check_token(tokens, token, stream, right, now_unix())?;
        }
        Ok(gate)
    }
}

/// A gate refusal: the stream could not be read, or the token was not accepted.
#[derive(Debug)]
pub enum GateError {
    Control(ControlError),
    Denied(Denied),
}

impl From<ControlError> for GateError {
    fn from(err: ControlError) -> GateError {
        GateError::Control(err)
    }
}

impl From<Denied> for GateError {
    fn from(denied: Denied) -> GateError {
        GateError::Denied(denied)
    }
}

impl From<GateError> for ApiError {
    fn from(err: GateError) -> ApiError {
        match err {
            GateError::Control(err) => err.into(),
            GateError::Denied(denied) => denied.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> PlaybackTokens {
        PlaybackTokens::new(&[9u8; 32]).expect("key")
    }

    fn token(stream: &str, right: PlaybackRight, exp: i64) -> String {
        tokens().issue(&PlaybackClaims {
            stream: stream.to_owned(),
            right,
            exp,
            sub: None,
        })
    }

    #[test]
    fn each_refusal_has_its_reason() {
        let t = tokens();
        let check = |token: Option<&str>| check_token(&t, token, "s1", PlaybackRight::Watch, 100);
        assert_eq!(check(None), Err(Denied::TokenRequired));
        assert!(matches!(
            check(Some("gr1.junk.junk")),
            Err(Denied::InvalidToken { .. })
        ));
        let forged = PlaybackTokens::new(&[1u8; 32])
            .expect("key")
            .issue(&PlaybackClaims {
                stream: "s1".to_owned(),
                right: PlaybackRight::Watch,
                exp: 1000,
                sub: None,
            });
        assert!(matches!(
            check(Some(&forged)),
            Err(Denied::InvalidToken { .. })
        ));
        assert_eq!(
            check(Some(&token("s1", PlaybackRight::Watch, 100))),
            Err(Denied::TokenExpired)
        );
        assert_eq!(
            check(Some(&token("s2", PlaybackRight::Watch, 1000))),
            Err(Denied::TokenWrongStream)
        );
        assert_eq!(
            check(Some(&token("s1", PlaybackRight::Replay, 1000))),
            Err(Denied::TokenWrongStream)
        );
        let claims = check(Some(&token("s1", PlaybackRight::Watch, 1000))).expect("valid");
        assert_eq!(claims.stream, "s1");
        for (denied, code, status) in [
            (Denied::TokenRequired, "token_required", 401),
            (
                Denied::InvalidToken {
                    reason: String::new(),
                },
                "invalid_token",
                401,
            ),
            (Denied::TokenExpired, "token_expired", 401),
            (Denied::TokenWrongStream, "token_wrong_stream", 403),
        ] {
            let ingest = denied.clone().into_ingest("s1");
            assert_eq!((ingest.code(), ingest.status().as_u16()), (code, status));
            let api = ApiError::from(denied);
            assert_eq!((api.code(), api.status().as_u16()), (code, status));
        }
    }

    #[test]
    fn a_generated_playback_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = resolve_playback_key(None, dir.path()).expect("generated");
        let path = dir.path().join(PLAYBACK_KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = resolve_playback_key(None, dir.path()).expect("stored");
        let claims = PlaybackClaims {
            stream: "s1".to_owned(),
            right: PlaybackRight::Watch,
            exp: 1000,
            sub: None,
        };
        assert_eq!(first.issue(&claims), again.issue(&claims));
        // A configured key wins; a short one is refused, as is a damaged file.
        let configured = resolve_playback_key(Some(&"k".repeat(32)), dir.path()).expect("key");
        assert_ne!(configured.issue(&claims), first.issue(&claims));
        assert!(resolve_playback_key(Some("short"), dir.path()).is_err());
        std::fs::write(&path, "short\n").expect("write");
        let err = resolve_playback_key(None, dir.path())
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("delete the file"));
    }

    #[tokio::test]
    async fn the_store_is_read_once_per_ttl_and_again_after_invalidation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::connect(&Store::sqlite_url(dir.path()))
            .await
            .expect("store");
        let stream = store.create_stream("gated").await.expect("stream");
        let cache = AccessCache::with_ttl(store.clone(), Duration::from_secs(3600));
        let gate = cache.stream(&stream.id).await.expect("gate");
        assert!(!gate.paid && !gate.ended);
        // Ended in the store: the cache still answers what it read until invalidated.
        store.end_stream(&stream.id).await.expect("end");
        assert!(!cache.stream(&stream.id).await.expect("gate").ended);
        cache.invalidate(&stream.id);
        assert!(cache.stream(&stream.id).await.expect("gate").ended);
        assert!(matches!(
            cache.stream("nosuchstreamaaaa").await,
            Err(ControlError::StreamNotFound { .. })
        ));
        // A free stream lets anyone through, whatever they present.
        cache
            .authorize(&tokens(), &stream.id, Some("junk"), PlaybackRight::Watch)
            .await
            .expect("free");
        store.close().await;
    }

    #[tokio::test]
    async fn a_stale_entry_is_answered_and_refreshed_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::connect(&Store::sqlite_url(dir.path()))
            .await
            .expect("store");
        let stream = store.create_stream("gated").await.expect("stream");
        let cache = AccessCache::with_ttl(store.clone(), Duration::ZERO);
        assert!(!cache.stream(&stream.id).await.expect("gate").ended);
        store.end_stream(&stream.id).await.expect("end");
        // Stale: the old answer now, the new one once the refresh is done.
        assert!(!cache.stream(&stream.id).await.expect("gate").ended);
        let mut ended = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if cache.stream(&stream.id).await.expect("gate").ended {
                ended = true;
                break;
            }
        }
        assert!(ended, "the refresh did not land");
        store.close().await;
    }
}
