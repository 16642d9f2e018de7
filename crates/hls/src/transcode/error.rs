/// What the HLS transcoder can fail with. A [`TranscodeError::Frame`] concerns one input
/// frame (the transcoder stays usable); the others come from set-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscodeError {
    /// The linked FFmpeg lacks a codec.
    #[error("ffmpeg has no {codec}")]
    CodecNotFound { codec: &'static str },
    /// ffmpeg refused to open or configure a codec, resampler or scaler.
    #[error("{stage}: {cause}")]
    Setup {
        stage: &'static str,
        cause: ffmpeg_next::Error,
    },
    /// ffmpeg failed on one frame.
    #[error("{stage} at pts {pts}: {cause}")]
    Frame {
        stage: &'static str,
        pts: i64,
        cause: ffmpeg_next::Error,
    },
    /// A rung or an option is out of range.
    #[error("invalid transcoder settings: {0}")]
    Invalid(String),
}

impl TranscodeError {
    pub(crate) fn setup(stage: &'static str) -> impl FnOnce(ffmpeg_next::Error) -> TranscodeError {
        move |cause| TranscodeError::Setup { stage, cause }
    }

    pub(crate) fn frame(
        stage: &'static str,
        pts: i64,
    ) -> impl FnOnce(ffmpeg_next::Error) -> TranscodeError {
        move |cause| TranscodeError::Frame { stage, pts, cause }
    }
}
