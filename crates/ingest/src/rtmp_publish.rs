//! RTMP publishes into streams: `rtmp://host/live/{stream_key}`.
//!
//! [`RtmpPublishing`] is the [`PublishHandler`] the RTMP listener asks: the key names the stream
//! (through the [`StreamAuthority`]), the stream's single publisher slot is taken in the engine
//! (a WHIP or another RTMP publisher already live is refused), and the accepted publish's FLV
//! tags go to an [`FlvBridge`]. Ending the stream through the API ends the RTMP connection.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use greenroom_rtc::{RtcEngine, RtcError, SourceProtocol};
use tokio::sync::watch;

use crate::bridge::{BridgeOptions, FlvBridge};
use crate::rtmp::listener::{MediaSink, PublishHandler};
use crate::{IngestError, SharedFrameTaps, StreamAuthority};

/// The RTMP application publishers use.
pub const RTMP_APP: &str = "live";

/// Accepts RTMP publishes for the streams the authority knows.
#[derive(Clone)]
pub struct RtmpPublishing<A> {
    engine: RtcEngine,
    authority: A,
    frames: Option<SharedFrameTaps>,
}

impl<A> std::fmt::Debug for RtmpPublishing<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtmpPublishing").finish_non_exhaustive()
    }
}

impl<A: StreamAuthority> RtmpPublishing<A> {
    pub fn new(engine: RtcEngine, authority: A) -> Self {
        RtmpPublishing {
            engine,
            authority,
            frames: None,
        }
    }

    /// Also hands every accepted publish's frames to `frames` (HLS, recording).
    pub fn with_frame_taps(mut self, frames: SharedFrameTaps) -> Self {
        self.frames = Some(frames);
        self
    }
}

impl<A: StreamAuthority> PublishHandler for RtmpPublishing<A> {
    fn publish(
        &self,
        app: &str,
        stream_key: &str,
        peer: SocketAddr,
    ) -> impl Future<Output = Result<Box<dyn MediaSink>, String>> + Send {
        let app = app.to_owned();
        let key = stream_key.to_owned();
        let this = self.clone();
        async move {
            if app != RTMP_APP {
                return Err(format!(
                    "unknown application {app:?}: publish to rtmp://HOST/{RTMP_APP}/STREAM_KEY"
                ));
            }
            let keyed = this
                .authority
                .stream_for_key(&key)
                .await
                .map_err(|error| match error {
                    IngestError::Unauthorized => "no stream has this key".to_owned(),
                    IngestError::StreamEnded { stream } => format!("stream {stream} has ended"),
                    IngestError::InvalidTransition { stream, state, .. } => {
                        format!("stream {stream} is {state}: it cannot be published to")
                    }
                    other => format!("cannot check the key: {other}"),
                })?;
            let stream = keyed.id;
            let publisher = this
                .engine
                .publish_local(&stream)
                .map_err(|error| match error {
                    RtcError::StreamBusy { stream } => {
                        format!("stream {stream} already has a live publisher")
                    }
                    other => format!("stream {stream}: {other}"),
                })?;
            tracing::info!(stream, %peer, "RTMP publish accepted");
            let closed = publisher.close_signal();
            let bridge = FlvBridge::start(
                &stream,
                SourceProtocol::Rtmp,
                publisher,
                BridgeOptions {
                    simulcast_ladder: keyed.simulcast_ladder,
                    frames: this
                        .frames
                        .as_ref()
                        .and_then(|taps| taps.open(&stream, SourceProtocol::Rtmp)),
                },
            );
            Ok(Box::new(RtmpSink { bridge, closed }) as Box<dyn MediaSink>)
        }
    }
}

struct RtmpSink {
    bridge: FlvBridge,
    closed: watch::Receiver<bool>,
}

impl MediaSink for RtmpSink {
    fn video(&mut self, timestamp_ms: u32, body: Bytes) {
        self.bridge.video(timestamp_ms, body);
    }

    fn audio(&mut self, timestamp_ms: u32, body: Bytes) {
        self.bridge.audio(timestamp_ms, body);
    }

    fn finish(self: Box<Self>) {
        // The media thread drains what is queued and frees the stream; joining it must not
        // hold up the network task.
        let bridge = self.bridge;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(move || bridge.finish());
            }
            Err(_) => bridge.finish(),
        }
    }

    fn closed(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            while !*self.closed.borrow() {
                if self.closed.changed().await.is_err() {
                    // The engine dropped the session: nothing will close it any more.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}
