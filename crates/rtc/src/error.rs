use thiserror::Error;

/// Errors of the WebRTC transport. Each names what it concerns.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RtcError {
    /// The SDP offer (or fragment) could not be parsed or negotiated.
    #[error("invalid SDP: {0}")]
    InvalidSdp(String),
    /// The offer has nothing greenroom can receive or send (no Opus, VP8 or H.264).
    #[error("unsupported media: {0}")]
    UnsupportedMedia(String),
    /// The stream already has a live publisher.
    #[error("stream {stream} already has a publisher")]
    StreamBusy { stream: String },
    /// No session with this id on this stream.
    #[error("session {session} not found")]
    SessionNotFound { session: String },
    /// `If-Match` did not match the session's current ETag.
    #[error("session {session}: ETag does not match")]
    PreconditionFailed { session: String },
    /// The session is fed by RTMP or RTSP: there is no WebRTC connection to patch.
    #[error("the session is not a WebRTC session")]
    NotWebRtc,
    /// The engine is shutting down.
    #[error("the WebRTC engine is shut down")]
    Closed,
    /// Binding the UDP sockets failed.
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// webrtc-rs failed on a session.
    #[error("peer connection failed: {0}")]
    PeerConnection(String),
}
