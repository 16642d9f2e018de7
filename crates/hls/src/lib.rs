//! greenroom-hls: HLS for every live stream.
//!
//! (crate documentation is completed as the modules land)

mod avc;
pub mod fmp4;
pub mod ladder;
pub mod live;
pub mod playlist;
pub mod sample;
pub mod segmenter;
pub mod session;
pub mod transcode;

pub use fmp4::{Fmp4Error, VideoRun, fragment, init_segment};
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
