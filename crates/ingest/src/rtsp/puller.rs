//! The puller task: connect, play into the engine, back off, again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use greenroom_rtc::{RtcEngine, RtcError, SourceProtocol};
use retina::client::{
    PlayOptions, Session, SessionGroup, SessionOptions, SetupOptions, TcpTransportOptions,
    TeardownPolicy, Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bridge::{BridgeOptions, FlvBridge};
use crate::rtsp::{Backoff, RtspError, RtspTransport, SourcePhase, SourceState, SourceUrl};

/// Annex B H.264 with parameter sets before every keyframe (what the RTP packetizer and the
/// re-encoder take) and raw AAC frames (the `AudioSpecificConfig` comes from the SDP).
const FRAME_FORMAT: FrameFormat = FrameFormat {
    aac_framing: retina::codec::aac::Framing::Raw,
    ..FrameFormat::SIMPLE
};

/// Timing of a puller; [`Default`] is what the server uses.
#[derive(Clone)]
pub struct PullerOptions {
    /// First reconnect delay (1 s); doubles after each failure.
    pub min_backoff: Duration,
    /// Longest reconnect delay (30 s).
    pub max_backoff: Duration,
    /// Play this long and the delay starts from `min_backoff` again (60 s).
    pub healthy_after: Duration,
    /// Longest `DESCRIBE` + `SETUP` + `PLAY` (10 s).
    pub connect_timeout: Duration,
    /// Longest silence while playing (10 s).
    pub stall_timeout: Duration,
    /// Transcode the video into a three-layer simulcast ladder.
    pub simulcast_ladder: bool,
    /// Where each session's frames go besides WebRTC (HLS, recording).
    pub frames: Option<crate::SharedFrameTaps>,
}

impl std::fmt::Debug for PullerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullerOptions")
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("simulcast_ladder", &self.simulcast_ladder)
            .field("frames", &self.frames.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for PullerOptions {
    fn default() -> Self {
        PullerOptions {
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            healthy_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(10),
            simulcast_ladder: false,
            frames: None,
        }
    }
}

/// A running RTSP pull into one stream. Dropping it stops the pull (the task ends on its own,
/// tearing the session down); [`RtspPuller::stop`] also waits for that.
#[derive(Debug)]
pub struct RtspPuller {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RtspPuller {
    /// Starts pulling `url` into `stream` with the default timing. `url` may carry
    /// credentials (`rtsp://user:pass@host/path`). The state is published on `state`.
    pub fn spawn(
        engine: RtcEngine,
        stream: &str,
        url: &str,
        transport: RtspTransport,
        state: watch::Sender<SourceState>,
    ) -> RtspPuller {
        RtspPuller::spawn_with(
            engine,
            stream,
            url,
            transport,
            state,
            PullerOptions::default(),
        )
    }

    /// [`RtspPuller::spawn`] with explicit timing.
    pub fn spawn_with(
        engine: RtcEngine,
        stream: &str,
        url: &str,
        transport: RtspTransport,
        state: watch::Sender<SourceState>,
        options: PullerOptions,
    ) -> RtspPuller {
        let (stop, stop_rx) = watch::channel(false);
        let puller = Puller {
            engine,
            stream: stream.to_owned(),
            transport,
            state,
            options,
        };
        let url = SourceUrl::parse(url);
        let span = tracing::info_span!("rtsp", stream = %stream);
        let task = tokio::spawn(tracing::Instrument::instrument(
            puller.run(url, stop_rx),
            span,
        ));
        RtspPuller {
            stop,
            task: Some(task),
        }
    }

    /// Stops the pull and waits until the session is torn down and the stream's publisher
    /// slot is free.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RtspPuller {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Puller {
    engine: RtcEngine,
    stream: String,
    transport: RtspTransport,
    state: watch::Sender<SourceState>,
    options: PullerOptions,
}

/// Resolves once `stop` turns `true` (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// How a session went: how long it played (if it did) and why it ended.
struct SessionEnd {
    played: Option<Duration>,
    error: RtspError,
}

impl Puller {
    async fn run(self, url: Result<SourceUrl, RtspError>, mut stop: watch::Receiver<bool>) {
        let url = match url.and_then(|url| {
            if url.scheme() == "rtsp" {
                Ok(url)
            } else {
                Err(RtspError::UnsupportedScheme {
                    scheme: url.scheme().to_owned(),
                })
            }
        }) {
            Ok(url) => url,
            Err(error) => {
                self.fail(error, &mut stop).await;
                return;
            }
        };
        tracing::info!(url = %url.redacted(), transport = self.transport.as_str(), "RTSP pull starting");
        let group = Arc::new(SessionGroup::default());
        let mut backoff = Backoff::new(
            self.options.min_backoff,
            self.options.max_backoff,
            self.options.healthy_after,
        );
        let mut first = true;
        loop {
            self.state.send_modify(|state| {
                state.phase = SourcePhase::Connecting;
                if !first {
                    state.reconnects += 1;
                }
            });
            first = false;
            let end = tokio::select! {
                biased;
                () = stopped(&mut stop) => break,
                end = self.session(&url, &group) => end,
            };
            if end.error.is_permanent() {
                self.fail(end.error, &mut stop).await;
                return;
            }
            let delay = if end.error.is_unauthorized() {
                backoff.delay_long()
            } else {
                backoff.delay_after(end.played)
            };
            tracing::warn!(error = %end.error, played = ?end.played, retry_in = ?delay, "RTSP session ended");
            self.state.send_modify(|state| {
                state.phase = SourcePhase::Backoff;
                state.last_error = Some(end.error.to_string());
            });
            tokio::select! {
                biased;
                () = stopped(&mut stop) => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        self.state
            .send_modify(|state| state.phase = SourcePhase::Stopped);
        tracing::info!("RTSP pull stopped");
    }

    /// Reports a permanent error, then waits to be stopped.
    async fn fail(&self, error: RtspError, stop: &mut watch::Receiver<bool>) {
        tracing::error!(%error, "RTSP pull failed for good");
        self.state.send_modify(|state| {
            state.phase = SourcePhase::Failed;
            state.last_error = Some(error.to_string());
        });
        stopped(stop).await;
        self.state
            .send_modify(|state| state.phase = SourcePhase::Stopped);
    }

    /// One session: connect, take the publisher slot, feed the bridge until something ends it.
    async fn session(&self, url: &SourceUrl, group: &Arc<SessionGroup>) -> SessionEnd {
        let not_played = |error| SessionEnd {
            played: None,
            error,
        };
        let connect_timeout = self.options.connect_timeout;
        let mut demuxed =
            match tokio::time::timeout(connect_timeout, self.connect(url, group)).await {
                Ok(Ok(demuxed)) => demuxed,
                Ok(Err(error)) => return not_played(error),
                Err(_) => return not_played(RtspError::ConnectTimeout(connect_timeout)),
            };
        let publisher = match self.engine.publish_local(&self.stream) {
            Ok(publisher) => publisher,
            Err(RtcError::StreamBusy { .. }) => return not_played(RtspError::StreamBusy),
            Err(error) => return not_played(RtspError::Engine(error.to_string())),
        };
        let mut closed = publisher.close_signal();
        let mut bridge = FlvBridge::start(
            &self.stream,
            SourceProtocol::Rtsp,
            publisher,
            BridgeOptions {
                simulcast_ladder: self.options.simulcast_ladder,
                frames: self
                    .options
                    .frames
                    .as_ref()
                    .and_then(|taps| taps.open(&self.stream, SourceProtocol::Rtsp)),
            },
        );
        let since = Instant::now();
        self.state
            .send_modify(|state| state.phase = SourcePhase::Playing);
        tracing::info!("RTSP session playing");

        let mut aac_config_sent = false;
        let stall = self.options.stall_timeout;
        let error = loop {
            let item = tokio::select! {
                _ = closed.wait_for(|closed| *closed) => {
                    break RtspError::Engine("the engine ended the publisher".to_owned());
                }
                item = tokio::time::timeout(stall, demuxed.next()) => item,
            };
            match item {
                Err(_) => break RtspError::Stalled(stall),
                Ok(None) => break RtspError::Ended,
                Ok(Some(Err(error))) => break RtspError::Rtsp(error),
                Ok(Some(Ok(CodecItem::VideoFrame(frame)))) => {
                    let pts_90k = frame.timestamp().elapsed();
                    bridge.h264_annexb(pts_90k, Bytes::from(frame.into_data()));
                }
                Ok(Some(Ok(CodecItem::AudioFrame(frame)))) => {
                    if !aac_config_sent {
                        let params = demuxed
                            .streams()
                            .get(frame.stream_id())
                            .and_then(|stream| stream.parameters());
                        if let Some(ParametersRef::Audio(params)) = params {
                            bridge.aac_config(Bytes::copy_from_slice(params.extra_data()));
                            aac_config_sent = true;
                        }
                    }
                    let timestamp = frame.timestamp();
                    let clock = i64::from(timestamp.clock_rate().get());
                    let pts_ms = timestamp.elapsed() * 1000 / clock;
                    bridge.aac_raw(pts_ms, Bytes::copy_from_slice(frame.data()));
                }
                Ok(Some(Ok(_))) => {} // RTCP, ONVIF metadata
            }
        };
        let played = since.elapsed();
        // Dropping the session tears it down (retina's `TeardownPolicy::Auto`, in the
        // background); the bridge drains and frees the publisher slot before we go on.
        drop(demuxed);
        let _ = tokio::task::spawn_blocking(move || bridge.finish()).await;
        SessionEnd {
            played: Some(played),
            error,
        }
    }

    /// `DESCRIBE`, `SETUP` of the first H.264 and the first AAC stream, `PLAY`.
    async fn connect(
        &self,
        url: &SourceUrl,
        group: &Arc<SessionGroup>,
    ) -> Result<retina::client::Demuxed, RtspError> {
        let options = SessionOptions::default()
            .creds(url.credentials())
            .user_agent(format!("greenroom/{}", env!("CARGO_PKG_VERSION")))
            .session_group(group.clone())
            .teardown(TeardownPolicy::Auto);
        let mut session = Session::describe(url.url().clone(), options)
            .await
            .map_err(RtspError::Rtsp)?;
        let streams = session.streams();
        let video = streams
            .iter()
            .position(|s| s.media() == "video" && s.encoding_name() == "h264");
        let audio = streams
            .iter()
            .position(|s| s.media() == "audio" && s.encoding_name() == "mpeg4-generic");
        if video.is_none() && audio.is_none() {
            let found = streams
                .iter()
                .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(RtspError::NoUsableMedia { found });
        }
        let transport = match self.transport {
            RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
            RtspTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
        };
        for index in [video, audio].into_iter().flatten() {
            session
                .setup(
                    index,
                    SetupOptions::default()
                        .transport(transport.clone())
                        .frame_format(FRAME_FORMAT),
                )
                .await
                .map_err(RtspError::Rtsp)?;
        }
        let playing = session
            .play(PlayOptions::default())
            .await
            .map_err(RtspError::Rtsp)?;
        playing.demuxed().map_err(RtspError::Rtsp)
    }
}
