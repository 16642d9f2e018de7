//! One decoder, one scaler and one libx264 encoder per encoded rung.

use bytes::Bytes;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::software::scaling;
use ffmpeg_next::util::picture;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use ffmpeg_next::{Dictionary, Packet, Rational, codec, decoder, encoder, frame};

use super::error::TranscodeError;
use super::{drained, init};

/// The x264 presets accepted in [`EncoderOptions::preset`].
pub const PRESETS: [&str; 10] = [
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

/// The source's video codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCodec {
    H264,
    Vp8,
}

/// One encoded rung: which output it feeds, its size and bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RungSpec {
    /// The caller's index for this rung's output (its variant).
    pub output: usize,
    /// Even, 2..=4096.
    pub width: u32,
    /// Even, 2..=4096.
    pub height: u32,
    /// Target average bitrate; the VBV allows 1.5x peaks over a 2-second buffer.
    pub bitrate_bps: u32,
}

/// How the rungs encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderOptions {
    /// An x264 preset (default "superfast").
    pub preset: String,
    /// libx264 threads per rung (default 1: the rungs already encode in parallel; 0 lets x264
    /// decide, which with `tune=zerolatency` means slices).
    pub threads: u32,
    /// The source's frame rate if known (only informs rate control); 30 otherwise.
    pub frame_rate: Option<(i32, i32)>,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            preset: "superfast".to_owned(),
            threads: 1,
            frame_rate: None,
        }
    }
}

/// One encoded picture of one rung, in Annex B (SPS and PPS before IDRs).
#[derive(Debug, Clone)]
pub struct EncodedPicture {
    pub output: usize,
    pub annexb: Bytes,
    /// 90 kHz; there are no B-frames, so this is also the decode time.
    pub pts: i64,
    pub keyframe: bool,
}

/// Decodes a source once and encodes each picture at every rung.
///
/// Drive it with [`VideoLadder::decode`], then for every picture [`VideoLadder::next_picture`]
/// gives, decide whether it starts a segment and call [`VideoLadder::encode`]: all rungs get
/// the same pictures with the same pts, and an IDR on every rung where the caller asks for one,
/// so segments line up across renditions. libx264 never adds an IDR of its own
/// (`keyint=infinite`, `scenecut=0`) and never delays a frame (`tune=zerolatency`, no
/// B-frames): each `encode` returns this picture on every rung.
///
/// Each rung scales and encodes on a thread of its own (the renditions of one picture in
/// parallel); decoding stays on the caller's thread. **Not `Send`** (swscale, for the
/// thumbnails): build it on the thread that runs it.
pub struct VideoLadder {
    decoder: decoder::Video,
    decoded: frame::Video,
    have_picture: bool,
    rungs: Vec<Rung>,
    options: EncoderOptions,
    packet: Packet,
    last_pts: Option<i64>,
    thumbnail: Option<Thumbnailer>,
}

/// One rung's scaler and encoder, on a thread of its own: the renditions of a picture are
/// encoded in parallel while the packager thread waits for all of them.
struct Rung {
    spec: RungSpec,
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Result<Vec<EncodedPicture>, TranscodeError>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A picture for a rung thread.
struct Job {
    picture: frame::Video,
    pts: i64,
    idr: bool,
}

impl Rung {
    fn spawn(spec: RungSpec, options: EncoderOptions) -> Result<Rung, TranscodeError> {
        let (jobs, job_rx) = sync_channel::<Job>(1);
        let (result_tx, results) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(format!("greenroom-hls-{}p", spec.height))
            .spawn(move || {
                let mut worker = RungWorker {
                    spec,
                    options,
                    scaler: None,
                    encoder: None,
                    packet: Packet::empty(),
                };
                while let Ok(mut job) = job_rx.recv() {
                    let result = worker.encode(&mut job);
                    if result_tx.send(result).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| TranscodeError::Invalid(format!("cannot start a rung thread: {e}")))?;
        Ok(Rung {
            spec,
            jobs: Some(jobs),
            results,
            thread: Some(thread),
        })
    }
}

impl Drop for Rung {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a rung thread owns.
struct RungWorker {
    spec: RungSpec,
    options: EncoderOptions,
    scaler: Option<Scaler>,
    encoder: Option<encoder::video::Encoder>,
    packet: Packet,
}

impl RungWorker {
    fn encode(&mut self, job: &mut Job) -> Result<Vec<EncodedPicture>, TranscodeError> {
        let pts = job.pts;
        if self.encoder.is_none() {
            let frame_rate = self
                .options
                .frame_rate
                .map_or(Rational::new(30, 1), |(n, d)| {
                    Rational::new(n.max(1), d.max(1))
                });
            self.encoder = Some(open_x264(&self.spec, &self.options, frame_rate)?);
        }
        let size = (self.spec.width, self.spec.height);
        let picture = scale(&mut self.scaler, &mut job.picture, size, pts)?;
        picture.set_kind(if job.idr {
            picture::Type::I
        } else {
            picture::Type::None
        });
        picture.set_pts(Some(pts));
        let mut out = Vec::with_capacity(1);
        let Some(encoder) = self.encoder.as_mut() else {
            return Ok(out);
        };
        encoder
            .send_frame(picture)
            .map_err(TranscodeError::frame("encoding H.264", pts))?;
        drain(encoder, &mut self.packet, self.spec.output, pts, &mut out)?;
        Ok(out)
    }
}

struct Scaler {
    context: scaling::Context,
    input: (Pixel, u32, u32),
    output: frame::Video,
}

impl std::fmt::Debug for VideoLadder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoLadder")
            .field(
                "rungs",
                &self.rungs.iter().map(|r| r.spec).collect::<Vec<_>>(),
            )
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl VideoLadder {
    /// Checks the rungs and options, and opens the decoder (encoders open on the first
    /// picture). An empty ladder only decodes (for thumbnails).
    pub fn new(
        codec: SourceCodec,
        rungs: Vec<RungSpec>,
        options: EncoderOptions,
    ) -> Result<VideoLadder, TranscodeError> {
        init();
        if !PRESETS.contains(&options.preset.as_str()) {
            return Err(TranscodeError::Invalid(format!(
                "unknown x264 preset {:?}",
                options.preset
            )));
        }
        check_rungs(&rungs)?;
        let (id, name) = match codec {
            SourceCodec::H264 => (codec::Id::H264, "h264 decoder"),
            SourceCodec::Vp8 => (codec::Id::VP8, "vp8 decoder"),
        };
        let found = decoder::find(id).ok_or(TranscodeError::CodecNotFound { codec: name })?;
        let mut context = codec::context::Context::new_with_codec(found);
        // Two frame threads: decoding overlaps the rungs' encoding, for one frame (33 ms at
        // 30 fps) of added latency.
        let mut threading = ffmpeg_next::codec::threading::Config::default();
        threading.kind = ffmpeg_next::codec::threading::Type::Frame;
        threading.count = 2;
        context.set_threading(threading);
        let decoder = context
            .decoder()
            .video()
            .map_err(TranscodeError::setup("opening the video decoder"))?;
        Ok(VideoLadder {
            decoder,
            decoded: frame::Video::empty(),
            have_picture: false,
            rungs: rungs
                .into_iter()
                .map(|spec| Rung::spawn(spec, options.clone()))
                .collect::<Result<_, _>>()?,
            options,
            packet: Packet::empty(),
            last_pts: None,
            thumbnail: None,
        })
    }

    /// Replaces the rungs (before the first [`VideoLadder::encode`]: the caller decides them
    /// once the source's size is known).
    pub fn set_rungs(&mut self, rungs: Vec<RungSpec>) -> Result<(), TranscodeError> {
        check_rungs(&rungs)?;
        self.rungs = rungs
            .into_iter()
            .map(|spec| Rung::spawn(spec, self.options.clone()))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// Sends one encoded frame (decode order; H.264 in Annex B with in-band parameter sets)
    /// to the decoder. An error concerns this frame only.
    pub fn decode(&mut self, data: &[u8], pts: i64, dts: i64) -> Result<(), TranscodeError> {
        let mut packet = Packet::copy(data);
        packet.set_pts(Some(pts));
        packet.set_dts(Some(dts));
        self.decoder
            .send_packet(&packet)
            .map_err(TranscodeError::frame("decoding video", pts))
    }

    /// The next decoded picture's pts (strictly increasing), if one is ready. Call
    /// [`VideoLadder::encode`] before asking for the next one.
    pub fn next_picture(&mut self) -> Result<Option<i64>, TranscodeError> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => {}
                Err(e) if drained(&e) => return Ok(None),
                Err(e) => {
                    return Err(TranscodeError::frame(
                        "decoding video",
                        self.last_pts.unwrap_or(0),
                    )(e));
                }
            }
            if self.decoded.width() < 2 || self.decoded.height() < 2 {
                continue;
            }
            let pts = self
                .decoded
                .timestamp()
                .or(self.decoded.pts())
                .unwrap_or_else(|| self.last_pts.map_or(0, |p| p + 3000));
            if self.last_pts.is_some_and(|last| pts <= last) {
                // Out of order or repeated: not a new picture for the encoders.
                continue;
            }
            self.last_pts = Some(pts);
            self.have_picture = true;
            return Ok(Some(pts));
        }
    }

    /// The size of the last decoded picture.
    pub fn picture_size(&self) -> Option<(u32, u32)> {
        self.have_picture
            .then(|| (self.decoded.width(), self.decoded.height()))
    }

    /// Encodes the last picture from [`VideoLadder::next_picture`] on every rung (an IDR if
    /// `idr`), appending what the encoders return.
    pub fn encode(
        &mut self,
        idr: bool,
        out: &mut Vec<EncodedPicture>,
    ) -> Result<(), TranscodeError> {
        let Some(pts) = self.last_pts.filter(|_| self.have_picture) else {
            return Ok(());
        };
        // Hand a copy of the picture to every rung thread, then collect in rung order.
        let mut sent = Vec::with_capacity(self.rungs.len());
        for rung in &self.rungs {
            let job = Job {
                picture: self.decoded.clone(),
                pts,
                idr,
            };
            let delivered = rung
                .jobs
                .as_ref()
                .is_some_and(|jobs| jobs.send(job).is_ok());
            sent.push(delivered);
        }
        let mut first_error = None;
        for (rung, delivered) in self.rungs.iter().zip(sent) {
            if !delivered {
                first_error.get_or_insert(TranscodeError::Invalid(format!(
                    "the {}p rung thread is gone",
                    rung.spec.height
                )));
                continue;
            }
            match rung.results.recv() {
                Ok(Ok(pictures)) => out.extend(pictures),
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(_) => {
                    first_error.get_or_insert(TranscodeError::Invalid(format!(
                        "the {}p rung thread is gone",
                        rung.spec.height
                    )));
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// A JPEG of the last decoded picture, `width` wide (aspect kept), if one is ready.
    pub fn thumbnail(&mut self, width: u32) -> Result<Option<Bytes>, TranscodeError> {
        if !self.have_picture {
            return Ok(None);
        }
        let (w, h) = (self.decoded.width().max(2), self.decoded.height().max(2));
        let width = width.min(w) & !1;
        let height = ((u64::from(h) * u64::from(width) / u64::from(w)) as u32 & !1).max(2);
        let pts = self.last_pts.unwrap_or(0);
        let thumb = match self.thumbnail.take() {
            Some(t) if t.size == (width, height) => self.thumbnail.insert(t),
            _ => self
                .thumbnail
                .insert(Thumbnailer::open((width.max(2), height))?),
        };
        let picture = scale_to(
            &mut thumb.scaler,
            &mut self.decoded,
            thumb.size,
            Pixel::YUVJ420P,
            pts,
        )?;
        picture.set_pts(Some(pts));
        picture.set_kind(picture::Type::I);
        thumb
            .encoder
            .send_frame(picture)
            .map_err(TranscodeError::frame("encoding the thumbnail", pts))?;
        match thumb.encoder.receive_packet(&mut self.packet) {
            Ok(()) => Ok(self.packet.data().map(Bytes::copy_from_slice)),
            Err(e) if drained(&e) => Ok(None),
            Err(e) => Err(TranscodeError::frame("encoding the thumbnail", pts)(e)),
        }
    }
}

fn check_rungs(rungs: &[RungSpec]) -> Result<(), TranscodeError> {
    for rung in rungs {
        if ![rung.width, rung.height]
            .iter()
            .all(|d| (2..=4096).contains(d) && d % 2 == 0)
        {
            return Err(TranscodeError::Invalid(format!(
                "rung size {}x{} must be even and 2..=4096",
                rung.width, rung.height
            )));
        }
        if !(50_000..=50_000_000).contains(&rung.bitrate_bps) {
            return Err(TranscodeError::Invalid(format!(
                "rung bitrate {} must be 50 kbit/s..50 Mbit/s",
                rung.bitrate_bps
            )));
        }
    }
    if !rungs.is_empty() {
        encoder::find_by_name("libx264").ok_or(TranscodeError::CodecNotFound {
            codec: "libx264 encoder",
        })?;
    }
    Ok(())
}

struct Thumbnailer {
    size: (u32, u32),
    scaler: Option<Scaler>,
    encoder: encoder::video::Encoder,
}

impl Thumbnailer {
    fn open((width, height): (u32, u32)) -> Result<Thumbnailer, TranscodeError> {
        let mjpeg = encoder::find(codec::Id::MJPEG).ok_or(TranscodeError::CodecNotFound {
            codec: "mjpeg encoder",
        })?;
        let mut video = codec::context::Context::new_with_codec(mjpeg)
            .encoder()
            .video()
            .map_err(TranscodeError::setup("opening the JPEG encoder"))?;
        video.set_width(width);
        video.set_height(height);
        video.set_format(Pixel::YUVJ420P);
        video.set_time_base((1, 90_000));
        video.set_quality(4);
        video.set_global_quality(4 * 118); // qscale 4 (FF_QP2LAMBDA = 118)
        video.set_flags(codec::Flags::QSCALE);
        let encoder = video
            .open_as(mjpeg)
            .map_err(TranscodeError::setup("opening the JPEG encoder"))?;
        Ok(Thumbnailer {
            size: (width, height),
            scaler: None,
            encoder,
        })
    }
}

fn open_x264(
    spec: &RungSpec,
    options: &EncoderOptions,
    frame_rate: Rational,
) -> Result<encoder::video::Encoder, TranscodeError> {
    let x264 = encoder::find_by_name("libx264").ok_or(TranscodeError::CodecNotFound {
        codec: "libx264 encoder",
    })?;
    let mut video = codec::context::Context::new_with_codec(x264)
        .encoder()
        .video()
        .map_err(TranscodeError::setup("opening libx264"))?;
    video.set_width(spec.width);
    video.set_height(spec.height);
    video.set_format(Pixel::YUV420P);
    video.set_time_base((1, 90_000));
    video.set_frame_rate(Some(frame_rate));
    video.set_max_b_frames(0);
    video.set_bit_rate(spec.bitrate_bps as usize);
    video.set_max_bit_rate(spec.bitrate_bps as usize * 3 / 2);
    let mut dict = Dictionary::new();
    dict.set("preset", &options.preset);
    dict.set("tune", "zerolatency");
    dict.set("profile", "high");
    dict.set("bufsize", &(u64::from(spec.bitrate_bps) * 2).to_string());
    dict.set("forced-idr", "1");
    dict.set("threads", &options.threads.to_string());
    dict.set("x264-params", "keyint=infinite:scenecut=0:repeat-headers=1");
    video
        .open_as_with(x264, dict)
        .map_err(TranscodeError::setup("opening libx264"))
}

fn drain(
    encoder: &mut encoder::video::Encoder,
    packet: &mut Packet,
    output: usize,
    pts: i64,
    out: &mut Vec<EncodedPicture>,
) -> Result<(), TranscodeError> {
    loop {
        match encoder.receive_packet(packet) {
            Ok(()) => out.push(EncodedPicture {
                output,
                annexb: Bytes::copy_from_slice(packet.data().unwrap_or_default()),
                pts: packet.pts().unwrap_or(pts),
                keyframe: packet.is_key(),
            }),
            Err(e) if drained(&e) => return Ok(()),
            Err(e) => return Err(TranscodeError::frame("encoding H.264", pts)(e)),
        }
    }
}

fn scale<'a>(
    slot: &'a mut Option<Scaler>,
    decoded: &'a mut frame::Video,
    size: (u32, u32),
    pts: i64,
) -> Result<&'a mut frame::Video, TranscodeError> {
    scale_to(slot, decoded, size, Pixel::YUV420P, pts)
}

/// `decoded` as a picture of `format` and `size`: itself if it already is one, else scaled
/// into the slot's frame (its scaler re-created when the input changes).
fn scale_to<'a>(
    slot: &'a mut Option<Scaler>,
    decoded: &'a mut frame::Video,
    (out_w, out_h): (u32, u32),
    format: Pixel,
    pts: i64,
) -> Result<&'a mut frame::Video, TranscodeError> {
    let input = (decoded.format(), decoded.width(), decoded.height());
    if input == (format, out_w, out_h) {
        return Ok(decoded);
    }
    let scaler = match slot.take() {
        Some(s)
            if s.input == input
                && (s.output.width(), s.output.height()) == (out_w, out_h)
                && s.output.format() == format =>
        {
            slot.insert(s)
        }
        _ => {
            let context = scaling::Context::get(
                input.0,
                input.1,
                input.2,
                format,
                out_w,
                out_h,
                scaling::Flags::BILINEAR,
            )
            .map_err(TranscodeError::frame("scaling video", pts))?;
            slot.insert(Scaler {
                context,
                input,
                output: frame::Video::new(format, out_w, out_h),
            })
        }
    };
    scaler
        .context
        .run(decoded, &mut scaler.output)
        .map_err(TranscodeError::frame("scaling video", pts))?;
    Ok(&mut scaler.output)
}
