//! What the segmenter takes in: encoded samples on their track's timeline.

use bytes::Bytes;

/// Video timescale of every HLS track greenroom writes (and of RTP video).
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// One H.264 access unit, ready for an fMP4 `mdat`.
#[derive(Debug, Clone)]
pub struct VideoSample {
    /// NAL units, each prefixed by its 4-byte big-endian length (AVCC), without SPS/PPS
    /// (those live in the init segment's `avcC`; in-band copies are harmless but unneeded).
    pub data: Bytes,
    /// Decode time, 90 kHz.
    pub dts: i64,
    /// Presentation time, 90 kHz (`pts >= dts`; differs with B-frames).
    pub pts: i64,
    /// An IDR access unit: a segment or an independent part may start here.
    pub keyframe: bool,
}

/// One AAC access unit (raw, no ADTS header).
#[derive(Debug, Clone)]
pub struct AudioSample {
    pub data: Bytes,
    /// Presentation (= decode) time in samples of the track's sample rate.
    pub pts: i64,
    /// Samples in this frame (1024 for AAC-LC).
    pub duration: u32,
}

/// An H.264 track's set-up, from its parameter sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// `AVCDecoderConfigurationRecord` (the `avcC` box payload).
    pub avc_config: Bytes,
    pub width: u32,
    pub height: u32,
}

impl VideoTrack {
    /// The RFC 6381 codec string, `avc1.PPCCLL`, from the record's profile bytes.
    pub fn codec_string(&self) -> String {
        match self.avc_config.get(1..4) {
            Some(p) => format!("avc1.{:02x}{:02x}{:02x}", p[0], p[1], p[2]),
            None => "avc1.42e01e".to_owned(),
        }
    }
}

/// An AAC track's set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    /// The `AudioSpecificConfig` (goes into the `esds` box).
    pub asc: Bytes,
    pub sample_rate: u32,
    pub channels: u16,
}

impl AudioTrack {
    /// The RFC 6381 codec string: `mp4a.40.<audio object type>`.
    pub fn codec_string(&self) -> String {
        let object_type = self.asc.first().map_or(2, |b| b >> 3);
        format!("mp4a.40.{object_type}")
    }
}
