//! The RTSP pulls of streams that have a source: one [`RtspPuller`] per open stream with a
//! source, started when the server starts and when such a stream is created, stopped when the
//! stream ends or the server shuts down. The API reads each pull's state from here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use greenroom_control::{ControlError, SourceTransport, Store, Stream, StreamSource};
use greenroom_ingest::rtsp::{PullerOptions, RtspPuller, RtspTransport, SourcePhase, SourceState};
use greenroom_rtc::RtcEngine;
use serde::Serialize;
use tokio::sync::watch;

/// A stream's source as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    /// The source URL with its password masked.
    pub url: String,
    pub transport: &'static str,
    /// `connecting`, `playing`, `backoff`, `failed` or `stopped`.
    pub state: &'static str,
    pub last_error: Option<String>,
    pub reconnects: u64,
}

struct Pull {
    puller: RtspPuller,
    state: watch::Receiver<SourceState>,
}

/// The running pulls, by stream id; cheap to clone. The lock is never held across an await.
#[derive(Clone)]
pub struct Sources {
    engine: RtcEngine,
    pulls: Arc<Mutex<HashMap<String, Pull>>>,
    frames: Option<greenroom_ingest::SharedFrameTaps>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("pulls", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl Sources {
    pub fn new(engine: RtcEngine) -> Sources {
        Sources {
            engine,
            pulls: Arc::new(Mutex::new(HashMap::new())),
            frames: None,
        }
    }

    /// Pulls whose frames also go to `frames` (HLS, recording).
    pub fn with_frame_taps(
        engine: RtcEngine,
        frames: greenroom_ingest::SharedFrameTaps,
    ) -> Sources {
        Sources {
            frames: Some(frames),
            ..Sources::new(engine)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pull>> {
        self.pulls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts pulling `stream`'s source, unless it has none, has ended or is pulled already.
    /// Needs a tokio runtime.
    pub fn start(&self, stream: &Stream) {
        let Some(source) = &stream.source else {
            return;
        };
        if stream.is_ended() {
            return;
        }
        let mut pulls = self.lock();
        if pulls.contains_key(&stream.id) {
            return;
        }
        let (tx, rx) = watch::channel(SourceState::connecting());
        let transport = match source.transport {
            SourceTransport::Tcp => RtspTransport::Tcp,
            SourceTransport::Udp => RtspTransport::Udp,
        };
        let puller = RtspPuller::spawn_with(
            self.engine.clone(),
            &stream.id,
            &source.url,
            transport,
            tx,
            PullerOptions {
                simulcast_ladder: stream.simulcast_ladder,
                frames: self.frames.clone(),
                ..PullerOptions::default()
            },
        );
        pulls.insert(stream.id.clone(), Pull { puller, state: rx });
    }

    /// Starts the pulls of every open stream with a source; returns how many.
    pub async fn start_open(&self, store: &Store) -> Result<usize, ControlError> {
        let streams = store.open_streams_with_sources().await?;
        for stream in &streams {
            self.start(stream);
        }
        Ok(streams.len())
    }

    /// Stops the pull of `stream` (if any) and waits until its session is torn down and the
    /// stream's publisher slot is free.
    pub async fn stop(&self, stream: &str) {
        let pull = self.lock().remove(stream);
        if let Some(pull) = pull {
            pull.puller.stop().await;
        }
    }

    /// Stops every pull (server shutdown).
    pub async fn shutdown(&self) {
        let pulls: Vec<Pull> = self.lock().drain().map(|(_, pull)| pull).collect();
        for pull in pulls {
            pull.puller.stop().await;
        }
    }

    /// How `stream`'s source is doing, for the API; `None` when it has no source.
    pub fn view(&self, stream: &Stream) -> Option<SourceView> {
        let source = stream.source.as_ref()?;
        let state = if stream.is_ended() {
            None
        } else {
            self.lock()
                .get(&stream.id)
                .map(|pull| pull.state.borrow().clone())
        };
        Some(source_view(source, state))
    }
}

fn source_view(source: &StreamSource, state: Option<SourceState>) -> SourceView {
    let state = state.unwrap_or(SourceState {
        phase: SourcePhase::Stopped,
        last_error: None,
        reconnects: 0,
    });
    SourceView {
        url: greenroom_ingest::rtsp::redacted_url(&source.url),
        transport: source.transport.as_str(),
        state: state.phase.as_str(),
        last_error: state.last_error,
        reconnects: state.reconnects,
    }
}
