//! The live side of a session: what the HTTP handlers read, under one short lock.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use crate::ladder::PlannedVariant;
use crate::live::{LiveConfig, LiveVariant, parse_media_name};
use crate::playlist::{BlockingRequest, RequestState, VariantInfo, render_master};
use crate::segmenter::SegmenterEvent;

/// A playlist request's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistAnswer {
    Ready(Bytes),
    /// Blocking reload: the asked part is not there yet.
    Wait,
    /// Blocking reload asked beyond the next two segments.
    TooFarAhead,
    NotFound,
}

struct LiveEntry {
    plan: PlannedVariant,
    live: LiveVariant,
    codecs: Option<String>,
    /// The media playlist as last rendered: rendered once per change, not per request.
    rendered: Option<Bytes>,
}

#[derive(Default)]
struct LiveState {
    variants: Vec<LiveEntry>,
    frame_rate: Option<f64>,
    master: Option<String>,
    ended: bool,
    ended_at: Option<std::time::Instant>,
}

/// A live stream's HLS as the HTTP side reads it.
pub struct LiveHls {
    state: Mutex<LiveState>,
    notify: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for LiveHls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHls").finish_non_exhaustive()
    }
}

impl LiveHls {
    /// `notify` is called after every change (a part, a segment, the end).
    pub fn new(notify: Box<dyn Fn() + Send + Sync>) -> LiveHls {
        LiveHls {
            state: Mutex::new(LiveState::default()),
            notify,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The master playlist, once every rendition has a complete segment.
    pub fn master(&self) -> Option<String> {
        self.lock().master.clone()
    }

    /// Whether the stream ended.
    pub fn is_ended(&self) -> bool {
        self.lock().ended
    }

    /// How long ago the stream ended (`None` while live).
    pub fn ended_for(&self) -> Option<Duration> {
        self.lock().ended_at.map(|t| t.elapsed())
    }

    /// The renditions' names, highest first.
    pub fn variant_names(&self) -> Vec<String> {
        self.lock()
            .variants
            .iter()
            .map(|v| v.plan.name.clone())
            .collect()
    }

    /// A rendition's media playlist, honouring a blocking reload request.
    pub fn playlist(&self, variant: &str, request: Option<&BlockingRequest>) -> PlaylistAnswer {
        let mut state = self.lock();
        let ended = state.ended;
        let Some(entry) = state.variants.iter_mut().find(|v| v.plan.name == variant) else {
            return PlaylistAnswer::NotFound;
        };
        if entry.live.last_msn().is_none() && !ended {
            // Nothing yet: a blocking request waits, a plain one finds nothing.
            return if request.is_some() {
                PlaylistAnswer::Wait
            } else {
                PlaylistAnswer::NotFound
            };
        }
        if let Some(request) = request {
            match entry.live.request_state(request) {
                RequestState::Ready => {}
                RequestState::Wait => return PlaylistAnswer::Wait,
                RequestState::TooFarAhead => return PlaylistAnswer::TooFarAhead,
            }
        }
        let text = entry
            .rendered
            .get_or_insert_with(|| Bytes::from(entry.live.render()));
        PlaylistAnswer::Ready(text.clone())
    }

    /// `init.mp4`, `seg{n}.m4s` or `seg{n}.{p}.m4s` of a rendition.
    pub fn resource(&self, variant: &str, name: &str) -> Option<Bytes> {
        let state = self.lock();
        let entry = state.variants.iter().find(|v| v.plan.name == variant)?;
        entry.live.resolve(name)
    }

    /// Whether `name` of `variant` could still appear (a preload hint's part): the caller
    /// may wait for it.
    pub fn may_appear(&self, variant: &str, name: &str) -> bool {
        let state = self.lock();
        if state.ended {
            return false;
        }
        let Some(entry) = state.variants.iter().find(|v| v.plan.name == variant) else {
            return false;
        };
        // The same rule as a blocking playlist reload for that part.
        let Some((msn, Some(part))) = parse_media_name(name) else {
            return false;
        };
        let request = BlockingRequest {
            msn,
            part: Some(part),
        };
        entry.live.request_state(&request) == RequestState::Wait
    }

    pub(super) fn set_variants(&self, plans: &[PlannedVariant], config: &LiveConfig) {
        let mut state = self.lock();
        state.variants = plans
            .iter()
            .map(|plan| LiveEntry {
                plan: plan.clone(),
                live: LiveVariant::with_config(*config),
                codecs: None,
                rendered: None,
            })
            .collect();
    }

    pub(super) fn apply(
        &self,
        index: usize,
        event: SegmenterEvent,
        codecs: &str,
        frame_rate: Option<f64>,
    ) {
        let mut state = self.lock();
        // The master changes only when a segment completes (its measured bandwidth).
        let segment = matches!(event, SegmenterEvent::Segment { .. });
        if let Some(entry) = state.variants.get_mut(index) {
            if entry.codecs.is_none() {
                entry.codecs = Some(codecs.to_owned());
            }
            entry.live.apply(event);
            entry.rendered = None;
        }
        if frame_rate.is_some() {
            state.frame_rate = frame_rate;
        }
        let ready = segment
            && !state.variants.is_empty()
            && state
                .variants
                .iter()
                .all(|v| v.live.segments_completed() > 0 && v.codecs.is_some());
        if ready {
            let infos: Vec<VariantInfo> = state
                .variants
                .iter()
                .map(|v| VariantInfo {
                    uri: format!("{}/index.m3u8", v.plan.name),
                    bandwidth_bps: v.live.peak_bandwidth_bps(),
                    average_bandwidth_bps: Some(v.live.average_bandwidth_bps()),
                    width: v.plan.width,
                    height: v.plan.height,
                    codecs: v.codecs.clone().unwrap_or_default(),
                    frame_rate: state.frame_rate,
                })
                .collect();
            state.master = Some(render_master(&infos));
        }
        drop(state);
        (self.notify)();
    }

    pub(super) fn end(&self) {
        let mut state = self.lock();
        state.ended = true;
        state.ended_at = Some(std::time::Instant::now());
        for v in &mut state.variants {
            v.live.mark_ended();
            v.rendered = None;
        }
        drop(state);
        (self.notify)();
    }
}
