//! The packager thread: frames in, the ladder's segments out.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use greenroom_media::SourceFrame;

use super::{HlsOptions, LiveHls, RecordEvent, Recorder, SourceKind};
use crate::avc::{split_access_unit, track_from_parameter_sets};
use crate::ladder::{PlannedVariant, plan};
use crate::live::LiveConfig;
use crate::segmenter::{Segmenter, SegmenterConfig, SegmenterEvent};
use crate::transcode::{EncodedPicture, OpusToAac, RungSpec, SourceCodec, VideoLadder};
use crate::{AudioSample, AudioTrack, VideoSample, VideoTrack};

/// Output timestamps start here (90 kHz), leaving room for B-frames' decode times.
const OFFSET_90K: i64 = 90_000;
/// How long video waits for the audio track's configuration before going without audio.
const AUDIO_WAIT_90K: i64 = 90_000 * 3 / 2;
/// How long a source that is encoded at every rendition is decoded before its size is taken.
const PLAN_AFTER_90K: i64 = 90_000 * 2;
/// ... and how long its size must have stayed the same (a simulcast tap moves to a higher
/// layer when the publisher's bandwidth estimate lets it send one).
const SIZE_SETTLED_90K: i64 = 90_000;
/// The latest the size is taken, settled or not.
const PLAN_LATEST_90K: i64 = 90_000 * 6;
/// Samples held for a rendition whose segmenter cannot start yet.
const MAX_PENDING: usize = 600;

struct Variant {
    plan: PlannedVariant,
    track: Option<VideoTrack>,
    segmenter: Option<Segmenter>,
    pending: Vec<(VideoSample, bool, i64)>,
    codecs: String,
}

struct VideoPath {
    ladder: VideoLadder,
    codec: SourceCodec,
    passthrough: bool,
    first_pts: i64,
    /// The decoded picture size and the pts it was first seen at (until the variants are
    /// planned).
    size_since: Option<((u32, u32), i64)>,
}

pub(super) struct Packager {
    stream: Arc<str>,
    options: HlsOptions,
    source: SourceKind,
    live: Arc<LiveHls>,
    recorder: Option<Box<dyn Recorder>>,
    /// Source pts of the first frame, and the wall clock (unix ms) it was packaged at.
    origin: Option<(i64, i64)>,
    video: Option<VideoPath>,
    video_failed: bool,
    variants: Vec<Variant>,
    audio_track: Option<AudioTrack>,
    opus: Option<OpusToAac>,
    /// Next audio pts (track samples) when contiguous.
    audio_next: Option<i64>,
    audio_backlog: VecDeque<(AudioSample, i64)>,
    last_cut: Option<i64>,
    pending_cuts: VecDeque<i64>,
    next_thumbnail: Option<i64>,
    encoded: Vec<EncodedPicture>,
    frames: u64,
    frames_first_pts: Option<i64>,
    frame_rate: Option<f64>,
}

impl Packager {
    pub(super) fn new(
        stream: Arc<str>,
        options: HlsOptions,
        source: SourceKind,
        live: Arc<LiveHls>,
        recorder: Option<Box<dyn Recorder>>,
    ) -> Packager {
        Packager {
            stream,
            options,
            source,
            live,
            recorder,
            origin: None,
            video: None,
            video_failed: false,
            variants: Vec::new(),
            audio_track: None,
            opus: None,
            audio_next: None,
            audio_backlog: VecDeque::new(),
            last_cut: None,
            pending_cuts: VecDeque::new(),
            next_thumbnail: None,
            encoded: Vec::new(),
            frames: 0,
            frames_first_pts: None,
            frame_rate: None,
        }
    }

    pub(super) fn run(&mut self, rx: Receiver<SourceFrame>) {
        tracing::info!(stream = %self.stream, "HLS packaging started");
        while let Ok(frame) = rx.recv() {
            self.handle(frame);
        }
        self.finish();
        tracing::info!(stream = %self.stream, "HLS packaging ended");
    }

    fn segment_target_90k(&self) -> i64 {
        (self.options.segment_target.as_millis() as i64) * 90
    }

    /// Source pts -> output timeline (90 kHz), and the wall clock of that instant.
    fn timeline(&mut self, pts: i64) -> (i64, i64) {
        let (origin, wall) = *self.origin.get_or_insert_with(|| (pts, unix_ms()));
        let t = pts - origin + OFFSET_90K;
        (t, wall + (t - OFFSET_90K) / 90)
    }

    fn handle(&mut self, frame: SourceFrame) {
        match frame {
            SourceFrame::H264 {
                data,
                pts_90k,
                dts_90k,
                keyframe,
            } => self.handle_video(SourceCodec::H264, data, pts_90k, dts_90k, keyframe),
            SourceFrame::Vp8 {
                data,
                pts_90k,
                keyframe,
            } => self.handle_video(SourceCodec::Vp8, data, pts_90k, pts_90k, keyframe),
            SourceFrame::AacConfig { asc } => self.handle_aac_config(asc),
            SourceFrame::Aac { data, pts_90k } => {
                let Some(track) = self.audio_track.clone() else {
                    return;
                };
                if self.opus.is_some() {
                    return;
                }
                let (t, wall) = self.timeline(pts_90k);
                let pts = t * i64::from(track.sample_rate) / 90_000;
                self.handle_audio(data, pts, 1024, wall);
            }
            SourceFrame::Opus { data, pts_90k } => {
                if self.audio_track.is_none() {
                    match OpusToAac::new() {
                        Ok(opus) => {
                            self.opus = Some(opus);
                            self.audio_track = Some(AudioTrack {
                                asc: Bytes::copy_from_slice(&OpusToAac::audio_specific_config()),
                                sample_rate: OpusToAac::sample_rate(),
                                channels: 2,
                            });
                        }
                        Err(error) => {
                            tracing::error!(stream = %self.stream, %error, "no AAC for HLS: audio left out");
                            self.audio_track = Some(AudioTrack {
                                asc: Bytes::new(),
                                sample_rate: 0,
                                channels: 0,
                            });
                        }
                    }
                }
                let (t, wall) = self.timeline(pts_90k);
                let Some(opus) = self.opus.as_mut() else {
                    return;
                };
                match opus.push(&data, t * 48_000 / 90_000) {
                    Ok(frames) => {
                        for frame in frames {
                            self.handle_audio(frame.data, frame.pts, 1024, wall);
                        }
                    }
                    Err(error) => {
                        tracing::debug!(stream = %self.stream, %error, "Opus packet skipped")
                    }
                }
            }
        }
    }

    fn handle_aac_config(&mut self, asc: Bytes) {
        match greenroom_media::aac::AudioSpecificConfig::parse(&asc) {
            Ok(config) => {
                let track = AudioTrack {
                    sample_rate: config.sample_rate(),
                    channels: u16::from(config.channels().unwrap_or(2)),
                    asc,
                };
                if self
                    .audio_track
                    .as_ref()
                    .is_some_and(|t| t.sample_rate != 0 && *t != track)
                {
                    tracing::warn!(stream = %self.stream, "AAC configuration changed mid-stream; kept the first");
                    return;
                }
                self.audio_track = Some(track);
            }
            Err(error) => {
                tracing::warn!(stream = %self.stream, %error, "bad AAC configuration: audio left out of HLS")
            }
        }
    }

    fn handle_audio(&mut self, data: Bytes, pts: i64, duration: u32, wall: i64) {
        let Some(track) = self.audio_track.as_ref().filter(|t| t.sample_rate > 0) else {
            return;
        };
        // Keep the track contiguous through timestamp jitter; resync on real gaps.
        let tolerance = i64::from(track.sample_rate) / 20;
        let pts = match self.audio_next {
            Some(next) if (pts - next).abs() <= tolerance => next,
            _ => pts,
        };
        self.audio_next = Some(pts + i64::from(duration));
        let sample = AudioSample {
            data,
            pts,
            duration,
        };
        let mut any = false;
        for index in 0..self.variants.len() {
            if let Some(segmenter) = self.variants[index].segmenter.as_mut() {
                segmenter.push_audio(sample.clone(), wall);
                any = true;
                self.drain(index);
            }
        }
        if !any {
            self.audio_backlog.push_back((sample, wall));
            while self.audio_backlog.len() > MAX_PENDING {
                self.audio_backlog.pop_front();
            }
        }
    }

    fn handle_video(
        &mut self,
        codec: SourceCodec,
        data: Bytes,
        pts: i64,
        dts: i64,
        keyframe: bool,
    ) {
        if self.video_failed {
            return;
        }
        let (t_pts, wall) = self.timeline(pts);
        let t_dts = t_pts - (pts - dts);
        if self.video.is_none() {
            if !keyframe {
                return;
            }
            let Some((width, height)) = source_size(codec, &data) else {
                tracing::debug!(stream = %self.stream, "keyframe without a readable size skipped");
                return;
            };
            let passthrough = codec == SourceCodec::H264 && self.source.passthrough;
            match VideoLadder::new(codec, Vec::new(), self.options.encoder.clone()) {
                Ok(ladder) => {
                    self.video = Some(VideoPath {
                        ladder,
                        codec,
                        passthrough,
                        first_pts: t_pts,
                        size_since: None,
                    });
                }
                Err(error) => {
                    tracing::error!(stream = %self.stream, %error, "HLS transcoder unavailable: no HLS for this stream");
                    self.video_failed = true;
                    return;
                }
            }
            // A passed-through source is planned from its SPS at once; others once their
            // size settles (see `plan_variants`).
            if passthrough && !self.plan_variants(width, height) {
                return;
            }
        }
        let Some(passthrough) = self
            .video
            .as_ref()
            .filter(|v| v.codec == codec)
            .map(|v| v.passthrough)
        else {
            return;
        };
        self.count_frame(t_pts);
        if passthrough {
            let cut = keyframe
                && self
                    .last_cut
                    .is_none_or(|last| t_pts - last >= self.segment_target_90k());
            if cut {
                self.last_cut = Some(t_pts);
                self.pending_cuts.push_back(t_pts);
            }
            let split = split_access_unit(&data);
            self.push_video(0, split, t_dts, t_pts, cut, wall);
        }
        let Some(video) = self.video.as_mut() else {
            return;
        };
        if let Err(error) = video.ladder.decode(&data, t_pts, t_dts) {
            tracing::debug!(stream = %self.stream, %error, "video frame not decoded");
        }
        loop {
            let Some(video) = self.video.as_mut() else {
                return;
            };
            let picture = match video.ladder.next_picture() {
                Ok(Some(pts)) => pts,
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(stream = %self.stream, %error, "video not decoded");
                    break;
                }
            };
            let passthrough = video.passthrough;
            let first_pts = video.first_pts;
            if self.variants.is_empty() {
                // WebRTC sources start small while their bandwidth estimate ramps up (and a
                // simulcast tap may start on a low layer): plan from what is decoded after a
                // while, once the size has stopped changing, not from the first keyframe.
                let Some(size) = video.ladder.picture_size() else {
                    continue;
                };
                let since = match video.size_since {
                    Some((seen, since)) if seen == size => since,
                    _ => {
                        video.size_since = Some((size, picture));
                        picture
                    }
                };
                let settled =
                    picture - first_pts >= PLAN_AFTER_90K && picture - since >= SIZE_SETTLED_90K;
                if !settled && picture - first_pts < PLAN_LATEST_90K {
                    continue;
                }
                let (width, height) = size;
                if !self.plan_variants(width, height) {
                    return;
                }
            }
            let cut = if passthrough {
                let mut cut = false;
                while self.pending_cuts.front().is_some_and(|c| *c <= picture) {
                    self.pending_cuts.pop_front();
                    cut = true;
                }
                cut
            } else {
                let cut = self
                    .last_cut
                    .is_none_or(|last| picture - last >= self.segment_target_90k());
                if cut {
                    self.last_cut = Some(picture);
                }
                cut
            };
            self.encoded.clear();
            let Some(video) = self.video.as_mut() else {
                return;
            };
            if let Err(error) = video.ladder.encode(cut, &mut self.encoded) {
                tracing::warn!(stream = %self.stream, %error, "HLS encode failed");
            }
            if cut && self.next_thumbnail.is_none_or(|next| picture >= next) {
                self.next_thumbnail =
                    Some(picture + self.options.thumbnail_every.as_millis() as i64 * 90);
                self.take_thumbnail();
            }
            let encoded = std::mem::take(&mut self.encoded);
            let picture_wall = self
                .origin
                .map_or(wall, |(_, w)| w + (picture - OFFSET_90K) / 90);
            for out in &encoded {
                let split = split_access_unit(&out.annexb);
                let pts = out.pts;
                self.push_video(
                    out.output,
                    split,
                    pts,
                    pts,
                    cut && out.keyframe,
                    picture_wall,
                );
            }
            self.encoded = encoded;
        }
    }

    /// Decides the renditions for a `width` x `height` source; false if HLS cannot be made.
    fn plan_variants(&mut self, width: u32, height: u32) -> bool {
        let Some(video) = self.video.as_mut() else {
            return false;
        };
        let passthrough = video.passthrough;
        let plans = plan(width, height, &self.options.ladder, passthrough);
        let rungs = plans
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.passthrough)
            .map(|(output, p)| RungSpec {
                output,
                width: p.width,
                height: p.height,
                bitrate_bps: p.video_bitrate_bps,
            })
            .collect();
        if let Err(error) = video.ladder.set_rungs(rungs) {
            tracing::error!(stream = %self.stream, %error, "HLS ladder refused: no HLS for this stream");
            self.video_failed = true;
            return false;
        }
        tracing::info!(stream = %self.stream, width, height, renditions = ?plans.iter().map(|p| &p.name).collect::<Vec<_>>(), passthrough, "HLS ladder");
        self.live.set_variants(
            &plans,
            &LiveConfig {
                window_segments: self.options.window_segments,
                segment_target: self.options.segment_target,
                part_target: self.options.part_target,
            },
        );
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.record(RecordEvent::Variants(plans.clone()));
        }
        self.variants = plans
            .into_iter()
            .map(|plan| Variant {
                plan,
                track: None,
                segmenter: None,
                pending: Vec::new(),
                codecs: String::new(),
            })
            .collect();
        true
    }

    fn count_frame(&mut self, pts: i64) {
        self.frames += 1;
        let first = *self.frames_first_pts.get_or_insert(pts);
        if self.frame_rate.is_none() && pts - first >= 90_000 * 2 && self.frames > 10 {
            let fps = (self.frames - 1) as f64 * 90_000.0 / (pts - first) as f64;
            // Snap to the usual rates when within 1 %.
            let snapped = [23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0]
                .into_iter()
                .filter(|r| (fps - r).abs() / r < 0.01)
                .min_by(|a, b| (fps - a).abs().total_cmp(&(fps - b).abs()))
                .unwrap_or(fps);
            self.frame_rate = Some(snapped);
        }
    }

    fn take_thumbnail(&mut self) {
        let Some(video) = self.video.as_mut() else {
            return;
        };
        match video.ladder.thumbnail(640) {
            Ok(Some(jpeg)) => {
                if let Some(recorder) = self.recorder.as_mut() {
                    recorder.record(RecordEvent::Thumbnail(jpeg));
                }
            }
            Ok(None) => {}
            Err(error) => tracing::debug!(stream = %self.stream, %error, "no thumbnail"),
        }
    }

    fn push_video(
        &mut self,
        index: usize,
        split: crate::avc::SplitAccessUnit,
        dts: i64,
        pts: i64,
        cut: bool,
        wall: i64,
    ) {
        let audio_ready = self.audio_track.is_some();
        let first_video = self.video.as_ref().map_or(dts, |v| v.first_pts);
        let Some(variant) = self.variants.get_mut(index) else {
            return;
        };
        if variant.track.is_none() && !split.sps.is_empty() && !split.pps.is_empty() {
            variant.track = track_from_parameter_sets(&split.sps, &split.pps);
        }
        let sample = VideoSample {
            data: split.avcc,
            dts,
            pts,
            keyframe: split.idr,
        };
        if variant.segmenter.is_none() {
            if variant.pending.is_empty() && !(sample.keyframe && cut) {
                return; // a rendition starts at a segment start
            }
            variant.pending.push((sample, cut, wall));
            if variant.pending.len() > MAX_PENDING {
                variant.pending.remove(0);
            }
            let waited = pts - first_video >= AUDIO_WAIT_90K;
            let Some(track) = variant.track.clone() else {
                return;
            };
            if !(audio_ready || waited) {
                return;
            }
            let audio = self.audio_track.clone().filter(|t| t.sample_rate > 0);
            variant.codecs = match &audio {
                Some(a) => format!("{},{}", track.codec_string(), a.codec_string()),
                None => track.codec_string(),
            };
            let config = SegmenterConfig {
                segment_target: self.options.segment_target,
                part_target: self.options.part_target,
            };
            let mut segmenter = Segmenter::new(config, Some(track), audio);
            let pending = std::mem::take(&mut variant.pending);
            let start = pending.first().map_or(0, |(s, _, _)| s.dts);
            for (sample, cut, wall) in pending {
                segmenter.push_video(sample, cut, wall);
            }
            if let Some(rate) = self.audio_track.as_ref().map(|t| i64::from(t.sample_rate)) {
                for (sample, wall) in &self.audio_backlog {
                    if sample.pts * 90_000 / rate.max(1) >= start {
                        segmenter.push_audio(sample.clone(), *wall);
                    }
                }
            }
            variant.segmenter = Some(segmenter);
            self.drain(index);
            return;
        }
        if let Some(segmenter) = variant.segmenter.as_mut() {
            segmenter.push_video(sample, cut, wall);
        }
        self.drain(index);
    }

    fn drain(&mut self, index: usize) {
        let Some(variant) = self.variants.get_mut(index) else {
            return;
        };
        let Some(segmenter) = variant.segmenter.as_mut() else {
            return;
        };
        while let Some(event) = segmenter.poll_event() {
            if let Some(recorder) = self.recorder.as_mut() {
                match &event {
                    SegmenterEvent::Init(data) => recorder.record(RecordEvent::Init {
                        variant: variant.plan.name.clone(),
                        codecs: variant.codecs.clone(),
                        data: data.clone(),
                    }),
                    SegmenterEvent::Segment {
                        msn,
                        duration,
                        program_date_time_ms,
                        data,
                        ..
                    } => recorder.record(RecordEvent::Segment {
                        variant: variant.plan.name.clone(),
                        msn: *msn,
                        duration: *duration,
                        program_date_time_ms: *program_date_time_ms,
                        data: data.clone(),
                    }),
                    SegmenterEvent::Part { .. } => {}
                }
            }
            self.live
                .apply(index, event, &variant.codecs, self.frame_rate);
        }
    }

    fn finish(&mut self) {
        for index in 0..self.variants.len() {
            if let Some(segmenter) = self.variants[index].segmenter.as_mut() {
                segmenter.finish();
            }
            self.drain(index);
        }
        self.live.end();
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.record(RecordEvent::Ended);
        }
    }
}

/// The coded size a keyframe announces (H.264: its SPS; VP8: its frame header).
fn source_size(codec: SourceCodec, data: &[u8]) -> Option<(u32, u32)> {
    match codec {
        SourceCodec::H264 => {
            let split = split_access_unit(data);
            let sps = split.sps.first()?;
            greenroom_media::h264::sps_resolution(sps)
        }
        SourceCodec::Vp8 => {
            // 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height.
            let header = data.get(3..10)?;
            if header[..3] != [0x9d, 0x01, 0x2a] {
                return None;
            }
            let width = u32::from(u16::from_le_bytes([header[3], header[4]]) & 0x3fff);
            let height = u32::from(u16::from_le_bytes([header[5], header[6]]) & 0x3fff);
            (width > 0 && height > 0).then_some((width, height))
        }
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
