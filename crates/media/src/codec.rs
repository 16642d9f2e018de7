//! The codecs greenroom forwards.

use std::fmt;

/// A media codec carried on a published track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Opus audio, 48 kHz RTP clock.
    Opus,
    /// VP8 video (RFC 7741), 90 kHz RTP clock.
    Vp8,
    /// H.264 video (RFC 6184), 90 kHz RTP clock.
    H264,
}

impl Codec {
    /// Every codec, in a stable order.
    pub const ALL: [Codec; 3] = [Codec::Opus, Codec::Vp8, Codec::H264];

    /// The MIME type as written in SDP and in WebRTC codec capabilities.
    pub fn mime_type(self) -> &'static str {
        match self {
            Codec::Opus => "audio/opus",
            Codec::Vp8 => "video/VP8",
            Codec::H264 => "video/H264",
        }
    }

    /// The RTP clock rate in Hz.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::Vp8 | Codec::H264 => 90_000,
        }
    }

    /// Whether the codec carries video.
    pub fn is_video(self) -> bool {
        matches!(self, Codec::Vp8 | Codec::H264)
    }

    /// The codec for a MIME type, compared case-insensitively (`"video/vp8"` is VP8).
    pub fn from_mime(mime: &str) -> Option<Codec> {
        Codec::ALL
            .into_iter()
            .find(|codec| codec.mime_type().eq_ignore_ascii_case(mime.trim()))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_round_trips_case_insensitively() {
        for codec in Codec::ALL {
            assert_eq!(Codec::from_mime(codec.mime_type()), Some(codec));
            assert_eq!(
                Codec::from_mime(&codec.mime_type().to_ascii_uppercase()),
                Some(codec)
            );
        }
        assert_eq!(Codec::from_mime("video/vp8"), Some(Codec::Vp8));
        assert_eq!(Codec::from_mime("VIDEO/h264"), Some(Codec::H264));
        assert_eq!(Codec::from_mime("video/VP9"), None);
        assert_eq!(Codec::from_mime(""), None);
    }

    #[test]
    fn clock_rates_and_kinds() {
        assert_eq!(Codec::Opus.clock_rate(), 48_000);
        assert_eq!(Codec::Vp8.clock_rate(), 90_000);
        assert_eq!(Codec::H264.clock_rate(), 90_000);
        assert!(!Codec::Opus.is_video());
        assert!(Codec::Vp8.is_video());
        assert!(Codec::H264.is_video());
        assert_eq!(Codec::H264.to_string(), "video/H264");
    }
}
