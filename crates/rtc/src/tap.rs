//! In-process subscribers of a stream's published RTP (the HLS transcoder, the recorder).
//!
//! A [`StreamTap`] sees every packet the publisher sends, on every layer, before any viewer's
//! rewriting: no peer connection, no encryption, no extra network hop. The publisher's worker
//! (or local publisher) checks one atomic per packet; only when a tap exists does it take the
//! route's tap list lock, which only tap creation and removal contend for, and `try_send`s to
//! each tap's bounded queue. A tap that falls behind loses packets (counted) rather than
//! slowing the publisher; it sees the gap in sequence numbers and asks for a keyframe.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use greenroom_media::Codec;
use greenroom_sfu::{Layer, LayerSet, TrackKind};

use crate::engine::{Shared, StreamRoute};
use crate::worker::MediaPacket;

/// Packets queued per tap before newer ones are dropped.
const TAP_QUEUE: usize = 4096;

/// One RTP packet of the stream's publisher, as sent.
#[derive(Debug, Clone)]
pub struct TappedPacket {
    /// Changes with every new publisher session (timestamps and sequence numbers restart).
    pub epoch: u64,
    pub kind: TrackKind,
    pub codec: Codec,
    pub layer: Layer,
    /// Layers the publisher sends right now.
    pub available: LayerSet,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Bytes,
}

/// One tap's queue and its drop counter, by tap id.
type TapEntry = (u64, SyncSender<TappedPacket>, Arc<AtomicU64>);

/// The taps of one stream, kept on its route.
#[derive(Debug, Default)]
pub(crate) struct Taps {
    /// Number of taps: the only thing the media path reads when there are none.
    count: AtomicU64,
    senders: Mutex<Vec<TapEntry>>,
}

impl Taps {
    /// Hands a copy of `media` to every tap (a clone of its payload handle, no byte copy).
    pub(crate) fn offer(&self, media: &MediaPacket) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        for (_, tx, dropped) in senders.iter() {
            let packet = TappedPacket {
                epoch: media.epoch,
                kind: media.kind,
                codec: media.codec,
                layer: media.layer,
                available: media.available,
                sequence_number: media.sequence_number,
                timestamp: media.timestamp,
                marker: media.marker,
                payload: media.payload.clone(),
            };
            if let Err(TrySendError::Full(_)) = tx.try_send(packet) {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn add(&self, id: u64, tx: SyncSender<TappedPacket>, dropped: Arc<AtomicU64>) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders.push((id, tx, dropped));
        self.count.store(senders.len() as u64, Ordering::Release);
    }

    fn remove(&self, id: u64) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders.retain(|(i, _, _)| *i != id);
        self.count.store(senders.len() as u64, Ordering::Release);
    }
}

/// An in-process subscriber of one stream's published RTP. Dropping it unsubscribes.
pub struct StreamTap {
    id: u64,
    route: Arc<StreamRoute>,
    shared: Arc<Shared>,
    rx: Receiver<TappedPacket>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for StreamTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTap")
            .field("stream", &self.route.stream)
            .finish_non_exhaustive()
    }
}

static NEXT_TAP: AtomicU64 = AtomicU64::new(1);

impl StreamTap {
    pub(crate) fn new(shared: Arc<Shared>, route: Arc<StreamRoute>) -> StreamTap {
        let (tx, rx) = sync_channel(TAP_QUEUE);
        let id = NEXT_TAP.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::new(AtomicU64::new(0));
        route.taps.add(id, tx, dropped.clone());
        StreamTap {
            id,
            route,
            shared,
            rx,
            dropped,
        }
    }

    /// The stream tapped.
    pub fn stream(&self) -> &str {
        &self.route.stream
    }

    /// The next packet, waiting at most `timeout` (`None` on timeout or engine shutdown).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<TappedPacket> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Asks the publisher for a keyframe on `layer` (throttled like a viewer's request).
    pub fn request_keyframe(&self, layer: Layer) {
        self.shared.request_keyframe(&self.route, layer);
    }

    /// Packets lost because this tap's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for StreamTap {
    fn drop(&mut self) {
        self.route.taps.remove(self.id);
    }
}
