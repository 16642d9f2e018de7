//! Whole encoded frames of a stream's source, for outputs that need frames rather than RTP
//! packets (the HLS transcoder, the recorder).
//!
//! RTMP and RTSP sources hand their frames over as they arrive (H.264 with its B-frames, AAC as
//! sent); WebRTC sources' RTP is put back together by [`crate::rtp::RtpFrameAssembler`].

use bytes::Bytes;

/// One encoded frame on the stream's 90 kHz timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFrame {
    /// An H.264 access unit in Annex B, with SPS and PPS in band before every IDR.
    H264 {
        data: Bytes,
        pts_90k: i64,
        dts_90k: i64,
        keyframe: bool,
    },
    /// One VP8 frame (RFC 6386 bitstream, no payload descriptor).
    Vp8 {
        data: Bytes,
        pts_90k: i64,
        keyframe: bool,
    },
    /// The AAC `AudioSpecificConfig` of the [`SourceFrame::Aac`] frames that follow.
    AacConfig { asc: Bytes },
    /// One raw AAC frame (no ADTS header).
    Aac { data: Bytes, pts_90k: i64 },
    /// One Opus packet (48 kHz).
    Opus { data: Bytes, pts_90k: i64 },
}

impl SourceFrame {
    /// The frame's presentation time, 90 kHz (`None` for a configuration).
    pub fn pts_90k(&self) -> Option<i64> {
        match self {
            SourceFrame::H264 { pts_90k, .. }
            | SourceFrame::Vp8 { pts_90k, .. }
            | SourceFrame::Aac { pts_90k, .. }
            | SourceFrame::Opus { pts_90k, .. } => Some(*pts_90k),
            SourceFrame::AacConfig { .. } => None,
        }
    }

    /// Whether this is a video frame.
    pub fn is_video(&self) -> bool {
        matches!(self, SourceFrame::H264 { .. } | SourceFrame::Vp8 { .. })
    }
}

/// Where a source hands its frames. Dropping the sink ends the stream for it.
pub trait FrameSink: Send {
    /// Takes one frame; must not block (a sink that falls behind drops, and says so).
    fn push(&mut self, frame: SourceFrame);
}
