//! Live events for a stream's creator (a tip paid, ...), fanned out in-process to whoever
//! listens on `GET /api/v1/streams/{id}/events`. A bounded broadcast per stream: a listener
//! that falls behind skips events rather than holding anyone up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for a slow listener before it starts skipping.
const CAPACITY: usize = 64;

/// One event on a stream's live feed.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A tip was paid.
    Tip {
        tip_id: String,
        amount_minor: i64,
        currency: String,
        /// What reaches the creator after the platform fee.
        creator_minor: i64,
        message: Option<String>,
        from: String,
        paid_at: String,
    },
}

impl LiveEvent {
    /// The SSE event name (`tip`).
    pub fn name(&self) -> &'static str {
        match self {
            LiveEvent::Tip { .. } => "tip",
        }
    }
}

/// Per-stream broadcast channels; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LiveEvents {
    streams: Arc<Mutex<HashMap<String, broadcast::Sender<LiveEvent>>>>,
}

impl LiveEvents {
    /// Listens to `stream`'s events from now on.
    pub fn subscribe(&self, stream: &str) -> broadcast::Receiver<LiveEvent> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams
            .entry(stream.to_owned())
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    /// Sends `event` to `stream`'s listeners (none: dropped). Channels nobody listens to any
    /// more are removed.
    pub fn publish(&self, stream: &str, event: LiveEvent) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = streams.get(stream) {
            if sender.receiver_count() == 0 {
                streams.remove(stream);
            } else {
                let _ = sender.send(event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tip(id: &str) -> LiveEvent {
        LiveEvent::Tip {
            tip_id: id.to_owned(),
            amount_minor: 500,
            currency: "usd".to_owned(),
            creator_minor: 475,
            message: None,
            from: "viewer".to_owned(),
            paid_at: String::new(),
        }
    }

    #[tokio::test]
    async fn listeners_of_a_stream_get_its_events_only() {
        let events = LiveEvents::default();
        let mut a = events.subscribe("a");
        let mut b = events.subscribe("b");
        events.publish("a", tip("t1"));
        match a.recv().await {
            Ok(LiveEvent::Tip { tip_id, .. }) => assert_eq!(tip_id, "t1"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(b.try_recv().is_err());
    }

    #[test]
    fn a_stream_nobody_listens_to_is_forgotten() {
        let events = LiveEvents::default();
        drop(events.subscribe("a"));
        events.publish("a", tip("t1"));
        assert!(
            events
                .streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
        );
    }
}
