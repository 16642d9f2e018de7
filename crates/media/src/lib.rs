//! Codec knowledge on RTP payloads for greenroom: which codec a track carries, where a VP8 or
//! H.264 frame starts, whether it is a key frame, what resolution it announces, and the byte
//! rewrites the forwarder needs (VP8 picture id / TL0PICIDX) or the RTMP path needs
//! (AVCC <-> Annex B); FLV tag bodies, the AVC decoder configuration record and the AAC
//! `AudioSpecificConfig`/ADTS header that RTMP ingest needs; H.264 and Opus RTP
//! packetization.
//!
//! Invariants:
//! - No I/O, no clock, no async: every function is a pure function of its input bytes.
//! - Outside bytes never panic: parsers return [`MediaError`] or `None` on malformed input and
//!   never index past the end of a slice.
//! - In-place rewrites never change a payload's length.

pub mod aac;
mod codec;
mod error;
pub mod flv;
pub mod frame;
pub mod h264;
pub mod rtp;
pub mod vp8;

pub use codec::Codec;
pub use error::MediaError;
pub use frame::{FrameSink, SourceFrame};
