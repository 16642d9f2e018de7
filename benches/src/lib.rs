//! Synthetic media for greenroom's criterion benches (the benches themselves live in
//! `benches/`): a three-layer simulcast publisher whose packets are computed on the fly, so a
//! bench can run for any number of iterations with continuous sequence numbers and timestamps.
//!
//! Invariant: each layer's sequence numbers advance by exactly one per packet forever
//! (wrapping at 2^16), so a forwarder fed round after round never sees a gap or a duplicate.

use greenroom_media::Codec;
use greenroom_sfu::{Layer, PacketInfo};

/// RTP timestamp step per frame at 90 kHz (30 fps).
pub const FRAME_TICKS: u32 = 3_000;

/// One packet of a round: header fields plus its payload.
#[derive(Debug, Clone, Copy)]
pub struct StreamPacket<'a> {
    pub layer: Layer,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: &'a [u8],
}

impl<'a> StreamPacket<'a> {
    /// Parses the packet as the driver does, once per incoming packet.
    pub fn parse(&self, codec: Codec) -> PacketInfo<'a> {
        PacketInfo::parse(
            codec,
            self.layer,
            self.sequence_number,
            self.timestamp,
            self.marker,
            self.payload,
        )
    }
}

/// A simulcast publisher: every round is one frame on each of the three layers.
#[derive(Debug, Clone)]
pub struct SimulcastStream {
    codec: Codec,
    packets_per_frame: usize,
    keyframe_interval: u64,
    /// Payloads indexed by `[layer][keyframe as usize][packet index]`.
    payloads: Vec<Vec<Vec<Vec<u8>>>>,
    round: u64,
}

impl SimulcastStream {
    /// A stream of `codec` frames of `packets_per_frame` packets (about 1100 bytes each, as
    /// browsers send), with a key frame on every layer each `keyframe_interval` frames,
    /// starting with one.
    pub fn new(codec: Codec, packets_per_frame: usize, keyframe_interval: u64) -> Self {
        let packets_per_frame = packets_per_frame.max(1);
        let payloads = Layer::ALL
            .iter()
            .map(|_| {
                [false, true]
                    .iter()
                    .map(|key| {
                        (0..packets_per_frame)
                            .map(|index| payload(codec, *key, index, packets_per_frame))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        SimulcastStream {
            codec,
            packets_per_frame,
            keyframe_interval: keyframe_interval.max(1),
            payloads,
            round: 0,
        }
    }

    /// The stream's codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Packets per round (all layers).
    pub fn packets_per_round(&self) -> usize {
        self.packets_per_frame * Layer::ALL.len()
    }

    /// Packets per round of one layer.
    pub fn packets_per_frame(&self) -> usize {
        self.packets_per_frame
    }

    /// Calls `f` with each packet of the next round, layers interleaved.
    pub fn next_round(&mut self, mut f: impl FnMut(StreamPacket<'_>)) {
        let round = self.round;
        self.round += 1;
        let key = usize::from(round.is_multiple_of(self.keyframe_interval));
        let first_seq = round.wrapping_mul(self.packets_per_frame as u64);
        for index in 0..self.packets_per_frame {
            for layer in Layer::ALL {
                let base = layer.index() as u64 * 20_011;
                f(StreamPacket {
                    layer,
                    sequence_number: (base + first_seq + index as u64) as u16,
                    timestamp: (base as u32)
                        .wrapping_mul(7)
                        .wrapping_add((round as u32).wrapping_mul(FRAME_TICKS)),
                    marker: index + 1 == self.packets_per_frame,
                    payload: &self.payloads[layer.index()][key][index],
                });
            }
        }
    }
}

/// An RTP payload of about 1100 bytes.
fn payload(codec: Codec, key: bool, index: usize, packets: usize) -> Vec<u8> {
    let start = index == 0;
    let mut out = match codec {
        Codec::Vp8 => {
            // X, S; I (15-bit picture id), L (TL0PICIDX), T (TID 0).
            let mut out = vec![0x80 | (u8::from(start) << 4), 0xe0, 0x81, 0x23, 0x05, 0x00];
            if start && key {
                out.extend_from_slice(&[
                    0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02,
                ]);
            } else if start {
                out.extend_from_slice(&[0x51, 0x42, 0x00]);
            }
            out
        }
        Codec::H264 if start && key => {
            // STAP-A: SPS (1280x720 baseline) and PPS; the IDR follows in FU-As.
            let sps = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
            let mut out = vec![0x78, 0x00, sps.len() as u8];
            out.extend_from_slice(&sps);
            out.extend_from_slice(&[0x00, 0x04, 0x68, 0xce, 0x3c, 0x80]);
            return out;
        }
        Codec::H264 => {
            let kind = if key { 5 } else { 1 };
            let end = index + 1 == packets;
            vec![0x7c, (u8::from(start) << 7) | (u8::from(end) << 6) | kind]
        }
        Codec::Opus => vec![0xfc],
    };
    out.resize(1100, 0xa5);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_are_continuous_and_start_with_keyframes() {
        let mut stream = SimulcastStream::new(Codec::Vp8, 2, 10);
        let mut first = Vec::new();
        stream.next_round(|p| {
            first.push((
                p.layer,
                p.sequence_number,
                p.parse(Codec::Vp8).keyframe_start,
            ))
        });
        assert_eq!(first.len(), stream.packets_per_round());
        assert!(first.iter().filter(|(_, _, key)| *key).count() == 3);
        let mut second = Vec::new();
        stream.next_round(|p| {
            second.push((
                p.layer,
                p.sequence_number,
                p.parse(Codec::Vp8).keyframe_start,
            ))
        });
        for (a, b) in first.iter().zip(&second) {
            assert_eq!(b.1, a.1.wrapping_add(2));
            assert!(!b.2);
        }
        let mut h264 = SimulcastStream::new(Codec::H264, 3, 10);
        let mut keys = 0;
        h264.next_round(|p| keys += usize::from(p.parse(Codec::H264).keyframe_start));
        assert_eq!(keys, 3);
    }
}
