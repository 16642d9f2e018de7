//! The video half of the bridge: which way a stream's H.264 goes to the viewers.
//!
//! - **Passthrough** (the default): access units are re-packetized into RTP as they came.
//! - **Re-encode**: once a source shows B-frames, video is decoded and encoded again without
//!   them.
//! - **Ladder** (a per-stream setting): video is decoded once and encoded as three simulcast
//!   layers (q, h, f) with keyframes aligned across layers, so viewers on weak links can be
//!   given a lower layer.
//!
//! A change of path waits for a keyframe of the source, so a transcoder never starts on a frame
//! it cannot decode. Transcoders follow the source's keyframes (and viewers' keyframe requests)
//! so the output's GOP is never longer than the source's.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use greenroom_media::h264::{self, AvcDecoderConfig};
use greenroom_media::rtp::{H264Packetizer, RtpPayload};
use greenroom_rtc::{Codec, Layer, LocalPublisher, LocalRtp, MediaHandling, TrackKind};

use crate::transcode::{
    EncodedFrame, H264Reencoder, LadderOptions, LadderRung, ReencodeOptions, SimulcastLadder,
};

/// RTP payload size for WebRTC (leaves room for SRTP and header extensions under 1280 bytes).
const RTP_MTU: usize = 1100;
/// Bitrate of re-encoded (B-frame-free) video.
const REENCODE_BITRATE_BPS: u32 = 2_500_000;
/// Frames between latency reports in the log.
const LATENCY_REPORT_FRAMES: u32 = 300;

/// One access unit from the source.
pub(super) struct Frame<'a> {
    pub data: FrameData<'a>,
    pub keyframe: bool,
    /// Presentation time, 90 kHz.
    pub pts_90k: i64,
    /// The source is known to send B-frames.
    pub b_frames: bool,
    /// When it arrived from the network.
    pub received: Instant,
}

pub(super) enum FrameData<'a> {
    /// AVCC (length-prefixed) NAL units, RTMP; parameter sets come from the configuration.
    Avcc(&'a [u8]),
    /// Annex B with parameter sets in band, RTSP.
    AnnexB(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Passthrough,
    Reencode,
    Ladder,
}

enum Path {
    Passthrough,
    Reencode(H264Reencoder),
    Ladder(SimulcastLadder, String),
}

impl Path {
    fn kind(&self) -> Want {
        match self {
            Path::Passthrough => Want::Passthrough,
            Path::Reencode(_) => Want::Reencode,
            Path::Ladder(..) => Want::Ladder,
        }
    }
}

pub(super) struct Video {
    stream: String,
    path: Path,
    want: Want,
    /// A transcoder could not start: forward as sent from now on.
    failed: bool,
    config: Option<AvcDecoderConfig>,
    packetizers: [H264Packetizer; 3],
    sequence_numbers: [u16; 3],
    scratch: Vec<RtpPayload>,
    latency: LatencyMeter,
    /// A transcoded path skips frames while no WebRTC viewer is subscribed.
    paused: bool,
}

impl Video {
    pub fn new(stream: &str, simulcast_ladder: bool) -> Video {
        Video {
            stream: stream.to_owned(),
            path: Path::Passthrough,
            want: if simulcast_ladder {
                Want::Ladder
            } else {
                Want::Passthrough
            },
            failed: false,
            config: None,
            packetizers: [
                H264Packetizer::new(RTP_MTU),
                H264Packetizer::new(RTP_MTU),
                H264Packetizer::new(RTP_MTU),
            ],
            sequence_numbers: [rand::random(), rand::random(), rand::random()],
            scratch: Vec::new(),
            latency: LatencyMeter::default(),
            paused: false,
        }
    }

    pub fn set_config(&mut self, config: AvcDecoderConfig) {
        self.config = Some(config);
    }

    /// What happens to the video now (no allocation: called per frame).
    pub fn media_handling(&self) -> MediaHandling {
        match self.path {
            Path::Passthrough => MediaHandling::Repacketized,
            Path::Reencode(_) | Path::Ladder(..) => MediaHandling::Transcoded,
        }
    }

    /// What the stream's stats say about video, with the reason when it is transcoded.
    pub fn handling(&self) -> (MediaHandling, Option<String>) {
        match &self.path {
            Path::Passthrough => (MediaHandling::Repacketized, None),
            Path::Reencode(_) => (
                MediaHandling::Transcoded,
                Some("the source sends B-frames: video is re-encoded without them".to_owned()),
            ),
            Path::Ladder(_, sizes) => (
                MediaHandling::Transcoded,
                Some(format!("transcoded into a simulcast ladder: {sizes}")),
            ),
        }
    }

    /// A viewer asked for a keyframe: transcoders can give one at once (a passthrough source
    /// sends its own on its schedule).
    pub fn request_keyframe(&mut self) {
        match &mut self.path {
            Path::Passthrough => {}
            Path::Reencode(reencoder) => reencoder.request_keyframe(),
            Path::Ladder(ladder, _) => ladder.request_keyframe(),
        }
    }

    pub fn handle(&mut self, frame: Frame<'_>, publisher: &mut LocalPublisher) {
        if frame.b_frames && self.want == Want::Passthrough {
            tracing::info!(stream = %self.stream, "B-frames in the source: video will be re-encoded from the next keyframe");
            self.want = Want::Reencode;
        }
        if self.path.kind() != self.want && frame.keyframe && !self.failed {
            self.start(&frame);
        }
        let pts_ms = frame.pts_90k.div_euclid(90);
        self.latency.arrived(pts_ms, frame.received);
        if matches!(self.path, Path::Passthrough) {
            let Some(nals) = self.nals(&frame) else {
                return;
            };
            let params = match (&frame.data, frame.keyframe, &self.config) {
                (FrameData::Avcc(_), true, Some(config)) => {
                    Some((config.sps.clone(), config.pps.clone()))
                }
                _ => None,
            };
            let params = params
                .as_ref()
                .map(|(sps, pps)| (sps.as_slice(), pps.as_slice()));
            self.send(publisher, Layer::High, &nals, params, frame.pts_90k);
            self.report_latency(pts_ms);
            return;
        }
        // Nobody watches over WebRTC: no transcoding for nobody. Resume at a source keyframe
        // (the decoder needs one) once someone subscribes.
        if !publisher.has_viewers() {
            self.paused = true;
            return;
        }
        if self.paused {
            if !frame.keyframe {
                return;
            }
            self.paused = false;
        }
        let Some(annexb) = self.annexb(&frame) else {
            return;
        };
        let outputs: Vec<(Layer, EncodedFrame)> = match &mut self.path {
            Path::Passthrough => Vec::new(),
            Path::Reencode(reencoder) => {
                if frame.keyframe {
                    reencoder.request_keyframe();
                }
                match reencoder.push(&annexb, pts_ms) {
                    Ok(frames) => frames.into_iter().map(|f| (Layer::High, f)).collect(),
                    Err(error) => {
                        tracing::warn!(stream = %self.stream, %error, "re-encoding failed for a frame");
                        Vec::new()
                    }
                }
            }
            Path::Ladder(ladder, _) => {
                if frame.keyframe {
                    ladder.request_keyframe();
                }
                match ladder.push(&annexb, pts_ms) {
                    Ok(frames) => frames,
                    Err(error) => {
                        tracing::warn!(stream = %self.stream, %error, "ladder transcoding failed for a frame");
                        Vec::new()
                    }
                }
            }
        };
        for (layer, encoded) in outputs {
            let nals: Vec<&[u8]> = h264::annexb_to_nals(&encoded.annexb).collect();
            self.send(publisher, layer, &nals, None, encoded.pts_ms.max(0) * 90);
            if layer == Layer::High {
                self.report_latency(encoded.pts_ms);
            }
        }
    }

    /// Starts the wanted transcoder at this keyframe; on failure video is forwarded as sent.
    fn start(&mut self, frame: &Frame<'_>) {
        match self.want {
            Want::Passthrough => self.path = Path::Passthrough,
            Want::Reencode => match H264Reencoder::new(ReencodeOptions {
                bitrate_bps: REENCODE_BITRATE_BPS,
                // The source's keyframes (and viewers' requests) set the pace; this bounds it.
                max_keyframe_interval_frames: 300,
                preset: "veryfast".to_owned(),
                target: None,
                ..ReencodeOptions::default()
            }) {
                Ok(reencoder) => {
                    tracing::info!(stream = %self.stream, "re-encoding video without B-frames");
                    self.path = Path::Reencode(reencoder);
                }
                Err(error) => self.give_up(&error.to_string()),
            },
            Want::Ladder => {
                let Some((width, height)) = self.resolution(frame) else {
                    return;
                };
                let rungs = LadderRung::default_ladder(width, height);
                let sizes = rungs
                    .iter()
                    .map(|r| format!("{} {}x{}", r.layer.rid(), r.width, r.height))
                    .collect::<Vec<_>>()
                    .join(", ");
                match SimulcastLadder::new(
                    rungs,
                    LadderOptions {
                        max_keyframe_interval_frames: 300,
                        ..LadderOptions::default()
                    },
                ) {
                    Ok(ladder) => {
                        tracing::info!(stream = %self.stream, %sizes, "transcoding into a simulcast ladder");
                        self.path = Path::Ladder(ladder, sizes);
                    }
                    Err(error) => self.give_up(&error.to_string()),
                }
            }
        }
    }

    fn give_up(&mut self, error: &str) {
        tracing::error!(stream = %self.stream, error, "cannot start video transcoding; forwarding video as sent");
        self.failed = true;
        self.want = Want::Passthrough;
        self.path = Path::Passthrough;
    }

    /// The picture size: from the RTMP configuration, or the SPS of an Annex B keyframe.
    fn resolution(&self, frame: &Frame<'_>) -> Option<(u32, u32)> {
        match frame.data {
            FrameData::Avcc(_) => self.config.as_ref().and_then(AvcDecoderConfig::resolution),
            FrameData::AnnexB(annexb) => h264::annexb_to_nals(annexb)
                .find(|nal| nal.first().is_some_and(|b| b & 0x1f == 7))
                .and_then(h264::sps_resolution),
        }
    }

    /// The frame's NAL units (without start codes or length prefixes), borrowed from it.
    fn nals<'a>(&self, frame: &Frame<'a>) -> Option<Vec<&'a [u8]>> {
        match frame.data {
            FrameData::Avcc(avcc) => {
                let config = self.config.as_ref()?;
                match h264::avcc_nals(avcc, config.length_size).collect() {
                    Ok(nals) => Some(nals),
                    Err(error) => {
                        tracing::debug!(stream = %self.stream, %error, "bad AVCC frame skipped");
                        None
                    }
                }
            }
            FrameData::AnnexB(annexb) => Some(h264::annexb_to_nals(annexb).collect()),
        }
    }

    /// The frame as Annex B for a decoder, with the parameter sets before a keyframe.
    fn annexb<'a>(&self, frame: &Frame<'a>) -> Option<Cow<'a, [u8]>> {
        match frame.data {
            FrameData::AnnexB(annexb) => Some(Cow::Borrowed(annexb)),
            FrameData::Avcc(avcc) => {
                let config = self.config.as_ref()?;
                let body = h264::avcc_to_annexb(avcc, usize::from(config.length_size)).ok()?;
                let mut out = Vec::with_capacity(body.len() + 64);
                if frame.keyframe {
                    for nal in config.sps.iter().chain(config.pps.iter()) {
                        out.extend_from_slice(&[0, 0, 0, 1]);
                        out.extend_from_slice(nal);
                    }
                }
                out.extend_from_slice(&body);
                Some(Cow::Owned(out))
            }
        }
    }

    fn send(
        &mut self,
        publisher: &mut LocalPublisher,
        layer: Layer,
        nals: &[&[u8]],
        params: Option<(&[Bytes], &[Bytes])>,
        pts_90k: i64,
    ) {
        let index = layer.index();
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        self.packetizers[index].packetize_access_unit(nals, params, &mut out);
        // RTP timestamps wrap: keep the low 32 bits.
        let timestamp = pts_90k.max(0) as u64 as u32;
        for payload in out.drain(..) {
            publisher.send(LocalRtp {
                kind: TrackKind::Video,
                codec: Codec::H264,
                layer,
                sequence_number: self.sequence_numbers[index],
                timestamp,
                marker: payload.marker,
                payload: payload.payload,
            });
            self.sequence_numbers[index] = self.sequence_numbers[index].wrapping_add(1);
        }
        self.scratch = out;
    }

    fn report_latency(&mut self, pts_ms: i64) {
        if let Some((mean, max)) = self.latency.left(pts_ms, Instant::now()) {
            tracing::info!(
                stream = %self.stream,
                path = ?self.path.kind(),
                mean_ms = (mean.as_secs_f64() * 10_000.0).round() / 10.0,
                max_ms = (max.as_secs_f64() * 10_000.0).round() / 10.0,
                "video latency added between the network and RTP"
            );
        }
    }
}

/// How long frames spend between arriving from the network and leaving as RTP.
#[derive(Default)]
struct LatencyMeter {
    /// Arrival times of frames not sent yet, by presentation time (transcoders hold a few).
    pending: VecDeque<(i64, Instant)>,
    total: Duration,
    max: Duration,
    frames: u32,
}

impl LatencyMeter {
    fn arrived(&mut self, pts_ms: i64, at: Instant) {
        if self.pending.len() >= 64 {
            self.pending.pop_front();
        }
        self.pending.push_back((pts_ms, at));
    }

    /// A frame left; every [`LATENCY_REPORT_FRAMES`] frames, the mean and the maximum.
    fn left(&mut self, pts_ms: i64, now: Instant) -> Option<(Duration, Duration)> {
        let position = self.pending.iter().position(|(pts, _)| *pts == pts_ms)?;
        let (_, at) = self.pending.remove(position)?;
        let spent = now.duration_since(at);
        self.total += spent;
        self.max = self.max.max(spent);
        self.frames += 1;
        if self.frames < LATENCY_REPORT_FRAMES {
            return None;
        }
        let report = (self.total / self.frames, self.max);
        self.total = Duration::ZERO;
        self.max = Duration::ZERO;
        self.frames = 0;
        Some(report)
    }
}
