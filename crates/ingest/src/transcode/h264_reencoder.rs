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
        let target = || {
            let (w, h) = self.target?;
            (![w, h].iter().all(|d| (16..=4096).contains(d) && d % 2 == 0))
                .then(|| format!("target {w}x{h} must be even and 16..=4096"))
        };
        match check_bitrate(self.bitrate_bps)
            .or_else(|| check_keyframe_interval(self.max_keyframe_interval_frames))
            .or_else(|| check_preset(&self.preset))
            .or_else(|| check_encoder_threads(self.encoder_threads))
            .or_else(target)
        {
            Some(reason) => Err(TranscodeError::InvalidOptions { reason }),
            None => Ok(()),
        }
    }
}

/// Why a bitrate is out of range, if it is.
pub(super) fn check_bitrate(bitrate_bps: u32) -> Option<String> {
    (!(50_000..=50_000_000).contains(&bitrate_bps))
        .then(|| format!("bitrate_bps {bitrate_bps} is outside 50 kbit/s..50 Mbit/s"))
}

/// Why a keyframe interval is out of range, if it is.
pub(super) fn check_keyframe_interval(frames: u32) -> Option<String> {
    (!(1..=1000).contains(&frames))
        .then(|| format!("max_keyframe_interval_frames {frames} is outside 1..=1000"))
}

/// Why a preset is not an x264 preset, if it is not.
pub(super) fn check_preset(preset: &str) -> Option<String> {
    (!X264_PRESETS.contains(&preset)).then(|| format!("unknown x264 preset {preset:?}"))
}

/// Why a libx264 thread count is too high, if it is.
pub(super) fn check_encoder_threads(threads: u32) -> Option<String> {
    (threads > 16).then(|| format!("encoder_threads {threads} is above 16"))
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
    encoder: Option<X264Encoder>,
    packet: Packet,
    keyframe_requested: bool,
    clock: PtsClock,
}

impl std::fmt::Debug for H264Reencoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Reencoder")
            .field("options", &self.options)
            .field(
                "encoder_size",
                &self.encoder.as_ref().map(X264Encoder::size),
            )
            .field("keyframe_requested", &self.keyframe_requested)
            .field("last_pts_ms", &self.clock.last_ms())
            .finish_non_exhaustive()
    }
}

impl H264Reencoder {
    /// Opens the H.264 decoder. libx264 opens on the first decoded picture, when the size and
    /// frame rate are known.
    pub fn new(options: ReencodeOptions) -> Result<H264Reencoder, TranscodeError> {
        init();
        options.validate()?;
        let decoder = open_h264_decoder()?;
        Ok(H264Reencoder {
            options,
            decoder,
            decoded: frame::Video::empty(),
            scaler: None,
            encoder: None,
            packet: Packet::empty(),
            keyframe_requested: false,
            clock: PtsClock::default(),
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
        send_access_unit(&mut self.decoder, annexb_access_unit, pts_ms)?;
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
        let pts_ms = self.clock.last_ms().unwrap_or(0);
        let mut out = Vec::new();
        self.decoder
            .send_eof()
            .map_err(TranscodeError::frame(Stage::DecodeH264, pts_ms))?;
        self.drain_decoder(pts_ms, &mut out)?;
        self.decoder.flush();
        if let Some(encoder) = self.encoder.take() {
            encoder.finish(&mut self.packet, pts_ms, &mut |f| out.push(f))?;
        }
        self.clock.reset();
        Ok(out)
    }

    fn drain_decoder(
        &mut self,
        pts_ms: i64,
        out: &mut Vec<EncodedFrame>,
    ) -> Result<(), TranscodeError> {
        while receive_picture(&mut self.decoder, &mut self.decoded, pts_ms)? {
            self.encode_decoded(pts_ms, out)?;
        }
        Ok(())
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
        let size = self.options.target.unwrap_or((in_w & !1, in_h & !1));
        let pts = self.clock.next(&self.decoded, push_pts_ms);

        if self.encoder.as_ref().is_some_and(|e| e.size() != size)
            && let Some(old) = self.encoder.take()
        {
            tracing::debug!(
                out_w = size.0,
                out_h = size.1,
                "input size changed; reopening libx264"
            );
            old.finish(&mut self.packet, pts, &mut |f| out.push(f))?;
        }
        if self.encoder.is_none() {
            let settings = X264Settings {
                preset: &self.options.preset,
                bitrate_bps: self.options.bitrate_bps,
                keyint: Keyint::Frames(self.options.max_keyframe_interval_frames),
                threads: self.options.encoder_threads,
            };
            let frame_rate = source_frame_rate(&self.decoder);
            self.encoder = Some(X264Encoder::open(&settings, size, frame_rate)?);
        }
        let Some(encoder) = self.encoder.as_mut() else {
            return Ok(());
        };
        let picture = scale(&mut self.scaler, &mut self.decoded, size, pts)?;
        let idr = std::mem::take(&mut self.keyframe_requested);
        encoder.encode(picture, pts, idr, &mut self.packet, &mut |f| out.push(f))
    }
}

// ---------------------------------------------------------------------------------------------
// Pieces shared with the simulcast ladder (`super::ladder`).

/// Fails now rather than on the first picture if libx264 is missing.
fn require_x264() -> Result<ffmpeg_next::Codec, TranscodeError> {
    encoder::find_by_name("libx264").ok_or(TranscodeError::CodecNotFound {
        codec: "libx264 encoder",
    })
}

/// ffmpeg's H.264 decoder, single-threaded (frame threads would add a frame of latency each).
pub(super) fn open_h264_decoder() -> Result<decoder::Video, TranscodeError> {
    require_x264()?;
    let h264 = decoder::find(codec::Id::H264).ok_or(TranscodeError::CodecNotFound {
        codec: "h264 decoder",
    })?;
    codec::context::Context::new_with_codec(h264)
        .decoder()
        .video()
        .map_err(TranscodeError::setup(Stage::OpenH264Decoder))
}

/// Sends one Annex-B access unit, tagged with its presentation time, to the decoder.
pub(super) fn send_access_unit(
    decoder: &mut decoder::Video,
    annexb_access_unit: &[u8],
    pts_ms: i64,
) -> Result<(), TranscodeError> {
    let mut packet = Packet::copy(annexb_access_unit);
    packet.set_pts(Some(pts_ms));
    decoder
        .send_packet(&packet)
        .map_err(TranscodeError::frame(Stage::DecodeH264, pts_ms))
}

/// Receives the next decoded picture into `decoded`; false when the decoder wants more input
/// (or is drained).
pub(super) fn receive_picture(
    decoder: &mut decoder::Video,
    decoded: &mut frame::Video,
    pts_ms: i64,
) -> Result<bool, TranscodeError> {
    match decoder.receive_frame(decoded) {
        Ok(()) => Ok(true),
        Err(e) if drained(&e) => Ok(false),
        Err(e) => Err(TranscodeError::frame(Stage::DecodeH264, pts_ms)(e)),
    }
}

/// The source's frame rate from its SPS, if plausible, else [`FALLBACK_FRAME_RATE`].
pub(super) fn source_frame_rate(decoder: &decoder::Video) -> Rational {
    decoder
        .frame_rate()
        .filter(|r| r.numerator() > 0 && r.denominator() > 0)
        .filter(|r| (1.0..=240.0).contains(&f64::from(*r)))
        .unwrap_or(Rational::new(FALLBACK_FRAME_RATE, 1))
}

/// Presentation times for the encoder: the decoded picture's, made strictly increasing as
/// x264 wants them.
#[derive(Debug, Default)]
pub(super) struct PtsClock {
    last_ms: Option<i64>,
}

impl PtsClock {
    /// The pts for `decoded`; `push_pts_ms` (the access unit being pushed) if it has none.
    pub(super) fn next(&mut self, decoded: &frame::Video, push_pts_ms: i64) -> i64 {
        let mut pts = decoded
            .timestamp()
            .or(decoded.pts())
            .unwrap_or_else(|| self.last_ms.map_or(push_pts_ms, |p| p + 1));
        if let Some(last) = self.last_ms
            && pts <= last
        {
            pts = last + 1;
        }
        self.last_ms = Some(pts);
        pts
    }

    pub(super) fn last_ms(&self) -> Option<i64> {
        self.last_ms
    }

    /// A new session may start again from any pts.
    pub(super) fn reset(&mut self) {
        self.last_ms = None;
    }
}

/// A swscale context to YUV420P at one output size, rebuilt when the input changes.
pub(super) struct Scaler {
    context: scaling::Context,
    input: (Pixel, u32, u32),
    output: frame::Video,
}

impl Scaler {
    fn output_size(&self) -> (u32, u32) {
        (self.output.width(), self.output.height())
    }
}

/// `decoded` as a YUV420P picture of `size`: itself if it already is one, else scaled into
/// the `slot`'s frame (the scaler is created, or re-created when the input format or size
/// changed).
pub(super) fn scale<'a>(
    slot: &'a mut Option<Scaler>,
    decoded: &'a mut frame::Video,
    (out_w, out_h): (u32, u32),
    pts_ms: i64,
) -> Result<&'a mut frame::Video, TranscodeError> {
    let input = (decoded.format(), decoded.width(), decoded.height());
    if input == (Pixel::YUV420P, out_w, out_h) {
        return Ok(decoded);
    }
    let scaler = match slot.take() {
        Some(scaler) if scaler.input == input && scaler.output_size() == (out_w, out_h) => {
            slot.insert(scaler)
        }
        _ => {
            let context = scaling::Context::get(
                input.0,
                input.1,
                input.2,
                Pixel::YUV420P,
                out_w,
                out_h,
                scaling::Flags::BILINEAR,
            )
            .map_err(TranscodeError::frame(Stage::Scale, pts_ms))?;
            slot.insert(Scaler {
                context,
                input,
                output: frame::Video::new(Pixel::YUV420P, out_w, out_h),
            })
        }
    };
    scaler
        .context
        .run(decoded, &mut scaler.output)
        .map_err(TranscodeError::frame(Stage::Scale, pts_ms))?;
    Ok(&mut scaler.output)
}

/// When libx264 makes IDRs by itself (scene cuts never: `scenecut=0`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Keyint {
    /// At least every this many frames, and when forced.
    Frames(u32),
    /// Only when forced (the caller keeps the schedule, e.g. to align several encoders).
    ForcedOnly,
}

/// How to open libx264 (constrained baseline, `tune=zerolatency`, no B-frames, in any case).
#[derive(Debug, Clone, Copy)]
pub(super) struct X264Settings<'a> {
    pub(super) preset: &'a str,
    pub(super) bitrate_bps: u32,
    pub(super) keyint: Keyint,
    pub(super) threads: u32,
}

/// An open libx264 encoder of one size.
pub(super) struct X264Encoder {
    encoder: encoder::video::Encoder,
    width: u32,
    height: u32,
}

impl X264Encoder {
    pub(super) fn open(
        settings: &X264Settings<'_>,
        (width, height): (u32, u32),
        frame_rate: Rational,
    ) -> Result<X264Encoder, TranscodeError> {
        let x264 = require_x264()?;
        let mut video = codec::context::Context::new_with_codec(x264)
            .encoder()
            .video()
            .map_err(TranscodeError::setup(Stage::OpenX264Encoder))?;
        video.set_width(width);
        video.set_height(height);
        video.set_format(Pixel::YUV420P);
        video.set_time_base((1, 1000));
        video.set_frame_rate(Some(frame_rate));
        let x264_params = match settings.keyint {
            Keyint::Frames(frames) => {
                video.set_gop(frames);
                "scenecut=0:repeat-headers=1"
            }
            // Parsed after the codec context's gop_size, so it overrides ffmpeg's default 12.
            Keyint::ForcedOnly => "keyint=infinite:scenecut=0:repeat-headers=1",
        };
        video.set_max_b_frames(0);
        video.set_bit_rate(settings.bitrate_bps as usize);
        video.set_max_bit_rate(settings.bitrate_bps as usize);
        // No codec::Flags::GLOBAL_HEADER: libx264 then repeats SPS/PPS before every IDR.
        let mut dict = Dictionary::new();
        dict.set("preset", settings.preset);
        dict.set("tune", "zerolatency");
        dict.set("profile", "baseline");
        dict.set("bufsize", &settings.bitrate_bps.to_string());
        // A picture of type I becomes an IDR, whatever min-keyint says.
        dict.set("forced-idr", "1");
        dict.set("threads", &settings.threads.to_string());
        dict.set("x264-params", x264_params);
        let encoder = video
            .open_as_with(x264, dict)
            .map_err(TranscodeError::setup(Stage::OpenX264Encoder))?;
        Ok(X264Encoder {
            encoder,
            width,
            height,
        })
    }

    pub(super) fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Encodes `picture` (YUV420P of this encoder's size) at `pts_ms`, an IDR if `idr`, and
    /// emits what libx264 returns (with `tune=zerolatency`, this very frame).
    pub(super) fn encode(
        &mut self,
        picture: &mut frame::Video,
        pts_ms: i64,
        idr: bool,
        packet: &mut Packet,
        emit: &mut impl FnMut(EncodedFrame),
    ) -> Result<(), TranscodeError> {
        // The decoded picture carries the source's picture type, which libx264 would obey
        // (I -> keyframe, B -> B-frame): reset it on every frame.
        picture.set_kind(if idr {
            picture::Type::I
        } else {
            picture::Type::None
        });
        picture.set_pts(Some(pts_ms));
        self.encoder
            .send_frame(picture)
            .map_err(TranscodeError::frame(Stage::EncodeH264, pts_ms))?;
        self.drain(packet, pts_ms, emit)
    }

    /// Drains the encoder and closes it.
    pub(super) fn finish(
        mut self,
        packet: &mut Packet,
        pts_ms: i64,
        emit: &mut impl FnMut(EncodedFrame),
    ) -> Result<(), TranscodeError> {
        self.encoder
            .send_eof()
            .map_err(TranscodeError::frame(Stage::EncodeH264, pts_ms))?;
        self.drain(packet, pts_ms, emit)
    }

    fn drain(
        &mut self,
        packet: &mut Packet,
        pts_ms: i64,
        emit: &mut impl FnMut(EncodedFrame),
    ) -> Result<(), TranscodeError> {
        loop {
            match self.encoder.receive_packet(packet) {
                Ok(()) => emit(EncodedFrame {
                    annexb: Bytes::copy_from_slice(packet.data().unwrap_or_default()),
                    keyframe: packet.is_key(),
                    pts_ms: packet.pts().unwrap_or(pts_ms),
                }),
                Err(e) if drained(&e) => return Ok(()),
                Err(e) => return Err(TranscodeError::frame(Stage::EncodeH264, pts_ms)(e)),
            }
        }
    }
}
