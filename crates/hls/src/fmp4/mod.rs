//! fMP4 (ISO BMFF movie fragments) for HLS: the initialization segment and one fragment per
//! LL-HLS part.
//!
//! Invariants:
//! - Video is track 1 on a 90 kHz timescale, audio (AAC) is track 2 on its sample rate.
//! - Every fragment is one `moof` and one `mdat`; `trun` data offsets count from the start of
//!   the `moof` (`default-base-is-moof`), video data first, then audio.
//! - `tfdt` is the first sample's decode time (audio: its `pts`), so each track's timeline is
//!   carried by the fragments themselves and parts can be fetched in any order.
//! - Pure functions of their inputs: no I/O, no clock.

mod boxes;
mod fragment;
mod init;
#[cfg(test)]
pub(crate) mod reader;

pub use fragment::{VideoRun, fragment};
pub use init::init_segment;

/// `track_ID` of the video track.
pub const VIDEO_TRACK_ID: u32 = 1;
/// `track_ID` of the audio track.
pub const AUDIO_TRACK_ID: u32 = 2;

/// A fragment that cannot be written from the samples given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fmp4Error {
    #[error("a fragment needs at least one sample")]
    Empty,
    #[error("{track} decode time {time} is negative (tfdt is unsigned)")]
    NegativeTime { track: &'static str, time: i64 },
    #[error(
        "video sample at dts {dts} is followed at dts {next_dts}: its duration must be 1..2^32 ticks"
    )]
    BadDuration { dts: i64, next_dts: i64 },
    #[error("video sample at dts {dts} has pts {pts}: the composition offset does not fit 32 bits")]
    CompositionOffset { dts: i64, pts: i64 },
    #[error("{track} sample at {time} is {len} bytes, more than 32 bits can size")]
    SampleTooLarge {
        track: &'static str,
        time: i64,
        len: usize,
    },
    #[error("fragment data offset {len} does not fit 32 bits")]
    TooLarge { len: usize },
}
