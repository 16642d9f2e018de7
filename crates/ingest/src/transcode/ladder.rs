use ffmpeg_next::{Packet, decoder, frame};
use greenroom_rtc::Layer;

use super::error::{Stage, TranscodeError};
use super::h264_reencoder::{
    EncodedFrame, Keyint, PtsClock, Scaler, X264Encoder, X264Settings, check_bitrate,
    check_encoder_threads, check_keyframe_interval, check_preset, open_h264_decoder,
    receive_picture, scale, send_access_unit, source_frame_rate,
};
use super::init;

/// Largest width or height of a rung (and of what [`LadderRung::default_ladder`] makes).
const MAX_DIMENSION: u32 = 4096;
/// The pixel count the default bitrates are given for (1280x720).
const REFERENCE_PIXELS: f64 = 1280.0 * 720.0;

/// One layer of a [`SimulcastLadder`]: its size and bitrate. `Send + Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LadderRung {
    /// The simulcast layer (rid q/h/f) this rung is sent as.
    pub layer: Layer,
    /// Output width, even, 2..=4096.
    pub width: u32,
    /// Output height, even, 2..=4096.
    pub height: u32,
    /// Average bitrate, 50 kbit/s..50 Mbit/s; also the VBV max rate, with a one-second buffer.
    pub bitrate_bps: u32,
}

impl LadderRung {
    /// The usual three rungs for a source: q = 1/4, h = 1/2 and f = the source size (each
    /// rounded down to even, at least 2 px, never above the source; a source larger than
    /// 4096 px is first fitted into 4096x4096). Lowest layer first.
    ///
    /// Bitrates are 150 kbit/s, 500 kbit/s and 2.5 Mbit/s for a 1280x720 source, scaled by
    /// the source's pixel count and clamped to 50..600 kbit/s, 100 kbit/s..2 Mbit/s and
    /// 300 kbit/s..6 Mbit/s.
    pub fn default_ladder(source_width: u32, source_height: u32) -> Vec<LadderRung> {
        let (w, h) = (f64::from(source_width), f64::from(source_height));
        let fit = (f64::from(MAX_DIMENSION) / w.max(h).max(1.0)).min(1.0);
        let (w, h) = (w * fit, h * fit);
        // Saturating float-to-int casts; a degenerate source still gets 2x2 rungs.
        let even = |x: f64| ((x as u32) & !1).clamp(2, MAX_DIMENSION);
        let pixels_ratio = f64::from(even(w)) * f64::from(even(h)) / REFERENCE_PIXELS;
        let rung =
            |layer, divisor: f64, bps_at_720p: f64, (min_bps, max_bps): (f64, f64)| LadderRung {
                layer,
                width: even(w / divisor),
                height: even(h / divisor),
                bitrate_bps: (bps_at_720p * pixels_ratio).clamp(min_bps, max_bps) as u32,
            };
        vec![
            rung(Layer::Low, 4.0, 150_000.0, (50_000.0, 600_000.0)),
            rung(Layer::Mid, 2.0, 500_000.0, (100_000.0, 2_000_000.0)),
            rung(Layer::High, 1.0, 2_500_000.0, (300_000.0, 6_000_000.0)),
        ]
    }

    /// Why this rung is invalid, if it is.
    fn check(&self) -> Option<String> {
        let Self {
            layer,
            width,
            height,
            bitrate_bps,
        } = *self;
        if ![width, height]
            .iter()
            .all(|d| (2..=MAX_DIMENSION).contains(d) && d % 2 == 0)
        {
            return Some(format!(
                "rung {layer}: {width}x{height} must be even and 2..={MAX_DIMENSION}"
            ));
        }
        check_bitrate(bitrate_bps).map(|reason| format!("rung {layer}: {reason}"))
    }
}

/// How every rung of a [`SimulcastLadder`] encodes. `Send + Clone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadderOptions {
    /// An x264 preset: "ultrafast", "superfast" (default), "veryfast", ...
    pub preset: String,
    /// An IDR on every rung at least every this many frames (1..=1000, default 60).
    pub max_keyframe_interval_frames: u32,
    /// libx264 threads per rung: 1 (default) encodes on the calling thread, the cheapest in
    /// total CPU; 0 lets x264 pick.
    pub encoder_threads: u32,
}

impl Default for LadderOptions {
    fn default() -> Self {
        LadderOptions {
            preset: "superfast".to_owned(),
            max_keyframe_interval_frames: 60,
            encoder_threads: 1,
        }
    }
}

/// Decodes H.264 once (B-frames allowed) and encodes it again at every rung of a simulcast
/// ladder, for an RTMP or RTSP source offered to WebRTC viewers as layers q, h and f.
///
/// Each rung gets the decoded picture scaled by swscale (bilinear, from the full picture) and
/// its own libx264 encoder: constrained baseline, no B-frames, `tune=zerolatency` (one frame
/// in, one frame out), SPS and PPS in-band before every IDR.
///
/// Invariants:
/// - every rung encodes every decoded picture, with the same pts (the input's presentation
///   time, made strictly increasing): frame `n` of one rung is frame `n` of the others;
/// - IDRs are aligned: libx264 never decides one itself (`keyint=infinite`, `scenecut=0`);
///   the ladder forces one on every rung together on the first picture, every
///   [`LadderOptions::max_keyframe_interval_frames`], on [`request_keyframe`] and after an
///   encode error, so a viewer can switch layers at any IDR;
/// - output is in presentation order, grouped by picture, lowest layer first within one.
///
/// Rung sizes are fixed at construction: a source whose size changes is scaled (stretched if
/// its aspect ratio changed) to them; build a new ladder from
/// [`LadderRung::default_ladder`] to follow it.
///
/// **Not `Send`** (swscale's context): create it on the thread that runs it, after checking
/// the `Send` rungs and options with [`SimulcastLadder::validate`] if you want the error first.
///
/// [`request_keyframe`]: SimulcastLadder::request_keyframe
pub struct SimulcastLadder {
    options: LadderOptions,
    decoder: decoder::Video,
    decoded: frame::Video,
    rungs: Vec<RungEncoder>,
    packet: Packet,
    clock: PtsClock,
    keyframe_requested: bool,
    /// Pictures encoded since the last IDR, that one included; `None` before the first.
    frames_since_idr: Option<u32>,
}

/// One rung's scaler and encoder. The encoders of all rungs are open, or none is.
struct RungEncoder {
    rung: LadderRung,
    scaler: Option<Scaler>,
    encoder: Option<X264Encoder>,
}

impl std::fmt::Debug for SimulcastLadder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulcastLadder")
            .field("options", &self.options)
            .field("rungs", &self.rungs().collect::<Vec<_>>())
            .field("keyframe_requested", &self.keyframe_requested)
            .field("frames_since_idr", &self.frames_since_idr)
            .field("last_pts_ms", &self.clock.last_ms())
            .finish_non_exhaustive()
    }
}

impl SimulcastLadder {
    /// Checks rungs and options the way [`SimulcastLadder::new`] does: 1 to 3 rungs of
    /// distinct layers, each even and 2..=4096 px with a bitrate of 50 kbit/s..50 Mbit/s; a
    /// known preset, an interval of 1..=1000 frames, at most 16 threads.
    pub fn validate(rungs: &[LadderRung], options: &LadderOptions) -> Result<(), TranscodeError> {
        let layers = || {
            if rungs.is_empty() {
                return Some("a ladder needs at least one rung".to_owned());
            }
            let duplicate = rungs
                .iter()
                .enumerate()
                .find(|(i, r)| rungs[..*i].iter().any(|o| o.layer == r.layer));
            duplicate.map(|(_, r)| format!("layer {} appears twice in the ladder", r.layer))
        };
        match layers()
            .or_else(|| rungs.iter().find_map(LadderRung::check))
            .or_else(|| check_preset(&options.preset))
            .or_else(|| check_keyframe_interval(options.max_keyframe_interval_frames))
            .or_else(|| check_encoder_threads(options.encoder_threads))
        {
            Some(reason) => Err(TranscodeError::InvalidOptions { reason }),
            None => Ok(()),
        }
    }

    /// Opens the H.264 decoder. The encoders open on the first decoded picture, when the
    /// source's frame rate is known. Rungs are kept lowest layer first.
    pub fn new(
        mut rungs: Vec<LadderRung>,
        options: LadderOptions,
    ) -> Result<SimulcastLadder, TranscodeError> {
        init();
        SimulcastLadder::validate(&rungs, &options)?;
        let decoder = open_h264_decoder()?;
        rungs.sort_by_key(|r| r.layer);
        Ok(SimulcastLadder {
            options,
            decoder,
            decoded: frame::Video::empty(),
            rungs: rungs
                .into_iter()
                .map(|rung| RungEncoder {
                    rung,
                    scaler: None,
                    encoder: None,
                })
                .collect(),
            packet: Packet::empty(),
            clock: PtsClock::default(),
            keyframe_requested: false,
            frames_since_idr: None,
        })
    }

    /// The rungs, lowest layer first.
    pub fn rungs(&self) -> impl Iterator<Item = &LadderRung> {
        self.rungs.iter().map(|r| &r.rung)
    }

    /// Decodes one Annex-B access unit (SPS/PPS in-band before the first IDR; units pushed in
    /// decode order, B-frames allowed) whose presentation time is `pts_ms`, and returns what
    /// the rungs' encoders produced: per rung in presentation order, delayed only by the
    /// decoder's reorder depth.
    ///
    /// An error concerns this access unit only (corrupt data, or an encoder refusing a
    /// picture); the next push may succeed. Frames encoded during a failed push are lost, so
    /// the next picture is then an IDR on every rung.
    pub fn push(
        &mut self,
        annexb_access_unit: &[u8],
        pts_ms: i64,
    ) -> Result<Vec<(Layer, EncodedFrame)>, TranscodeError> {
        send_access_unit(&mut self.decoder, annexb_access_unit, pts_ms)?;
        let mut out = Vec::new();
        self.drain_decoder(pts_ms, &mut out)?;
        Ok(out)
    }

    /// Makes the next picture an IDR (with SPS/PPS) on every rung, at the same pts: on a PLI
    /// or a viewer joining or switching layers.
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// Drains the decoder's reorder buffer and the encoders. The stream may continue
    /// afterwards (a new publisher session): the decoder then waits for an IDR and every rung
    /// restarts with one.
    pub fn flush(&mut self) -> Result<Vec<(Layer, EncodedFrame)>, TranscodeError> {
        let pts_ms = self.clock.last_ms().unwrap_or(0);
        let mut out = Vec::new();
        self.decoder
            .send_eof()
            .map_err(TranscodeError::frame(Stage::DecodeH264, pts_ms))?;
        self.drain_decoder(pts_ms, &mut out)?;
        self.decoder.flush();
        for rung in &mut self.rungs {
            if let Some(encoder) = rung.encoder.take() {
                let layer = rung.rung.layer;
                encoder.finish(&mut self.packet, pts_ms, &mut |f| out.push((layer, f)))?;
            }
        }
        self.clock.reset();
        self.frames_since_idr = None;
        Ok(out)
    }

    fn drain_decoder(
        &mut self,
        pts_ms: i64,
        out: &mut Vec<(Layer, EncodedFrame)>,
    ) -> Result<(), TranscodeError> {
        while receive_picture(&mut self.decoder, &mut self.decoded, pts_ms)? {
            if let Err(error) = self.encode_decoded(pts_ms, out) {
                // Some rungs may have encoded this picture, and the frames are dropped with
                // the error: restart every rung's references together.
                self.keyframe_requested = true;
                return Err(error);
            }
        }
        Ok(())
    }

    /// Scales and encodes `self.decoded` on every rung. `push_pts_ms` names the push in
    /// errors.
    fn encode_decoded(
        &mut self,
        push_pts_ms: i64,
        out: &mut Vec<(Layer, EncodedFrame)>,
    ) -> Result<(), TranscodeError> {
        if self.decoded.width() < 2 || self.decoded.height() < 2 {
            return Ok(());
        }
        let pts = self.clock.next(&self.decoded, push_pts_ms);
        if self.rungs.iter().any(|r| r.encoder.is_none()) {
            self.open_encoders()?;
        }
        let interval = self.options.max_keyframe_interval_frames;
        let idr = std::mem::take(&mut self.keyframe_requested)
            || self.frames_since_idr.is_none_or(|n| n >= interval);
        for rung in &mut self.rungs {
            let layer = rung.rung.layer;
            let size = (rung.rung.width, rung.rung.height);
            let Some(encoder) = rung.encoder.as_mut() else {
                continue;
            };
            let picture = scale(&mut rung.scaler, &mut self.decoded, size, pts)?;
            encoder.encode(picture, pts, idr, &mut self.packet, &mut |f| {
                out.push((layer, f));
            })?;
        }
        self.frames_since_idr = Some(match self.frames_since_idr {
            Some(n) if !idr => n + 1,
            _ => 1,
        });
        Ok(())
    }

    /// Opens every rung's encoder (after construction or a flush, all are closed).
    fn open_encoders(&mut self) -> Result<(), TranscodeError> {
        let frame_rate = source_frame_rate(&self.decoder);
        for rung in &mut self.rungs {
            let settings = X264Settings {
                preset: &self.options.preset,
                bitrate_bps: rung.rung.bitrate_bps,
                keyint: Keyint::ForcedOnly,
                threads: self.options.encoder_threads,
            };
            let size = (rung.rung.width, rung.rung.height);
            rung.encoder = Some(X264Encoder::open(&settings, size, frame_rate)?);
        }
        // A fresh encoder starts with an IDR anyway; count from it.
        self.frames_since_idr = None;
        Ok(())
    }
}
