//! One live stream's HLS: the source's frames in, every rendition's segments out.
//!
//! A session runs one thread per live stream. It is fed [`SourceFrame`]s through a
//! bounded queue (it is a [`FrameSink`]; a packager that falls behind drops frames and says
//! so) and publishes into a [`LiveHls`] that HTTP handlers read, and into an optional
//! [`Recorder`]. Dropping the session's sink ends the stream: open parts and segments are
//! closed, playlists get `EXT-X-ENDLIST`, the recorder gets [`RecordEvent::Ended`].
//!
//! Segments line up across renditions: when the source's H.264 is passed through, a segment
//! starts at a source IDR at least one target duration after the last start, and the encoded
//! renditions are forced to an IDR at the same picture; otherwise the ladder's IDRs are forced
//! every target duration on every rendition together.

mod live_hls;
mod packager;

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use greenroom_media::{FrameSink, SourceFrame};

use crate::ladder::{PlannedVariant, Rendition};
use crate::transcode::EncoderOptions;
use bytes::Bytes;

pub use live_hls::{LiveHls, PlaylistAnswer};
use packager::Packager;

/// Frames queued between a source and its packager.
const QUEUE: usize = 1024;

/// What every live stream's HLS is made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsOptions {
    pub ladder: Vec<Rendition>,
    pub segment_target: Duration,
    pub part_target: Duration,
    /// Complete segments listed in live playlists.
    pub window_segments: usize,
    pub encoder: EncoderOptions,
    /// A thumbnail is taken at the first segment and then this often.
    pub thumbnail_every: Duration,
}

impl Default for HlsOptions {
    fn default() -> Self {
        HlsOptions {
            ladder: Rendition::default_ladder(),
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(500),
            window_segments: 6,
            encoder: EncoderOptions::default(),
            thumbnail_every: Duration::from_secs(60),
        }
    }
}

/// What kind of source feeds a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceKind {
    /// The source's H.264 may be the top rendition as it is (it has regular IDRs and true
    /// decode times: RTMP). WebRTC sources send keyframes only on request, so they are
    /// always encoded.
    pub passthrough: bool,
}

/// What a session hands its recorder, in order.
#[derive(Debug, Clone)]
pub enum RecordEvent {
    /// The renditions, once the source's size is known.
    Variants(Vec<PlannedVariant>),
    Init {
        variant: String,
        /// RFC 6381 codecs of the rendition, e.g. `avc1.64001f,mp4a.40.2`.
        codecs: String,
        data: Bytes,
    },
    Segment {
        variant: String,
        msn: u64,
        duration: Duration,
        program_date_time_ms: i64,
        data: Bytes,
    },
    /// A JPEG of the picture (replaces the previous one).
    Thumbnail(Bytes),
    /// The stream ended; nothing follows.
    Ended,
}

/// Where a session's finished pieces go (the recording). Must not lose what it is given.
pub trait Recorder: Send {
    fn record(&mut self, event: RecordEvent);
}

/// The feeding end of a session: a [`FrameSink`]. Dropping it ends the stream.
pub struct HlsInput {
    tx: SyncSender<SourceFrame>,
    dropped: u64,
    stream: Arc<str>,
}

impl std::fmt::Debug for HlsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlsInput")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl HlsInput {
    /// Hands over a frame, waiting while the queue is full (offline packaging, benchmarks);
    /// live sources use [`FrameSink::push`], which never waits.
    pub fn push_wait(&mut self, frame: SourceFrame) {
        let _ = self.tx.send(frame);
    }
}

impl FrameSink for HlsInput {
    fn push(&mut self, frame: SourceFrame) {
        match self.tx.try_send(frame) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    tracing::warn!(stream = %self.stream, dropped = self.dropped, "HLS packager behind: frames dropped");
                }
            }
        }
    }
}

/// Starts a packager thread for `stream`; returns its input. The thread ends after the input
/// is dropped and everything queued is packaged.
pub fn start_session(
    stream: &str,
    options: HlsOptions,
    source: SourceKind,
    live: Arc<LiveHls>,
    recorder: Option<Box<dyn Recorder>>,
) -> std::io::Result<HlsInput> {
    let (tx, rx) = sync_channel(QUEUE);
    let stream: Arc<str> = Arc::from(stream);
    let name = format!("greenroom-hls-{}", &stream[..stream.len().min(8)]);
    let thread_stream = stream.clone();
    std::thread::Builder::new().name(name).spawn(move || {
        let mut packager = Packager::new(thread_stream, options, source, live, recorder);
        packager.run(rx);
    })?;
    Ok(HlsInput {
        tx,
        dropped: 0,
        stream,
    })
}
