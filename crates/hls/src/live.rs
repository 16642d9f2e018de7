//! The live window of one variant: the init segment, the last segments with their parts, the
//! parts of the segment in progress, and what the HTTP side asks of them (files by name,
//! the playlist, blocking reload states, bandwidth for the multivariant playlist).
//!
//! Invariants:
//! - The playlist lists the last `window_segments` complete segments; a segment leaving it
//!   stays fetchable for as long again (RFC 8216 §6.2.2), its parts do not.
//! - `EXT-X-TARGETDURATION` never decreases: it follows the longest segment ever seen.
//! - Fed only by [`SegmenterEvent`]s: no clock, no I/O.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::playlist::{
    BlockingRequest, INIT_NAME, LiveRenderOptions, RequestState, parse_decimal, render_live,
    rounded_secs,
};
use crate::segmenter::SegmenterEvent;

/// Sizes of the live window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveConfig {
    /// Complete segments listed in the playlist.
    pub window_segments: usize,
    /// The segmenter's segment target: the floor of `EXT-X-TARGETDURATION`.
    pub segment_target: Duration,
    /// The segmenter's part target (`PART-TARGET`).
    pub part_target: Duration,
}

impl Default for LiveConfig {
    fn default() -> LiveConfig {
        LiveConfig {
            window_segments: 6,
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(500),
        }
    }
}

/// A part held for serving.
#[derive(Debug, Clone)]
pub(crate) struct LivePart {
    pub index: u32,
    pub duration: Duration,
    pub independent: bool,
    pub data: Bytes,
}

/// A complete segment held for serving.
#[derive(Debug, Clone)]
pub(crate) struct LiveSegment {
    pub msn: u64,
    pub duration: Duration,
    pub program_date_time_ms: i64,
    pub data: Bytes,
    /// Emptied once the segment leaves the playlist.
    pub parts: Vec<LivePart>,
}

/// The live state of one variant, built from its segmenter's events.
#[derive(Debug)]
pub struct LiveVariant {
    config: LiveConfig,
    init: Option<Bytes>,
    /// The listed window and, before it, the segments still fetchable.
    segments: VecDeque<LiveSegment>,
    /// Parts of segment `pending_msn`, in progress.
    pending: Vec<LivePart>,
    pending_msn: u64,
    ended: bool,
    max_segment_duration: Duration,
    completed: u64,
    total_bytes: u64,
    total_duration: Duration,
    peak_bandwidth_bps: u64,
    video_frames: u64,
    video_duration: Duration,
}

impl LiveVariant {
    /// A window of `window_segments` segments (at least 1) with the default targets (2 s
    /// segments, 500 ms parts); use [`with_config`](Self::with_config) for others.
    pub fn new(window_segments: usize) -> LiveVariant {
        LiveVariant::with_config(LiveConfig {
            window_segments,
            ..LiveConfig::default()
        })
    }

    pub fn with_config(config: LiveConfig) -> LiveVariant {
        LiveVariant {
            config: LiveConfig {
                window_segments: config.window_segments.max(1),
                ..config
            },
            init: None,
            segments: VecDeque::new(),
            pending: Vec::new(),
            pending_msn: 0,
            ended: false,
            max_segment_duration: Duration::ZERO,
            completed: 0,
            total_bytes: 0,
            total_duration: Duration::ZERO,
            peak_bandwidth_bps: 0,
            video_frames: 0,
            video_duration: Duration::ZERO,
        }
    }

    /// Takes in one segmenter event.
    pub fn apply(&mut self, event: SegmenterEvent) {
        match event {
            SegmenterEvent::Init(data) => self.init = Some(data),
            SegmenterEvent::Part {
                msn,
                index,
                duration,
                independent,
                data,
            } => {
                if msn != self.pending_msn {
                    self.pending.clear();
                    self.pending_msn = msn;
                }
                self.pending.push(LivePart {
                    index,
                    duration,
                    independent,
                    data,
                });
            }
            SegmenterEvent::Segment {
                msn,
                duration,
                program_date_time_ms,
                data,
                parts: _,
                video_frames,
            } => {
                let parts = if msn == self.pending_msn {
                    std::mem::take(&mut self.pending)
                } else {
                    Vec::new()
                };
                self.pending.clear();
                self.pending_msn = msn.saturating_add(1);
                self.count(&data, duration, video_frames);
                self.segments.push_back(LiveSegment {
                    msn,
                    duration,
                    program_date_time_ms,
                    data,
                    parts,
                });
                let window = self.config.window_segments;
                // Listed window + the same again for clients still on an older playlist.
                while self.segments.len() > 2 * window + 1 {
                    self.segments.pop_front();
                }
                let unlisted = self.segments.len().saturating_sub(window);
                for old in self.segments.iter_mut().take(unlisted) {
                    old.parts = Vec::new();
                }
            }
        }
    }

    fn count(&mut self, data: &Bytes, duration: Duration, video_frames: u32) {
        self.completed += 1;
        self.max_segment_duration = self.max_segment_duration.max(duration);
        let bits = data.len() as u64 * 8;
        self.total_bytes += data.len() as u64;
        self.total_duration += duration;
        if let Some(bps) = bits_per_second(bits, duration) {
            self.peak_bandwidth_bps = self.peak_bandwidth_bps.max(bps);
        }
        if video_frames > 0 {
            self.video_frames += u64::from(video_frames);
            self.video_duration += duration;
        }
    }

    /// The stream ended: the playlist gets `EXT-X-ENDLIST` and blocking requests return.
    pub fn mark_ended(&mut self) {
        self.ended = true;
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn init(&self) -> Option<Bytes> {
        self.init.clone()
    }

    /// A complete segment still held.
    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        self.find(msn).map(|s| s.data.clone())
    }

    /// A part of the segment in progress or of a listed segment.
    pub fn part(&self, msn: u64, index: u32) -> Option<Bytes> {
        let parts = if msn == self.pending_msn {
            &self.pending[..]
        } else {
            &self.find(msn)?.parts[..]
        };
        parts
            .iter()
            .find(|p| p.index == index)
            .map(|p| p.data.clone())
    }

    fn find(&self, msn: u64) -> Option<&LiveSegment> {
        let first = self.segments.front()?.msn;
        let at = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(at).filter(|s| s.msn == msn)
    }

    /// The file behind a name of the playlist: `init.mp4`, `seg{msn}.m4s` or
    /// `seg{msn}.{part}.m4s` (plain decimal numbers, no leading zeros); anything else is
    /// `None`.
    pub fn resolve(&self, name: &str) -> Option<Bytes> {
        if name == INIT_NAME {
            return self.init();
        }
        match parse_media_name(name)? {
            (msn, None) => self.segment(msn),
            (msn, Some(index)) => self.part(msn, index),
        }
    }

    /// The msn of the last complete segment.
    pub fn last_msn(&self) -> Option<u64> {
        self.segments.back().map(|s| s.msn)
    }

    /// Complete segments since the start.
    pub fn segments_completed(&self) -> u64 {
        self.completed
    }

    /// The live media playlist with relative names and LL-HLS tags.
    pub fn render(&self) -> String {
        render_live(self, &LiveRenderOptions::default())
    }

    /// The live media playlist written with `options`.
    pub fn render_with(&self, options: &LiveRenderOptions) -> String {
        render_live(self, options)
    }

    /// How to answer a blocking playlist reload (RFC 8216bis §6.2.5.2).
    ///
    /// `Ready` once the stream ended, once segment `msn` is complete (whatever part was
    /// asked: a complete segment has all the parts it will ever have, and the playlist then
    /// shows the next one starting), or once part `part` (or a later one) of the segment in
    /// progress exists. `TooFarAhead` beyond the last complete segment plus two. Otherwise
    /// `Wait`. A preload-hint part request can use the same answer: `Wait` means it may
    /// still appear.
    pub fn request_state(&self, request: &BlockingRequest) -> RequestState {
        if self.ended {
            return RequestState::Ready;
        }
        let next = self.pending_msn;
        if request.msn > next.saturating_add(1) {
            return RequestState::TooFarAhead;
        }
        if request.msn < next {
            return RequestState::Ready;
        }
        match request.part {
            Some(part) if request.msn == next && self.pending.iter().any(|p| p.index >= part) => {
                RequestState::Ready
            }
            _ => RequestState::Wait,
        }
    }

    /// Peak bit rate: the most bits per second of any complete segment (0 before the first).
    pub fn peak_bandwidth_bps(&self) -> u64 {
        self.peak_bandwidth_bps
    }

    /// Average bit rate over every complete segment (0 before the first).
    pub fn average_bandwidth_bps(&self) -> u64 {
        bits_per_second(self.total_bytes * 8, self.total_duration).unwrap_or(0)
    }

    /// Video frames per second measured over the complete segments.
    pub fn frame_rate(&self) -> Option<f64> {
        let seconds = self.video_duration.as_secs_f64();
        (self.video_frames > 0 && seconds > 0.0).then(|| self.video_frames as f64 / seconds)
    }

    /// `EXT-X-TARGETDURATION`: the longest segment seen, at least the configured target,
    /// rounded up to whole seconds (at least 1).
    pub fn target_duration_secs(&self) -> u64 {
        rounded_secs(self.max_segment_duration.max(self.config.segment_target)).max(1)
    }

    pub(crate) fn part_target(&self) -> Duration {
        self.config.part_target
    }

    /// The msn of the segment in progress (the next one to complete).
    pub(crate) fn pending_msn(&self) -> u64 {
        self.pending_msn
    }

    pub(crate) fn pending_parts(&self) -> &[LivePart] {
        &self.pending
    }

    /// The complete segments the playlist lists, oldest first.
    pub(crate) fn listed_segments(&self) -> Vec<&LiveSegment> {
        let skip = self
            .segments
            .len()
            .saturating_sub(self.config.window_segments);
        self.segments.iter().skip(skip).collect()
    }
}

fn bits_per_second(bits: u64, duration: Duration) -> Option<u64> {
    let nanos = duration.as_nanos();
    (nanos > 0).then(|| {
        let bps = u128::from(bits) * 1_000_000_000 / nanos;
        u64::try_from(bps).unwrap_or(u64::MAX)
    })
}

/// `seg{msn}.m4s` -> `(msn, None)`, `seg{msn}.{part}.m4s` -> `(msn, Some(part))`.
pub(crate) fn parse_media_name(name: &str) -> Option<(u64, Option<u32>)> {
    let stem = name.strip_prefix("seg")?.strip_suffix(".m4s")?;
    let canonical = |digits: &str| digits == "0" || !digits.starts_with('0');
    match stem.split_once('.') {
        None => canonical(stem).then(|| parse_decimal(stem).map(|msn| (msn, None)))?,
        Some((msn, part)) => {
            if !canonical(msn) || !canonical(part) {
                return None;
            }
            Some((parse_decimal(msn)?, Some(parse_decimal(part)?)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn part(msn: u64, index: u32, ms: u64) -> SegmenterEvent {
        SegmenterEvent::Part {
            msn,
            index,
            duration: Duration::from_millis(ms),
            independent: index == 0,
            data: Bytes::from(format!("part {msn}.{index}")),
        }
    }

    /// Feeds `count` segments of four 500 ms parts, starting at msn 0.
    fn variant_with(count: u64, window: usize) -> LiveVariant {
        let mut live = LiveVariant::new(window);
        live.apply(SegmenterEvent::Init(Bytes::from_static(b"init")));
        for msn in 0..count {
            feed_segment(&mut live, msn, 4, 500);
        }
        live
    }

    fn feed_segment(live: &mut LiveVariant, msn: u64, parts: u32, ms: u64) {
        let mut data = Vec::new();
        for index in 0..parts {
            data.extend_from_slice(format!("part {msn}.{index}").as_bytes());
            live.apply(part(msn, index, ms));
        }
        live.apply(SegmenterEvent::Segment {
            msn,
            duration: Duration::from_millis(ms * u64::from(parts)),
            program_date_time_ms: 1_795_341_600_000 + msn as i64 * 2_000,
            data: Bytes::from(data),
            parts,
            video_frames: 60,
        });
    }

    #[test]
    fn names_resolve_strictly() {
        let mut live = variant_with(3, 6);
        live.apply(part(3, 0, 500));
        assert_eq!(live.resolve("init.mp4").as_deref(), Some(&b"init"[..]));
        assert_eq!(
            live.resolve("seg1.m4s").as_deref(),
            Some(&b"part 1.0part 1.1part 1.2part 1.3"[..])
        );
        assert_eq!(
            live.resolve("seg2.3.m4s").as_deref(),
            Some(&b"part 2.3"[..])
        );
        assert_eq!(
            live.resolve("seg3.0.m4s").as_deref(),
            Some(&b"part 3.0"[..])
        );
        assert_eq!(
            live.resolve("seg0.m4s").as_deref().map(<[u8]>::len),
            Some(32)
        );
        for bad in [
            "seg3.m4s",
            "seg3.1.m4s",
            "seg2.4.m4s",
            "seg01.m4s",
            "seg1.01.m4s",
            "seg+1.m4s",
            "seg-1.m4s",
            "seg.m4s",
            "seg1..m4s",
            "seg1.2.3.m4s",
            "seg1.m4s.m4s",
            "Seg1.m4s",
            "seg1.mp4",
            "../seg1.m4s",
            "init.m4s",
            "seg99999999999999999999.m4s",
            "",
        ] {
            assert_eq!(live.resolve(bad), None, "{bad}");
        }
    }

    #[test]
    fn window_lists_the_last_segments_and_keeps_older_ones_fetchable() {
        let live = variant_with(20, 6);
        assert_eq!(live.last_msn(), Some(19));
        assert_eq!(live.segments_completed(), 20);
        let text = live.render();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:14\n"), "{text}");
        assert_eq!(text.matches("#EXTINF:2.000,").count(), 6);
        // 2 x 6 + 1 segments kept; only listed ones keep their parts.
        assert!(live.segment(7).is_some());
        assert!(live.segment(6).is_none());
        assert!(live.part(13, 0).is_none());
        assert!(live.part(14, 0).is_some());
    }

    #[test]
    fn live_playlist_text() {
        let mut live = variant_with(4, 3);
        live.apply(part(4, 0, 500));
        live.apply(part(4, 1, 480));
        let expected = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
            #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500\n\
            #EXT-X-PART-INF:PART-TARGET=0.500\n#EXT-X-MEDIA-SEQUENCE:1\n\
            #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n\
            #EXT-X-PROGRAM-DATE-TIME:2026-11-22T10:00:02.000Z\n#EXTINF:2.000,\nseg1.m4s\n\
            #EXT-X-PROGRAM-DATE-TIME:2026-11-22T10:00:04.000Z\n\
            #EXT-X-PART:DURATION=0.500,URI=\"seg2.0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PART:DURATION=0.500,URI=\"seg2.1.m4s\"\n\
            #EXT-X-PART:DURATION=0.500,URI=\"seg2.2.m4s\"\n\
            #EXT-X-PART:DURATION=0.500,URI=\"seg2.3.m4s\"\n\
            #EXTINF:2.000,\nseg2.m4s\n\
            #EXT-X-PROGRAM-DATE-TIME:2026-11-22T10:00:06.000Z\n\
            #EXT-X-PART:DURATION=0.500,URI=\"seg3.0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PART:DURATION=0.500,URI=\"seg3.1.m4s\"\n\
            #EXT-X-PART:DURATION=0.500,URI=\"seg3.2.m4s\"\n\
            #EXT-X-PART:DURATION=0.500,URI=\"seg3.3.m4s\"\n\
            #EXTINF:2.000,\nseg3.m4s\n\
            #EXT-X-PART:DURATION=0.500,URI=\"seg4.0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PART:DURATION=0.480,URI=\"seg4.1.m4s\"\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg4.2.m4s\"\n";
        assert_eq!(live.render(), expected);

        let plain = live.render_with(&LiveRenderOptions {
            uri_prefix: "/hls/abc/".into(),
            low_latency: false,
        });
        assert!(!plain.contains("PART"), "{plain}");
        assert!(!plain.contains("SERVER-CONTROL"));
        assert!(plain.contains("#EXT-X-MAP:URI=\"/hls/abc/init.mp4\"\n"));
        assert!(plain.contains("\n/hls/abc/seg3.m4s\n"));

        live.mark_ended();
        let ended = live.render();
        assert!(
            ended.ends_with("#EXTINF:2.000,\nseg3.m4s\n#EXT-X-ENDLIST\n"),
            "{ended}"
        );
        assert!(!ended.contains("PRELOAD-HINT"));
        assert!(!ended.contains("#EXT-X-PART:"));
    }

    #[test]
    fn playlist_before_the_first_segment() {
        let mut live = LiveVariant::new(6);
        let text = live.render();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:0\n"));
        assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg0.0.m4s\"\n"));
        live.apply(part(0, 0, 500));
        assert!(live.render().ends_with(
            "#EXT-X-PART:DURATION=0.500,URI=\"seg0.0.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg0.1.m4s\"\n"
        ));
        assert_eq!(live.last_msn(), None);
        assert_eq!(live.peak_bandwidth_bps(), 0);
        assert_eq!(live.average_bandwidth_bps(), 0);
        assert_eq!(live.frame_rate(), None);
    }

    #[test]
    fn target_duration_follows_the_longest_segment_and_never_decreases() {
        let mut live = LiveVariant::new(2);
        assert_eq!(live.target_duration_secs(), 2);
        feed_segment(&mut live, 0, 5, 501);
        assert_eq!(live.target_duration_secs(), 3);
        for msn in 1..6 {
            feed_segment(&mut live, msn, 4, 500);
        }
        assert_eq!(live.target_duration_secs(), 3);
        assert!(live.render().contains("#EXT-X-TARGETDURATION:3\n"));
    }

    #[test]
    fn bandwidth_and_frame_rate() {
        let mut live = LiveVariant::new(6);
        let segment = |msn, bytes: usize, ms| SegmenterEvent::Segment {
            msn,
            duration: Duration::from_millis(ms),
            program_date_time_ms: 0,
            data: Bytes::from(vec![0; bytes]),
            parts: 0,
            video_frames: (ms * 30 / 1000) as u32,
        };
        live.apply(segment(0, 250_000, 2_000)); // 1 Mbit/s
        live.apply(segment(1, 750_000, 2_000)); // 3 Mbit/s
        assert_eq!(live.peak_bandwidth_bps(), 3_000_000);
        assert_eq!(live.average_bandwidth_bps(), 2_000_000);
        let rate = live.frame_rate().expect("rate");
        assert!((rate - 30.0).abs() < 1e-9);
    }

    #[test]
    fn blocking_states() {
        let mut live = variant_with(3, 6); // segments 0..=2 complete
        live.apply(part(3, 0, 500));
        live.apply(part(3, 1, 500));
        let state = |msn, part| live.request_state(&BlockingRequest { msn, part });
        assert_eq!(state(0, None), RequestState::Ready);
        assert_eq!(state(2, None), RequestState::Ready);
        assert_eq!(state(2, Some(9)), RequestState::Ready);
        assert_eq!(state(3, None), RequestState::Wait);
        assert_eq!(state(3, Some(0)), RequestState::Ready);
        assert_eq!(state(3, Some(1)), RequestState::Ready);
        assert_eq!(state(3, Some(2)), RequestState::Wait);
        assert_eq!(state(4, None), RequestState::Wait);
        assert_eq!(state(4, Some(0)), RequestState::Wait);
        assert_eq!(state(5, None), RequestState::TooFarAhead);
        assert_eq!(state(u64::MAX, Some(0)), RequestState::TooFarAhead);
        live.mark_ended();
        let state = |msn, part| live.request_state(&BlockingRequest { msn, part });
        assert_eq!(state(3, Some(2)), RequestState::Ready);
        assert_eq!(state(5, None), RequestState::Ready);
    }

    #[test]
    fn blocking_states_before_anything() {
        let live = LiveVariant::new(6);
        let state = |msn, part| live.request_state(&BlockingRequest { msn, part });
        assert_eq!(state(0, Some(0)), RequestState::Wait);
        assert_eq!(state(1, None), RequestState::Wait);
        assert_eq!(state(2, None), RequestState::TooFarAhead);
    }

    proptest! {
        /// Ready exactly when the asked segment or part (or a later part of that segment)
        /// exists; never Ready for something ahead; TooFarAhead only past last + 2.
        #[test]
        fn blocking_state_matches_what_exists(
            complete in 0u64..8,
            pending in 0u32..6,
            msn in 0u64..12,
            part in proptest::option::of(0u32..8),
            ended in any::<bool>(),
        ) {
            let mut live = variant_with(complete, 4);
            for index in 0..pending {
                live.apply(part_event(complete, index));
            }
            if ended {
                live.mark_ended();
            }
            let state = live.request_state(&BlockingRequest { msn, part });
            let exists = msn < complete
                || (msn == complete && part.is_some_and(|p| p < pending));
            let expected = if ended || exists {
                RequestState::Ready
            } else if msn > complete + 1 {
                RequestState::TooFarAhead
            } else {
                RequestState::Wait
            };
            prop_assert_eq!(state, expected);
            if state == RequestState::Ready && !ended && msn >= live.segments.front().map_or(0, |s| s.msn) {
                // What the client asked for can be fetched.
                let name = match part {
                    Some(p) if msn == complete => crate::playlist::part_name(msn, p),
                    _ => crate::playlist::segment_name(msn),
                };
                prop_assert!(live.resolve(&name).is_some(), "{}", name);
            }
        }

        #[test]
        fn resolve_never_panics(name in "\\PC{0,24}") {
            let live = variant_with(2, 6);
            let _ = live.resolve(&name);
        }
    }

    fn part_event(msn: u64, index: u32) -> SegmenterEvent {
        part(msn, index, 500)
    }
}
