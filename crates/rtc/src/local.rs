//! Publishers that are not WebRTC peers.
//!
//! RTMP and RTSP sources (greenroom-ingest) turn their media into RTP themselves and hand it to
//! the engine through a [`LocalPublisher`]. It takes the stream's single publisher slot like a
//! WHIP session, so viewers cannot tell the sources apart: every packet goes, once, to each
//! worker that hosts viewers of the stream, and the viewers' keyframe requests come back
//! through [`LocalPublisher::keyframe_request`].

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, watch};

use crate::engine::{Directory, StreamRoute};
use crate::metrics::Counters;
use crate::publisher::Publisher;
use crate::worker::MediaPacket;
use crate::{PublisherStats, RtcEvent, SessionId};
use greenroom_media::Codec;
use greenroom_sfu::{Layer, TrackKind};

/// How often the stats snapshot read by the API is refreshed.
const SNAPSHOT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// One RTP packet of a local source.
#[derive(Debug, Clone)]
pub struct LocalRtp {
    pub kind: TrackKind,
    pub codec: Codec,
    /// Simulcast layer; `Layer::High` for a single-layer source.
    pub layer: Layer,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Bytes,
}

/// What the engine keeps of a local publisher (in the directory, control path only).
#[derive(Debug)]
pub(crate) struct LocalEntry {
    pub session: SessionId,
    pub keyframes: mpsc::Sender<Layer>,
    pub stats: Arc<Mutex<Option<(bool, PublisherStats)>>>,
    pub close: watch::Sender<bool>,
}

/// A stream's publisher fed by the application instead of a peer connection.
pub struct LocalPublisher {
    session: SessionId,
    route: Arc<StreamRoute>,
    publisher: Publisher,
    medias: Vec<mpsc::Sender<Arc<MediaPacket>>>,
    keyframes: mpsc::Receiver<Layer>,
    stats: Arc<Mutex<Option<(bool, PublisherStats)>>>,
    closed: watch::Receiver<bool>,
    directory: Arc<Directory>,
    events: broadcast::Sender<RtcEvent>,
    created: Instant,
    last_snapshot: Option<Instant>,
    dropped: u64,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for LocalPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPublisher")
            .field("stream", &self.route.stream)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

pub(crate) struct LocalParts {
    pub session: SessionId,
    pub route: Arc<StreamRoute>,
    pub medias: Vec<mpsc::Sender<Arc<MediaPacket>>>,
    pub keyframes: mpsc::Receiver<Layer>,
    pub stats: Arc<Mutex<Option<(bool, PublisherStats)>>>,
    pub closed: watch::Receiver<bool>,
    pub directory: Arc<Directory>,
    pub events: broadcast::Sender<RtcEvent>,
    pub counters: Arc<Counters>,
}

impl LocalPublisher {
    pub(crate) fn new(parts: LocalParts) -> Self {
        let epoch = parts.route.epoch.load(Ordering::Acquire);
        parts.counters.publishers.fetch_add(1, Ordering::Relaxed);
        LocalPublisher {
            counters: parts.counters,
            session: parts.session,
            route: parts.route,
            publisher: Publisher::new(epoch),
            medias: parts.medias,
            keyframes: parts.keyframes,
            stats: parts.stats,
            closed: parts.closed,
            directory: parts.directory,
            events: parts.events,
            created: Instant::now(),
            last_snapshot: None,
            dropped: 0,
        }
    }

    /// Whether any WebRTC viewer is subscribed to the stream now (waiting ones included): a
    /// source may skip work only viewers would see.
    pub fn has_viewers(&self) -> bool {
        self.route.subscriber_workers.load(Ordering::Acquire) != 0
    }

    /// The session id (as shown in the stream's stats).
    pub fn session(&self) -> &SessionId {
        &self.session
    }

    /// Forwards one packet to every viewer of the stream. Never blocks: a worker whose queue
    /// is full misses the packet, as a congested link would.
    pub fn send(&mut self, rtp: LocalRtp) {
        let now = Instant::now();
        Counters::add(&self.counters.rtp_in_packets, 1);
        Counters::add(&self.counters.rtp_in_bytes, rtp.payload.len() as u64);
        let (media, became_live) = self.publisher.handle_local(
            &self.route.stream,
            rtp.kind,
            rtp.codec,
            rtp.layer,
            (rtp.sequence_number, rtp.timestamp, rtp.marker),
            rtp.payload,
            now,
        );
        if became_live {
            tracing::info!(stream = %self.route.stream, session = %self.session, "stream is live");
            let _ = self.events.send(RtcEvent::Live {
                stream: self.route.stream.to_string(),
            });
        }
        self.route.taps.offer(&media);
        let mask = self.route.subscriber_workers.load(Ordering::Acquire);
        if mask != 0 {
            let media = Arc::new(media);
            for (worker, tx) in self.medias.iter().enumerate() {
                if mask & (1 << worker) != 0 && tx.try_send(media.clone()).is_err() {
                    self.dropped += 1;
                    Counters::add(&self.counters.cross_worker_drops, 1);
                }
            }
        }
        if self
            .last_snapshot
            .is_none_or(|t| now.duration_since(t) >= SNAPSHOT_INTERVAL)
        {
            self.refresh_snapshot(now);
        }
    }

    /// Describes the source (protocol, what is transcoded) for the stream's stats.
    pub fn set_source(&mut self, source: crate::SourceInfo) {
        self.publisher.set_source(source);
        // Shown at once, not at the next packet.
        self.refresh_snapshot(Instant::now());
    }

    fn refresh_snapshot(&mut self, now: Instant) {
        self.last_snapshot = Some(now);
        let snapshot = self
            .publisher
            .stats(&self.session, now.duration_since(self.created), now);
        let live = self.publisher.is_live();
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = Some((live, snapshot));
    }

    /// A receiver that turns `true` when the engine ends this session; for tasks other than
    /// the one that owns the publisher.
    pub fn close_signal(&self) -> watch::Receiver<bool> {
        self.closed.clone()
    }

    /// A keyframe request from the viewers, if one is pending.
    pub fn poll_keyframe_request(&mut self) -> Option<Layer> {
        self.keyframes.try_recv().ok()
    }

    /// Waits for the next keyframe request from the viewers.
    pub async fn keyframe_request(&mut self) -> Option<Layer> {
        self.keyframes.recv().await
    }

    /// Resolves when the engine ends this session (stream ended, `DELETE`, shutdown).
    pub async fn closed(&mut self) {
        while !*self.closed.borrow() {
            if self.closed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether the engine has ended this session.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Packets a full worker queue refused so far.
    pub fn dropped_packets(&self) -> u64 {
        self.dropped
    }
}

impl Drop for LocalPublisher {
    fn drop(&mut self) {
        self.counters.publishers.fetch_sub(1, Ordering::Relaxed);
        self.directory.remove_local(&self.route, &self.session);
        tracing::info!(stream = %self.route.stream, session = %self.session, "local publisher left");
        let _ = self.events.send(RtcEvent::Idle {
            stream: self.route.stream.to_string(),
        });
    }
}
