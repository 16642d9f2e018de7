//! RTP packets back into whole frames (VP8, H.264, Opus) for outputs that need frames.

use bytes::{Bytes, BytesMut};

use super::H264Depacketizer;
use crate::frame::SourceFrame;
use crate::{Codec, vp8};

/// The largest frame put back together; larger ones are dropped.
const MAX_FRAME_LEN: usize = 8 << 20;

/// Puts one track's RTP payloads (in arrival order) back into frames.
///
/// Timestamps are unwrapped and re-based so that the track's first packet is at 0, on a
/// 90 kHz clock (Opus's 48 kHz is scaled). After a lost packet the frame in progress is
/// dropped, and for video every frame until the next keyframe, so a decoder never sees a
/// frame that refers to something it did not get.
#[derive(Debug)]
pub struct RtpFrameAssembler {
    codec: Codec,
    last_seq: Option<u16>,
    first_timestamp: Option<u32>,
    /// Unwrapped timestamp of the last packet, in the codec's clock.
    last_timestamp: i64,
    last_raw_timestamp: u32,
    /// The frame in progress: its timestamp, payload and whether it is a keyframe.
    current: Option<(i64, BytesMut, bool)>,
    /// A packet of the frame in progress was lost.
    broken: bool,
    /// Video: waiting for a keyframe after a loss (and at the start).
    need_keyframe: bool,
    h264: H264Depacketizer,
    nals: Vec<Bytes>,
}

impl RtpFrameAssembler {
    /// An assembler for one track of `codec`.
    pub fn new(codec: Codec) -> RtpFrameAssembler {
        RtpFrameAssembler {
            codec,
            last_seq: None,
            first_timestamp: None,
            last_timestamp: 0,
            last_raw_timestamp: 0,
            current: None,
            broken: false,
            need_keyframe: codec.is_video(),
            h264: H264Depacketizer::new(),
            nals: Vec::new(),
        }
    }

    /// Starts over (a new publisher session): the next packet is the new time origin.
    pub fn reset(&mut self) {
        *self = RtpFrameAssembler::new(self.codec);
    }

    /// Video: frames are being dropped until a keyframe arrives (ask the sender for one).
    pub fn needs_keyframe(&self) -> bool {
        self.need_keyframe
    }

    /// Takes one packet; completed frames are appended to `out`.
    pub fn push(
        &mut self,
        sequence_number: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        out: &mut Vec<SourceFrame>,
    ) {
        if let Some(last) = self.last_seq {
            let delta = sequence_number.wrapping_sub(last);
            if delta == 0 || delta > 0x8000 {
                return; // duplicate or late: already past it
            }
            if delta != 1 {
                self.broken = true;
                self.h264.reset();
                if self.codec.is_video() {
                    self.need_keyframe = true;
                }
            }
        }
        self.last_seq = Some(sequence_number);
        let ts = self.unwrap_timestamp(timestamp);
        if self.codec == Codec::Opus {
            if !payload.is_empty() {
                out.push(SourceFrame::Opus {
                    data: Bytes::copy_from_slice(payload),
                    pts_90k: ts * 15 / 8,
                });
            }
            self.broken = false;
            return;
        }
        if self.current.as_ref().is_some_and(|(t, _, _)| *t != ts) {
            // A new timestamp without the last frame's marker: that frame ends here.
            self.complete(out);
        }
        if self.current.is_none() {
            self.current = Some((ts, BytesMut::new(), false));
        }
        match self.codec {
            Codec::Vp8 => self.push_vp8(payload),
            Codec::H264 => self.push_h264(payload),
            Codec::Opus => {}
        }
        if marker {
            self.complete(out);
        }
    }

    fn unwrap_timestamp(&mut self, timestamp: u32) -> i64 {
        let Some(_) = self.first_timestamp else {
            self.first_timestamp = Some(timestamp);
            self.last_raw_timestamp = timestamp;
            self.last_timestamp = 0;
            return 0;
        };
        let delta = timestamp.wrapping_sub(self.last_raw_timestamp) as i32;
        self.last_raw_timestamp = timestamp;
        self.last_timestamp += i64::from(delta);
        self.last_timestamp
    }

    fn push_vp8(&mut self, payload: &[u8]) {
        let Ok(desc) = vp8::Vp8Descriptor::parse(payload) else {
            self.broken = true;
            return;
        };
        let Some((_, data, keyframe)) = self.current.as_mut() else {
            return;
        };
        let body = &payload[desc.header_len.min(payload.len())..];
        if desc.start_of_partition && desc.partition_index == 0 {
            if !data.is_empty() {
                // A second frame start under one timestamp: keep the newest.
                data.clear();
            }
            *keyframe = body.first().is_some_and(|b| b & 0x01 == 0);
        } else if data.is_empty() {
            // The frame's first packet is missing.
            self.broken = true;
            return;
        }
        if data.len() + body.len() > MAX_FRAME_LEN {
            self.broken = true;
            return;
        }
        data.extend_from_slice(body);
    }

    fn push_h264(&mut self, payload: &[u8]) {
        self.nals.clear();
        if self.h264.push(payload, &mut self.nals).is_err() {
            self.broken = true;
            return;
        }
        let Some((_, data, keyframe)) = self.current.as_mut() else {
            return;
        };
        for nal in &self.nals {
            if data.len() + nal.len() + 4 > MAX_FRAME_LEN {
                self.broken = true;
                return;
            }
            if nal.first().is_some_and(|b| b & 0x1f == 5) {
                *keyframe = true;
            }
            data.extend_from_slice(&[0, 0, 0, 1]);
            data.extend_from_slice(nal);
        }
    }

    fn complete(&mut self, out: &mut Vec<SourceFrame>) {
        let Some((ts, data, keyframe)) = self.current.take() else {
            return;
        };
        let broken = std::mem::take(&mut self.broken);
        if broken || data.is_empty() {
            if self.codec.is_video() {
                self.need_keyframe = true;
            }
            return;
        }
        if self.need_keyframe && !keyframe {
            return;
        }
        self.need_keyframe = false;
        let data = data.freeze();
        out.push(match self.codec {
            Codec::H264 => SourceFrame::H264 {
                data,
                pts_90k: ts,
                dts_90k: ts,
                keyframe,
            },
            _ => SourceFrame::Vp8 {
                data,
                pts_90k: ts,
                keyframe,
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp8_packet(start: bool, key: bool, body: &[u8]) -> Vec<u8> {
        let mut p = vec![if start { 0x10 } else { 0x00 }];
        if start {
            p.push(if key { 0x00 } else { 0x01 });
            p.extend_from_slice(&body[1..]);
        } else {
            p.extend_from_slice(body);
        }
        p
    }

    #[test]
    fn vp8_frames_are_joined_until_the_marker() {
        let mut a = RtpFrameAssembler::new(Codec::Vp8);
        let mut out = Vec::new();
        a.push(
            10,
            1000,
            false,
            &vp8_packet(true, true, &[0, 1, 2]),
            &mut out,
        );
        a.push(11, 1000, true, &vp8_packet(false, false, &[3, 4]), &mut out);
        a.push(12, 4000, true, &vp8_packet(true, false, &[1, 9]), &mut out);
        assert_eq!(
            out,
            vec![
                SourceFrame::Vp8 {
                    data: Bytes::from_static(&[0, 1, 2, 3, 4]),
                    pts_90k: 0,
                    keyframe: true
                },
                SourceFrame::Vp8 {
                    data: Bytes::from_static(&[1, 9]),
                    pts_90k: 3000,
                    keyframe: false
                },
            ]
        );
    }

    #[test]
    fn a_lost_packet_drops_frames_until_the_next_keyframe() {
        let mut a = RtpFrameAssembler::new(Codec::Vp8);
        let mut out = Vec::new();
        a.push(1, 0, true, &vp8_packet(true, true, &[0, 1]), &mut out);
        // Sequence 2 lost: frame at 3000 is broken, the delta at 6000 is useless.
        a.push(3, 3000, true, &vp8_packet(false, false, &[5]), &mut out);
        a.push(4, 6000, true, &vp8_packet(true, false, &[1, 2]), &mut out);
        a.push(5, 9000, true, &vp8_packet(true, true, &[0, 3]), &mut out);
        let times: Vec<_> = out.iter().filter_map(SourceFrame::pts_90k).collect();
        assert_eq!(times, vec![0, 9000]);
    }

    #[test]
    fn h264_frames_become_annexb_and_timestamps_unwrap() {
        let mut a = RtpFrameAssembler::new(Codec::H264);
        let mut out = Vec::new();
        a.push(65535, u32::MAX - 1499, false, &[0x67, 1, 2], &mut out);
        a.push(0, u32::MAX - 1499, true, &[0x65, 7, 7], &mut out);
        a.push(1, 1500, true, &[0x41, 8], &mut out);
        assert_eq!(out.len(), 2);
        let SourceFrame::H264 {
            data,
            keyframe,
            pts_90k,
            ..
        } = &out[0]
        else {
            panic!("not H.264");
        };
        assert!(*keyframe);
        assert_eq!(*pts_90k, 0);
        assert_eq!(&data[..], &[0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x65, 7, 7]);
        assert_eq!(out[1].pts_90k(), Some(3000));
    }

    #[test]
    fn opus_packets_are_frames_on_a_90khz_clock() {
        let mut a = RtpFrameAssembler::new(Codec::Opus);
        let mut out = Vec::new();
        a.push(7, 48_000, false, &[1, 2], &mut out);
        a.push(8, 48_960, false, &[3], &mut out);
        assert_eq!(out[1].pts_90k(), Some(1800));
    }
}
