//! [`Spool`]: a durable upload queue in front of an [`ObjectStore`], so that an outage of the
//! store (S3 down, network cut) never loses an object.
//!
//! `enqueue` returns once the object is fsynced in the spool directory. One background task
//! uploads entries in enqueue order (up to [`SpoolOptions::concurrency`] at once, never two of
//! the same key at once, and never a key's later entry before its earlier one), retries each
//! failure forever with exponential backoff, and deletes an entry's files only after the store
//! confirmed the put. A restart resumes whatever is still on disk. See [`disk`] for the format.

mod disk;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};
use tokio::task::{Id, JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::{ObjectStore, StorageError, validate_key};
use disk::EntryMeta;

/// Tuning of a [`Spool`].
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    /// First wait after a failed upload (250 ms by default); doubled after each failure.
    pub retry_min: Duration,
    /// Longest wait between two attempts (10 s by default).
    pub retry_max: Duration,
    /// Uploads in flight at once while the store works (4 by default). While it fails, a single
    /// upload probes it.
    pub concurrency: usize,
}

impl Default for SpoolOptions {
    fn default() -> SpoolOptions {
        SpoolOptions {
            retry_min: Duration::from_millis(250),
            retry_max: Duration::from_secs(10),
            concurrency: 4,
        }
    }
}

/// A snapshot of a [`Spool`]'s counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpoolStats {
    /// Entries waiting (or being written, or uploading).
    pub entries: u64,
    /// Their bodies' total size.
    pub bytes: u64,
    /// Entries uploaded since this spool was opened.
    pub uploaded_total: u64,
    /// Failed upload attempts since this spool was opened.
    pub failures_total: u64,
}

/// A durable upload queue in front of an [`ObjectStore`]. Cheap to clone; the uploader task
/// stops when the last clone is dropped or on [`Spool::close`]. One `Spool` per directory.
#[derive(Clone)]
pub struct Spool {
    shared: Arc<Shared>,
    task: Arc<TaskGuard>,
}

struct Shared {
    dir: PathBuf,
    store: ObjectStore,
    state: Mutex<State>,
    /// Wakes the uploader: new entry, flush, shutdown.
    wake: Notify,
    /// Number of entries, for `flush`.
    entries_tx: watch::Sender<usize>,
    shutdown: AtomicBool,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<u64, Entry>,
    /// Sequence numbers of each key's entries, ascending.
    by_key: HashMap<String, Vec<u64>>,
    next_seq: u64,
    bytes: u64,
    uploaded_total: u64,
    failures_total: u64,
    /// Set by `flush`: skip the current backoff wait once.
    retry_now: bool,
}

struct Entry {
    key: String,
    content_type: String,
    len: u64,
    status: Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// `enqueue` is still writing its files.
    Writing,
    /// Durable, waiting for the uploader.
    Ready,
    /// Being put to the store.
    Uploading,
}

struct TaskGuard {
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if let Some(handle) = lock(&self.handle).take() {
            handle.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code path panics while holding a lock; if one did, the state is still consistent
    // enough to keep uploading.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Spool {
    /// [`Spool::open_with`] with the default [`SpoolOptions`].
    pub async fn open(dir: PathBuf, store: ObjectStore) -> Result<Spool, StorageError> {
        Spool::open_with(dir, store, SpoolOptions::default()).await
    }

    /// Opens (creating it if needed) the spool directory `dir`, resumes the entries found there
    /// in sequence order, removes incomplete writes, and spawns the uploader task on the
    /// current tokio runtime.
    pub async fn open_with(
        dir: PathBuf,
        store: ObjectStore,
        options: SpoolOptions,
    ) -> Result<Spool, StorageError> {
        if options.retry_min.is_zero() || options.retry_max < options.retry_min {
            return Err(StorageError::Config(format!(
                "spool retry_min {:?} must be > 0 and <= retry_max {:?}",
                options.retry_min, options.retry_max
            )));
        }
        if options.concurrency == 0 {
            return Err(StorageError::Config(
                "spool concurrency must be at least 1".to_owned(),
            ));
        }
        let scan_dir = dir.clone();
        let scan = blocking(&dir, move || disk::scan(&scan_dir)).await?;

        let mut state = State {
            next_seq: scan.next_seq,
            ..State::default()
        };
        for (seq, meta) in scan.entries {
            state.insert(seq, meta.key, meta.content_type, meta.len, Status::Ready);
        }
        if !state.entries.is_empty() {
            tracing::info!(
                dir = %dir.display(),
                entries = state.entries.len(),
                bytes = state.bytes,
                store = %store.describe(),
                "spool: resuming uploads"
            );
        }
        let (entries_tx, _) = watch::channel(state.entries.len());
        let shared = Arc::new(Shared {
            dir,
            store,
            state: Mutex::new(state),
            wake: Notify::new(),
            entries_tx,
            shutdown: AtomicBool::new(false),
        });
        let handle = tokio::spawn(Uploader::new(shared.clone(), options).run());
        Ok(Spool {
            shared,
            task: Arc::new(TaskGuard {
                handle: Mutex::new(Some(handle)),
            }),
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Queues `body` for upload under `key`. When this returns `Ok`, the entry is durable
    /// (fsynced data and meta) and will be uploaded, after a restart if need be. The write
    /// finishes even if this future is dropped. Enqueuing a key again is fine: both are
    /// uploaded, in order, so the later body wins.
    pub async fn enqueue(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        validate_key(key)?;
        let len = body.len() as u64;
        let seq = {
            let mut state = lock(&self.shared.state);
            let seq = state.next_seq;
            state.next_seq += 1;
            state.insert(
                seq,
                key.to_owned(),
                content_type.to_owned(),
                len,
                Status::Writing,
            );
            self.shared.publish(&state);
            seq
        };
        let meta = EntryMeta {
            seq,
            key: key.to_owned(),
            content_type: content_type.to_owned(),
            len,
        };
        let shared = self.shared.clone();
        // Write and record the outcome in one blocking task, so a cancelled caller cannot
        // leave an entry "writing" forever.
        let written = tokio::task::spawn_blocking(move || {
            let written = disk::write_entry(&shared.dir, &meta, &body);
            let mut state = lock(&shared.state);
            match &written {
                Ok(()) => {
                    if let Some(entry) = state.entries.get_mut(&seq) {
                        entry.status = Status::Ready;
                    }
                }
                Err(_) => {
                    state.remove(seq);
                    shared.publish(&state);
                }
            }
            drop(state);
            shared.wake.notify_one();
            written
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StorageError::io(key, e)),
            Err(join) => Err(StorageError::io(key, io::Error::other(join.to_string()))),
        }
    }

    /// The body of the newest entry for `key` still waiting in the spool, so a server can serve
    /// an object that is not uploaded yet. `None` once it is uploaded: ask the spool first,
    /// then the store, and an object is always found in one of them.
    pub async fn read_pending(&self, key: &str) -> Option<Bytes> {
        let seq = {
            let state = lock(&self.shared.state);
            state.by_key.get(key)?.iter().rev().copied().find(|seq| {
                state
                    .entries
                    .get(seq)
                    .is_some_and(|e| e.status != Status::Writing)
            })?
        };
        let dir = self.shared.dir.clone();
        match tokio::task::spawn_blocking(move || disk::read_data(&dir, seq)).await {
            Ok(Ok(body)) => Some(Bytes::from(body)),
            // Uploaded and removed in the meantime: the store has it.
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => None,
            Ok(Err(e)) => {
                tracing::warn!(key, seq, error = %e, "spool: cannot read a pending entry");
                None
            }
            Err(_) => None,
        }
    }

    /// Counters: what waits, what was uploaded, how many attempts failed.
    pub fn pending(&self) -> SpoolStats {
        let state = lock(&self.shared.state);
        SpoolStats {
            entries: state.entries.len() as u64,
            bytes: state.bytes,
            uploaded_total: state.uploaded_total,
            failures_total: state.failures_total,
        }
    }

    /// Waits until the spool is empty (everything uploaded), at most `timeout`. Cuts a current
    /// backoff wait short once, so a store that came back is tried at once. True if empty.
    pub async fn flush(&self, timeout: Duration) -> bool {
        lock(&self.shared.state).retry_now = true;
        self.shared.wake.notify_one();
        let mut entries = self.shared.entries_tx.subscribe();
        tokio::time::timeout(timeout, entries.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops the uploader and waits for it to end. Uploads in flight are abandoned; every
    /// entry not yet confirmed stays on disk for the next [`Spool::open`]. Other clones can
    /// still enqueue (to disk) and read pending entries.
    pub async fn close(self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        let handle = lock(&self.task.handle).take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.shared.dir)
            .field("store", &self.shared.store)
            .field("stats", &self.pending())
            .finish()
    }
}

impl Shared {
    fn publish(&self, state: &State) {
        self.entries_tx.send_replace(state.entries.len());
    }
}

impl State {
    fn insert(&mut self, seq: u64, key: String, content_type: String, len: u64, status: Status) {
        self.by_key.entry(key.clone()).or_default().push(seq);
        self.bytes += len;
        self.entries.insert(
            seq,
            Entry {
                key,
                content_type,
                len,
                status,
            },
        );
    }

    fn remove(&mut self, seq: u64) -> Option<Entry> {
        let entry = self.entries.remove(&seq)?;
        self.bytes -= entry.len;
        if let Some(seqs) = self.by_key.get_mut(&entry.key) {
            seqs.retain(|s| *s != seq);
            if seqs.is_empty() {
                self.by_key.remove(&entry.key);
            }
        }
        Some(entry)
    }

    /// The oldest ready entry that is the oldest entry of its key; marks it uploading.
    fn start_next(&mut self) -> Option<(u64, String, String)> {
        let by_key = &self.by_key;
        let (&seq, entry) = self.entries.iter_mut().find(|(seq, entry)| {
            entry.status == Status::Ready
                && by_key
                    .get(&entry.key)
                    .and_then(|seqs| seqs.first())
                    .is_some_and(|first| first == *seq)
        })?;
        entry.status = Status::Uploading;
        Some((seq, entry.key.clone(), entry.content_type.clone()))
    }
}

/// How one upload ended.
enum Outcome {
    Uploaded,
    /// The data file vanished (removed by hand): nothing left to upload.
    Missing,
    Failed(StorageError),
}

/// The background task: owns the backoff state, drives the uploads.
struct Uploader {
    shared: Arc<Shared>,
    options: SpoolOptions,
    uploads: JoinSet<Outcome>,
    in_flight: HashMap<Id, (u64, String)>,
    /// Next backoff wait.
    delay: Duration,
    /// No new upload starts before this.
    retry_at: Option<Instant>,
    /// Failed attempts in the current streak (0: the store works).
    streak: u64,
}

impl Uploader {
    fn new(shared: Arc<Shared>, options: SpoolOptions) -> Uploader {
        Uploader {
            delay: options.retry_min,
            shared,
            options,
            uploads: JoinSet::new(),
            in_flight: HashMap::new(),
            retry_at: None,
            streak: 0,
        }
    }

    async fn run(mut self) {
        loop {
            if self.shared.shutdown.load(Ordering::SeqCst) {
                break;
            }
            if std::mem::take(&mut lock(&self.shared.state).retry_now) {
                self.retry_at = None;
            }
            if self.retry_at.is_some_and(|at| at <= Instant::now()) {
                self.retry_at = None;
            }
            if self.retry_at.is_none() {
                self.start_uploads();
            }
            let retry_at = self.retry_at;
            tokio::select! {
                () = self.shared.wake.notified() => {}
                Some(joined) = self.uploads.join_next_with_id(), if !self.uploads.is_empty() => {
                    match joined {
                        Ok((id, outcome)) => self.finish(id, outcome),
                        Err(join) => {
                            let outcome = Outcome::Failed(StorageError::io(
                                "spool upload task",
                                io::Error::other(join.to_string()),
                            ));
                            self.finish(join.id(), outcome);
                        }
                    }
                }
                () = sleep_until(retry_at), if retry_at.is_some() => {}
            }
        }
        // Dropping `uploads` aborts what is in flight; the entries stay on disk.
    }

    fn start_uploads(&mut self) {
        let limit = if self.streak > 0 {
            1
        } else {
            self.options.concurrency
        };
        while self.uploads.len() < limit {
            let Some((seq, key, content_type)) = lock(&self.shared.state).start_next() else {
                break;
            };
            let shared = self.shared.clone();
            let upload_key = key.clone();
            let handle = self
                .uploads
                .spawn(async move { upload(&shared, seq, &upload_key, &content_type).await });
            self.in_flight.insert(handle.id(), (seq, key));
        }
    }

    fn finish(&mut self, id: Id, outcome: Outcome) {
        let Some((seq, key)) = self.in_flight.remove(&id) else {
            return;
        };
        let mut state = lock(&self.shared.state);
        match outcome {
            Outcome::Missing => {
                tracing::error!(
                    key,
                    seq,
                    "spool: entry data vanished before upload; dropped"
                );
                state.remove(seq);
                self.shared.publish(&state);
            }
            Outcome::Uploaded => {
                state.uploaded_total += 1;
                state.remove(seq);
                self.shared.publish(&state);
                drop(state);
                if self.streak > 0 {
                    tracing::info!(
                        failures = self.streak,
                        store = %self.shared.store.describe(),
                        "spool: uploads work again"
                    );
                    self.streak = 0;
                }
                self.delay = self.options.retry_min;
            }
            Outcome::Failed(error) => {
                state.failures_total += 1;
                if let Some(entry) = state.entries.get_mut(&seq) {
                    entry.status = Status::Ready;
                }
                let waiting = state.entries.len();
                drop(state);
                if self.streak == 0 {
                    tracing::warn!(
                        key,
                        seq,
                        %error,
                        waiting,
                        store = %self.shared.store.describe(),
                        "spool: upload failed; retrying with backoff until it works"
                    );
                } else {
                    tracing::debug!(key, seq, %error, "spool: upload failed again");
                }
                self.streak += 1;
                if self.retry_at.is_none() {
                    self.retry_at = Some(Instant::now() + self.delay);
                    self.delay = (self.delay * 2).min(self.options.retry_max);
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads an entry, puts it, and removes its files once the store confirmed.
async fn upload(shared: &Shared, seq: u64, key: &str, content_type: &str) -> Outcome {
    let dir = shared.dir.clone();
    let body = match tokio::task::spawn_blocking(move || disk::read_data(&dir, seq)).await {
        Ok(Ok(body)) => Bytes::from(body),
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => {
            // Nothing left to upload: drop the meta too, or every restart would complain.
            let dir = shared.dir.clone();
            let _ = tokio::task::spawn_blocking(move || disk::remove_entry(&dir, seq)).await;
            return Outcome::Missing;
        }
        Ok(Err(e)) => return Outcome::Failed(StorageError::io(key, e)),
        Err(join) => {
            return Outcome::Failed(StorageError::io(key, io::Error::other(join.to_string())));
        }
    };
    if let Err(e) = shared.store.put(key, body, content_type).await {
        return Outcome::Failed(e);
    }
    let dir = shared.dir.clone();
    match tokio::task::spawn_blocking(move || disk::remove_entry(&dir, seq)).await {
        Ok(Ok(())) => {}
        // Uploaded all the same; at worst a restart uploads it again.
        Ok(Err(e)) => {
            tracing::warn!(key, seq, error = %e, "spool: cannot remove an uploaded entry")
        }
        Err(join) => {
            tracing::warn!(key, seq, error = %join, "spool: cannot remove an uploaded entry")
        }
    }
    Outcome::Uploaded
}

/// Runs blocking spool work off the async threads.
async fn blocking<T, F>(dir: &Path, work: F) -> Result<T, StorageError>
where
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) => Err(StorageError::io(
            dir.display().to_string(),
            io::Error::other(join.to_string()),
        )),
    }
}

#[cfg(test)]
mod tests;
