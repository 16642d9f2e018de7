//! What a puller reports: its phase, its last error, how often it reconnected.

use serde::Serialize;

/// How RTP travels from the RTSP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RtspTransport {
    /// Interleaved in the RTSP TCP connection (the default; works through NAT and firewalls).
    #[default]
    Tcp,
    /// RTP/RTCP over UDP ports (LAN only: no reordering, no receiver reports).
    Udp,
}

impl RtspTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            RtspTransport::Tcp => "tcp",
            RtspTransport::Udp => "udp",
        }
    }

    /// `tcp` or `udp` (ASCII case-insensitive).
    pub fn parse(value: &str) -> Option<RtspTransport> {
        match value.to_ascii_lowercase().as_str() {
            "tcp" => Some(RtspTransport::Tcp),
            "udp" => Some(RtspTransport::Udp),
            _ => None,
        }
    }
}

/// Where a puller is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourcePhase {
    /// `DESCRIBE`/`SETUP`/`PLAY` in progress.
    Connecting,
    /// A session plays and holds the stream's publisher slot.
    Playing,
    /// Waiting before the next attempt.
    Backoff,
    /// Stopped for good by an error retrying cannot fix (e.g. an unsupported URL scheme).
    Failed,
    /// Stopped by its owner (stream ended, server shutting down).
    Stopped,
}

impl SourcePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            SourcePhase::Connecting => "connecting",
            SourcePhase::Playing => "playing",
            SourcePhase::Backoff => "backoff",
            SourcePhase::Failed => "failed",
            SourcePhase::Stopped => "stopped",
        }
    }
}

/// The puller's state, published through a `watch` channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceState {
    pub phase: SourcePhase,
    /// Why the last session failed or ended (kept while the next one plays).
    pub last_error: Option<String>,
    /// Connection attempts after the first.
    pub reconnects: u64,
}

impl SourceState {
    /// The state before the first attempt.
    pub fn connecting() -> SourceState {
        SourceState {
            phase: SourcePhase::Connecting,
            last_error: None,
            reconnects: 0,
        }
    }
}

impl Default for SourceState {
    fn default() -> Self {
        SourceState::connecting()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_parse_and_print() {
        assert_eq!(RtspTransport::parse("TCP"), Some(RtspTransport::Tcp));
        assert_eq!(RtspTransport::parse("udp"), Some(RtspTransport::Udp));
        assert_eq!(RtspTransport::parse("http"), None);
        assert_eq!(RtspTransport::Udp.as_str(), "udp");
        assert_eq!(RtspTransport::default(), RtspTransport::Tcp);
    }

    #[test]
    fn phases_serialize_as_their_names() {
        for phase in [
            SourcePhase::Connecting,
            SourcePhase::Playing,
            SourcePhase::Backoff,
            SourcePhase::Failed,
            SourcePhase::Stopped,
        ] {
            let json = serde_json::to_value(phase).unwrap_or_default();
            assert_eq!(json, phase.as_str());
        }
    }
}
