//! Recordings: every live session of a stream with recording on is written to object storage
//! as it happens, and becomes a replay when it ends; expired replays are deleted.
//!
//! A recording is the session's HLS renditions under `recordings/{stream}/{recording}/`:
//! `{rendition}/init.mp4`, `{rendition}/seg{n}.m4s`, `{rendition}/index.m3u8` (rewritten after
//! every segment: an `EVENT` playlist while live, `VOD` with `EXT-X-ENDLIST` at the end),
//! `master.m3u8` and `thumbnail.jpg`. Everything goes through the [`Spool`]: written to local
//! disk first, uploaded with retries, so an object-storage outage delays uploads and loses
//! nothing, and a restarted server resumes them. A server that stopped mid-recording closes
//! the recording's playlists at its next start.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use greenroom_control::{Recording, Store};
use greenroom_hls::playlist::{VariantInfo, VodSegment, render_master, render_vod};
use greenroom_hls::{PlannedVariant, RecordEvent, Recorder};
use greenroom_storage::{ObjectStore, Spool};
use tokio::sync::mpsc;

/// Events queued between a packager and its recorder task.
const QUEUE: usize = 256;

/// Recording and replay storage; cheap to clone.
#[derive(Clone)]
pub struct Recordings {
    pub store: Store,
    pub storage: ObjectStore,
    pub spool: Spool,
    /// Replays expire this many days after their stream's session ends, unless the stream
    /// says otherwise.
    pub default_retention_days: u32,
    /// Recorder tasks running.
    pub active: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for Recordings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recordings")
            .field("storage", &self.storage.describe())
            .finish_non_exhaustive()
    }
}

/// The packager's side: hands events to the recorder task, waiting when it is behind (a
/// recording never drops a segment). Runs on the packager's own thread, never in the runtime.
struct ChannelRecorder {
    tx: mpsc::Sender<RecordEvent>,
}

impl Recorder for ChannelRecorder {
    fn record(&mut self, event: RecordEvent) {
        if self.tx.blocking_send(event).is_err() {
            tracing::debug!("recorder gone; event dropped");
        }
    }
}

impl Recordings {
    /// A recorder for one live session of `stream` (its task decides whether the stream
    /// records at all).
    pub fn recorder(&self, stream: &str, runtime: &tokio::runtime::Handle) -> Box<dyn Recorder> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let this = self.clone();
        let stream = stream.to_owned();
        let active = self.active.clone();
        active.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        runtime.spawn(async move {
            this.run(stream, rx).await;
            active.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        });
        Box::new(ChannelRecorder { tx })
    }

    async fn run(self, stream: String, mut rx: mpsc::Receiver<RecordEvent>) {
        let settings = match self.store.get_stream(&stream).await {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(stream, %error, "cannot read the stream: not recorded");
                while rx.recv().await.is_some() {}
                return;
            }
        };
        if !settings.record {
            while rx.recv().await.is_some() {}
            return;
        }
        let recording = match self.store.start_recording(&stream).await {
            Ok(r) => r,
            Err(error) => {
                tracing::error!(stream, %error, "cannot start a recording");
                while rx.recv().await.is_some() {}
                return;
            }
        };
        tracing::info!(stream, recording = %recording.id, "recording");
        let retention_days = settings
            .recording_retention_days
            .unwrap_or(self.default_retention_days);
        let mut session = SessionRecording {
            prefix: recording.storage_prefix(),
            recording,
            variants: Vec::new(),
            segments: HashMap::new(),
            bytes: HashMap::new(),
            has_thumbnail: false,
            master_written: false,
            codecs: HashMap::new(),
        };
        while let Some(event) = rx.recv().await {
            if matches!(event, RecordEvent::Ended) {
                break;
            }
            session.handle(&self, event).await;
        }
        session.finish(&self, retention_days).await;
    }

    async fn put(&self, key: &str, body: Bytes, content_type: &str) {
        // The spool writes to local disk; only a full disk fails here.
        let mut delay = Duration::from_millis(200);
        loop {
            match self.spool.enqueue(key, body.clone(), content_type).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::error!(key, %error, "cannot spool a recording object; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Reads an object of a recording: from the spool while it waits for upload, else
    /// from storage.
    pub async fn read(
        &self,
        key: &str,
        range: Option<greenroom_storage::ByteRange>,
    ) -> Result<greenroom_storage::Object, greenroom_storage::StorageError> {
        if let Some(body) = self.spool.read_pending(key).await {
            let total_len = body.len() as u64;
            let (body, range) = match range {
                None => (body, None),
                Some(range) => {
                    let (start, end) = range.resolve(total_len)?;
                    (
                        body.slice(start as usize..=end as usize),
                        Some((start, end)),
                    )
                }
            };
            return Ok(greenroom_storage::Object {
                body,
                total_len,
                range,
                content_type: greenroom_storage::content_type_for(key).to_owned(),
            });
        }
        self.storage.get(key, range).await
    }

    /// Waits (at most `timeout`) for running recordings to finish writing.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.active.load(std::sync::atomic::Ordering::Acquire) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    /// Closes the playlists of recordings a stopped server left open, and marks them ready.
    pub async fn recover(&self) {
        let open = match self.store.recordings_in_progress().await {
            Ok(open) => open,
            Err(error) => {
                tracing::error!(%error, "cannot list open recordings");
                return;
            }
        };
        for recording in open {
            let prefix = recording.storage_prefix();
            for variant in &recording.variants {
                let key = format!("{prefix}{variant}/index.m3u8");
                let Ok(object) = self.read(&key, None).await else {
                    continue;
                };
                let text = String::from_utf8_lossy(&object.body)
                    .replace("#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-PLAYLIST-TYPE:VOD");
                let text = if text.contains("#EXT-X-ENDLIST") {
                    text
                } else {
                    format!("{}#EXT-X-ENDLIST\n", text)
                };
                self.put(&key, Bytes::from(text), PLAYLIST).await;
            }
            let days = match self.store.get_stream(&recording.stream_id).await {
                Ok(s) => s
                    .recording_retention_days
                    .unwrap_or(self.default_retention_days),
                Err(_) => self.default_retention_days,
            };
            let expires = now_ms() + i64::from(days) * 86_400_000;
            match self
                .store
                .finish_recording(&recording.id, Some(expires))
                .await
            {
                Ok(_) => {
                    tracing::info!(recording = %recording.id, "recording left open by a stop: closed")
                }
                Err(error) => {
                    tracing::error!(recording = %recording.id, %error, "cannot close a recording")
                }
            }
        }
    }

    /// Deletes expired replays from storage, then from the database. Returns how many.
    pub async fn delete_expired(&self) -> usize {
        let expired = match self.store.expired_recordings(now_ms(), 100).await {
            Ok(list) => list,
            Err(error) => {
                tracing::error!(%error, "cannot list expired recordings");
                return 0;
            }
        };
        let mut deleted = 0;
        for recording in expired {
            if let Err(error) = self.delete(&recording).await {
                tracing::warn!(recording = %recording.id, %error, "expired recording not deleted yet");
            } else {
                deleted += 1;
            }
        }
        deleted
    }

    /// Deletes one recording's objects and row.
    pub async fn delete(&self, recording: &Recording) -> Result<(), String> {
        let prefix = recording.storage_prefix();
        let objects = self
            .storage
            .delete_prefix(&prefix)
            .await
            .map_err(|e| e.to_string())?;
        self.store
            .delete_recording(&recording.id)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(recording = %recording.id, objects, "recording deleted");
        Ok(())
    }

    /// Runs [`Recordings::delete_expired`] every `interval` until the process ends.
    pub fn spawn_retention(&self, interval: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let n = this.delete_expired().await;
                if n > 0 {
                    tracing::info!(deleted = n, "retention: expired replays deleted");
                }
            }
        });
    }
}

const PLAYLIST: &str = "application/vnd.apple.mpegurl";

struct SessionRecording {
    recording: Recording,
    prefix: String,
    variants: Vec<PlannedVariant>,
    segments: HashMap<String, Vec<VodSegment>>,
    bytes: HashMap<String, u64>,
    has_thumbnail: bool,
    master_written: bool,
    codecs: HashMap<String, String>,
}

impl SessionRecording {
    async fn handle(&mut self, r: &Recordings, event: RecordEvent) {
        match event {
            RecordEvent::Variants(variants) => self.variants = variants,
            RecordEvent::Init {
                variant,
                codecs,
                data,
            } => {
                self.codecs.insert(variant.clone(), codecs);
                r.put(
                    &format!("{}{variant}/init.mp4", self.prefix),
                    data,
                    "video/mp4",
                )
                .await;
            }
            RecordEvent::Segment {
                variant,
                msn,
                duration,
                program_date_time_ms,
                data,
            } => {
                let name = format!("seg{msn}.m4s");
                *self.bytes.entry(variant.clone()).or_default() += data.len() as u64;
                r.put(
                    &format!("{}{variant}/{name}", self.prefix),
                    data,
                    "video/iso.segment",
                )
                .await;
                let list = self.segments.entry(variant.clone()).or_default();
                list.push(VodSegment {
                    uri: name,
                    duration,
                    program_date_time_ms,
                });
                // An EVENT playlist while the session lasts: a player (or a restart's
                // recovery) sees every segment so far.
                let text = render_vod(list, Duration::from_secs(1), "init.mp4", false);
                r.put(
                    &format!("{}{variant}/index.m3u8", self.prefix),
                    Bytes::from(text),
                    PLAYLIST,
                )
                .await;
                if !self.master_written
                    && !self.variants.is_empty()
                    && self
                        .variants
                        .iter()
                        .all(|v| self.segments.contains_key(&v.name))
                {
                    self.write_master(r).await;
                    self.master_written = true;
                }
                if self.variants.first().is_some_and(|v| v.name == variant) {
                    self.progress(r).await;
                }
            }
            RecordEvent::Thumbnail(jpeg) => {
                r.put(&format!("{}thumbnail.jpg", self.prefix), jpeg, "image/jpeg")
                    .await;
                self.has_thumbnail = true;
            }
            RecordEvent::Ended => {}
        }
    }

    fn totals(&self) -> (i64, i64, i64) {
        let top = self.variants.first().map(|v| v.name.as_str()).unwrap_or("");
        let segments = self.segments.get(top).map_or(&[][..], Vec::as_slice);
        let duration_ms: u128 = segments.iter().map(|s| s.duration.as_millis()).sum();
        let size: u64 = self.bytes.values().sum();
        (duration_ms as i64, size as i64, segments.len() as i64)
    }

    async fn progress(&self, r: &Recordings) {
        let (duration_ms, size, segments) = self.totals();
        let names: Vec<String> = self.variants.iter().map(|v| v.name.clone()).collect();
        if let Err(error) = r
            .store
            .update_recording_progress(
                &self.recording.id,
                duration_ms,
                size,
                segments,
                &names,
                self.has_thumbnail,
            )
            .await
        {
            tracing::warn!(recording = %self.recording.id, %error, "recording progress not saved");
        }
    }

    async fn write_master(&self, r: &Recordings) {
        let infos: Vec<VariantInfo> = self
            .variants
            .iter()
            .filter(|v| self.segments.contains_key(&v.name))
            .map(|v| {
                let list = &self.segments[&v.name];
                let seconds: f64 = list.iter().map(|s| s.duration.as_secs_f64()).sum();
                let bytes = self.bytes.get(&v.name).copied().unwrap_or(0);
                let average = if seconds > 0.0 {
                    (bytes as f64 * 8.0 / seconds) as u64
                } else {
                    u64::from(v.video_bitrate_bps)
                };
                VariantInfo {
                    uri: format!("{}/index.m3u8", v.name),
                    // Peaks of a finished recording are not tracked per segment: allow 1.5x.
                    bandwidth_bps: average.max(1) * 3 / 2,
                    average_bandwidth_bps: Some(average.max(1)),
                    width: v.width,
                    height: v.height,
                    codecs: self.codecs.get(&v.name).cloned().unwrap_or_default(),
                    frame_rate: None,
                }
            })
            .collect();
        r.put(
            &format!("{}master.m3u8", self.prefix),
            Bytes::from(render_master(&infos)),
            PLAYLIST,
        )
        .await;
    }

    async fn finish(mut self, r: &Recordings, retention_days: u32) {
        for variant in self.variants.clone() {
            let Some(list) = self.segments.get(&variant.name) else {
                continue;
            };
            r.put(
                &format!("{}{}/index.m3u8", self.prefix, variant.name),
                Bytes::from(render_vod(list, Duration::from_secs(1), "init.mp4", true)),
                PLAYLIST,
            )
            .await;
        }
        self.variants
            .retain(|v| self.segments.contains_key(&v.name));
        if self.variants.is_empty() {
            let _ = r
                .store
                .fail_recording(&self.recording.id, "the session ended before a segment")
                .await;
            return;
        }
        self.write_master(r).await;
        self.progress(r).await;
        let expires = now_ms() + i64::from(retention_days) * 86_400_000;
        match r
            .store
            .finish_recording(&self.recording.id, Some(expires))
            .await
        {
            Ok(done) => tracing::info!(
                recording = %done.id,
                duration_ms = done.duration_ms,
                size_bytes = done.size_bytes,
                "recording ready"
            ),
            Err(error) => {
                tracing::error!(recording = %self.recording.id, %error, "cannot finish a recording")
            }
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
