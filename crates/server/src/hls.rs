//! Every live stream's HLS: which packager runs for which stream, fed from where.
//!
//! RTMP and RTSP sources hand their frames to the packager directly (through
//! [`greenroom_ingest::FrameTaps`]): the source's own H.264 and AAC. WebRTC (WHIP) sources are
//! tapped in-process ([`greenroom_rtc::StreamTap`]): a thread puts the top layer's RTP back
//! into frames and feeds the packager. Either way the packager is a [`greenroom_hls`] session
//! whose [`LiveHls`] the HTTP handlers read; each new publish starts a new session with its
//! own URL segment (`/hls/{stream}/{session}/...`), so cached segments never go stale.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use greenroom_hls::{HlsOptions, LiveHls, SourceKind, start_session};
use greenroom_ingest::FrameTaps;
use greenroom_media::rtp::RtpFrameAssembler;
use greenroom_media::{Codec, FrameSink, SourceFrame};
use greenroom_rtc::{Layer, RtcEngine, RtcEvent, SourceProtocol, TrackKind};
use tokio::sync::Notify;

use crate::recording::Recordings;

/// How long an ended session's playlists and segments stay served.
pub const ENDED_GRACE: Duration = Duration::from_secs(60);

/// A stream's current (or last) HLS session.
#[derive(Clone)]
pub struct StreamHls {
    /// Names this session in URLs.
    pub session: u64,
    pub live: Arc<LiveHls>,
    pub notify: Arc<Notify>,
    /// WebRTC tap sessions: set to stop the tap thread.
    stop: Option<Arc<AtomicBool>>,
}

/// All streams' HLS; cheap to clone.
#[derive(Clone)]
pub struct HlsHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    options: HlsOptions,
    streams: Mutex<HashMap<String, StreamHls>>,
    next_session: AtomicU64,
    recordings: Option<Recordings>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for HlsHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlsHub").finish_non_exhaustive()
    }
}

impl HlsHub {
    /// Must be called inside the tokio runtime (recorders run on it).
    pub fn new(options: HlsOptions, recordings: Option<Recordings>) -> HlsHub {
        HlsHub {
            inner: Arc::new(HubInner {
                options,
                streams: Mutex::new(HashMap::new()),
                next_session: AtomicU64::new(unix_seconds() << 8),
                recordings,
                runtime: tokio::runtime::Handle::current(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, StreamHls>> {
        self.inner.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The options every session is made with.
    pub fn options(&self) -> &HlsOptions {
        &self.inner.options
    }

    /// The stream's current or last session.
    pub fn get(&self, stream: &str) -> Option<StreamHls> {
        self.lock().get(stream).cloned()
    }

    /// Starts a session for `stream`; returns its input.
    fn open(
        &self,
        stream: &str,
        source: SourceKind,
        stop: Option<Arc<AtomicBool>>,
    ) -> Option<greenroom_hls::HlsInput> {
        let notify = Arc::new(Notify::new());
        let wake = notify.clone();
        let live = Arc::new(LiveHls::new(Box::new(move || wake.notify_waiters())));
        let recorder = self
            .inner
            .recordings
            .as_ref()
            .map(|r| r.recorder(stream, &self.inner.runtime));
        match start_session(
            stream,
            self.inner.options.clone(),
            source,
            live.clone(),
            recorder,
        ) {
            Ok(input) => {
                let session = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
                let previous = self.lock().insert(
                    stream.to_owned(),
                    StreamHls {
                        session,
                        live,
                        notify,
                        stop,
                    },
                );
                if let Some(stop) = previous.and_then(|p| p.stop) {
                    stop.store(true, Ordering::Release);
                }
                Some(input)
            }
            Err(error) => {
                tracing::error!(stream, %error, "cannot start the HLS packager");
                None
            }
        }
    }

    /// Follows the engine: a WebRTC publish that goes live gets a tapped session; a stream
    /// that goes idle stops its tap. Ended sessions are forgotten after [`ENDED_GRACE`] (players
    /// still on them have read `EXT-X-ENDLIST` by then; the replay is the recording's).
    pub fn follow(&self, engine: RtcEngine) {
        let sweeper = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ENDED_GRACE / 2);
            loop {
                tick.tick().await;
                sweeper
                    .lock()
                    .retain(|_, s| s.live.ended_for().is_none_or(|d| d < ENDED_GRACE));
            }
        });
        let hub = self.clone();
        let mut events = engine.events();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(RtcEvent::Live { stream }) => hub.on_live(&engine, &stream),
                    Ok(RtcEvent::Idle { stream }) => hub.on_idle(&stream),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "HLS missed engine events");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    fn on_live(&self, engine: &RtcEngine, stream: &str) {
        if let Some(current) = self.get(stream)
            && !current.live.is_ended()
        {
            // An RTMP/RTSP source feeds it already (or a tap runs).
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let Some(input) = self.open(
            stream,
            SourceKind { passthrough: false },
            Some(stop.clone()),
        ) else {
            return;
        };
        let tap = engine.tap(stream);
        let name = format!("greenroom-tap-{}", &stream[..stream.len().min(8)]);
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || run_tap(tap, input, stop));
        if let Err(error) = spawned {
            tracing::error!(stream, %error, "cannot start the HLS tap");
        }
    }

    /// Stops every tap and waits (at most 5 s) for every session to close its playlists.
    pub async fn shutdown(&self) {
        let sessions: Vec<StreamHls> = self.lock().values().cloned().collect();
        for session in &sessions {
            if let Some(stop) = &session.stop {
                stop.store(true, Ordering::Release);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while sessions.iter().any(|s| !s.live.is_ended()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn on_idle(&self, stream: &str) {
        if let Some(stop) = self.get(stream).and_then(|s| s.stop) {
            stop.store(true, Ordering::Release);
        }
    }
}

impl FrameTaps for HlsHub {
    fn open(&self, stream: &str, protocol: SourceProtocol) -> Option<Box<dyn FrameSink>> {
        let source = SourceKind {
            // RTMP carries decode times and regular IDRs; RTSP only presentation times.
            passthrough: protocol == SourceProtocol::Rtmp,
        };
        let input = HlsHub::open(self, stream, source, None)?;
        Some(Box::new(input))
    }
}

/// The tap thread of a WebRTC source: top layer's RTP -> frames -> packager.
fn run_tap(
    tap: greenroom_rtc::StreamTap,
    mut input: greenroom_hls::HlsInput,
    stop: Arc<AtomicBool>,
) {
    let start = Instant::now();
    let mut video: Option<(Layer, Codec, RtpFrameAssembler, i64)> = None;
    let mut audio: Option<(RtpFrameAssembler, i64)> = None;
    let mut epoch = None;
    let mut frames = Vec::new();
    let mut last_request: Option<Instant> = None;
    let mut last_top_seen = Instant::now();
    tracing::info!(stream = tap.stream(), "HLS tap started");
    while !stop.load(Ordering::Acquire) {
        let Some(packet) = tap.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        if epoch != Some(packet.epoch) {
            // A new publisher session: new timelines.
            epoch = Some(packet.epoch);
            video = None;
            audio = None;
        }
        let now_90k = (start.elapsed().as_micros() as i64) * 9 / 100;
        frames.clear();
        match packet.kind {
            TrackKind::Audio => {
                let (assembler, offset) =
                    audio.get_or_insert_with(|| (RtpFrameAssembler::new(packet.codec), now_90k));
                assembler.push(
                    packet.sequence_number,
                    packet.timestamp,
                    packet.marker,
                    &packet.payload,
                    &mut frames,
                );
                let offset = *offset;
                for frame in frames.drain(..) {
                    input.push(shift(frame, offset));
                }
            }
            TrackKind::Video => {
                let best = packet.available.highest().unwrap_or(packet.layer);
                let switch = match &video {
                    None => true,
                    // The layer followed went away: follow the best one left.
                    // A better layer appeared (the publisher ramps up), or the one followed
                    // went away for a second: follow the best one.
                    Some((layer, ..)) => {
                        if *layer == packet.layer {
                            last_top_seen = Instant::now();
                        }
                        best > *layer
                            || (*layer != best && last_top_seen.elapsed() > Duration::from_secs(1))
                    }
                };
                if switch && packet.layer == best {
                    video = Some((
                        best,
                        packet.codec,
                        RtpFrameAssembler::new(packet.codec),
                        now_90k,
                    ));
                    last_top_seen = Instant::now();
                    last_request = None;
                }
                let Some((layer, _, assembler, offset)) = video.as_mut() else {
                    continue;
                };
                if packet.layer != *layer {
                    continue;
                }
                assembler.push(
                    packet.sequence_number,
                    packet.timestamp,
                    packet.marker,
                    &packet.payload,
                    &mut frames,
                );
                if assembler.needs_keyframe()
                    && last_request.is_none_or(|t| t.elapsed() > Duration::from_secs(1))
                {
                    tap.request_keyframe(*layer);
                    last_request = Some(Instant::now());
                }
                let offset = *offset;
                for frame in frames.drain(..) {
                    input.push(shift(frame, offset));
                }
            }
        }
    }
    tracing::info!(
        stream = tap.stream(),
        dropped = tap.dropped(),
        "HLS tap stopped"
    );
}

/// Moves a frame from its track's own timeline (0 at the track's first packet) onto the
/// session's (0 when the tap started).
fn shift(frame: SourceFrame, offset: i64) -> SourceFrame {
    match frame {
        SourceFrame::H264 {
            data,
            pts_90k,
            dts_90k,
            keyframe,
        } => SourceFrame::H264 {
            data,
            pts_90k: pts_90k + offset,
            dts_90k: dts_90k + offset,
            keyframe,
        },
        SourceFrame::Vp8 {
            data,
            pts_90k,
            keyframe,
        } => SourceFrame::Vp8 {
            data,
            pts_90k: pts_90k + offset,
            keyframe,
        },
        SourceFrame::Aac { data, pts_90k } => SourceFrame::Aac {
            data,
            pts_90k: pts_90k + offset,
        },
        SourceFrame::Opus { data, pts_90k } => SourceFrame::Opus {
            data,
            pts_90k: pts_90k + offset,
        },
        other @ SourceFrame::AacConfig { .. } => other,
    }
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
