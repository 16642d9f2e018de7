//! FLV audio tag bodies: AAC (sound format 10) and Enhanced RTMP `mp4a`.

use super::{SOUND_FORMAT_AAC, UNKNOWN_FOURCC};
use crate::MediaError;

/// Sound format 9: an Enhanced RTMP extended audio header follows.
const SOUND_FORMAT_EX_HEADER: u8 = 9;
/// Enhanced RTMP audio packet types (lower nibble of the first byte).
const EX_SEQUENCE_START: u8 = 0;
const EX_CODED_FRAMES: u8 = 1;
const EX_MULTITRACK: u8 = 5;
const EX_MOD_EX: u8 = 7;
/// The Enhanced RTMP FourCC of AAC.
const FOURCC_MP4A: [u8; 4] = *b"mp4a";

/// What an FLV audio tag body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlvAudio<'a> {
    /// An `AudioSpecificConfig` (parse it with
    /// [`AudioSpecificConfig::parse`](crate::aac::AudioSpecificConfig::parse)).
    AacSequenceHeader {
        /// The config bytes.
        config: &'a [u8],
    },
    /// One raw AAC frame (no ADTS header).
    AacRaw {
        /// The frame bytes.
        data: &'a [u8],
    },
    /// A tag this module does not decode: another sound format, an Enhanced RTMP FourCC
    /// other than `mp4a` or a multitrack/`ModEx` layout ([`UNKNOWN_FOURCC`]), or an E-RTMP
    /// AAC tag without audio (sequence end, channel layout), reported as format 10.
    Unsupported {
        /// The FLV sound format, or [`UNKNOWN_FOURCC`].
        format: u8,
    },
}

/// Parses an FLV audio tag body (the payload of an RTMP audio message).
///
/// The rate, size and channel bits of the first byte are ignored: for AAC the
/// `AudioSpecificConfig` is authoritative. Fails on a body too short for its header or an
/// unknown AAC packet type.
pub fn parse_audio_tag(body: &[u8]) -> Result<FlvAudio<'_>, MediaError> {
    let Some((&first, rest)) = body.split_first() else {
        return Err(truncated("FLV audio tag header", 1, 0));
    };
    let format = first >> 4;
    if format == SOUND_FORMAT_EX_HEADER {
        return parse_ex_audio(first & 0x0f, rest);
    }
    if format != SOUND_FORMAT_AAC {
        return Ok(FlvAudio::Unsupported { format });
    }
    let Some((&packet_type, data)) = rest.split_first() else {
        return Err(truncated("FLV AAC audio tag header", 2, body.len()));
    };
    match packet_type {
        0 => Ok(FlvAudio::AacSequenceHeader { config: data }),
        1 => Ok(FlvAudio::AacRaw { data }),
        other => Err(MediaError::Invalid {
            what: "FLV AAC packet type",
            value: u32::from(other),
        }),
    }
}

/// Parses the rest of a tag with an Enhanced RTMP extended audio header.
fn parse_ex_audio(packet_type: u8, rest: &[u8]) -> Result<FlvAudio<'_>, MediaError> {
    if packet_type == EX_MULTITRACK || packet_type == EX_MOD_EX {
        return Ok(FlvAudio::Unsupported {
            format: UNKNOWN_FOURCC,
        });
    }
    let Some((fourcc, data)) = rest.split_first_chunk::<4>() else {
        return Err(truncated("E-RTMP audio FourCC", 5, rest.len() + 1));
    };
    if *fourcc != FOURCC_MP4A {
        return Ok(FlvAudio::Unsupported {
            format: UNKNOWN_FOURCC,
        });
    }
    Ok(match packet_type {
        EX_SEQUENCE_START => FlvAudio::AacSequenceHeader { config: data },
        EX_CODED_FRAMES => FlvAudio::AacRaw { data },
        _ => FlvAudio::Unsupported {
            format: SOUND_FORMAT_AAC,
        },
    })
}

fn truncated(what: &'static str, needed: usize, len: usize) -> MediaError {
    MediaError::Truncated { what, needed, len }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ffmpeg_aac_tags() {
        assert_eq!(
            parse_audio_tag(&[0xaf, 0x00, 0x12, 0x08, 0x56, 0xe5, 0x00]),
            Ok(FlvAudio::AacSequenceHeader {
                config: &[0x12, 0x08, 0x56, 0xe5, 0x00]
            })
        );
        assert_eq!(
            parse_audio_tag(&[0xaf, 0x01, 0x21, 0x10]),
            Ok(FlvAudio::AacRaw {
                data: &[0x21, 0x10]
            })
        );
        // The rate/size/type bits do not matter.
        assert_eq!(
            parse_audio_tag(&[0xa0, 0x01]),
            Ok(FlvAudio::AacRaw { data: &[] })
        );
    }

    #[test]
    fn other_formats_are_unsupported() {
        assert_eq!(
            parse_audio_tag(&[0x2f, 0xff]),
            Ok(FlvAudio::Unsupported { format: 2 })
        );
        assert_eq!(
            parse_audio_tag(&[0xb2]),
            Ok(FlvAudio::Unsupported { format: 11 })
        );
    }

    #[test]
    fn enhanced_rtmp_audio() {
        let mut body = vec![0x90];
        body.extend_from_slice(b"mp4a");
        body.extend_from_slice(&[0x11, 0x90]);
        assert_eq!(
            parse_audio_tag(&body),
            Ok(FlvAudio::AacSequenceHeader {
                config: &[0x11, 0x90]
            })
        );
        body[0] = 0x91;
        assert_eq!(
            parse_audio_tag(&body),
            Ok(FlvAudio::AacRaw {
                data: &[0x11, 0x90]
            })
        );
        body[0] = 0x92;
        assert_eq!(
            parse_audio_tag(&body),
            Ok(FlvAudio::Unsupported { format: 10 })
        );
        let mut body = vec![0x91];
        body.extend_from_slice(b"Opus");
        assert_eq!(
            parse_audio_tag(&body),
            Ok(FlvAudio::Unsupported {
                format: UNKNOWN_FOURCC
            })
        );
        assert_eq!(
            parse_audio_tag(&[0x95]),
            Ok(FlvAudio::Unsupported {
                format: UNKNOWN_FOURCC
            })
        );
    }

    #[test]
    fn truncated_and_invalid_tags() {
        assert!(matches!(
            parse_audio_tag(&[]),
            Err(MediaError::Truncated { .. })
        ));
        assert!(matches!(
            parse_audio_tag(&[0xaf]),
            Err(MediaError::Truncated { .. })
        ));
        assert!(matches!(
            parse_audio_tag(&[0x90, b'm', b'p']),
            Err(MediaError::Truncated { .. })
        ));
        assert_eq!(
            parse_audio_tag(&[0xaf, 0x02]),
            Err(MediaError::Invalid {
                what: "FLV AAC packet type",
                value: 2
            })
        );
    }

    proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = parse_audio_tag(&body);
        }

        #[test]
        fn aac_round_trips(
            header in any::<bool>(),
            low in 0u8..16,
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut body = vec![0xa0 | low, u8::from(!header)];
            body.extend_from_slice(&data);
            let expected = if header {
                FlvAudio::AacSequenceHeader { config: &data }
            } else {
                FlvAudio::AacRaw { data: &data }
            };
            prop_assert_eq!(parse_audio_tag(&body), Ok(expected));
        }
    }
}
