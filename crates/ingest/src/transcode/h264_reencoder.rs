use bytes::Bytes;
use ffmpeg_next::software::scaling;
use ffmpeg_next::util::format::Pixel;
use ffmpeg_next::{Dictionary, Packet, Rational, codec, decoder, encoder, frame, picture};

use super::error::{Stage, TranscodeError};
use super::{drained, init};

/// x264 presets, fastest first.
const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];
/// Frame rate assumed when the SPS carries no timing info. x264 (tune=zerolatency) paces its
/// rate control by frame rate, not timestamps, so this only matters for such streams.
const FALLBACK_FRAME_RATE: i32 = 30;

/// How [`H264Reencoder`] encodes. `Send + Clone`: pass it to the transcoding thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReencodeOptions {
    /// Average bitrate; also the VBV max rate, with a one-second buffer.
    pub bitrate_bps: u32,
    /// An IDR at least every this many frames (no scene-cut keyframes, so that layers encoded
    /// from the same input keep their keyframes aligned).
    pub max_keyframe_interval_frames: u32,
    /// An x264 preset: "ultrafast", "superfast", "veryfast" (default), ...
    pub preset: String,
    /// Scale to this size (even, 16..=4096 each). `None` keeps the input size (rounded down
    /// to even) and follows resolution changes.
    pub target: Option<(u32, u32)>,
    /// libx264 threads. 1 (default) encodes on the calling thread, the cheapest in total CPU;
    /// 0 lets x264 pick (sliced threads with `zerolatency`: no added latency, more total CPU,
    /// for a single stream too big for one core).
    pub encoder_threads: u32,
}

impl Default for ReencodeOptions {
    fn default() -> Self {
        ReencodeOptions {
            bitrate_bps: 2_500_000,
            max_keyframe_interval_frames: 60,
            preset: "veryfast".to_owned(),
            target: None,
            encoder_threads: 1,
        }
    }
}

impl ReencodeOptions {
    /// Checks the options the way [`H264Reencoder::new`] does, e.g. before spawning the thread.
    pub fn validate(&self) -> Result<(), TranscodeError> {
        let invalid = |reason: String| Err(TranscodeError::InvalidOptions { reason });
        if !(50_000..=50_000_000).contains(&self.bitrate_bps) {
            return invalid(format!(
                "bitrate_bps {} is outside 50 kbit/s..50 Mbit/s",
                self.bitrate_bps
            ));
        }
        if !(1..=1000).contains(&self.max_keyframe_interval_frames) {
            return invalid(format!(
                "max_keyframe_interval_frames {} is outside 1..=1000",
                self.max_keyframe_interval_frames
            ));
        }
        if !X264_PRESETS.contains(&self.preset.as_str()) {
            return invalid(format!("unknown x264 preset {:?}", self.preset));
        }
        if self.encoder_threads > 16 {
            return invalid(format!(
                "encoder_threads {} is above 16",
                self.encoder_threads
            ));
        }
        if let Some((w, h)) = self.target
            && ![w, h].iter().all(|d| (16..=4096).contains(d) && d % 2 == 0)
        {
            return invalid(format!("target {w}x{h} must be even and 16..=4096"));
        }
        Ok(())
    }
}

/// One re-encoded access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// Annex-B NAL units; an IDR comes with its SPS and PPS (and x264's SEI on the first).
    pub annexb: Bytes,
    /// An IDR.
    pub keyframe: bool,
    /// Presentation time of the input frame it came from (made strictly increasing).
    pub pts_ms: i64,
}

/// Decodes H.264 (B-frames allowed) and re-encodes it with libx264 for WebRTC: constrained
/// baseline, no B-frames, `tune=zerolatency` (no lookahead: one frame in, one frame out), SPS
/// and PPS in-band before every IDR, optionally scaled with swscale.
///
/// Output comes in presentation order, delayed only by the decoder's reorder depth (the
/// input's B-frame pyramid, typically 2 frames).
///
/// **Not `Send`**: swscale's context in ffmpeg-next is `!Send`. Create the reencoder on the
/// thread that runs it (validate the `Send` [`ReencodeOptions`] first with
/// [`ReencodeOptions::validate`] if you want the error before spawning).
pub struct H264Reencoder {
    options: ReencodeOptions,
    decoder: decoder::Video,
    decoded: frame::Video,
    scaler: Option<Scaler>,
    encoder: Option<OpenEncoder>,
    packet: Packet,
    keyframe_requested: bool,
    last_pts_ms: Option<i64>,
}

impl std::fmt::Debug for H264Reencoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Reencoder")
            .field("options", &self.options)
            .field(
                "encoder_size",
                &self.encoder.as_ref().map(|e| (e.width, e.height)),
            )
            .field("keyframe_requested", &self.keyframe_requested)
            .field("last_pts_ms", &self.last_pts_ms)
            .finish_non_exhaustive()
    }
}

struct Scaler {
    context: scaling::Context,
    input: (Pixel, u32, u32),
    output: frame::Video,
}

struct OpenEncoder {
    encoder: encoder::video::Encoder,
    width: u32,
    height: u32,
}

impl H264Reencoder {
    /// Opens the H.264 decoder. libx264 opens on the first decoded picture, when the size and
    /// frame rate are known.
    pub fn new(options: ReencodeOptions) -> Result<H264Reencoder, TranscodeError> {
        init();
        options.validate()?;
        // Fail now rather than on the first frame if libx264 is missing.
        encoder::find_by_name("libx264").ok_or(TranscodeError::CodecNotFound {
            codec: "libx264 encoder",
        })?;
        let h264 = decoder::find(codec::Id::H264).ok_or(TranscodeError::CodecNotFound {
            codec: "h264 decoder",
        })?;
        // One thread: frame threads would add a frame of latency each.
        let decoder = codec::context::Context::new_with_codec(h264)
            .decoder()
            .video()
            .map_err(TranscodeError::setup(Stage::OpenH264Decoder))?;
        Ok(H264Reencoder {
            options,
            decoder,
            decoded: frame::Video::empty(),
            scaler: None,
            encoder: None,
            packet: Packet::empty(),
            keyframe_requested: false,
            last_pts_ms: None,
        })
    }

    /// Decodes one Annex-B access unit (SPS/PPS in-band before the first IDR) whose
    /// presentation time is `pts_ms` (FLV dts + cts; units pushed in decode order), and
    /// returns what the encoder produced, in presentation order.
    ///
    /// An error concerns this access unit only (corrupt data); the next push may succeed.
    pub fn push(
        &mut self,
        annexb_access_unit: &[u8],
        pts_ms: i64,
    ) -> Result<Vec<EncodedFrame>, TranscodeError> {
        let mut packet = Packet::copy(annexb_access_unit);
        packet.set_pts(Some(pts_ms));
        self.decoder
            .send_packet(&packet)
            .map_err(TranscodeError::frame(Stage::DecodeH264, pts_ms))?;
        let mut out = Vec::new();
        self.drain_decoder(pts_ms, &mut out)?;
        Ok(out)
    }

    /// Makes the next encoded frame an IDR (with SPS/PPS), e.g. on a PLI or a viewer joining.
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// Drains the decoder's reorder buffer and the encoder. The stream may continue
    /// afterwards (a new publisher session): the decoder then waits for an IDR and the encoder
    /// restarts with one.
    pub fn flush(&mut self) -> Result<Vec<EncodedFrame>, TranscodeError> {
        let pts_ms = self.last_pts_ms.unwrap_or(0);
        let mut out = Vec::new();
        self.decoder
            .send_eof()
            .map_err(TranscodeError::frame(Stage::DecodeH264, pts_ms))?;
        self.drain_decoder(pts_ms, &mut out)?;
        self.decoder.flush();
        if let Some(mut open) = self.encoder.take() {
            open.encoder
                .send_eof()
                .map_err(TranscodeError::frame(Stage::EncodeH264, pts_ms))?;
            drain_encoder(&mut open.encoder, &mut self.packet, pts_ms, &mut out)?;
        }
        self.last_pts_ms = None;
        Ok(out)
    }

    fn drain_decoder(
        &mut self,
        pts_ms: i64,
        out: &mut Vec<EncodedFrame>,
    ) -> Result<(), TranscodeError> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => self.encode_decoded(pts_ms, out)?,
                Err(e) if drained(&e) => return Ok(()),
                Err(e) => return Err(TranscodeError::frame(Stage::DecodeH264, pts_ms)(e)),
            }
        }
    }

    /// Scales (if needed) and encodes `self.decoded`. `push_pts_ms` names the push in errors.
    fn encode_decoded(
        &mut self,
        push_pts_ms: i64,
        out: &mut Vec<EncodedFrame>,
    ) -> Result<(), TranscodeError> {
        let (in_w, in_h) = (self.decoded.width(), self.decoded.height());
        if in_w < 2 || in_h < 2 {
            return Ok(());
        }
        let (out_w, out_h) = self.options.target.unwrap_or((in_w & !1, in_h & !1));

        // Strictly increasing pts, as x264 wants them.
        let mut pts = self
            .decoded
            .timestamp()
            .or(self.decoded.pts())
            .unwrap_or_else(|| self.last_pts_ms.map_or(push_pts_ms, |p| p + 1));
        if let Some(last) = self.last_pts_ms
            && pts <= last
        {
            pts = last + 1;
        }
        self.last_pts_ms = Some(pts);

        if self
            .encoder
            .as_ref()
            .is_some_and(|e| (e.width, e.height) != (out_w, out_h))
            && let Some(mut old) = self.encoder.take()
        {
            tracing::debug!(out_w, out_h, "input size changed; reopening libx264");
            old.encoder
                .send_eof()
                .map_err(TranscodeError::frame(Stage::EncodeH264, pts))?;
            drain_encoder(&mut old.encoder, &mut self.packet, pts, out)?;
        }
        if self.encoder.is_none() {
            let frame_rate = self
                .decoder
                .frame_rate()
                .filter(|r| r.numerator() > 0 && r.denominator() > 0)
                .filter(|r| (1.0..=240.0).contains(&f64::from(*r)))
                .unwrap_or(Rational::new(FALLBACK_FRAME_RATE, 1));
            self.encoder = Some(open_x264(&self.options, out_w, out_h, frame_rate)?);
        }

        let input_key = (self.decoded.format(), in_w, in_h);
        let needs_scaling = input_key != (Pixel::YUV420P, out_w, out_h);
        if needs_scaling && self.scaler.as_ref().is_none_or(|s| s.input != input_key) {
            let context = scaling::Context::get(
                input_key.0,
                in_w,
                in_h,
                Pixel::YUV420P,
                out_w,
                out_h,
                scaling::Flags::BILINEAR,
            )
            .map_err(TranscodeError::frame(Stage::Scale, pts))?;
            self.scaler = Some(Scaler {
                context,
                input: input_key,
                output: frame::Video::new(Pixel::YUV420P, out_w, out_h),
            });
        }
        let picture = match self.scaler.as_mut() {
            Some(scaler) if needs_scaling => {
                scaler
                    .context
                    .run(&self.decoded, &mut scaler.output)
                    .map_err(TranscodeError::frame(Stage::Scale, pts))?;
                &mut scaler.output
            }
            _ => &mut self.decoded,
        };

        // The decoded picture carries the source's picture type, which libx264 would obey
        // (I -> keyframe, B -> B-frame): reset it on every frame.
        picture.set_kind(if self.keyframe_requested {
            picture::Type::I
        } else {
            picture::Type::None
        });
        self.keyframe_requested = false;
        picture.set_pts(Some(pts));

        let Some(open) = self.encoder.as_mut() else {
            return Ok(());
        };
        open.encoder
            .send_frame(picture)
            .map_err(TranscodeError::frame(Stage::EncodeH264, pts))?;
        drain_encoder(&mut open.encoder, &mut self.packet, pts, out)
    }
}

fn open_x264(
    options: &ReencodeOptions,
    width: u32,
    height: u32,
    frame_rate: Rational,
) -> Result<OpenEncoder, TranscodeError> {
    let x264 = encoder::find_by_name("libx264").ok_or(TranscodeError::CodecNotFound {
        codec: "libx264 encoder",
    })?;
    let mut video = codec::context::Context::new_with_codec(x264)
        .encoder()
        .video()
        .map_err(TranscodeError::setup(Stage::OpenX264Encoder))?;
    video.set_width(width);
    video.set_height(height);
    video.set_format(Pixel::YUV420P);
    video.set_time_base((1, 1000));
    video.set_frame_rate(Some(frame_rate));
    video.set_gop(options.max_keyframe_interval_frames);
    video.set_max_b_frames(0);
    video.set_bit_rate(options.bitrate_bps as usize);
    video.set_max_bit_rate(options.bitrate_bps as usize);
    // No codec::Flags::GLOBAL_HEADER: libx264 then repeats SPS/PPS before every IDR.
    let mut dict = Dictionary::new();
    dict.set("preset", &options.preset);
    dict.set("tune", "zerolatency");
    dict.set("profile", "baseline");
    dict.set("bufsize", &options.bitrate_bps.to_string());
    dict.set("forced-idr", "1");
    dict.set("threads", &options.encoder_threads.to_string());
    dict.set("x264-params", "scenecut=0:repeat-headers=1");
    let encoder = video
        .open_as_with(x264, dict)
        .map_err(TranscodeError::setup(Stage::OpenX264Encoder))?;
    Ok(OpenEncoder {
        encoder,
        width,
        height,
    })
}

fn drain_encoder(
    encoder: &mut encoder::video::Encoder,
    packet: &mut Packet,
    pts_ms: i64,
    out: &mut Vec<EncodedFrame>,
) -> Result<(), TranscodeError> {
    loop {
        match encoder.receive_packet(packet) {
            Ok(()) => out.push(EncodedFrame {
                annexb: Bytes::copy_from_slice(packet.data().unwrap_or_default()),
                keyframe: packet.is_key(),
                pts_ms: packet.pts().unwrap_or(pts_ms),
            }),
            Err(e) if drained(&e) => return Ok(()),
            Err(e) => return Err(TranscodeError::frame(Stage::EncodeH264, pts_ms)(e)),
        }
    }
}
