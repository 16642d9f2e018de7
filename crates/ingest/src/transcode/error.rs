use std::fmt;

/// What a transcoder was doing when ffmpeg failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    OpenAacDecoder,
    DecodeAac,
    Resample,
    OpenOpusEncoder,
    EncodeOpus,
    OpenH264Decoder,
    DecodeH264,
    Scale,
    OpenX264Encoder,
    EncodeH264,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::OpenAacDecoder => "opening the AAC decoder",
            Stage::DecodeAac => "decoding AAC",
            Stage::Resample => "resampling to 48 kHz stereo",
            Stage::OpenOpusEncoder => "opening the libopus encoder",
            Stage::EncodeOpus => "encoding Opus",
            Stage::OpenH264Decoder => "opening the H.264 decoder",
            Stage::DecodeH264 => "decoding H.264",
            Stage::Scale => "scaling video",
            Stage::OpenX264Encoder => "opening the libx264 encoder",
            Stage::EncodeH264 => "encoding H.264",
        })
    }
}

/// Everything AAC→Opus and the H.264 re-encode can fail with.
///
/// A [`TranscodeError::Frame`] concerns one input frame (usually corrupt input): the transcoder
/// stays usable and the caller may log it and push the next frame. The other variants come from
/// construction or configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscodeError {
    /// The linked FFmpeg lacks a codec (Debian's libavcodec59 has all of them).
    #[error("ffmpeg has no {codec} codec")]
    CodecNotFound { codec: &'static str },
    /// The AudioSpecificConfig is truncated or cannot be expressed as an ADTS header.
    #[error("unsupported AAC AudioSpecificConfig [{config_hex}]: {reason}")]
    UnsupportedAacConfig {
        config_hex: String,
        reason: greenroom_media::MediaError,
    },
    /// A raw AAC frame is empty or longer than an ADTS frame can carry (8184 bytes).
    #[error("raw AAC frame of {len} bytes at pts {pts_ms} ms cannot be framed as ADTS")]
    BadAacFrame { len: usize, pts_ms: i64 },
    /// [`super::ReencodeOptions`] are out of range.
    #[error("invalid re-encode options: {reason}")]
    InvalidOptions { reason: String },
    /// ffmpeg refused to open or configure a codec, resampler or scaler.
    #[error("{stage}: {cause}")]
    Setup {
        stage: Stage,
        cause: ffmpeg_next::Error,
    },
    /// ffmpeg failed on one frame.
    #[error("{stage} at pts {pts_ms} ms: {cause}")]
    Frame {
        stage: Stage,
        pts_ms: i64,
        cause: ffmpeg_next::Error,
    },
}

impl TranscodeError {
    pub(crate) fn setup(stage: Stage) -> impl FnOnce(ffmpeg_next::Error) -> TranscodeError {
        move |cause| TranscodeError::Setup { stage, cause }
    }

    pub(crate) fn frame(
        stage: Stage,
        pts_ms: i64,
    ) -> impl FnOnce(ffmpeg_next::Error) -> TranscodeError {
        move |cause| TranscodeError::Frame {
            stage,
            pts_ms,
            cause,
        }
    }
}
