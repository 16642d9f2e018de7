//! The engine's public face: configuration, the handle, and what it reports.

use std::net::IpAddr;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::RtcError;
use greenroom_sfu::Layer;

/// A STUN or TURN server offered to clients (WHIP/WHEP `Link` headers) and used by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: Option<String>,
    pub credential: Option<String>,
}

/// Transport settings.
#[derive(Debug, Clone)]
pub struct RtcConfig {
    /// Address the UDP sockets bind to (`0.0.0.0` binds every advertised address).
    pub bind_ip: IpAddr,
    /// First UDP port; worker `i` listens on `udp_port + i`. `0` picks free ports.
    pub udp_port: u16,
    /// Number of worker tasks (and UDP ports). At least 1.
    pub workers: usize,
    /// Drop a viewer's webrtc-rs connection once its handshake is done and carry the session
    /// on the direct path alone (see `direct::ice`).
    pub detach_viewers: bool,
    /// Addresses put into ICE candidates. Empty: `bind_ip` when it is specific, otherwise every
    /// address of this host's interfaces.
    pub advertise_ips: Vec<IpAddr>,
    /// STUN/TURN servers.
    pub ice_servers: Vec<IceServer>,
}

/// Identifies a WHIP or WHEP session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a viewer asks for.
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions {
    /// Highest simulcast layer this viewer may receive (`?layer=`); `None` = the highest.
    pub max_layer: Option<Layer>,
    /// The session is closed at this instant unless extended
    /// ([`RtcEngine::extend_session`]): the viewer's access (a playback token) runs out then.
    /// `None`: no end.
    pub valid_until: Option<std::time::Instant>,
}

/// A negotiated session.
#[derive(Debug, Clone)]
pub struct Answer {
    pub session: SessionId,
    pub sdp: String,
    pub etag: String,
}

/// Result of a WHIP/WHEP `PATCH`.
#[derive(Debug, Clone)]
pub enum PatchOutcome {
    /// Remote candidates were added (answer 204).
    Trickled { etag: String },
    /// The fragment carried new ICE credentials: ICE restarted; answer 200 with this fragment.
    Restarted { sdpfrag: String, etag: String },
}

/// Engine notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcEvent {
    /// A publisher's media started flowing on a stream.
    Live { stream: String },
    /// A stream's publisher left.
    Idle { stream: String },
}

/// Live statistics of one stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamStats {
    pub live: bool,
    pub publisher: Option<PublisherStats>,
    pub viewers: usize,
    pub viewer_sessions: Vec<ViewerStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublisherStats {
    pub session: SessionId,
    pub connected_ms: u64,
    /// Where the media comes from and what greenroom does to it.
    pub source: SourceInfo,
    pub tracks: Vec<TrackStats>,
}

/// How a publisher reaches greenroom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceProtocol {
    Whip,
    Rtmp,
    Rtsp,
}

/// What happens to one kind of media between the source and the viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaHandling {
    /// Forwarded as the source sent it.
    Passthrough,
    /// Re-packetized from the source's container into RTP, not re-encoded.
    Repacketized,
    /// Decoded and encoded again (for example H.264 with B-frames, or AAC to Opus).
    Transcoded,
    /// The source sends none of this kind.
    Absent,
}

/// The source of a stream's media, as shown in its stats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    pub protocol: SourceProtocol,
    pub video: MediaHandling,
    pub audio: MediaHandling,
    /// Why media is transcoded, when it is (e.g. "the source sends B-frames").
    pub note: Option<String>,
}

impl SourceInfo {
    /// A WebRTC (WHIP) publisher: everything forwarded as sent.
    pub fn whip() -> Self {
        SourceInfo {
            protocol: SourceProtocol::Whip,
            video: MediaHandling::Passthrough,
            audio: MediaHandling::Passthrough,
            note: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TrackStats {
    /// `audio` or `video`.
    pub kind: &'static str,
    /// MIME type, e.g. `video/VP8`.
    pub codec: String,
    pub layers: Vec<LayerStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerStats {
    /// `q`, `h` or `f` (`f` for a track sent without simulcast).
    pub layer: &'static str,
    pub bitrate_bps: u64,
    pub fps: f64,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ViewerStats {
    pub session: SessionId,
    /// Layer being forwarded now.
    pub layer: Option<&'static str>,
    /// The viewer's maximum.
    pub max_layer: &'static str,
    /// The highest layer the viewer's bandwidth estimate carries.
    pub bandwidth_layer: &'static str,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// The viewer's bandwidth estimate, bits per second (none before its first feedback).
    pub estimate_bps: Option<u64>,
    /// `twcc` (GCC on transport-wide CC feedback), `remb` (the viewer's own estimate) or
    /// `nack` (the link dropped much of what it was sent: what got through is the ceiling).
    pub estimate_source: Option<&'static str>,
    /// Fraction of packets lost on the way to the viewer (its latest receiver report).
    pub loss: f64,
    /// Round-trip time to the viewer, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Packets the viewer asked to be sent again.
    pub nacks_received: u64,
}

/// Handle to the running engine; cheap to clone.
#[derive(Clone)]
pub struct RtcEngine {
    inner: std::sync::Arc<crate::engine::Shared>,
}

impl std::fmt::Debug for RtcEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcEngine").finish_non_exhaustive()
    }
}

impl RtcEngine {
    /// Binds the UDP sockets and starts the workers.
    pub async fn start(config: RtcConfig) -> Result<RtcEngine, RtcError> {
        let inner = crate::engine::Shared::start(config).await?;
        Ok(RtcEngine { inner })
    }

    /// The UDP ports the workers listen on.
    pub fn udp_ports(&self) -> Vec<u16> {
        self.inner.udp_ports()
    }

    /// Configured STUN/TURN servers.
    pub fn ice_servers(&self) -> &[IceServer] {
        self.inner.ice_servers()
    }

    /// Accepts a publisher's SDP offer for `stream` (WHIP).
    pub async fn publish(&self, stream: &str, offer_sdp: &str) -> Result<Answer, RtcError> {
        self.inner.publish(stream, offer_sdp).await
    }

    /// Takes the stream's publisher slot for a source that is not a WebRTC peer (RTMP, RTSP):
    /// `StreamBusy` if the stream already has a publisher. Dropping the handle frees it.
    pub fn publish_local(&self, stream: &str) -> Result<crate::LocalPublisher, RtcError> {
        self.inner.publish_local(stream)
    }

    /// Subscribes in-process to everything `stream`'s publisher sends (every layer, as sent);
    /// works before the stream is live and across publisher restarts.
    pub fn tap(&self, stream: &str) -> crate::StreamTap {
        crate::StreamTap::new(self.inner.clone(), self.inner.route(stream))
    }

    /// Accepts a viewer's recvonly SDP offer for `stream` (WHEP). The stream need not be live.
    pub async fn subscribe(
        &self,
        stream: &str,
        offer_sdp: &str,
        options: SubscribeOptions,
    ) -> Result<Answer, RtcError> {
        self.inner.subscribe(stream, offer_sdp, options).await
    }

    /// Applies a trickle-ICE / ICE-restart fragment (`application/trickle-ice-sdpfrag`).
    pub async fn patch(
        &self,
        stream: &str,
        session: &SessionId,
        if_match: Option<&str>,
        sdpfrag: &str,
    ) -> Result<PatchOutcome, RtcError> {
        self.inner.patch(stream, session, if_match, sdpfrag).await
    }

    /// Ends one session (WHIP/WHEP `DELETE`).
    pub async fn close_session(&self, stream: &str, session: &SessionId) -> Result<(), RtcError> {
        self.inner.close_session(stream, session).await
    }

    /// Ends a stream: its publisher and every viewer are disconnected.
    pub async fn end_stream(&self, stream: &str) {
        self.inner.end_stream(stream).await
    }

    /// Changes a viewer's maximum layer during its session.
    pub async fn set_max_layer(
        &self,
        stream: &str,
        session: &SessionId,
        layer: Layer,
    ) -> Result<(), RtcError> {
        self.inner.set_max_layer(stream, session, layer).await
    }

    /// Moves the end of a viewer's session (see [`SubscribeOptions::valid_until`]).
    pub async fn extend_session(
        &self,
        stream: &str,
        session: &SessionId,
        valid_until: Option<std::time::Instant>,
    ) -> Result<(), RtcError> {
        self.inner
            .extend_session(stream, session, valid_until)
            .await
    }

    /// Live statistics of a stream (an idle stream has `live: false` and its waiting viewers).
    pub async fn stream_stats(&self, stream: &str) -> StreamStats {
        self.inner.stream_stats(stream).await
    }

    /// Counters and gauges of the media path, summed over the workers (for `/metrics`).
    pub fn metrics(&self) -> crate::MetricsSnapshot {
        self.inner.metrics()
    }

    /// Subscribes to engine notifications.
    pub fn events(&self) -> broadcast::Receiver<RtcEvent> {
        self.inner.events()
    }

    /// Closes every session and stops the workers.
    pub async fn shutdown(&self) {
        self.inner.shutdown().await
    }
}
