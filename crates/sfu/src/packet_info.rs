//! What the forwarder needs to know about one incoming RTP packet.

use greenroom_media::{Codec, h264, vp8};

use crate::Layer;

/// The VP8 payload descriptor fields the forwarder rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Meta {
    /// Picture id (7 or 15 bits), if the descriptor carries one.
    pub picture_id: Option<u16>,
    /// TL0PICIDX, if the descriptor carries one.
    pub tl0picidx: Option<u8>,
}

/// One incoming RTP packet, parsed once by the driver and shown to every subscriber's
/// forwarder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo<'a> {
    /// The simulcast layer the packet belongs to (High for non-simulcast tracks).
    pub layer: Layer,
    /// RTP sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// RTP marker bit.
    pub marker: bool,
    /// RTP payload.
    pub payload: &'a [u8],
    /// Whether the packet starts a key frame (always true for audio: every packet decodes).
    pub keyframe_start: bool,
    /// VP8 descriptor fields, for VP8 packets whose descriptor parsed.
    pub vp8: Option<Vp8Meta>,
    /// The resolution a key frame announces, when it starts in this packet.
    pub resolution: Option<(u32, u32)>,
}

impl<'a> PacketInfo<'a> {
    /// Parses the codec-specific parts of a packet. Malformed payloads are not an error: they
    /// yield a packet that is not a key frame start and carries no VP8 fields.
    pub fn parse(
        codec: Codec,
        layer: Layer,
        sequence_number: u16,
        timestamp: u32,
        marker: bool,
        payload: &'a [u8],
    ) -> Self {
        let mut info = PacketInfo {
            layer,
            sequence_number,
            timestamp,
            marker,
            payload,
            keyframe_start: false,
            vp8: None,
            resolution: None,
        };
        match codec {
            Codec::Opus => info.keyframe_start = true,
            Codec::Vp8 => {
                if let Ok(desc) = vp8::Vp8Descriptor::parse(payload) {
                    info.vp8 = Some(Vp8Meta {
                        picture_id: desc.picture_id,
                        tl0picidx: desc.tl0picidx,
                    });
                    info.keyframe_start = desc.starts_keyframe(payload);
                    if info.keyframe_start {
                        info.resolution = vp8::keyframe_resolution(payload);
                    }
                }
            }
            Codec::H264 => {
                info.keyframe_start = h264::is_keyframe_start(payload);
                if info.keyframe_start {
                    info.resolution = h264::keyframe_resolution(payload);
                }
            }
        }
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_with_descriptor() {
        let payload = [
            0x90, 0xc0, 0x81, 0x02, 0x07, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68,
            0x01,
        ];
        let info = PacketInfo::parse(Codec::Vp8, Layer::Mid, 7, 90, true, &payload);
        assert!(info.keyframe_start);
        assert_eq!(
            info.vp8,
            Some(Vp8Meta {
                picture_id: Some(0x102),
                tl0picidx: Some(7)
            })
        );
        assert_eq!(info.resolution, Some((640, 360)));
        assert_eq!(
            (
                info.layer,
                info.sequence_number,
                info.timestamp,
                info.marker
            ),
            (Layer::Mid, 7, 90, true)
        );
    }

    #[test]
    fn malformed_vp8_is_a_plain_packet() {
        let info = PacketInfo::parse(Codec::Vp8, Layer::High, 1, 2, false, &[0x80]);
        assert!(!info.keyframe_start);
        assert_eq!(info.vp8, None);
    }

    #[test]
    fn h264_and_opus() {
        let sps = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
        let info = PacketInfo::parse(Codec::H264, Layer::High, 1, 2, false, &sps);
        assert!(info.keyframe_start);
        assert_eq!(info.resolution, Some((1280, 720)));
        assert_eq!(info.vp8, None);
        let info = PacketInfo::parse(Codec::H264, Layer::High, 1, 2, false, &[0x41, 0x9a]);
        assert!(!info.keyframe_start);
        let info = PacketInfo::parse(Codec::Opus, Layer::High, 1, 2, false, &[0xfc]);
        assert!(info.keyframe_start);
    }
}
