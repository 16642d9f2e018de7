//! Where RTMP and RTSP sources hand their frames besides WebRTC (HLS, recording).

use std::sync::Arc;

use greenroom_media::FrameSink;
use greenroom_rtc::SourceProtocol;

/// Opens a frame sink when an RTMP or RTSP source starts publishing to a stream. The binary
/// implements it with its HLS packager; `None` means nobody wants the frames.
pub trait FrameTaps: Send + Sync + 'static {
    fn open(&self, stream: &str, protocol: SourceProtocol) -> Option<Box<dyn FrameSink>>;
}

/// A shared [`FrameTaps`].
pub type SharedFrameTaps = Arc<dyn FrameTaps>;
