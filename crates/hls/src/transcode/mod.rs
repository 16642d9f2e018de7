//! The ffmpeg side of HLS: decode the source once, scale and encode each rung of the ladder
//! (libx264), and turn Opus into AAC for sources that send Opus (WebRTC).
//!
//! Like every ffmpeg user in greenroom these are synchronous structs driven with `&mut self`
//! on a dedicated thread, through ffmpeg-next's safe API only (the crate forbids `unsafe`),
//! which cannot read codec extradata; hence:
//! - libx264 runs without `GLOBAL_HEADER`: SPS and PPS come in-band before every IDR, and the
//!   packager builds each rung's `avcC` from them;
//! - the AAC encoder's `AudioSpecificConfig` is written by hand from its profile, rate and
//!   channel count ([`aac_lc_config`]).
//!
//! Timestamps are 90 kHz everywhere (the encoders' time base), audio in samples.

mod audio;
mod error;
mod video;

pub use audio::{AacFrame, OpusToAac};
pub use error::TranscodeError;
pub use video::{EncodedPicture, EncoderOptions, PRESETS, RungSpec, SourceCodec, VideoLadder};

/// Once per process: ffmpeg's error strings, and a quieter global log level.
pub(crate) fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let _ = ffmpeg_next::init();
        ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Error);
    });
}

/// Whether a receive_* error only means "send more input" or "fully drained".
pub(crate) fn drained(error: &ffmpeg_next::Error) -> bool {
    matches!(
        error,
        ffmpeg_next::Error::Eof
            | ffmpeg_next::Error::Other {
                errno: ffmpeg_next::error::EAGAIN
            }
    )
}

/// The `AudioSpecificConfig` of AAC-LC at `sample_rate` with `channels` (1-7 channels, one
/// of the 13 standard rates; `None` otherwise).
pub fn aac_lc_config(sample_rate: u32, channels: u16) -> Option<[u8; 2]> {
    const RATES: [u32; 13] = [
        96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
        8_000, 7_350,
    ];
    let index = RATES.iter().position(|r| *r == sample_rate)? as u16;
    if !(1..=7).contains(&channels) {
        return None;
    }
    // object type 2 (5 bits) | frequency index (4) | channel configuration (4) | 000
    let bits: u16 = (2 << 11) | (index << 7) | (channels << 3);
    Some(bits.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_lc_configs_match_known_values() {
        assert_eq!(aac_lc_config(48_000, 2), Some([0x11, 0x90]));
        assert_eq!(aac_lc_config(44_100, 2), Some([0x12, 0x10]));
        assert_eq!(aac_lc_config(44_100, 1), Some([0x12, 0x08]));
        assert_eq!(aac_lc_config(47_000, 2), None);
        assert_eq!(aac_lc_config(48_000, 0), None);
    }
}
