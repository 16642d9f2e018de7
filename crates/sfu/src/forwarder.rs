//! The per-subscriber forwarder: layer selection plus RTP munging.
//!
//! Modelled on LiveKit's `pkg/sfu` forwarder, rtpmunger and simulcast video layer selector.

use std::time::{Duration, Instant};

use greenroom_media::Codec;

use crate::rtp_munger::{MungedRtp, RtpMunger};
use crate::vp8_munger::Vp8Munger;
use crate::{Layer, LayerSet, PacketInfo, TrackKind, Vp8Rewrite};

/// How often a still-missing key frame is asked for again.
const KEYFRAME_REPEAT: Duration = Duration::from_secs(1);

/// What a forwarder is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwarderConfig {
    /// Audio or video.
    pub kind: TrackKind,
    /// The track's codec; its clock rate scales the timestamp jump at switches.
    pub codec: Codec,
    /// The highest layer the viewer wants.
    pub max_layer: Layer,
}

/// The rewritten header fields of a forwarded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Munged {
    /// Output sequence number.
    pub sequence_number: u16,
    /// Output timestamp.
    pub timestamp: u32,
    /// Marker bit (unchanged).
    pub marker: bool,
    /// VP8 descriptor fields to rewrite, only when they differ from the input; the driver then
    /// copies the payload and applies [`greenroom_media::vp8::rewrite_descriptor`].
    pub vp8: Option<Vp8Rewrite>,
}

/// Forwards one published track to one subscriber.
///
/// Video: the target layer is the best available layer at most the viewer's maximum (or the
/// lowest available when none is that low). Forwarding starts, and moves to a new target, only
/// at a packet that starts a key frame of the target layer; until then the current layer keeps
/// flowing and [`poll_keyframe_request`](Forwarder::poll_keyframe_request) asks for that key
/// frame. The exception is a current layer above the bandwidth cap: the viewer's link cannot
/// carry it, and what it would send only queues ahead of the lower layer's key frame, so it
/// stops at its next frame boundary and the video pauses until that key frame. Audio: every
/// packet is forwarded.
///
/// Until [`set_available_layers`](Forwarder::set_available_layers) is called, the layers
/// seen in packets since the last source reset count as available.
#[derive(Debug, Clone)]
pub struct Forwarder {
    kind: TrackKind,
    codec: Codec,
    max_layer: Layer,
    /// What the viewer's bandwidth carries ([`crate::LayerSelector`]); `High` until known.
    bandwidth_cap: Layer,
    /// Layers the publisher sends, once the driver said so.
    available: Option<LayerSet>,
    /// Layers seen in packets since the last reset.
    seen: LayerSet,
    target: Option<Layer>,
    current: Option<Layer>,
    rtp: RtpMunger,
    vp8: Vp8Munger,
    /// When the current wait for a key frame of the target last asked for one.
    keyframe_requested_at: Option<Instant>,
    /// The last forwarded video packet ended a frame (the next one starts a new frame).
    frame_ended: bool,
}

impl Forwarder {
    /// A forwarder that has forwarded nothing yet.
    pub fn new(config: ForwarderConfig) -> Self {
        Forwarder {
            kind: config.kind,
            codec: config.codec,
            max_layer: config.max_layer,
            bandwidth_cap: Layer::High,
            available: None,
            seen: LayerSet::new(),
            target: None,
            current: None,
            rtp: RtpMunger::default(),
            vp8: Vp8Munger::default(),
            keyframe_requested_at: None,
            frame_ended: false,
        }
    }

    /// The viewer's maximum layer; a new target takes effect at its next key frame.
    pub fn set_max_layer(&mut self, layer: Layer) {
        self.max_layer = layer;
        self.update_target();
    }

    /// The highest layer the viewer's bandwidth carries; the target is the lower of this and
    /// the viewer's maximum, reached at its next key frame.
    pub fn set_bandwidth_cap(&mut self, layer: Layer) {
        self.bandwidth_cap = layer;
        self.update_target();
    }

    /// The current bandwidth cap.
    pub fn bandwidth_cap(&self) -> Layer {
        self.bandwidth_cap
    }

    /// The layers the publisher currently sends.
    pub fn set_available_layers(&mut self, layers: LayerSet) {
        self.available = Some(layers);
        self.update_target();
    }

    /// The publisher restarted or was replaced: new SSRCs and new sequence number and
    /// timestamp bases. The output stays continuous; video waits for a key frame again.
    pub fn handle_source_reset(&mut self) {
        self.current = None;
        self.seen = LayerSet::new();
        self.rtp.end_segment();
        self.keyframe_requested_at = None;
        self.update_target();
    }

    /// The publisher came back with another codec; acts as a source reset.
    pub fn set_codec(&mut self, codec: Codec) {
        self.codec = codec;
        self.handle_source_reset();
    }

    /// Decides whether the subscriber gets this packet, and with which header fields.
    /// `None` means drop.
    pub fn handle_packet(&mut self, now: Instant, pkt: &PacketInfo) -> Option<Munged> {
        let rtp = match self.kind {
            TrackKind::Audio => {
                if self.rtp.needs_segment() {
                    self.start_segment(now, pkt)
                } else {
                    self.rtp.munge(now, pkt.sequence_number, pkt.timestamp)?
                }
            }
            TrackKind::Video => {
                if self.available.is_none() && !self.seen.contains(pkt.layer) {
                    self.seen.insert(pkt.layer);
                    self.update_target();
                }
                if self.target == Some(pkt.layer)
                    && self.current != self.target
                    && pkt.keyframe_start
                {
                    self.current = self.target;
                    self.keyframe_requested_at = None;
                    self.frame_ended = pkt.marker;
                    self.start_segment(now, pkt)
                } else if self.current == Some(pkt.layer) {
                    if self.frame_ended && self.over_bandwidth() {
                        // Stop between frames: the viewer keeps a whole last picture.
                        self.current = None;
                        return None;
                    }
                    let munged = self.rtp.munge(now, pkt.sequence_number, pkt.timestamp)?;
                    if munged.newest {
                        self.frame_ended = pkt.marker;
                    }
                    munged
                } else {
                    return None;
                }
            }
        };
        let vp8 = pkt
            .vp8
            .as_ref()
            .and_then(|meta| self.vp8.munge(meta, rtp.newest));
        Some(Munged {
            sequence_number: rtp.sequence_number,
            timestamp: rtp.timestamp,
            marker: pkt.marker,
            vp8,
        })
    }

    /// The layer a key frame is needed of: right away when the wait for one starts (join,
    /// switch, reset), then at most once a second while still waiting. The driver passes it
    /// through the publisher's [`KeyframeThrottle`](crate::KeyframeThrottle).
    pub fn poll_keyframe_request(&mut self, now: Instant) -> Option<Layer> {
        if self.kind != TrackKind::Video || self.current == self.target {
            return None;
        }
        let target = self.target?;
        let due = self
            .keyframe_requested_at
            .is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_REPEAT);
        if !due {
            return None;
        }
        self.keyframe_requested_at = Some(now);
        Some(target)
    }

    /// The layer being forwarded, if any.
    pub fn current_layer(&self) -> Option<Layer> {
        self.current
    }

    /// The layer the forwarder wants to forward.
    pub fn target_layer(&self) -> Option<Layer> {
        self.target
    }

    /// The viewer's maximum layer.
    pub fn max_layer(&self) -> Layer {
        self.max_layer
    }

    /// The track's codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Audio or video.
    pub fn kind(&self) -> TrackKind {
        self.kind
    }

    fn start_segment(&mut self, now: Instant, pkt: &PacketInfo) -> MungedRtp {
        self.vp8.start_segment();
        self.rtp.start_segment(
            now,
            pkt.sequence_number,
            pkt.timestamp,
            self.codec.clock_rate(),
        )
    }

    /// The current layer is more than the viewer's link carries and a lower one is the target.
    fn over_bandwidth(&self) -> bool {
        match (self.current, self.target) {
            (Some(current), Some(target)) => current > self.bandwidth_cap && target < current,
            _ => false,
        }
    }

    fn update_target(&mut self) {
        let layers = self.available.unwrap_or(self.seen);
        let target = layers
            .best_at_most(self.max_layer.min(self.bandwidth_cap))
            .or_else(|| layers.lowest());
        if target != self.target {
            self.target = target;
            self.keyframe_requested_at = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 2] = [0x10, 0x00];
    const DELTA: [u8; 2] = [0x10, 0x01];

    fn video(max_layer: Layer) -> Forwarder {
        Forwarder::new(ForwarderConfig {
            kind: TrackKind::Video,
            codec: Codec::Vp8,
            max_layer,
        })
    }

    fn packet(layer: Layer, seq: u16, payload: &[u8]) -> PacketInfo<'_> {
        packet_marked(layer, seq, payload, false)
    }

    fn packet_marked(layer: Layer, seq: u16, payload: &[u8], marker: bool) -> PacketInfo<'_> {
        PacketInfo::parse(
            Codec::Vp8,
            layer,
            seq,
            u32::from(seq) * 100,
            marker,
            payload,
        )
    }

    #[test]
    fn waits_for_keyframe_then_forwards() {
        let now = Instant::now();
        let mut fwd = video(Layer::High);
        fwd.set_available_layers(LayerSet::only(Layer::High));
        assert_eq!(fwd.poll_keyframe_request(now), Some(Layer::High));
        assert_eq!(fwd.poll_keyframe_request(now), None);
        assert_eq!(
            fwd.handle_packet(now, &packet(Layer::High, 1, &DELTA)),
            None
        );
        let first = fwd.handle_packet(now, &packet(Layer::High, 2, &KEY));
        assert_eq!(first.map(|m| m.sequence_number), Some(2));
        assert_eq!(fwd.current_layer(), Some(Layer::High));
        assert_eq!(fwd.poll_keyframe_request(now + KEYFRAME_REPEAT), None);
        let next = fwd.handle_packet(now, &packet(Layer::High, 3, &DELTA));
        assert_eq!(next.map(|m| m.sequence_number), Some(3));
    }

    #[test]
    fn a_bandwidth_cap_moves_down_at_the_lower_layers_key_frame_and_back_up_at_the_top_ones() {
        let now = Instant::now();
        let mut fwd = video(Layer::High);
        fwd.set_available_layers(LayerSet::all());
        assert!(
            fwd.handle_packet(now, &packet(Layer::High, 1, &KEY))
                .is_some()
        );
        fwd.set_bandwidth_cap(Layer::Low);
        assert_eq!(fwd.target_layer(), Some(Layer::Low));
        // The high layer's frame in progress is finished; low is dropped until its key frame.
        assert!(
            fwd.handle_packet(now, &packet(Layer::Low, 10, &DELTA))
                .is_none()
        );
        assert!(
            fwd.handle_packet(now, &packet_marked(Layer::High, 2, &DELTA, true))
                .is_some()
        );
        // The link cannot carry the high layer: it stops at the frame boundary.
        assert!(
            fwd.handle_packet(now, &packet(Layer::High, 3, &DELTA))
                .is_none()
        );
        assert_eq!(fwd.current_layer(), None);
        let low = fwd.handle_packet(now, &packet(Layer::Low, 11, &KEY));
        assert_eq!(low.map(|m| m.sequence_number), Some(3));
        assert_eq!(fwd.current_layer(), Some(Layer::Low));
        assert!(
            fwd.handle_packet(now, &packet(Layer::High, 4, &DELTA))
                .is_none()
        );
        // The viewer's own maximum still caps a raised bandwidth cap.
        fwd.set_max_layer(Layer::Mid);
        fwd.set_bandwidth_cap(Layer::High);
        assert_eq!(fwd.target_layer(), Some(Layer::Mid));
        assert!(
            fwd.handle_packet(now, &packet(Layer::Mid, 20, &DELTA))
                .is_none()
        );
        assert!(
            fwd.handle_packet(now, &packet(Layer::Mid, 21, &KEY))
                .is_some()
        );
        assert_eq!(fwd.current_layer(), Some(Layer::Mid));
    }

    #[test]
    fn keyframe_request_repeats_every_second() {
        let t0 = Instant::now();
        let mut fwd = video(Layer::Mid);
        fwd.set_available_layers(LayerSet::all());
        assert_eq!(fwd.poll_keyframe_request(t0), Some(Layer::Mid));
        assert_eq!(
            fwd.poll_keyframe_request(t0 + Duration::from_millis(999)),
            None
        );
        assert_eq!(
            fwd.poll_keyframe_request(t0 + KEYFRAME_REPEAT),
            Some(Layer::Mid)
        );
        // A new target is asked for at once.
        fwd.set_max_layer(Layer::Low);
        assert_eq!(
            fwd.poll_keyframe_request(t0 + KEYFRAME_REPEAT),
            Some(Layer::Low)
        );
    }

    #[test]
    fn learns_layers_from_packets_without_available_set() {
        let now = Instant::now();
        let mut fwd = video(Layer::High);
        assert_eq!(fwd.target_layer(), None);
        assert_eq!(fwd.poll_keyframe_request(now), None);
        assert!(
            fwd.handle_packet(now, &packet(Layer::Low, 1, &KEY))
                .is_some()
        );
        assert_eq!(fwd.current_layer(), Some(Layer::Low));
        assert_eq!(
            fwd.handle_packet(now, &packet(Layer::High, 50, &DELTA)),
            None
        );
        assert_eq!(fwd.target_layer(), Some(Layer::High));
        assert_eq!(fwd.poll_keyframe_request(now), Some(Layer::High));
        let switched = fwd.handle_packet(now, &packet(Layer::High, 51, &KEY));
        assert_eq!(switched.map(|m| m.sequence_number), Some(2));
    }

    #[test]
    fn audio_forwards_everything_and_continues_after_reset() {
        let t0 = Instant::now();
        let mut fwd = Forwarder::new(ForwarderConfig {
            kind: TrackKind::Audio,
            codec: Codec::Opus,
            max_layer: Layer::High,
        });
        assert_eq!(fwd.poll_keyframe_request(t0), None);
        let opus = |seq: u16, ts: u32| {
            PacketInfo::parse(Codec::Opus, Layer::High, seq, ts, false, &[0xfc])
        };
        let a = fwd.handle_packet(t0, &opus(10, 960));
        assert_eq!(a.map(|m| (m.sequence_number, m.timestamp)), Some((10, 960)));
        fwd.handle_source_reset();
        let b = fwd.handle_packet(t0 + Duration::from_millis(20), &opus(5000, 7));
        assert_eq!(
            b.map(|m| (m.sequence_number, m.timestamp)),
            Some((11, 960 + 960))
        );
        assert_eq!(fwd.poll_keyframe_request(t0), None);
    }

    #[test]
    fn set_codec_resets_and_uses_new_clock_rate() {
        let t0 = Instant::now();
        let mut fwd = video(Layer::High);
        fwd.handle_packet(t0, &packet(Layer::High, 1, &KEY));
        fwd.set_codec(Codec::H264);
        assert_eq!(fwd.codec(), Codec::H264);
        assert_eq!(fwd.current_layer(), None);
        assert_eq!(fwd.target_layer(), None);
        let idr = [0x65, 0x88];
        let pkt = PacketInfo::parse(Codec::H264, Layer::High, 900, 5, true, &idr);
        let out = fwd.handle_packet(t0 + Duration::from_millis(10), &pkt);
        assert_eq!(
            out.map(|m| (m.sequence_number, m.timestamp, m.marker)),
            Some((2, 100 + 900, true))
        );
    }

    proptest::proptest! {
        /// Whatever the packets and cap changes: once the cap is below a layer, that layer
        /// never starts a new frame at the viewer (it may finish the frame in progress), and
        /// the forwarder resumes at a key frame.
        #[test]
        fn a_layer_above_the_cap_never_starts_a_new_frame(
            events in proptest::collection::vec(
                (0usize..3, proptest::bool::ANY, proptest::bool::ANY, proptest::option::of(0usize..3)),
                1..300,
            )
        ) {
            let now = Instant::now();
            let mut fwd = video(Layer::High);
            fwd.set_available_layers(LayerSet::all());
            let mut seq = [0u16, 10_000, 20_000];
            let mut last_marker = true;
            for (layer, key, marker, cap) in events {
                if let Some(cap) = cap {
                    fwd.set_bandwidth_cap(Layer::ALL[cap]);
                }
                let layer = Layer::ALL[layer];
                seq[layer.index()] = seq[layer.index()].wrapping_add(1);
                let payload = if key { KEY } else { DELTA };
                let pkt = packet_marked(layer, seq[layer.index()], &payload, marker);
                let before = fwd.current_layer();
                if fwd.handle_packet(now, &pkt).is_some() {
                    if layer > fwd.bandwidth_cap() && before == Some(layer) {
                        proptest::prop_assert!(!last_marker, "a new frame above the cap");
                    }
                    if before != Some(layer) {
                        proptest::prop_assert!(key, "resumed without a key frame");
                    }
                    last_marker = marker;
                }
            }
        }
    }
}
