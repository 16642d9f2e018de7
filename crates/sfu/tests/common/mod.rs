//! Synthetic simulcast publishers and a checking subscriber for the forwarder's behaviour
//! tests. Shared by several test binaries, each using a part of it.
#![allow(dead_code)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use greenroom_media::{Codec, vp8};
use greenroom_sfu::{Forwarder, ForwarderConfig, Layer, LayerSet, Munged, PacketInfo, TrackKind};
use proptest::prelude::*;

/// Time between frames (30 fps).
pub const FRAME_INTERVAL: Duration = Duration::from_millis(33);
/// RTP timestamp step between frames at 90 kHz.
pub const FRAME_TICKS: u32 = 3_000;

/// One packet as sent by the synthetic publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPacket {
    pub layer: Layer,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

impl SimPacket {
    pub fn info(&self, codec: Codec) -> PacketInfo<'_> {
        PacketInfo::parse(
            codec,
            self.layer,
            self.sequence_number,
            self.timestamp,
            self.marker,
            &self.payload,
        )
    }
}

/// Where a layer's numbering starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bases {
    pub sequence_number: u16,
    pub timestamp: u32,
    pub picture_id: u16,
    pub tl0picidx: u8,
}

#[derive(Debug, Clone, Copy)]
struct LayerSource {
    sequence_number: u16,
    timestamp: u32,
    picture_id: u16,
    tl0picidx: u8,
}

/// A publisher sending up to three simulcast layers, each with its own numbering.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub codec: Codec,
    pub sending: LayerSet,
    layers: [LayerSource; 3],
    /// Layers whose next frame is a key frame (a PLI was received).
    pending_keyframes: LayerSet,
}

impl Publisher {
    pub fn new(codec: Codec, sending: LayerSet, bases: Bases) -> Self {
        let mut publisher = Publisher {
            codec,
            sending,
            layers: [LayerSource {
                sequence_number: 0,
                timestamp: 0,
                picture_id: 0,
                tl0picidx: 0,
            }; 3],
            pending_keyframes: LayerSet::new(),
        };
        publisher.restart(bases);
        publisher
    }

    /// New numbering on every layer (a restarted publisher). Layers differ from each other.
    pub fn restart(&mut self, bases: Bases) {
        for (index, layer) in self.layers.iter_mut().enumerate() {
            let k = index as u32 + 1;
            *layer = LayerSource {
                sequence_number: bases.sequence_number.wrapping_add((k * 7919) as u16),
                timestamp: bases.timestamp.wrapping_add(k * 1_234_567),
                picture_id: bases.picture_id.wrapping_add((k * 1000) as u16) & 0x7fff,
                tl0picidx: bases.tl0picidx.wrapping_add((k * 50) as u8),
            };
        }
    }

    /// Makes the next frame of `layer` a key frame.
    pub fn request_keyframe(&mut self, layer: Layer) {
        self.pending_keyframes.insert(layer);
    }

    /// One frame on every layer being sent, `packets` packets each, interleaved by layer.
    /// `keyframes` marks layers that send a key frame (besides those with a pending request).
    pub fn frame(&mut self, keyframes: LayerSet, packets: usize) -> Vec<SimPacket> {
        let packets = packets.max(1);
        let mut out = Vec::with_capacity(packets * 3);
        for index in 0..packets {
            for layer in self.sending.iter() {
                let key = keyframes.contains(layer) || self.pending_keyframes.contains(layer);
                let source = &mut self.layers[layer.index()];
                let payload = payload(self.codec, layer, source, key, index, packets);
                out.push(SimPacket {
                    layer,
                    sequence_number: source.sequence_number,
                    timestamp: source.timestamp,
                    marker: index + 1 == packets,
                    payload,
                });
                source.sequence_number = source.sequence_number.wrapping_add(1);
            }
        }
        for layer in self.sending.iter() {
            let source = &mut self.layers[layer.index()];
            source.timestamp = source.timestamp.wrapping_add(FRAME_TICKS);
            source.picture_id = source.picture_id.wrapping_add(1) & 0x7fff;
            source.tl0picidx = source.tl0picidx.wrapping_add(1);
            self.pending_keyframes.remove(layer);
        }
        out
    }
}

/// Width and height a layer's key frames announce.
pub fn layer_resolution(layer: Layer) -> (u16, u16) {
    match layer {
        Layer::Low => (320, 180),
        Layer::Mid => (640, 360),
        Layer::High => (1280, 720),
    }
}

fn payload(
    codec: Codec,
    layer: Layer,
    source: &LayerSource,
    key: bool,
    index: usize,
    packets: usize,
) -> Vec<u8> {
    match codec {
        Codec::Vp8 => {
            let start = index == 0;
            let mut out = vec![
                0x80 | (u8::from(start) << 4),
                0xc0,
                0x80 | (source.picture_id >> 8) as u8,
                source.picture_id as u8,
                source.tl0picidx,
            ];
            if start {
                let (w, h) = layer_resolution(layer);
                if key {
                    out.extend_from_slice(&[0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a]);
                    out.extend_from_slice(&w.to_le_bytes());
                    out.extend_from_slice(&h.to_le_bytes());
                } else {
                    out.extend_from_slice(&[0x51, 0x42, 0x00]);
                }
            }
            out.extend_from_slice(&[0xab; 20]);
            out
        }
        Codec::H264 => {
            let kind = if key { 5 } else { 1 };
            let (start, end) = (index == 0, index + 1 == packets);
            let mut out = if key && start {
                // STAP-A with SPS and PPS leads a key frame: a key frame start.
                let sps = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
                let mut stap = vec![0x78, 0x00, sps.len() as u8];
                stap.extend_from_slice(&sps);
                stap.extend_from_slice(&[0x00, 0x02, 0x68, 0xce]);
                return stap;
            } else {
                vec![0x7c, (u8::from(start) << 7) | (u8::from(end) << 6) | kind]
            };
            out.extend_from_slice(&[0xcd; 20]);
            out
        }
        Codec::Opus => vec![0xfc, 0xff, 0xfe],
    }
}

/// What the checking subscriber received for one forwarded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub layer: Layer,
    pub input: SimPacket,
    pub munged: Munged,
    /// The picture id after applying the rewrite, for VP8.
    pub picture_id: Option<u16>,
    pub tl0picidx: Option<u8>,
    pub segment_start: bool,
}

/// A subscriber: a forwarder plus a checker of every invariant of its output.
pub struct Subscriber {
    pub forwarder: Forwarder,
    pub codec: Codec,
    pub received: Vec<Received>,
    /// Expect exact +1 sequence steps and non-decreasing timestamps (in-order input).
    pub in_order: bool,
    reset_since_last: bool,
    max_out_ext: Option<u64>,
    seen_out: HashSet<u64>,
    /// Output timestamp and time of the newest forwarded packet.
    newest: Option<(u32, Instant)>,
    /// (seq offset, ts offset, picture id offset, tl0 offset) of the current segment.
    offsets: Option<(u16, u32, Option<u16>, Option<u8>)>,
    last_picture_id: Option<u16>,
    last_tl0picidx: Option<u8>,
    last_layer: Option<Layer>,
}

impl Subscriber {
    pub fn new(codec: Codec, max_layer: Layer, in_order: bool) -> Self {
        Subscriber {
            forwarder: Forwarder::new(ForwarderConfig {
                kind: TrackKind::of(codec),
                codec,
                max_layer,
            }),
            codec,
            received: Vec::new(),
            in_order,
            reset_since_last: false,
            max_out_ext: None,
            seen_out: HashSet::new(),
            newest: None,
            offsets: None,
            last_picture_id: None,
            last_tl0picidx: None,
            last_layer: None,
        }
    }

    pub fn source_reset(&mut self) {
        self.forwarder.handle_source_reset();
        self.reset_since_last = true;
    }

    /// Shows one packet to the forwarder and checks what comes out.
    pub fn deliver(&mut self, now: Instant, packet: &SimPacket) -> Option<Munged> {
        let info = packet.info(self.codec);
        let target_before = self.forwarder.target_layer();
        let munged = self.forwarder.handle_packet(now, &info)?;
        let kind = TrackKind::of(self.codec);
        let segment_start = self.offsets.is_none()
            || self.reset_since_last
            || (kind == TrackKind::Video && self.last_layer != Some(packet.layer));
        if kind == TrackKind::Video {
            assert_eq!(self.forwarder.current_layer(), Some(packet.layer));
            if segment_start {
                assert!(
                    info.keyframe_start,
                    "segment starts without a key frame: {packet:?}"
                );
                assert_eq!(
                    target_before,
                    Some(packet.layer),
                    "switch to a non-target layer"
                );
            }
        }
        assert_eq!(munged.marker, packet.marker);

        // Sequence numbers: extended output, no duplicates, continuity.
        let out_ext = match self.max_out_ext {
            None => u64::from(munged.sequence_number) + (1 << 32),
            Some(max) => {
                let delta = munged.sequence_number.wrapping_sub(max as u16) as i16;
                max.wrapping_add_signed(i64::from(delta))
            }
        };
        assert!(self.seen_out.insert(out_ext), "duplicate output {munged:?}");
        let seq_offset = munged.sequence_number.wrapping_sub(packet.sequence_number);
        let ts_offset = munged.timestamp.wrapping_sub(packet.timestamp);
        if segment_start {
            if let Some(max) = self.max_out_ext {
                assert_eq!(out_ext, max + 1, "segment does not continue the sequence");
            }
            if let Some((last_ts, last_at)) = self.newest {
                let nanos = now.saturating_duration_since(last_at).as_nanos();
                let ticks =
                    ((nanos * u128::from(self.codec.clock_rate()) / 1_000_000_000) as u32).max(1);
                assert_eq!(
                    munged.timestamp,
                    last_ts.wrapping_add(ticks),
                    "segment timestamp does not continue"
                );
            }
        } else if let Some((seq_off, ts_off, _, _)) = self.offsets {
            assert_eq!(
                seq_offset, seq_off,
                "sequence offset changed inside a segment"
            );
            assert_eq!(
                ts_offset, ts_off,
                "timestamp offset changed inside a segment"
            );
        }
        let newest = self.max_out_ext.is_none_or(|max| out_ext > max);
        if self.in_order {
            assert!(newest, "in-order input produced an older output");
            if let Some(max) = self.max_out_ext {
                assert_eq!(out_ext, max + 1, "gap in output sequence");
            }
            if let Some((last_ts, _)) = self.newest {
                assert!(
                    munged.timestamp.wrapping_sub(last_ts) as i32 >= 0,
                    "timestamp went back"
                );
            }
        }

        // VP8: apply the rewrite as the driver does; picture ids continue across segments.
        let (mut picture_id, mut tl0picidx) = (None, None);
        if self.codec == Codec::Vp8 {
            let mut payload = packet.payload.clone();
            if let Some(rewrite) = munged.vp8 {
                vp8::rewrite_descriptor(&mut payload, rewrite.picture_id, rewrite.tl0picidx)
                    .expect("rewrite of a synthetic payload");
            }
            let before = vp8::Vp8Descriptor::parse(&packet.payload).expect("synthetic payload");
            let after = vp8::Vp8Descriptor::parse(&payload).expect("rewritten payload");
            (picture_id, tl0picidx) = (after.picture_id, after.tl0picidx);
            let (Some(pid_in), Some(pid_out), Some(tl0_in), Some(tl0_out)) =
                (before.picture_id, picture_id, before.tl0picidx, tl0picidx)
            else {
                panic!("synthetic VP8 packets carry picture id and TL0PICIDX");
            };
            let pid_off = pid_out.wrapping_sub(pid_in) & 0x7fff;
            let tl0_off = tl0_out.wrapping_sub(tl0_in);
            if segment_start {
                if let (Some(last_pid), Some(last_tl0)) =
                    (self.last_picture_id, self.last_tl0picidx)
                {
                    assert_eq!(
                        pid_out,
                        last_pid.wrapping_add(1) & 0x7fff,
                        "picture id jumps"
                    );
                    assert_eq!(tl0_out, last_tl0.wrapping_add(1), "TL0PICIDX jumps");
                }
            } else if let Some((_, _, Some(p), Some(t))) = self.offsets {
                assert_eq!(pid_off, p, "picture id offset changed inside a segment");
                assert_eq!(tl0_off, t, "TL0PICIDX offset changed inside a segment");
            }
            if munged.vp8.is_none() {
                assert_eq!(payload, packet.payload);
            } else {
                assert_ne!(payload, packet.payload, "rewrite that changes nothing");
            }
            if newest {
                self.last_picture_id = Some(pid_out);
                self.last_tl0picidx = Some(tl0_out);
            }
            if segment_start {
                self.offsets = Some((seq_offset, ts_offset, Some(pid_off), Some(tl0_off)));
            }
        } else if segment_start {
            self.offsets = Some((seq_offset, ts_offset, None, None));
        }

        if newest {
            self.max_out_ext = Some(out_ext);
            self.newest = Some((munged.timestamp, now));
        }
        self.reset_since_last = false;
        self.last_layer = Some(packet.layer);
        self.received.push(Received {
            layer: packet.layer,
            input: packet.clone(),
            munged,
            picture_id,
            tl0picidx,
            segment_start,
        });
        Some(munged)
    }
}

/// The layer a viewer should end up on.
pub fn expected_target(available: LayerSet, max: Layer) -> Option<Layer> {
    available.best_at_most(max).or_else(|| available.lowest())
}

/// A step of a simulated session.
#[derive(Debug, Clone)]
pub enum Event {
    /// `count` frames; the first one is a key frame on `keyframes`.
    Frames {
        count: usize,
        keyframes: LayerSet,
        packets: usize,
    },
    /// The viewer pins another maximum layer.
    SetMax(Layer),
    /// The publisher now sends these layers (never empty).
    SetAvailable(LayerSet),
    /// The publisher restarts with new numbering.
    Restart(Bases),
    /// Nothing is sent for a while.
    Pause(Duration),
}

pub fn layer() -> impl Strategy<Value = Layer> {
    prop_oneof![Just(Layer::Low), Just(Layer::Mid), Just(Layer::High)]
}

pub fn layer_set() -> impl Strategy<Value = LayerSet> {
    (1u8..8).prop_map(|bits| {
        Layer::ALL
            .into_iter()
            .filter(|layer| bits & (1 << layer.index()) != 0)
            .collect()
    })
}

/// Numbering bases, often close to wrap-around.
pub fn bases() -> impl Strategy<Value = Bases> {
    (
        prop_oneof![any::<u16>(), 65_400u16..=65_535],
        prop_oneof![any::<u32>(), (u32::MAX - 200_000)..=u32::MAX],
        prop_oneof![0u16..0x8000, 0x7f00u16..0x8000],
        any::<u8>(),
    )
        .prop_map(
            |(sequence_number, timestamp, picture_id, tl0picidx)| Bases {
                sequence_number,
                timestamp,
                picture_id,
                tl0picidx,
            },
        )
}

pub fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => (1usize..8, proptest::collection::vec(proptest::bool::weighted(0.3), 3), 1usize..4)
            .prop_map(|(count, keys, packets)| Event::Frames {
                count,
                keyframes: Layer::ALL.into_iter().filter(|l| keys[l.index()]).collect(),
                packets,
            }),
        1 => layer().prop_map(Event::SetMax),
        1 => layer_set().prop_map(Event::SetAvailable),
        1 => bases().prop_map(Event::Restart),
        1 => (1u64..3000).prop_map(|ms| Event::Pause(Duration::from_millis(ms))),
    ]
}

/// How packets travel from publisher to forwarder.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// For each packet in turn (cycled): swap it with the next one.
    pub swaps: Vec<bool>,
    /// For each packet in turn (cycled): deliver it twice.
    pub duplicates: Vec<bool>,
}

/// Runs a session, feeding every packet to every subscriber and answering key frame requests
/// (when `honor_requests`) with a key frame on the next frame.
pub struct Session {
    pub publisher: Publisher,
    pub subscribers: Vec<Subscriber>,
    pub now: Instant,
    pub available: LayerSet,
    pub delivery: Delivery,
    pub honor_requests: bool,
    cursor: usize,
}

impl Session {
    pub fn new(
        codec: Codec,
        bases: Bases,
        available: LayerSet,
        subscribers: Vec<Subscriber>,
    ) -> Self {
        let mut session = Session {
            publisher: Publisher::new(codec, available, bases),
            subscribers,
            now: Instant::now(),
            available,
            delivery: Delivery::default(),
            honor_requests: true,
            cursor: 0,
        };
        for sub in &mut session.subscribers {
            sub.forwarder.set_available_layers(available);
        }
        session
    }

    fn flag(flags: &[bool], at: usize) -> bool {
        !flags.is_empty() && flags[at % flags.len()]
    }

    pub fn run(&mut self, event: &Event) {
        match event {
            Event::Frames {
                count,
                keyframes,
                packets,
            } => {
                for frame in 0..*count {
                    self.poll_requests();
                    let keys = if frame == 0 {
                        *keyframes
                    } else {
                        LayerSet::new()
                    };
                    let mut batch = self.publisher.frame(keys, *packets);
                    let mut at = 0;
                    while at + 1 < batch.len() {
                        if Self::flag(&self.delivery.swaps, self.cursor + at) {
                            batch.swap(at, at + 1);
                            at += 1;
                        }
                        at += 1;
                    }
                    for packet in &batch {
                        self.cursor += 1;
                        let twice = Self::flag(&self.delivery.duplicates, self.cursor);
                        for sub in &mut self.subscribers {
                            sub.deliver(self.now, packet);
                            if twice {
                                sub.deliver(self.now, packet);
                            }
                        }
                    }
                    self.now += FRAME_INTERVAL;
                }
            }
            Event::SetMax(layer) => {
                for sub in &mut self.subscribers {
                    sub.forwarder.set_max_layer(*layer);
                }
            }
            Event::SetAvailable(layers) => {
                self.available = *layers;
                self.publisher.sending = *layers;
                for sub in &mut self.subscribers {
                    sub.forwarder.set_available_layers(*layers);
                }
            }
            Event::Restart(bases) => {
                self.publisher.restart(*bases);
                for sub in &mut self.subscribers {
                    sub.source_reset();
                }
            }
            Event::Pause(duration) => self.now += *duration,
        }
        for sub in &self.subscribers {
            assert_eq!(
                sub.forwarder.target_layer(),
                expected_target(self.available, sub.forwarder.max_layer())
            );
        }
    }

    fn poll_requests(&mut self) {
        for sub in &mut self.subscribers {
            if let Some(layer) = sub.forwarder.poll_keyframe_request(self.now) {
                assert_eq!(Some(layer), sub.forwarder.target_layer());
                if self.honor_requests {
                    self.publisher.request_keyframe(layer);
                }
            }
        }
    }
}
