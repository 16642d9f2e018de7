//! RTMP ingest: OBS, ffmpeg and other RTMP publishers push FLV audio/video tags to greenroom.
//!
//! Layers, bottom up, each sans-IO except the last:
//! - [`chunk`]: the chunk stream (per-chunk-stream reassembly, Set Chunk Size, Abort,
//!   acknowledgements) with hard limits on message size, chunk streams and buffered bytes;
//! - [`amf0`]: AMF0 values with bounded depth and element count;
//! - [`session`]: [`ServerSession`], the server's command flow (connect, releaseStream,
//!   FCPublish, createStream, publish, metadata, FCUnpublish, deleteStream; play is refused)
//!   turning messages into [`RtmpEvent`]s;
//! - [`listener`]: the tokio driver, [`serve`], which runs the `rml_rtmp` handshake (the only
//!   part of `rml_rtmp` greenroom uses) and hands accepted publishes to a [`PublishHandler`].
//!
//! Invariants: no input can make any layer panic, recurse without bound or allocate more than
//! its limits; an error ends its connection only.

pub mod amf0;
pub mod chunk;
mod error;
pub mod listener;
pub mod session;

pub use error::{Amf0Error, RtmpError};
pub use listener::{ListenerConfig, MediaSink, PublishHandler, serve, serve_with_config};
pub use session::{RtmpEvent, ServerSession, ServerSessionConfig, StreamMetadata};
