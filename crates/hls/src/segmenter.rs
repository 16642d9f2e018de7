//! The segmenter of one variant (rendition): turns encoded samples into the fMP4 init
//! segment, LL-HLS parts (one movie fragment each) and segments (the concatenation of their
//! parts).
//!
//! Invariants:
//! - With a video track, segments start only where the caller cuts (a keyframe), except the
//!   first keyframe, which starts segment 0; video before it (and audio before it) is dropped.
//!   Without video, segments and parts are cut on the audio timeline.
//! - A part closes before a video sample that would make it exceed the part target, judged
//!   with the previous frame's duration; for constant-frame-rate input no part is longer than
//!   the part target.
//! - Media sequence numbers and part indices count up from 0 without gaps; fragment sequence
//!   numbers count up from 1 across parts.
//! - A segment's bytes are exactly its parts' bytes in order.
//! - No clock: wall-clock times come with the samples.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::fmp4::{self, VideoRun};
use crate::{AudioSample, AudioTrack, VIDEO_TIMESCALE, VideoSample, VideoTrack};

/// Durations the segmenter aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmenterConfig {
    /// Audio-only: segment length aimed at (never exceeded). With video the caller cuts.
    pub segment_target: Duration,
    /// Longest part (LL-HLS `PART-TARGET`).
    pub part_target: Duration,
}

impl Default for SegmenterConfig {
    fn default() -> SegmenterConfig {
        SegmenterConfig {
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(500),
        }
    }
}

/// What the segmenter produced, in order: `Init` once, then for each segment its `Part`s and
/// the `Segment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmenterEvent {
    /// The initialization segment (`init.mp4`).
    Init(Bytes),
    /// Part `index` of segment `msn`: one `moof` + `mdat`.
    Part {
        msn: u64,
        index: u32,
        /// Exact, from the timestamps.
        duration: Duration,
        /// The part starts with a keyframe (audio-only: always).
        independent: bool,
        data: Bytes,
    },
    /// Segment `msn` is complete.
    Segment {
        msn: u64,
        /// Exact, from the timestamps.
        duration: Duration,
        /// Wall clock (unix ms) of the segment's first sample.
        program_date_time_ms: i64,
        /// The concatenation of its parts, in order.
        data: Bytes,
        /// How many parts it has.
        parts: u32,
        /// Video samples in it (0 without video): with `duration`, the frame rate.
        video_frames: u32,
    },
}

/// A segment being built.
#[derive(Debug)]
struct OpenSegment {
    /// Track time (video dts or audio pts) of its first sample.
    start: i64,
    program_date_time_ms: i64,
    parts: Vec<Bytes>,
    video_frames: u32,
}

/// A part being built.
#[derive(Debug, Default)]
struct OpenPart {
    /// Track time (video dts or audio pts) of its first sample.
    start: i64,
    video: Vec<VideoSample>,
    audio: Vec<AudioSample>,
}

/// The segmenter of one variant. Feed it with [`push_video`](Self::push_video) /
/// [`push_audio`](Self::push_audio), end it with [`finish`](Self::finish), and drain
/// [`poll_event`](Self::poll_event) after each call.
#[derive(Debug)]
pub struct Segmenter {
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
    /// Ticks per second of the timeline segments are cut on (video's, else audio's).
    timescale: u32,
    part_target: i64,
    segment_target: i64,
    events: VecDeque<SegmenterEvent>,
    segment: Option<OpenSegment>,
    part: OpenPart,
    msn: u64,
    next_sequence_number: u32,
    last_dts: Option<i64>,
    last_frame_duration: Option<i64>,
    last_audio_pts: Option<i64>,
    finished: bool,
}

impl Segmenter {
    pub fn new(
        config: SegmenterConfig,
        video: Option<VideoTrack>,
        audio: Option<AudioTrack>,
    ) -> Segmenter {
        let timescale = match (&video, &audio) {
            (None, Some(audio)) => audio.sample_rate.max(1),
            _ => VIDEO_TIMESCALE,
        };
        Segmenter {
            video,
            audio,
            timescale,
            part_target: to_ticks(config.part_target, timescale).max(1),
            segment_target: to_ticks(config.segment_target, timescale).max(1),
            events: VecDeque::new(),
            segment: None,
            part: OpenPart::default(),
            msn: 0,
            next_sequence_number: 1,
            last_dts: None,
            last_frame_duration: None,
            last_audio_pts: None,
            finished: false,
        }
    }

    /// The next output, if any.
    pub fn poll_event(&mut self) -> Option<SegmenterEvent> {
        self.events.pop_front()
    }

    /// Adds a video access unit. `cut`: the caller starts a new segment here (honoured only
    /// on a keyframe). `wall_clock_ms`: when it was captured (unix ms), the program date-time
    /// of a segment it starts.
    ///
    /// Dropped (with a log line): samples without a video track, after [`finish`](Self::finish),
    /// with a negative or non-increasing `dts`, or with `pts - dts` outside `i32`.
    pub fn push_video(&mut self, sample: VideoSample, cut: bool, wall_clock_ms: i64) {
        if self.finished || self.video.is_none() {
            tracing::debug!(
                dts = sample.dts,
                "video sample dropped: no video track or ended"
            );
            return;
        }
        if let Err(reason) = self.check_video(&sample) {
            tracing::warn!(
                dts = sample.dts,
                pts = sample.pts,
                reason,
                "video sample dropped"
            );
            return;
        }
        if self.segment.is_none() {
            if !sample.keyframe {
                return; // waiting for the first keyframe
            }
            self.start(sample.dts, wall_clock_ms);
        } else {
            if cut && !sample.keyframe {
                tracing::debug!(dts = sample.dts, "cut ignored on a non-keyframe");
            }
            let frame = self.last_dts.map_or(0, |last| sample.dts - last);
            if cut && sample.keyframe {
                self.close_part(sample.dts);
                self.close_segment(sample.dts);
                self.open_segment(sample.dts, wall_clock_ms);
            } else if sample.dts - self.part.start + frame > self.part_target {
                self.close_part(sample.dts);
            }
            self.last_frame_duration = Some(frame);
        }
        if self.part.video.is_empty() && self.part.audio.is_empty() {
            self.part.start = sample.dts;
        }
        if let Some(segment) = self.segment.as_mut() {
            segment.video_frames += 1;
        }
        self.last_dts = Some(sample.dts);
        self.part.video.push(sample);
    }

    /// Adds an AAC frame to the open part (with video, once the first keyframe started
    /// segment 0). Without a video track, parts and segments are cut here.
    ///
    /// Dropped: frames without an audio track, after [`finish`](Self::finish), with a
    /// negative or non-increasing `pts`.
    pub fn push_audio(&mut self, sample: AudioSample, wall_clock_ms: i64) {
        if self.finished || self.audio.is_none() {
            tracing::debug!(
                pts = sample.pts,
                "audio sample dropped: no audio track or ended"
            );
            return;
        }
        if sample.pts < 0 || self.last_audio_pts.is_some_and(|last| sample.pts <= last) {
            tracing::warn!(
                pts = sample.pts,
                "audio sample dropped: negative or out of order"
            );
            return;
        }
        if u32::try_from(sample.data.len()).is_err() {
            tracing::warn!(pts = sample.pts, "audio sample dropped: too large");
            return;
        }
        self.last_audio_pts = Some(sample.pts);
        if self.video.is_some() {
            if self.segment.is_some() {
                self.part.audio.push(sample);
            }
            return;
        }
        match self.segment.as_ref().map(|s| s.start) {
            None => self.start(sample.pts, wall_clock_ms),
            Some(segment_start) => {
                let part_end = self.audio_part_end();
                let duration = i64::from(sample.duration);
                if part_end - self.part.start + duration > self.part_target {
                    self.close_part(part_end);
                    if part_end - segment_start + self.part_target > self.segment_target {
                        self.close_segment(part_end);
                        self.open_segment(sample.pts, wall_clock_ms);
                    }
                }
            }
        }
        if self.part.audio.is_empty() {
            self.part.start = sample.pts;
        }
        self.part.audio.push(sample);
    }

    /// End of stream: closes the open part and segment. Later samples are dropped.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.segment.is_none() {
            return;
        }
        let end = if self.video.is_some() {
            let last = self.last_dts.unwrap_or(self.part.start);
            // The last frame lasts as long as the one before it (1/30 s for a lone frame).
            let frame = self
                .last_frame_duration
                .filter(|d| *d > 0)
                .unwrap_or(i64::from(VIDEO_TIMESCALE / 30));
            last + frame
        } else {
            self.audio_part_end()
        };
        self.close_part(end);
        self.close_segment(end);
    }

    fn check_video(&self, sample: &VideoSample) -> Result<(), &'static str> {
        if sample.dts < 0 {
            return Err("negative dts");
        }
        if let Some(last) = self.last_dts {
            if sample.dts <= last {
                return Err("dts not increasing");
            }
            if u32::try_from(sample.dts - last).is_err() {
                return Err("dts jump beyond 32 bits");
            }
        }
        if sample
            .pts
            .checked_sub(sample.dts)
            .and_then(|offset| i32::try_from(offset).ok())
            .is_none()
        {
            return Err("pts - dts beyond 32 bits");
        }
        if u32::try_from(sample.data.len()).is_err() {
            return Err("sample too large");
        }
        Ok(())
    }

    /// Track time just past the open part's last audio frame (audio-only timeline).
    fn audio_part_end(&self) -> i64 {
        self.part
            .audio
            .last()
            .map_or(self.part.start, |last| last.pts + i64::from(last.duration))
    }

    /// The first sample: the init segment goes out and segment 0 opens.
    fn start(&mut self, time: i64, wall_clock_ms: i64) {
        let init = fmp4::init_segment(self.video.as_ref(), self.audio.as_ref());
        self.events.push_back(SegmenterEvent::Init(init));
        self.open_segment(time, wall_clock_ms);
    }

    fn open_segment(&mut self, start: i64, program_date_time_ms: i64) {
        self.segment = Some(OpenSegment {
            start,
            program_date_time_ms,
            parts: Vec::new(),
            video_frames: 0,
        });
    }

    /// Writes the open part as a fragment ending at track time `end`.
    fn close_part(&mut self, end: i64) {
        let part = std::mem::take(&mut self.part);
        let Some(segment) = self.segment.as_mut() else {
            return;
        };
        if part.video.is_empty() && part.audio.is_empty() {
            return;
        }
        let video = VideoRun {
            samples: &part.video,
            end_dts: end,
        };
        let data = match fmp4::fragment(self.next_sequence_number, video, &part.audio) {
            Ok(data) => data,
            Err(error) => {
                // Unreachable with the checks on input; keep going without this part.
                tracing::error!(%error, msn = self.msn, "part dropped: fragment not written");
                return;
            }
        };
        self.next_sequence_number = self.next_sequence_number.wrapping_add(1);
        let independent = part.video.first().is_none_or(|first| first.keyframe);
        let index = u32::try_from(segment.parts.len()).unwrap_or(u32::MAX);
        segment.parts.push(data.clone());
        self.events.push_back(SegmenterEvent::Part {
            msn: self.msn,
            index,
            duration: to_duration(end - part.start, self.timescale),
            independent,
            data,
        });
    }

    /// Emits the open segment, ending at track time `end`, and moves to the next msn.
    fn close_segment(&mut self, end: i64) {
        let Some(segment) = self.segment.take() else {
            return;
        };
        if segment.parts.is_empty() {
            return;
        }
        let len = segment.parts.iter().map(Bytes::len).sum();
        let mut data = BytesMut::with_capacity(len);
        for part in &segment.parts {
            data.extend_from_slice(part);
        }
        self.events.push_back(SegmenterEvent::Segment {
            msn: self.msn,
            duration: to_duration(end - segment.start, self.timescale),
            program_date_time_ms: segment.program_date_time_ms,
            data: data.freeze(),
            parts: u32::try_from(segment.parts.len()).unwrap_or(u32::MAX),
            video_frames: segment.video_frames,
        });
        self.msn += 1;
    }
}

/// `duration` in ticks of `timescale`, rounded down.
fn to_ticks(duration: Duration, timescale: u32) -> i64 {
    let ticks = duration.as_nanos() * u128::from(timescale) / 1_000_000_000;
    i64::try_from(ticks).unwrap_or(i64::MAX)
}

/// `ticks` of `timescale` as a duration (negative counts as zero), rounded down to the ns.
fn to_duration(ticks: i64, timescale: u32) -> Duration {
    let ticks = u128::try_from(ticks).unwrap_or(0);
    let nanos = ticks * 1_000_000_000 / u128::from(timescale.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmp4::reader::parse_fragment;
    use proptest::prelude::*;

    fn video_track() -> VideoTrack {
        VideoTrack {
            avc_config: Bytes::from_static(&[1, 0x42, 0xc0, 0x1f, 0xff, 0xe0, 0]),
            width: 640,
            height: 360,
        }
    }

    fn audio_track() -> AudioTrack {
        AudioTrack {
            asc: Bytes::from_static(&[0x11, 0x88]),
            sample_rate: 48_000,
            channels: 1,
        }
    }

    fn frame(dts: i64, keyframe: bool) -> VideoSample {
        VideoSample {
            data: Bytes::from(vec![if keyframe { 0x65 } else { 0x41 }; 10]),
            dts,
            pts: dts,
            keyframe,
        }
    }

    fn aac(pts: i64) -> AudioSample {
        AudioSample {
            data: Bytes::from_static(&[0x21, 0x10, 0x05]),
            pts,
            duration: 1024,
        }
    }

    #[derive(Debug, Default)]
    struct Output {
        inits: usize,
        /// (msn, index, duration, independent, data)
        parts: Vec<(u64, u32, Duration, bool, Bytes)>,
        /// (msn, duration, pdt, data, parts, frames)
        segments: Vec<(u64, Duration, i64, Bytes, u32, u32)>,
    }

    fn drain(segmenter: &mut Segmenter, out: &mut Output) {
        while let Some(event) = segmenter.poll_event() {
            match event {
                SegmenterEvent::Init(_) => out.inits += 1,
                SegmenterEvent::Part {
                    msn,
                    index,
                    duration,
                    independent,
                    data,
                } => out.parts.push((msn, index, duration, independent, data)),
                SegmenterEvent::Segment {
                    msn,
                    duration,
                    program_date_time_ms,
                    data,
                    parts,
                    video_frames,
                } => out.segments.push((
                    msn,
                    duration,
                    program_date_time_ms,
                    data,
                    parts,
                    video_frames,
                )),
            }
        }
    }

    /// Feeds `frames` CFR frames of `ticks` each (cut every `gop`), with 48 kHz audio
    /// interleaved, starting at `start` (90 kHz).
    fn run_cfr(ticks: i64, frames: i64, gop: i64, start: i64, with_audio: bool) -> Output {
        let audio = with_audio.then(audio_track);
        let mut segmenter = Segmenter::new(SegmenterConfig::default(), Some(video_track()), audio);
        let mut out = Output::default();
        let mut next_audio = start * 48_000 / 90_000;
        for i in 0..frames {
            let dts = start + i * ticks;
            let key = i % gop == 0;
            segmenter.push_video(frame(dts, key), key, 1_000 + dts / 90);
            while with_audio && next_audio * 90_000 / 48_000 <= dts {
                segmenter.push_audio(aac(next_audio), 0);
                next_audio += 1024;
            }
            drain(&mut segmenter, &mut out);
        }
        segmenter.finish();
        drain(&mut segmenter, &mut out);
        out
    }

    fn check_numbering(out: &Output) {
        assert_eq!(out.inits, 1);
        let mut expected_sequence = 1;
        let mut parts = out.parts.iter().peekable();
        for (position, segment) in out.segments.iter().enumerate() {
            assert_eq!(segment.0, position as u64, "msn without gaps");
            let mut concat = Vec::new();
            let mut total = Duration::ZERO;
            for index in 0..segment.4 {
                let part = parts.next().expect("part of the segment");
                assert_eq!((part.0, part.1), (segment.0, index));
                let fragment = parse_fragment(&part.4);
                assert_eq!(fragment.sequence_number, expected_sequence);
                expected_sequence += 1;
                concat.extend_from_slice(&part.4);
                total += part.2;
            }
            assert_eq!(&segment.3[..], &concat[..], "segment = its parts");
            let diff = segment.1.abs_diff(total);
            assert!(diff < Duration::from_micros(1) * segment.4, "{diff:?}");
        }
        assert!(parts.next().is_none(), "every part in a segment");
    }

    #[test]
    fn cfr_parts_stay_within_the_part_target() {
        for (fps, ticks) in [("25", 3600), ("30", 3000), ("29.97", 3003), ("60", 1500)] {
            let out = run_cfr(ticks, 600, 60, 0, true);
            check_numbering(&out);
            for part in &out.parts {
                assert!(
                    part.2 <= Duration::from_millis(500),
                    "{fps} fps: {:?}",
                    part.2
                );
            }
            let full = out
                .parts
                .iter()
                .filter(|p| p.2 > Duration::from_millis(400));
            assert!(
                full.count() >= out.parts.len() / 2,
                "{fps} fps parts fill up"
            );
        }
    }

    #[test]
    fn thirty_fps_gop_of_two_seconds() {
        let out = run_cfr(3000, 180, 60, 90_000, false);
        check_numbering(&out);
        assert_eq!(out.segments.len(), 3);
        for segment in &out.segments {
            assert_eq!(segment.1, Duration::from_secs(2));
            assert_eq!(segment.4, 4);
            assert_eq!(segment.5, 60);
        }
        assert_eq!(out.segments[0].2, 1_000 + 1_000);
        assert_eq!(out.segments[1].2, 1_000 + 3_000);
        let independent: Vec<bool> = out.parts.iter().map(|p| p.3).take(4).collect();
        assert_eq!(independent, [true, false, false, false]);
        assert!(out.parts.iter().all(|p| p.2 == Duration::from_millis(500)));
    }

    #[test]
    fn samples_before_the_first_keyframe_are_dropped() {
        let mut segmenter = Segmenter::new(
            SegmenterConfig::default(),
            Some(video_track()),
            Some(audio_track()),
        );
        segmenter.push_audio(aac(0), 0);
        segmenter.push_video(frame(0, false), true, 0);
        segmenter.push_video(frame(3000, false), false, 0);
        assert!(segmenter.poll_event().is_none());
        segmenter.push_video(frame(6000, true), false, 77);
        segmenter.push_audio(aac(4096), 0);
        segmenter.push_video(frame(9000, false), false, 0);
        segmenter.finish();
        let mut out = Output::default();
        drain(&mut segmenter, &mut out);
        check_numbering(&out);
        assert_eq!(out.segments.len(), 1);
        assert_eq!(out.segments[0].2, 77);
        assert_eq!(out.segments[0].5, 2);
        assert_eq!(out.segments[0].1, Duration::from_nanos(66_666_666));
        let fragment = parse_fragment(&out.parts[0].4);
        assert_eq!(fragment.trafs.len(), 2);
        assert_eq!(fragment.trafs[0].base_decode_time, 6000);
        assert_eq!(fragment.trafs[1].base_decode_time, 4096);
    }

    #[test]
    fn video_is_never_cut_without_the_caller() {
        // Keyframes every second but no cuts: one long segment of 500 ms parts.
        let mut segmenter = Segmenter::new(SegmenterConfig::default(), Some(video_track()), None);
        let mut out = Output::default();
        for i in 0..300 {
            segmenter.push_video(frame(i * 3000, i % 30 == 0), false, 0);
        }
        segmenter.finish();
        drain(&mut segmenter, &mut out);
        check_numbering(&out);
        assert_eq!(out.segments.len(), 1);
        assert_eq!(out.segments[0].1, Duration::from_secs(10));
        assert_eq!(out.parts.len(), 20);
        // Parts starting at a keyframe are independent.
        let independent = out.parts.iter().filter(|p| p.3).count();
        assert_eq!(independent, 10);
    }

    #[test]
    fn cut_on_a_non_keyframe_is_ignored() {
        let mut segmenter = Segmenter::new(SegmenterConfig::default(), Some(video_track()), None);
        for i in 0..10 {
            segmenter.push_video(frame(i * 3000, i == 0), true, 0);
        }
        segmenter.finish();
        let mut out = Output::default();
        drain(&mut segmenter, &mut out);
        assert_eq!(out.segments.len(), 1);
    }

    #[test]
    fn bad_timestamps_are_dropped() {
        let mut segmenter = Segmenter::new(
            SegmenterConfig::default(),
            Some(video_track()),
            Some(audio_track()),
        );
        segmenter.push_video(frame(-3000, true), true, 0);
        segmenter.push_video(frame(3000, true), true, 0);
        segmenter.push_video(frame(3000, false), false, 0);
        segmenter.push_video(frame(1000, false), false, 0);
        let mut late = frame(6000, false);
        late.pts = 6000 + i64::from(i32::MAX) + 1;
        segmenter.push_video(late, false, 0);
        segmenter.push_audio(aac(2048), 0);
        segmenter.push_audio(aac(2048), 0);
        segmenter.push_audio(aac(-1024), 0);
        segmenter.push_video(frame(6000, false), false, 0);
        segmenter.finish();
        segmenter.push_video(frame(9000, true), true, 0);
        segmenter.finish();
        let mut out = Output::default();
        drain(&mut segmenter, &mut out);
        check_numbering(&out);
        assert_eq!(out.segments.len(), 1);
        assert_eq!(out.segments[0].5, 2);
        let fragment = parse_fragment(&out.parts[0].4);
        assert_eq!(fragment.trafs[1].samples.len(), 1);
    }

    #[test]
    fn audio_only_cuts_on_its_own_timeline() {
        let mut segmenter = Segmenter::new(SegmenterConfig::default(), None, Some(audio_track()));
        let mut out = Output::default();
        for i in 0..500 {
            segmenter.push_audio(aac(i * 1024), 5_000 + i * 1024 / 48);
        }
        segmenter.finish();
        drain(&mut segmenter, &mut out);
        check_numbering(&out);
        assert!(out.segments.len() >= 5);
        for segment in &out.segments[..out.segments.len() - 1] {
            assert!(segment.1 <= Duration::from_secs(2), "{:?}", segment.1);
            assert!(segment.1 > Duration::from_millis(1900), "{:?}", segment.1);
            assert_eq!(segment.4, 4);
            assert_eq!(segment.5, 0);
        }
        assert!(out.parts.iter().all(|p| p.3));
        assert!(out.parts.iter().all(|p| p.2 <= Duration::from_millis(500)));
        // 23 frames of 1024 samples at 48 kHz.
        assert_eq!(out.parts[0].2, Duration::from_nanos(490_666_666));
        let total: Duration = out.segments.iter().map(|s| s.1).sum();
        let exact = Duration::from_nanos(500 * 1024 * 1_000_000_000 / 48_000);
        assert!(exact - total < Duration::from_nanos(10), "{total:?}");
        assert_eq!(out.segments[0].2, 5_000);
    }

    #[test]
    fn ticks_and_durations() {
        assert_eq!(to_ticks(Duration::from_millis(500), 90_000), 45_000);
        assert_eq!(to_ticks(Duration::from_millis(500), 44_100), 22_050);
        assert_eq!(to_duration(3003, 90_000), Duration::from_nanos(33_366_666));
        assert_eq!(to_duration(-5, 90_000), Duration::ZERO);
    }

    proptest! {
        #[test]
        fn cfr_part_durations_never_exceed_the_target(
            fps in prop::sample::select(vec![3600i64, 3000, 3003, 1500, 1800, 3750]),
            gop in 1i64..150,
            frames in 1i64..400,
            start in 0i64..1_000_000,
            part_ms in 100u64..1000,
            with_audio in any::<bool>(),
        ) {
            let audio = with_audio.then(audio_track);
            let config = SegmenterConfig {
                segment_target: Duration::from_secs(2),
                part_target: Duration::from_millis(part_ms),
            };
            let mut segmenter = Segmenter::new(config, Some(video_track()), audio);
            let mut out = Output::default();
            let mut next_audio = start * 48_000 / 90_000;
            for i in 0..frames {
                let dts = start + i * fps;
                let key = i % gop == 0;
                segmenter.push_video(frame(dts, key), key, 0);
                while with_audio && next_audio * 90_000 / 48_000 <= dts {
                    segmenter.push_audio(aac(next_audio), 0);
                    next_audio += 1024;
                }
            }
            segmenter.finish();
            drain(&mut segmenter, &mut out);
            check_numbering(&out);
            prop_assert_eq!(out.segments.len() as i64, (frames + gop - 1) / gop);
            for part in &out.parts {
                prop_assert!(part.2 <= Duration::from_millis(part_ms));
            }
            let frames_seen: u32 = out.segments.iter().map(|s| s.5).sum();
            prop_assert_eq!(i64::from(frames_seen), frames);
            for segment in &out.segments {
                prop_assert!(out.parts.iter().any(|p| p.0 == segment.0 && p.1 == 0 && p.3));
            }
        }

        #[test]
        fn audio_only_parts_and_segments_stay_within_targets(
            frames in 1i64..600,
            start in 0i64..1_000_000,
            part_ms in 100u64..1000,
            segment_parts in 1u64..6,
        ) {
            let config = SegmenterConfig {
                segment_target: Duration::from_millis(part_ms * segment_parts),
                part_target: Duration::from_millis(part_ms),
            };
            let mut segmenter = Segmenter::new(config, None, Some(audio_track()));
            let mut out = Output::default();
            for i in 0..frames {
                segmenter.push_audio(aac(start + i * 1024), 0);
            }
            segmenter.finish();
            drain(&mut segmenter, &mut out);
            check_numbering(&out);
            for part in &out.parts {
                prop_assert!(part.2 <= config.part_target);
            }
            for segment in &out.segments {
                prop_assert!(segment.1 <= config.segment_target);
            }
        }
    }
}
