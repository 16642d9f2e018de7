//! RTSP pull: a stream whose source is an `rtsp://` camera or server.
//!
//! An [`RtspPuller`] is a task that keeps one RTSP session playing with retina
//! (`DESCRIBE`, `SETUP` of the H.264 video and AAC audio streams, `PLAY`), takes the stream's
//! publisher slot in the engine while it plays, and feeds the frames to the same
//! [`FlvBridge`](crate::bridge::FlvBridge) RTMP uses (H.264 re-packetized, or re-encoded when
//! the camera sends B-frames; AAC to Opus). When the session fails or ends it frees the slot,
//! waits ([`Backoff`]: 1 s doubling to 30 s, back to 1 s after a minute of healthy play) and
//! connects again, until it is stopped. What it is doing is published as a [`SourceState`].
//!
//! Invariants:
//! - the publisher slot is held only while a session plays: while connecting and between
//!   attempts, a WHIP or RTMP publisher may take the stream (the next attempt then waits);
//! - credentials never leave this module in a URL: retina gets them as [`retina::client::Credentials`],
//!   errors and states carry the URL without them, [`SourceUrl::redacted`] masks the password;
//! - a session that delivers nothing for the stall timeout (10 s) is dropped, since RTSP
//!   keepalives alone do not prove that media flows;
//! - stopping (or dropping) the [`RtspPuller`] ends the session (with `TEARDOWN`) and the task.

mod backoff;
mod error;
mod puller;
mod source_url;
mod state;

pub use backoff::Backoff;
pub use error::RtspError;
pub use puller::{PullerOptions, RtspPuller};
pub use source_url::{SourceUrl, redacted_url};
pub use state::{RtspTransport, SourcePhase, SourceState};
