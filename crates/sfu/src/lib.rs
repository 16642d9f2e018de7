//! The sans-IO selective forwarding core of greenroom.
//!
//! The transport driver (greenroom-rtc) parses each incoming RTP packet once into a
//! [`PacketInfo`] and shows it to the [`Forwarder`] of every subscriber of that track; the
//! forwarder decides whether the subscriber gets it and how its sequence number, timestamp and
//! VP8 picture id are rewritten ([`Munged`]). [`KeyframeThrottle`] limits key-frame requests
//! per publisher and [`RateMeter`] measures each published layer for live stats.
//! [`LayerSelector`] caps a viewer's layer at what its bandwidth estimate carries, and
//! [`LossBound`] tightens that estimate as soon as a viewer's link drops much of what it gets.
//!
//! Invariants:
//! - No I/O, no tasks, no clock: time is always an argument (`now: Instant`), so every state
//!   machine here is deterministic and tested faster than real time.
//! - A subscriber's output is one continuous RTP stream: sequence numbers advance by exactly
//!   one per forwarded in-order packet across layer switches and publisher restarts, and
//!   timestamps never run backwards.
//! - A video subscriber starts, and changes layer, only at a key frame of the layer it moves to.
//! - Nothing on the per-packet path allocates or locks.

mod error;
mod forwarder;
mod keyframe_throttle;
mod layer;
mod layer_selector;
mod loss_bound;
mod packet_info;
mod rate_meter;
mod rtp_munger;
mod vp8_munger;

pub use error::SfuError;
pub use forwarder::{Forwarder, ForwarderConfig, Munged};
pub use keyframe_throttle::KeyframeThrottle;
pub use layer::{Layer, LayerSet, TrackKind};
pub use layer_selector::{
    CapChange, DOWN_AT_ONCE_FACTOR, DOWN_CONFIRM, HOLD, LayerSelector, UP_HEADROOM,
};
pub use loss_bound::{
    LOSS_BOUND_MIN_FRACTION, LOSS_WINDOW, LossBound, MAX_SPREAD, PROBE_DURATION, PROBE_PASS,
};
pub use packet_info::{PacketInfo, Vp8Meta};
pub use rate_meter::RateMeter;
pub use vp8_munger::Vp8Rewrite;

/// Re-exported so drivers name codecs through one crate.
pub use greenroom_media::Codec;
