//! greenroom-rtc: the WebRTC transport of greenroom.
//!
//! This is the only crate that knows webrtc-rs. It drives the sans-IO `rtc` peer connections
//! from a few long-lived worker tasks (one per core by default). Each worker owns its UDP
//! socket(s), its peer connections and the forwarding state of the subscribers it hosts; no lock
//! is taken per packet. Media from a publisher is handed to the [`greenroom_sfu::Forwarder`] of
//! every subscriber: subscribers on the publisher's worker directly, subscribers on another worker
//! through one bounded channel message per packet and worker.
//!
//! Invariants:
//! - a stream has at most one publisher session at a time;
//! - a subscriber session outlives publisher restarts: it keeps its peer connection and resumes
//!   at the new publisher's first keyframe;
//! - packets handed to webrtc-rs always carry the sender's SSRC, a negotiated payload type and no
//!   header extension the subscriber did not negotiate;
//! - a viewer's RTP is encrypted and sent by greenroom itself once its connection is up (the
//!   direct path, [`direct`]): webrtc-rs then never encrypts RTP of that connection, so the two
//!   never share an SRTP rollover counter.

mod api;
mod direct;
mod engine;
mod error;
mod feedback;
mod local;
mod metrics;
mod peer;
mod publisher;
mod sdpfrag;
mod stun;
mod subscriber;
mod tap;
mod worker;

pub use api::{
    Answer, IceServer, LayerStats, MediaHandling, PatchOutcome, PublisherStats, RtcConfig,
    RtcEngine, RtcEvent, SessionId, SourceInfo, SourceProtocol, StreamStats, SubscribeOptions,
    TrackStats, ViewerStats,
};
pub use error::RtcError;
pub use feedback::{FeedbackSnapshot, PeerFeedback};
pub use local::{LocalPublisher, LocalRtp};
pub use metrics::MetricsSnapshot;
pub use tap::{StreamTap, TappedPacket};
pub mod client;
pub use greenroom_media::Codec;
pub use greenroom_sfu::{Layer, TrackKind};
