//! The server side of a WHIP session: what a publisher sends, per track and simulcast layer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::RTCTrackEventInit;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

use crate::worker::MediaPacket;
use crate::{LayerStats, PublisherStats, SessionId, SourceInfo, TrackStats};
use greenroom_media::Codec;
use greenroom_sfu::{KeyframeThrottle, Layer, LayerSet, RateMeter, TrackKind};

/// A layer that sent nothing for this long is no longer offered to viewers.
const LAYER_SILENCE: Duration = Duration::from_millis(1500);
/// At most one keyframe request per layer in this interval.
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

/// One incoming RTP stream (SSRC).
#[derive(Debug, Clone, Copy)]
struct Source {
    kind: TrackKind,
    layer: Layer,
    codec: Codec,
    /// The WebRTC receiver it arrives on; `None` for a local (RTMP/RTSP) source.
    receiver: Option<RTCRtpReceiverId>,
}

struct LayerState {
    meter: RateMeter,
    resolution: Option<(u32, u32)>,
    last_packet: Option<Instant>,
    ssrc: Option<u32>,
    receiver: Option<RTCRtpReceiverId>,
    codec: Option<Codec>,
}

impl LayerState {
    fn new() -> Self {
        LayerState {
            meter: RateMeter::new(),
            resolution: None,
            last_packet: None,
            ssrc: None,
            receiver: None,
            codec: None,
        }
    }
}

pub(crate) struct Publisher {
    epoch: u64,
    receivers: HashMap<String, RTCRtpReceiverId>,
    sources: HashMap<u32, Source>,
    video: [LayerState; 3],
    audio: LayerState,
    throttle: KeyframeThrottle,
    live: bool,
    source: SourceInfo,
    /// Wire-rate estimate of each video layer and of the audio (index 3), refreshed every
    /// [`RATES_REFRESH`]; viewers' layer selectors read it from every packet.
    rates: [u64; 4],
    rates_at: Option<Instant>,
}

/// How often the per-layer rates handed to viewers are recomputed.
const RATES_REFRESH: Duration = Duration::from_millis(250);
/// RTP, SRTP and UDP/IP overhead over the metered payload bytes, in percent.
const WIRE_OVERHEAD_PERCENT: u64 = 6;

impl Publisher {
    pub(crate) fn new(epoch: u64) -> Self {
        Publisher {
            epoch,
            receivers: HashMap::new(),
            sources: HashMap::new(),
            video: [LayerState::new(), LayerState::new(), LayerState::new()],
            audio: LayerState::new(),
            throttle: KeyframeThrottle::new(KEYFRAME_INTERVAL),
            live: false,
            source: SourceInfo::whip(),
            rates: [0; 4],
            rates_at: None,
        }
    }

    pub(crate) fn set_source(&mut self, source: SourceInfo) {
        self.source = source;
    }

    pub(crate) fn is_live(&self) -> bool {
        self.live
    }

    pub(crate) fn handle_track_open(
        &mut self,
        pc: &mut RTCPeerConnection,
        init: &RTCTrackEventInit,
    ) {
        self.receivers
            .insert(init.track_id.clone(), init.receiver_id);
        if init.ssrc != 0 {
            self.resolve(pc, init.receiver_id, init.ssrc);
        }
    }

    fn resolve(
        &mut self,
        pc: &mut RTCPeerConnection,
        receiver_id: RTCRtpReceiverId,
        ssrc: u32,
    ) -> Option<Source> {
        if let Some(source) = self.sources.get(&ssrc) {
            return Some(*source);
        }
        let receiver = pc.rtp_receiver(receiver_id)?;
        let track = receiver.track();
        let kind = match track.kind() {
            RtpCodecKind::Audio => TrackKind::Audio,
            RtpCodecKind::Video => TrackKind::Video,
            _ => return None,
        };
        let codec = Codec::from_mime(&track.codec(ssrc)?.mime_type)?;
        let layer = track
            .rid(ssrc)
            .and_then(|rid| Layer::from_rid(rid))
            .unwrap_or(Layer::High);
        let source = Source {
            kind,
            layer,
            codec,
            receiver: Some(receiver_id),
        };
        tracing::debug!(ssrc, ?kind, ?layer, ?codec, "publisher source");
        self.sources.insert(ssrc, source);
        Some(source)
    }

    /// Accounts for one inbound packet and turns it into the form every forwarder reads.
    /// Returns `None` for packets that carry nothing to forward; the flag says the stream just
    /// became live.
    pub(crate) fn handle_rtp(
        &mut self,
        pc: &mut RTCPeerConnection,
        stream: &std::sync::Arc<str>,
        track_id: &str,
        packet: rtc::rtp::Packet,
        now: Instant,
    ) -> Option<(MediaPacket, bool)> {
        if packet.payload.is_empty() {
            return None;
        }
        let ssrc = packet.header.ssrc;
        let source = match self.sources.get(&ssrc) {
            Some(source) => *source,
            None => {
                let receiver = *self.receivers.get(track_id)?;
                self.resolve(pc, receiver, ssrc)?
            }
        };
        let header = &packet.header;
        Some(self.account(
            stream,
            source,
            ssrc,
            (header.sequence_number, header.timestamp, header.marker),
            packet.payload,
            now,
        ))
    }

    /// Accounts for one packet of a local (RTMP/RTSP) source.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_local(
        &mut self,
        stream: &std::sync::Arc<str>,
        kind: TrackKind,
        codec: Codec,
        layer: Layer,
        rtp: (u16, u32, bool),
        payload: bytes::Bytes,
        now: Instant,
    ) -> (MediaPacket, bool) {
        let source = Source {
            kind,
            layer,
            codec,
            receiver: None,
        };
        self.account(stream, source, 0, rtp, payload, now)
    }

    /// Meters a packet and turns it into the form every forwarder reads; the flag says the
    /// stream just became live.
    fn account(
        &mut self,
        stream: &std::sync::Arc<str>,
        source: Source,
        ssrc: u32,
        (sequence_number, timestamp, marker): (u16, u32, bool),
        payload: bytes::Bytes,
        now: Instant,
    ) -> (MediaPacket, bool) {
        let state = match source.kind {
            TrackKind::Audio => &mut self.audio,
            TrackKind::Video => &mut self.video[source.layer.index()],
        };
        state
            .meter
            .handle_packet(now, payload.len(), timestamp, marker);
        state.last_packet = Some(now);
        state.ssrc = Some(ssrc);
        state.receiver = source.receiver;
        state.codec = Some(source.codec);
        if source.kind == TrackKind::Video {
            let resolution = match source.codec {
                Codec::Vp8 => greenroom_media::vp8::keyframe_resolution(&payload),
                Codec::H264 => greenroom_media::h264::keyframe_resolution(&payload),
                Codec::Opus => None,
            };
            if resolution.is_some() {
                state.resolution = resolution;
            }
        }
        if self
            .rates_at
            .is_none_or(|at| now.saturating_duration_since(at) >= RATES_REFRESH)
        {
            self.rates_at = Some(now);
            let wire =
                |meter: &RateMeter| meter.bitrate_bps(now) * (100 + WIRE_OVERHEAD_PERCENT) / 100;
            self.rates = [
                wire(&self.video[0].meter),
                wire(&self.video[1].meter),
                wire(&self.video[2].meter),
                wire(&self.audio.meter),
            ];
        }
        let became_live = !self.live;
        self.live = true;
        (
            MediaPacket {
                stream: stream.clone(),
                epoch: self.epoch,
                kind: source.kind,
                codec: source.codec,
                layer: source.layer,
                available: self.available_layers(now),
                rates: self.rates,
                sequence_number,
                timestamp,
                marker,
                payload,
            },
            became_live,
        )
    }

    /// Video layers heard from recently.
    fn available_layers(&self, now: Instant) -> LayerSet {
        let mut set = LayerSet::new();
        for layer in Layer::ALL {
            if self.video[layer.index()]
                .last_packet
                .is_some_and(|t| now.duration_since(t) < LAYER_SILENCE)
            {
                set.insert(layer);
            }
        }
        set
    }

    /// Asks the publisher for a keyframe of `layer` (or of the nearest layer it sends), at most
    /// once per layer and interval.
    pub(crate) fn request_keyframe(
        &mut self,
        pc: &mut RTCPeerConnection,
        layer: Layer,
        now: Instant,
    ) -> bool {
        let available = self.available_layers(now);
        let layer = if available.contains(layer) {
            layer
        } else {
            match available.best_at_most(layer).or_else(|| available.lowest()) {
                Some(l) => l,
                None => return false,
            }
        };
        let state = &self.video[layer.index()];
        let (Some(ssrc), Some(receiver)) = (state.ssrc, state.receiver) else {
            return false;
        };
        if !self.throttle.request(now, layer) {
            return false;
        }
        if let Some(mut receiver) = pc.rtp_receiver(receiver) {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: ssrc,
            };
            if let Err(error) = receiver.write_rtcp(now, vec![Box::new(pli)]) {
                tracing::debug!(%error, ssrc, "PLI not sent");
            } else {
                tracing::debug!(ssrc, ?layer, "PLI sent to publisher");
                return true;
            }
        }
        false
    }

    pub(crate) fn stats(
        &self,
        session: &SessionId,
        connected: Duration,
        now: Instant,
    ) -> PublisherStats {
        let mut tracks = Vec::new();
        let layer_stats = |layer: Layer, state: &LayerState| LayerStats {
            layer: layer.rid(),
            bitrate_bps: state.meter.bitrate_bps(now),
            fps: (state.meter.fps(now) * 10.0).round() / 10.0,
            width: state.resolution.map(|r| r.0),
            height: state.resolution.map(|r| r.1),
        };
        if let Some(codec) = self.audio.codec {
            tracks.push(TrackStats {
                kind: "audio",
                codec: codec.mime_type().to_owned(),
                layers: vec![LayerStats {
                    width: None,
                    height: None,
                    fps: 0.0,
                    ..layer_stats(Layer::High, &self.audio)
                }],
            });
        }
        let video_codec = self.video.iter().find_map(|s| s.codec);
        if let Some(codec) = video_codec {
            let available = self.available_layers(now);
            tracks.push(TrackStats {
                kind: "video",
                codec: codec.mime_type().to_owned(),
                layers: Layer::ALL
                    .iter()
                    .filter(|l| available.contains(**l))
                    .map(|l| layer_stats(*l, &self.video[l.index()]))
                    .collect(),
            });
        }
        PublisherStats {
            session: session.clone(),
            connected_ms: connected.as_millis() as u64,
            source: self.source.clone(),
            tracks,
        }
    }
}
