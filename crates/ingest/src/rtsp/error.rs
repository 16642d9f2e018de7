//! Why an RTSP session did not start or stopped.

use std::time::Duration;

use thiserror::Error;

/// Errors of one RTSP session (or of the source URL). The messages carry no credentials.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RtspError {
    /// The URL does not parse or is not `rtsp://`/`rtsps://` with a host.
    #[error("invalid RTSP URL: {reason}")]
    InvalidUrl { reason: String },
    /// `rtsps://` (RTSP over TLS) is valid but the RTSP client does not speak it yet.
    #[error("{scheme}:// is not supported yet: use rtsp://")]
    UnsupportedScheme { scheme: String },
    /// retina's error (connection, RTSP status, depacketization), with its context.
    #[error("{0}")]
    Rtsp(retina::Error),
    /// The server's description offers neither H.264 video nor AAC audio.
    #[error("no H.264 video or AAC audio in the stream (found: {found})")]
    NoUsableMedia { found: String },
    /// `DESCRIBE`/`SETUP`/`PLAY` did not finish in time.
    #[error("the RTSP server did not answer within {0:?}")]
    ConnectTimeout(Duration),
    /// Nothing arrived for this long while playing.
    #[error("no media for {0:?}: session dropped")]
    Stalled(Duration),
    /// The server ended the session.
    #[error("the RTSP server ended the session")]
    Ended,
    /// Another publisher (WHIP, RTMP) holds the stream.
    #[error("the stream already has a live publisher")]
    StreamBusy,
    /// The engine refused the publisher or ended it (stream ended, shutdown).
    #[error("engine: {0}")]
    Engine(String),
}

impl RtspError {
    /// Whether retrying cannot help: the puller then stops in the `failed` phase.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            RtspError::InvalidUrl { .. } | RtspError::UnsupportedScheme { .. }
        )
    }

    /// Whether the server refused the credentials (retried at the longest delay).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, RtspError::Rtsp(e) if e.status_code() == Some(401))
    }
}
