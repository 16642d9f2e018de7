//! Transcoding for sources WebRTC viewers cannot take as they are: AAC→Opus for RTMP/RTSP
//! audio, and an H.264 re-encode for video with B-frames (or for a simulcast ladder).
//!
//! Both transcoders are plain synchronous structs driven with `&mut self`; ffmpeg work is CPU
//! bound, so the caller runs them on a dedicated `std::thread`, never on a tokio worker.
//! [`AacToOpus`] is `Send`; [`H264Reencoder`] is not (swscale's context), so create it on its
//! thread from the `Send + Clone` [`ReencodeOptions`].
//!
//! They use only ffmpeg-next's safe API (the crate forbids `unsafe`), which has no way to set
//! or read codec extradata. Hence the invariants:
//! - AAC is decoded from ADTS: each raw frame gets a header built from the
//!   AudioSpecificConfig, so the decoder needs no extradata;
//! - libx264 is opened without `GLOBAL_HEADER`, so SPS/PPS are in-band before every IDR and
//!   the output is self-contained Annex-B;
//! - the H.264 input must carry its SPS/PPS in-band (Annex-B, as the RTMP and RTSP paths
//!   produce them from the AVCDecoderConfigurationRecord).
//!
//! Timestamps are milliseconds in, RTP 48 kHz (audio) or milliseconds (video) out.
//! Linking: FFmpeg 5.1 (Debian 12) through ffmpeg-sys-next; the first transcoder lowers
//! ffmpeg's global log level to warnings (x264 prints its banner and statistics at info).

mod aac_to_opus;
mod error;
mod h264_reencoder;
mod ladder;

pub use aac_to_opus::{AacToOpus, OpusFrame};
pub use error::{Stage, TranscodeError};
pub use h264_reencoder::{EncodedFrame, H264Reencoder, ReencodeOptions};
pub use ladder::{LadderOptions, LadderRung, SimulcastLadder};

/// Once per process: ffmpeg's error strings, and a quieter global log level.
fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        // init() cannot fail with the features we build (it only registers error strings).
        let _ = ffmpeg_next::init();
        ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Warning);
    });
}

/// Whether a receive_* error only means "send more input" or "fully drained".
fn drained(error: &ffmpeg_next::Error) -> bool {
    matches!(
        error,
        ffmpeg_next::Error::Eof
            | ffmpeg_next::Error::Other {
                errno: ffmpeg_next::error::EAGAIN
            }
    )
}
