//! FLV video tag bodies: AVC (codec id 7) and Enhanced RTMP `avc1`.

use super::{CODEC_ID_AVC, UNKNOWN_FOURCC};
use crate::MediaError;

/// Legacy frame types (upper nibble of the first byte).
const FRAME_KEY: u8 = 1;
const FRAME_GENERATED_KEY: u8 = 4;
const FRAME_COMMAND: u8 = 5;
/// Bit 7 of the first byte: an Enhanced RTMP extended header follows.
const EX_HEADER: u8 = 0x80;
/// Enhanced RTMP video packet types (lower nibble of the first byte).
const EX_SEQUENCE_START: u8 = 0;
const EX_CODED_FRAMES: u8 = 1;
const EX_SEQUENCE_END: u8 = 2;
const EX_CODED_FRAMES_X: u8 = 3;
const EX_MULTITRACK: u8 = 6;
const EX_MOD_EX: u8 = 7;
/// The Enhanced RTMP FourCC of H.264.
const FOURCC_AVC1: [u8; 4] = *b"avc1";

/// What an FLV video tag body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlvVideo<'a> {
    /// An `AVCDecoderConfigurationRecord` (parse it with
    /// [`AvcDecoderConfig::parse`](crate::h264::AvcDecoderConfig::parse)).
    AvcSequenceHeader {
        /// The record bytes.
        record: &'a [u8],
    },
    /// One access unit in AVCC framing (split it with [`avcc_nals`](crate::h264::avcc_nals)
    /// and the record's length size).
    AvcNalus {
        /// The frame type is a key frame (or a server-generated key frame).
        keyframe: bool,
        /// PTS minus DTS in milliseconds (signed 24-bit); non-constant values mean B-frames.
        composition_time_ms: i32,
        /// The AVCC-framed NAL units.
        avcc: &'a [u8],
    },
    /// The AVC end of sequence marker.
    AvcEndOfSequence,
    /// A tag this module does not decode: another codec, an Enhanced RTMP FourCC other than
    /// `avc1` or a multitrack/`ModEx` layout ([`UNKNOWN_FOURCC`]), or an AVC tag that
    /// carries no picture (video info/command frame, E-RTMP metadata), reported with codec id
    /// 7. Callers should skip such tags.
    Unsupported {
        /// The FLV codec id, or [`UNKNOWN_FOURCC`].
        codec_id: u8,
    },
}

/// Parses an FLV video tag body (the payload of an RTMP video message).
///
/// Fails on a body too short for its header or an unknown AVC packet type.
pub fn parse_video_tag(body: &[u8]) -> Result<FlvVideo<'_>, MediaError> {
    let Some((&first, rest)) = body.split_first() else {
        return Err(truncated("FLV video tag header", 1, 0));
    };
    if first & EX_HEADER != 0 {
        return parse_ex_video(first, rest);
    }
    let frame_type = first >> 4;
    let codec_id = first & 0x0f;
    if codec_id != CODEC_ID_AVC || frame_type == FRAME_COMMAND {
        return Ok(FlvVideo::Unsupported { codec_id });
    }
    let Some((&[packet_type, c0, c1, c2], data)) = rest.split_first_chunk::<4>() else {
        return Err(truncated("FLV AVC video tag header", 5, body.len()));
    };
    match packet_type {
        0 => Ok(FlvVideo::AvcSequenceHeader { record: data }),
        1 => Ok(FlvVideo::AvcNalus {
            keyframe: is_key(frame_type),
            composition_time_ms: si24([c0, c1, c2]),
            avcc: data,
        }),
        2 => Ok(FlvVideo::AvcEndOfSequence),
        other => Err(MediaError::Invalid {
            what: "FLV AVC packet type",
            value: u32::from(other),
        }),
    }
}

/// Parses the rest of a tag with an Enhanced RTMP extended header.
fn parse_ex_video(first: u8, rest: &[u8]) -> Result<FlvVideo<'_>, MediaError> {
    let frame_type = (first >> 4) & 0x07;
    let packet_type = first & 0x0f;
    if packet_type == EX_MULTITRACK || packet_type == EX_MOD_EX {
        return Ok(FlvVideo::Unsupported {
            codec_id: UNKNOWN_FOURCC,
        });
    }
    let Some((fourcc, data)) = rest.split_first_chunk::<4>() else {
        return Err(truncated("E-RTMP video FourCC", 5, rest.len() + 1));
    };
    if *fourcc != FOURCC_AVC1 {
        return Ok(FlvVideo::Unsupported {
            codec_id: UNKNOWN_FOURCC,
        });
    }
    if frame_type == FRAME_COMMAND {
        return Ok(FlvVideo::Unsupported {
            codec_id: CODEC_ID_AVC,
        });
    }
    match packet_type {
        EX_SEQUENCE_START => Ok(FlvVideo::AvcSequenceHeader { record: data }),
        EX_CODED_FRAMES => {
            let Some((cts, avcc)) = data.split_first_chunk::<3>() else {
                return Err(truncated("E-RTMP composition time", 8, rest.len() + 1));
            };
            Ok(FlvVideo::AvcNalus {
                keyframe: is_key(frame_type),
                composition_time_ms: si24(*cts),
                avcc,
            })
        }
        EX_CODED_FRAMES_X => Ok(FlvVideo::AvcNalus {
            keyframe: is_key(frame_type),
            composition_time_ms: 0,
            avcc: data,
        }),
        EX_SEQUENCE_END => Ok(FlvVideo::AvcEndOfSequence),
        // Metadata, MPEG-2 TS sequence start and reserved types carry no picture.
        _ => Ok(FlvVideo::Unsupported {
            codec_id: CODEC_ID_AVC,
        }),
    }
}

fn is_key(frame_type: u8) -> bool {
    frame_type == FRAME_KEY || frame_type == FRAME_GENERATED_KEY
}

/// A signed 24-bit big-endian integer.
fn si24(bytes: [u8; 3]) -> i32 {
    i32::from_be_bytes([bytes[0], bytes[1], bytes[2], 0]) >> 8
}

fn truncated(what: &'static str, needed: usize, len: usize) -> MediaError {
    MediaError::Truncated { what, needed, len }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ffmpeg_sequence_header_and_frames() {
        let body = [0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1];
        assert_eq!(
            parse_video_tag(&body),
            Ok(FlvVideo::AvcSequenceHeader {
                record: &[0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1]
            })
        );
        let body = [0x17, 0x01, 0x00, 0x00, 0x43, 0, 0, 0, 1, 0x65];
        assert_eq!(
            parse_video_tag(&body),
            Ok(FlvVideo::AvcNalus {
                keyframe: true,
                composition_time_ms: 67,
                avcc: &[0, 0, 0, 1, 0x65]
            })
        );
        let body = [0x27, 0x01, 0xff, 0xff, 0xdf, 0, 0, 0, 1, 0x41];
        assert_eq!(
            parse_video_tag(&body),
            Ok(FlvVideo::AvcNalus {
                keyframe: false,
                composition_time_ms: -33,
                avcc: &[0, 0, 0, 1, 0x41]
            })
        );
        assert_eq!(
            parse_video_tag(&[0x17, 0x02, 0, 0, 0]),
            Ok(FlvVideo::AvcEndOfSequence)
        );
        // Generated key frame.
        assert!(matches!(
            parse_video_tag(&[0x47, 0x01, 0, 0, 0]),
            Ok(FlvVideo::AvcNalus {
                keyframe: true,
                avcc: &[],
                ..
            })
        ));
    }

    #[test]
    fn other_codecs_and_command_frames_are_unsupported() {
        assert_eq!(
            parse_video_tag(&[0x12, 0x00]),
            Ok(FlvVideo::Unsupported { codec_id: 2 })
        );
        assert_eq!(
            parse_video_tag(&[0x14]),
            Ok(FlvVideo::Unsupported { codec_id: 4 })
        );
        assert_eq!(
            parse_video_tag(&[0x57, 0x00]),
            Ok(FlvVideo::Unsupported { codec_id: 7 })
        );
    }

    #[test]
    fn enhanced_rtmp_avc1() {
        let mut body = vec![0x90];
        body.extend_from_slice(b"avc1");
        body.extend_from_slice(&[0x01, 0x64]);
        assert_eq!(
            parse_video_tag(&body),
            Ok(FlvVideo::AvcSequenceHeader {
                record: &[0x01, 0x64]
            })
        );
        let mut body = vec![0x91];
        body.extend_from_slice(b"avc1");
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0, 0, 0, 1, 0x65]);
        assert_eq!(
            parse_video_tag(&body),
            Ok(FlvVideo::AvcNalus {
                keyframe: true,
                composition_time_ms: -1,
                avcc: &[0, 0, 0, 1, 0x65]
            })
        );
        let mut body = vec![0xa3];
        body.extend_from_slice(b"avc1");
        body.extend_from_slice(&[0, 0, 0, 1, 0x41]);
        assert_eq!(
            parse_video_tag(&body),
            Ok(FlvVideo::AvcNalus {
                keyframe: false,
                composition_time_ms: 0,
                avcc: &[0, 0, 0, 1, 0x41]
            })
        );
        let mut body = vec![0x92];
        body.extend_from_slice(b"avc1");
        assert_eq!(parse_video_tag(&body), Ok(FlvVideo::AvcEndOfSequence));
        let mut body = vec![0x94];
        body.extend_from_slice(b"avc1");
        assert_eq!(
            parse_video_tag(&body),
            Ok(FlvVideo::Unsupported { codec_id: 7 })
        );
    }

    #[test]
    fn enhanced_rtmp_other_codecs() {
        for fourcc in [b"hvc1", b"av01", b"vp09"] {
            let mut body = vec![0x90];
            body.extend_from_slice(fourcc);
            body.push(0x01);
            assert_eq!(
                parse_video_tag(&body),
                Ok(FlvVideo::Unsupported {
                    codec_id: UNKNOWN_FOURCC
                })
            );
        }
        assert_eq!(
            parse_video_tag(&[0x96, 0x00]),
            Ok(FlvVideo::Unsupported {
                codec_id: UNKNOWN_FOURCC
            })
        );
    }

    #[test]
    fn truncated_and_invalid_tags() {
        assert!(matches!(
            parse_video_tag(&[]),
            Err(MediaError::Truncated { .. })
        ));
        for cut in 1..5 {
            assert!(matches!(
                parse_video_tag(&[0x17, 0x01, 0, 0, 0][..cut]),
                Err(MediaError::Truncated { .. })
            ));
        }
        assert!(matches!(
            parse_video_tag(&[0x90, b'a', b'v']),
            Err(MediaError::Truncated { .. })
        ));
        assert!(matches!(
            parse_video_tag(&[0x91, b'a', b'v', b'c', b'1', 0]),
            Err(MediaError::Truncated { .. })
        ));
        assert_eq!(
            parse_video_tag(&[0x17, 0x03, 0, 0, 0]),
            Err(MediaError::Invalid {
                what: "FLV AVC packet type",
                value: 3
            })
        );
    }

    proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = parse_video_tag(&body);
        }

        #[test]
        fn nalus_round_trip(
            frame_type in 1u8..=4,
            cts in -(1i32 << 23)..(1i32 << 23),
            avcc in proptest::collection::vec(any::<u8>(), 0..64),
            enhanced in any::<bool>(),
        ) {
            let bytes = cts.to_be_bytes();
            let mut body = if enhanced {
                let mut body = vec![0x80 | (frame_type << 4) | EX_CODED_FRAMES];
                body.extend_from_slice(b"avc1");
                body
            } else {
                vec![(frame_type << 4) | CODEC_ID_AVC, 0x01]
            };
            body.extend_from_slice(&bytes[1..]);
            body.extend_from_slice(&avcc);
            prop_assert_eq!(
                parse_video_tag(&body),
                Ok(FlvVideo::AvcNalus {
                    keyframe: frame_type == 1 || frame_type == 4,
                    composition_time_ms: cts,
                    avcc: &avcc,
                })
            );
        }
    }
}
