//! greenroom-hls: HLS for every live stream, and the pieces its recordings are made of.
//!
//! A [`session`] takes a stream's source frames ([`greenroom_media::SourceFrame`]: the same
//! track model every source feeds) and makes an adaptive ladder: the configured renditions
//! from the source's height down, never upscaled ([`ladder`]); the source's own H.264 on top
//! when it can be passed through (RTMP), the others decoded once and scaled and encoded per
//! rendition with libx264 ([`transcode`]); AAC passed through, or encoded from Opus. Each
//! rendition is cut into CMAF/fMP4 segments and LL-HLS parts ([`segmenter`], [`fmp4`]) kept in
//! a live window ([`live`]) that renders the playlists ([`playlist`]) with partial segments,
//! preload hints, blocking reload and program date times. Finished segments also go to a
//! [`Recorder`] (the binary writes them to object storage).
//!
//! Invariants:
//! - segments start at an IDR on every rendition at the same presentation time, so players
//!   switch renditions at any segment boundary;
//! - a segment's bytes are exactly its parts' bytes, in order; part and media sequence numbers
//!   only grow within a session;
//! - nothing here does network or storage I/O, and nothing but the packager thread touches
//!   ffmpeg; time comes in with the frames (the wall clock only dates segments);
//! - a frame that cannot be decoded or packaged is skipped and logged, never a reason to stop
//!   the stream.

mod avc;
pub mod fmp4;
pub mod ladder;
pub mod live;
pub mod playlist;
pub mod sample;
pub mod segmenter;
pub mod session;
pub mod transcode;

pub use ladder::{PlannedVariant, Rendition};
pub use live::{LiveConfig, LiveVariant};
pub use playlist::{
    BlockingRequest, LiveRenderOptions, PlaylistError, RequestState, VariantInfo, VodSegment,
    render_live, render_master, render_vod,
};
pub use sample::{AudioSample, AudioTrack, VIDEO_TIMESCALE, VideoSample, VideoTrack};
pub use segmenter::{Segmenter, SegmenterConfig, SegmenterEvent};
pub use session::{
    HlsInput, HlsOptions, LiveHls, PlaylistAnswer, RecordEvent, Recorder, SourceKind, start_session,
};
