//! From RTMP's FLV tags (and RTSP's access units) to the engine's tracks.
//!
//! An [`FlvBridge`] runs one thread per publish that owns the stream's
//! [`greenroom_rtc::LocalPublisher`] and whatever the media needs on the way:
//! - H.264 without B-frames is re-packetized into RTP (parameter sets in a STAP-A before every
//!   keyframe), not re-encoded;
//! - H.264 with B-frames (a non-zero composition time on any frame; OBS's default x264 profile
//!   sends them) is decoded and encoded again without B-frames, because browsers stutter on
//!   reordered WebRTC video; from then on the stream's stats say `transcoded` with the reason;
//! - AAC is transcoded to Opus (48 kHz, 20 ms frames).
//!
//! RTSP sources feed the same pipeline without FLV framing: H.264 access units in Annex B with
//! a 90 kHz presentation time ([`FlvBridge::h264_annexb`]; B-frames show as a presentation
//! time going back), the AAC `AudioSpecificConfig` ([`FlvBridge::aac_config`]) and raw AAC
//! frames ([`FlvBridge::aac_raw`]).
//!
//! Outputs that need whole frames (HLS, recording) get the source's frames as they came, before
//! any of the above and on the network side, so a slow WebRTC transcoder never holds them up:
//! H.264 in Annex B (with its B-frames and parameter sets before every keyframe) and AAC,
//! through the [`BridgeOptions::frames`] sink.
//!
//! The thread is fed through a bounded queue: when it falls behind (a transcoder slower than
//! real time), tags are dropped and counted rather than buffered without bound.

mod frames;
mod video;

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Instant;

use bytes::Bytes;
use greenroom_media::FrameSink;
use greenroom_media::flv::{FlvAudio, FlvVideo};
use greenroom_media::h264::AvcDecoderConfig;
use greenroom_rtc::{
    Codec, Layer, LocalPublisher, LocalRtp, MediaHandling, SourceInfo, SourceProtocol, TrackKind,
};

use crate::transcode::AacToOpus;
use frames::FrameFeed;
use video::{Frame, FrameData, Video};

/// Tags queued between the network task and the media thread.
const QUEUE: usize = 512;

/// What a publish asks of the bridge.
#[derive(Default)]
pub struct BridgeOptions {
    /// Transcode the video into a three-layer simulcast ladder (q, h, f).
    pub simulcast_ladder: bool,
    /// Where the source's frames go as they arrive (HLS, recording), if anywhere.
    pub frames: Option<Box<dyn FrameSink>>,
}

impl std::fmt::Debug for BridgeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeOptions")
            .field("simulcast_ladder", &self.simulcast_ladder)
            .field("frames", &self.frames.is_some())
            .finish()
    }
}

/// One FLV tag body with its RTMP timestamp.
enum Tag {
    Video {
        timestamp_ms: u32,
        body: Bytes,
        received: Instant,
    },
    Audio {
        timestamp_ms: u32,
        body: Bytes,
    },
    /// An H.264 access unit in Annex B, parameter sets in band (RTSP).
    AnnexB {
        pts_90k: i64,
        access_unit: Bytes,
        received: Instant,
    },
    /// An AAC `AudioSpecificConfig` (RTSP: from the SDP).
    AacConfig {
        config: Bytes,
    },
    /// One raw AAC frame (no ADTS header).
    AacRaw {
        pts_ms: i64,
        frame: Bytes,
    },
}

/// The network side's handle: hands tags to the media thread.
pub struct FlvBridge {
    tx: Option<SyncSender<Tag>>,
    /// The source's frames for HLS and recording, fed here on the network side.
    feed: Option<FrameFeed>,
    thread: Option<std::thread::JoinHandle<()>>,
    dropped: u64,
    stream: String,
}

impl std::fmt::Debug for FlvBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlvBridge")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl FlvBridge {
    /// Starts the media thread for `publisher` (which already holds the stream's slot).
    pub fn start(
        stream: &str,
        protocol: SourceProtocol,
        publisher: LocalPublisher,
        mut options: BridgeOptions,
    ) -> FlvBridge {
        let feed = options.frames.take().map(FrameFeed::new);
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let name = format!("greenroom-flv-{}", &stream[..stream.len().min(8)]);
        let stream_owned = stream.to_owned();
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let mut pipeline = Pipeline::new(stream_owned, protocol, publisher, options);
            pipeline.run(rx);
        });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(error) => {
                tracing::error!(%error, stream, "cannot start the media thread");
                None
            }
        };
        FlvBridge {
            feed,
            tx: thread.as_ref().map(|_| tx),
            thread,
            dropped: 0,
            stream: stream.to_owned(),
        }
    }

    pub fn video(&mut self, timestamp_ms: u32, body: Bytes) {
        if let Some(feed) = self.feed.as_mut() {
            feed.video_tag(timestamp_ms, &body);
        }
        self.push(Tag::Video {
            timestamp_ms,
            body,
            received: Instant::now(),
        });
    }

    pub fn audio(&mut self, timestamp_ms: u32, body: Bytes) {
        if let Some(feed) = self.feed.as_mut() {
            feed.audio_tag(timestamp_ms, &body);
        }
        self.push(Tag::Audio { timestamp_ms, body });
    }

    /// One H.264 access unit in Annex B (start codes; SPS/PPS in band before keyframes), in
    /// decode order, presented at `pts_90k` (90 kHz, from the start of the session).
    pub fn h264_annexb(&mut self, pts_90k: i64, access_unit: Bytes) {
        if let Some(feed) = self.feed.as_mut() {
            feed.annexb(pts_90k, &access_unit);
        }
        self.push(Tag::AnnexB {
            pts_90k,
            access_unit,
            received: Instant::now(),
        });
    }

    /// The AAC `AudioSpecificConfig` of the raw frames that follow (each one restarts the
    /// AAC decoder).
    pub fn aac_config(&mut self, config: Bytes) {
        if let Some(feed) = self.feed.as_mut() {
            feed.aac_config(config.clone());
        }
        self.push(Tag::AacConfig { config });
    }

    /// One raw AAC frame (no ADTS header) whose first sample plays at `pts_ms`.
    pub fn aac_raw(&mut self, pts_ms: i64, frame: Bytes) {
        if let Some(feed) = self.feed.as_mut() {
            feed.aac_raw(pts_ms, &frame);
        }
        self.push(Tag::AacRaw { pts_ms, frame });
    }

    fn push(&mut self, tag: Tag) {
        let Some(tx) = &self.tx else {
            return;
        };
        match tx.try_send(tag) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    tracing::warn!(stream = %self.stream, dropped = self.dropped, "media thread behind: tags dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => self.tx = None,
        }
    }

    /// Ends the publish: the thread drains what is queued, then frees the stream.
    pub fn finish(mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FlvBridge {
    fn drop(&mut self) {
        self.tx = None;
        // Detach: the thread ends on its own once the queue is closed and drained.
        let _ = self.thread.take();
    }
}

struct AudioState {
    transcoder: Option<AacToOpus>,
    failed: bool,
    sequence_number: u16,
}

struct Pipeline {
    stream: String,
    publisher: LocalPublisher,
    source: SourceInfo,
    video: Video,
    /// Presentation time of the last Annex B access unit (RTSP), to spot B-frames.
    last_annexb_pts_90k: Option<i64>,
    /// RTMP: a composition time offset has been seen (B-frames).
    b_frames: bool,
    audio: AudioState,
}

impl Pipeline {
    fn new(
        stream: String,
        protocol: SourceProtocol,
        mut publisher: LocalPublisher,
        options: BridgeOptions,
    ) -> Pipeline {
        let source = SourceInfo {
            protocol,
            video: MediaHandling::Absent,
            audio: MediaHandling::Absent,
            note: None,
        };
        publisher.set_source(source.clone());
        Pipeline {
            video: Video::new(&stream, options.simulcast_ladder),
            stream,
            publisher,
            source,
            last_annexb_pts_90k: None,
            b_frames: false,
            audio: AudioState {
                transcoder: None,
                failed: false,
                sequence_number: rand::random(),
            },
        }
    }

    fn run(&mut self, rx: Receiver<Tag>) {
        while let Ok(tag) = rx.recv() {
            if self.publisher.is_closed() {
                tracing::info!(stream = %self.stream, "stream ended by the server");
                break;
            }
            if self.publisher.poll_keyframe_request().is_some() {
                self.video.request_keyframe();
            }
            match tag {
                Tag::Video {
                    timestamp_ms,
                    body,
                    received,
                } => self.handle_video(timestamp_ms, &body, received),
                Tag::Audio { timestamp_ms, body } => self.handle_audio(timestamp_ms, &body),
                Tag::AnnexB {
                    pts_90k,
                    access_unit,
                    received,
                } => self.handle_annexb(pts_90k, &access_unit, received),
                Tag::AacConfig { config } => self.handle_aac_config(config),
                Tag::AacRaw { pts_ms, frame } => self.handle_aac_raw(pts_ms, &frame),
            }
        }
    }

    fn update_source(&mut self, video: Option<MediaHandling>, audio: Option<MediaHandling>) {
        let mut next = self.source.clone();
        if let Some(v) = video {
            next.video = v;
        }
        if let Some(a) = audio {
            next.audio = a;
        }
        next.note = None;
        if next.video != MediaHandling::Absent {
            let (handling, note) = self.video.handling();
            next.video = handling;
            next.note = note;
        }
        if next != self.source {
            self.publisher.set_source(next.clone());
            self.source = next;
        }
    }

    fn handle_video(&mut self, timestamp_ms: u32, body: &[u8], received: Instant) {
        let tag = match greenroom_media::flv::parse_video_tag(body) {
            Ok(tag) => tag,
            Err(error) => {
                tracing::debug!(stream = %self.stream, %error, "bad video tag skipped");
                return;
            }
        };
        match tag {
            FlvVideo::AvcSequenceHeader { record } => match AvcDecoderConfig::parse(record) {
                Ok(config) => {
                    tracing::info!(stream = %self.stream, resolution = ?config.resolution(), "H.264 configuration");
                    self.video.set_config(config);
                }
                Err(error) => {
                    tracing::warn!(stream = %self.stream, %error, "bad AVC configuration")
                }
            },
            FlvVideo::AvcNalus {
                keyframe,
                composition_time_ms,
                avcc,
            } => {
                // Any composition time offset means frames are reordered: B-frames.
                self.b_frames |= composition_time_ms != 0;
                let pts_ms = i64::from(timestamp_ms) + i64::from(composition_time_ms);
                self.handle_frame(Frame {
                    data: FrameData::Avcc(avcc),
                    keyframe,
                    pts_90k: pts_ms * 90,
                    b_frames: self.b_frames,
                    received,
                });
            }
            FlvVideo::AvcEndOfSequence => {}
            FlvVideo::Unsupported { codec_id } => {
                tracing::debug!(stream = %self.stream, codec_id, "unsupported video codec skipped");
            }
        }
    }

    /// An Annex B access unit from RTSP: a presentation time going back means B-frames.
    fn handle_annexb(&mut self, pts_90k: i64, access_unit: &[u8], received: Instant) {
        if self.last_annexb_pts_90k.is_some_and(|last| pts_90k < last) {
            self.b_frames = true;
        }
        self.last_annexb_pts_90k = Some(pts_90k);
        let keyframe = greenroom_media::h264::annexb_to_nals(access_unit)
            .any(|nal| nal.first().is_some_and(|b| b & 0x1f == 5));
        self.handle_frame(Frame {
            data: FrameData::AnnexB(access_unit),
            keyframe,
            pts_90k,
            b_frames: self.b_frames,
            received,
        });
    }

    fn handle_frame(&mut self, frame: Frame<'_>) {
        self.video.handle(frame, &mut self.publisher);
        // Cheap per frame; the stats (with their note) change only when the path does.
        let handling = self.video.media_handling();
        if self.source.video != handling {
            self.update_source(Some(handling), None);
        }
    }

    fn handle_audio(&mut self, timestamp_ms: u32, body: &[u8]) {
        let tag = match greenroom_media::flv::parse_audio_tag(body) {
            Ok(tag) => tag,
            Err(error) => {
                tracing::debug!(stream = %self.stream, %error, "bad audio tag skipped");
                return;
            }
        };
        match tag {
            FlvAudio::AacSequenceHeader { config } => {
                self.handle_aac_config(Bytes::copy_from_slice(config));
            }
            FlvAudio::AacRaw { data } => self.handle_aac_raw(i64::from(timestamp_ms), data),
            FlvAudio::Unsupported { format } => {
                tracing::debug!(stream = %self.stream, format, "unsupported audio format skipped");
            }
        }
    }

    /// (Re)starts AAC to Opus for an `AudioSpecificConfig`.
    fn handle_aac_config(&mut self, config: Bytes) {
        if self.audio.failed {
            return;
        }
        match AacToOpus::new(&config) {
            Ok(transcoder) => {
                self.audio.transcoder = Some(transcoder);
                self.update_source(None, Some(MediaHandling::Transcoded));
            }
            Err(error) => {
                tracing::error!(stream = %self.stream, %error, "cannot start AAC to Opus; audio dropped");
                self.audio.failed = true;
            }
        }
    }

    fn handle_aac_raw(&mut self, pts_ms: i64, data: &[u8]) {
        let Some(transcoder) = self.audio.transcoder.as_mut() else {
            return;
        };
        let frames = match transcoder.push(data, pts_ms) {
            Ok(frames) => frames,
            Err(error) => {
                tracing::debug!(stream = %self.stream, %error, "AAC frame not transcoded");
                return;
            }
        };
        for frame in frames {
            self.publisher.send(LocalRtp {
                kind: TrackKind::Audio,
                codec: Codec::Opus,
                layer: Layer::High,
                sequence_number: self.audio.sequence_number,
                timestamp: frame.timestamp_48k,
                marker: false,
                payload: frame.data,
            });
            self.audio.sequence_number = self.audio.sequence_number.wrapping_add(1);
        }
    }
}
