use bytes::Bytes;
use ffmpeg_next::util::format::Sample;
use ffmpeg_next::util::format::sample::Type as SampleType;
use ffmpeg_next::{ChannelLayout, Dictionary, Packet, codec, decoder, encoder, frame, software};

use greenroom_media::aac::AudioSpecificConfig;

use super::error::{Stage, TranscodeError};
use super::{drained, init};

/// Opus RTP clock and sample rate.
const OPUS_RATE: u32 = 48_000;
/// Samples per channel in one 20 ms Opus frame.
const OPUS_FRAME_SAMPLES: usize = 960;
/// libopus takes packed samples only; f32 keeps the decoder's precision.
const OPUS_FORMAT: Sample = Sample::F32(SampleType::Packed);
const OPUS_BITRATE_BPS: usize = 64_000;
/// An input timestamp this far from where the decoded samples say it should be is a gap (or
/// a jump back); below it, it is timestamp jitter and ignored. FLV rounds to whole ms and
/// OBS jitters by a few ms; one AAC frame lasts 21-23 ms at 44.1/48 kHz.
const GAP_TOLERANCE_MS: i64 = 15;

/// One 20 ms Opus packet, ready for RTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusFrame {
    /// The Opus packet (TOC byte first).
    pub data: Bytes,
    /// RTP timestamp at 48 kHz: the first input pts × 48, then advancing 960 a frame and
    /// jumping over gaps in the input. Wraps like an RTP timestamp.
    pub timestamp_48k: u32,
}

/// AAC (raw frames, as in FLV `AACPacketType` 1) to 20 ms stereo 48 kHz Opus at 64 kbit/s.
///
/// AAC is decoded by ffmpeg (each frame wrapped in an ADTS header built from the
/// AudioSpecificConfig), resampled by swresample and encoded by libopus
/// (`application=lowdelay`, CELT only, ~6.5 ms algorithmic delay).
///
/// `AacToOpus` is `Send` (every ffmpeg-next part of it is): build it anywhere and move it to
/// the thread that runs it. It is not `Sync`, and needs no locking as `&mut self` drives it.
pub struct AacToOpus {
    config: AudioSpecificConfig,
    decoder: decoder::Audio,
    decoded: frame::Audio,
    pcm: PcmToOpus,
}

impl std::fmt::Debug for AacToOpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AacToOpus")
            .field("config", &self.config)
            .field("buffered_samples", &(self.pcm.fifo.len() / 2))
            .field("clock", &self.pcm.clock)
            .finish_non_exhaustive()
    }
}

impl AacToOpus {
    /// `audio_specific_config` is the AAC sequence header (FLV `AACPacketType` 0 body).
    /// AAC Main/LC/SSR/LTP and HE-AAC (v1/v2, explicit or implicit) with channel configurations
    /// 1-7 are accepted; channel configuration 0 (a PCE) is not.
    pub fn new(audio_specific_config: &[u8]) -> Result<AacToOpus, TranscodeError> {
        init();
        let unsupported = |reason| TranscodeError::UnsupportedAacConfig {
            config_hex: hex(audio_specific_config),
            reason,
        };
        let config = AudioSpecificConfig::parse(audio_specific_config).map_err(unsupported)?;
        // Refuse now what ADTS cannot carry (object type > 4, channel configuration 0, ...).
        config.adts_header(0).map_err(unsupported)?;

        let aac = decoder::find(codec::Id::AAC).ok_or(TranscodeError::CodecNotFound {
            codec: "aac decoder",
        })?;
        let decoder = codec::context::Context::new_with_codec(aac)
            .decoder()
            .audio()
            .map_err(TranscodeError::setup(Stage::OpenAacDecoder))?;

        let opus = encoder::find_by_name("libopus").ok_or(TranscodeError::CodecNotFound {
            codec: "libopus encoder",
        })?;
        let mut ectx = codec::context::Context::new_with_codec(opus)
            .encoder()
            .audio()
            .map_err(TranscodeError::setup(Stage::OpenOpusEncoder))?;
        ectx.set_rate(OPUS_RATE as i32);
        ectx.set_format(OPUS_FORMAT);
        ectx.set_channel_layout(ChannelLayout::STEREO);
        ectx.set_bit_rate(OPUS_BITRATE_BPS);
        ectx.set_time_base((1, OPUS_RATE as i32));
        let mut options = Dictionary::new();
        options.set("application", "lowdelay");
        options.set("frame_duration", "20");
        let encoder = ectx
            .open_as_with(opus, options)
            .map_err(TranscodeError::setup(Stage::OpenOpusEncoder))?;
        if encoder.frame_size() as usize != OPUS_FRAME_SAMPLES {
            return Err(TranscodeError::Setup {
                stage: Stage::OpenOpusEncoder,
                cause: ffmpeg_next::Error::Bug,
            });
        }

        Ok(AacToOpus {
            config,
            decoder,
            decoded: frame::Audio::empty(),
            pcm: PcmToOpus {
                resampler: None,
                resampled: None,
                fifo: Vec::with_capacity(4 * OPUS_FRAME_SAMPLES),
                encoder,
                packet: Packet::empty(),
                clock: None,
            },
        })
    }

    /// The sample rate the AudioSpecificConfig announces (the AAC core rate).
    pub fn input_sample_rate(&self) -> u32 {
        self.config.sample_rate()
    }

    /// Decodes one raw AAC frame whose first sample plays at `pts_ms`, and returns the Opus
    /// frames that are now complete (usually 1, sometimes 0 or 2).
    ///
    /// A forward jump of `pts_ms` beyond the decoded duration (a gap, e.g. dropped frames)
    /// moves the RTP timestamp forward by the gap: the partial Opus frame is finished with
    /// silence first. A jump back (a publisher restart) keeps the RTP timestamp continuous.
    ///
    /// An error concerns this frame only (corrupt data); the next push may succeed.
    pub fn push(
        &mut self,
        raw_aac_frame: &[u8],
        pts_ms: i64,
    ) -> Result<Vec<OpusFrame>, TranscodeError> {
        let bad_frame = || TranscodeError::BadAacFrame {
            len: raw_aac_frame.len(),
            pts_ms,
        };
        if raw_aac_frame.is_empty() {
            return Err(bad_frame());
        }
        let header = self
            .config
            .adts_header(raw_aac_frame.len())
            .map_err(|_| bad_frame())?;
        let mut out = Vec::new();
        self.pcm.handle_input_pts(pts_ms, &mut out)?;

        let mut adts = Vec::with_capacity(raw_aac_frame.len() + header.len());
        adts.extend_from_slice(&header);
        adts.extend_from_slice(raw_aac_frame);
        let mut packet = Packet::copy(&adts);
        packet.set_pts(Some(pts_ms));
        self.decoder
            .send_packet(&packet)
            .map_err(TranscodeError::frame(Stage::DecodeAac, pts_ms))?;
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => self.pcm.handle_pcm(&self.decoded, pts_ms, &mut out)?,
                Err(e) if drained(&e) => break,
                Err(e) => return Err(TranscodeError::frame(Stage::DecodeAac, pts_ms)(e)),
            }
        }
        Ok(out)
    }

    /// Encodes what is buffered (padded with silence to a whole frame) and returns it. Pushing
    /// afterwards continues the same timeline.
    pub fn flush(&mut self) -> Result<Vec<OpusFrame>, TranscodeError> {
        let mut out = Vec::new();
        self.pcm.pad_to_frame_boundary();
        let pts_ms = self.pcm.clock.as_ref().map_or(0, Clock::input_position_ms);
        self.pcm.encode_complete_frames(pts_ms, &mut out)?;
        Ok(out)
    }
}

impl Drop for AacToOpus {
    /// Drains libopus, which otherwise warns about its lookahead on closing.
    fn drop(&mut self) {
        if self.pcm.encoder.send_eof().is_ok() {
            while self
                .pcm
                .encoder
                .receive_packet(&mut self.pcm.packet)
                .is_ok()
            {}
        }
    }
}

/// Resampler, FIFO, Opus encoder and the clock: everything after the AAC decoder (kept apart
/// so that it can borrow the decoded frame).
struct PcmToOpus {
    resampler: Option<software::resampling::Context>,
    /// Reused output of the resampler and its capacity in samples.
    resampled: Option<(frame::Audio, usize)>,
    /// Interleaved stereo f32 at 48 kHz, not yet encoded.
    fifo: Vec<f32>,
    encoder: encoder::audio::Encoder,
    packet: Packet,
    clock: Option<Clock>,
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    /// RTP timestamp of output sample 0 (first input pts × 48).
    base_48k: u32,
    /// Output position of the first sample in the FIFO, in 48 kHz samples from the start
    /// (gaps included). It is the pts of the next frame sent to libopus.
    next_frame_pts: i64,
    /// Input pts that restarted the input clock, and the decoded duration since, in samples
    /// at `input_rate`.
    anchor_ms: i64,
    input_samples: i64,
    input_rate: i64,
}

impl Clock {
    fn input_position_ms(&self) -> i64 {
        self.anchor_ms + self.input_samples * 1000 / self.input_rate.max(1)
    }
}

impl PcmToOpus {
    /// Starts the clock on the first frame; detects gaps and jumps back afterwards.
    fn handle_input_pts(
        &mut self,
        pts_ms: i64,
        out: &mut Vec<OpusFrame>,
    ) -> Result<(), TranscodeError> {
        let Some(clock) = self.clock.as_mut() else {
            self.clock = Some(Clock {
                base_48k: pts_ms.wrapping_mul(48) as u32,
                next_frame_pts: 0,
                anchor_ms: pts_ms,
                input_samples: 0,
                input_rate: 0,
            });
            return Ok(());
        };
        if clock.input_rate == 0 {
            return Ok(()); // nothing decoded yet: no expectation to compare with
        }
        let gap_ms = pts_ms - clock.input_position_ms();
        if gap_ms.abs() <= GAP_TOLERANCE_MS {
            return Ok(());
        }
        clock.anchor_ms = pts_ms;
        clock.input_samples = 0;
        if gap_ms < 0 {
            tracing::debug!(
                jump_ms = gap_ms,
                "AAC pts went back; Opus timestamps stay continuous"
            );
            return Ok(());
        }
        tracing::debug!(gap_ms, "gap in AAC input; jumping the Opus timestamp");
        let gap_samples = gap_ms * i64::from(OPUS_RATE) / 1000;
        let pad = self.pad_to_frame_boundary() as i64;
        self.encode_complete_frames(pts_ms, out)?;
        if let Some(clock) = self.clock.as_mut() {
            clock.next_frame_pts += (gap_samples - pad).max(0);
        }
        Ok(())
    }

    /// Appends silence up to a whole Opus frame; returns the samples added.
    fn pad_to_frame_boundary(&mut self) -> usize {
        let buffered = self.fifo.len() / 2;
        let pad = (OPUS_FRAME_SAMPLES - buffered % OPUS_FRAME_SAMPLES) % OPUS_FRAME_SAMPLES;
        self.fifo.resize(self.fifo.len() + 2 * pad, 0.0);
        pad
    }

    fn handle_pcm(
        &mut self,
        pcm: &frame::Audio,
        pts_ms: i64,
        out: &mut Vec<OpusFrame>,
    ) -> Result<(), TranscodeError> {
        let layout = if pcm.channel_layout().is_empty() {
            ChannelLayout::default(i32::from(pcm.channels()))
        } else {
            pcm.channel_layout()
        };
        let same_input = self.resampler.as_ref().is_some_and(|r| {
            let input = r.input();
            input.format == pcm.format()
                && input.channel_layout == layout
                && input.rate == pcm.rate()
        });
        if !same_input {
            self.resampler = Some(
                software::resampling::Context::get(
                    pcm.format(),
                    layout,
                    pcm.rate(),
                    OPUS_FORMAT,
                    ChannelLayout::STEREO,
                    OPUS_RATE,
                )
                .map_err(TranscodeError::frame(Stage::Resample, pts_ms))?,
            );
        }
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(());
        };

        // swresample fills at most the frame's nb_samples; ffmpeg-next would size an empty
        // output frame like the input, which is too small when upsampling (44.1 -> 48 kHz).
        let needed = pcm.samples() * OPUS_RATE as usize / pcm.rate().max(1) as usize + 256;
        if self.resampled.as_ref().is_none_or(|(_, cap)| *cap < needed) {
            self.resampled = Some((
                frame::Audio::new(OPUS_FORMAT, needed, ChannelLayout::STEREO),
                needed,
            ));
        }
        let Some((resampled, cap)) = self.resampled.as_mut() else {
            return Ok(());
        };
        resampled.set_samples(*cap);
        resampler
            .run(pcm, resampled)
            .map_err(TranscodeError::frame(Stage::Resample, pts_ms))?;
        let produced = resampled.samples();
        let stereo: &[(f32, f32)] = resampled.plane(0);
        for &(l, r) in &stereo[..produced.min(stereo.len())] {
            self.fifo.push(l);
            self.fifo.push(r);
        }

        if let Some(clock) = self.clock.as_mut() {
            if clock.input_rate != i64::from(pcm.rate()) {
                // First frame, or a rate change: restart the input clock here.
                clock.anchor_ms = clock.input_position_ms_or(pts_ms);
                clock.input_samples = 0;
                clock.input_rate = i64::from(pcm.rate());
            }
            clock.input_samples += pcm.samples() as i64;
        }
        self.encode_complete_frames(pts_ms, out)
    }

    fn encode_complete_frames(
        &mut self,
        pts_ms: i64,
        out: &mut Vec<OpusFrame>,
    ) -> Result<(), TranscodeError> {
        let Some(clock) = self.clock.as_mut() else {
            return Ok(());
        };
        let mut consumed = 0;
        while self.fifo.len() - consumed >= 2 * OPUS_FRAME_SAMPLES {
            let mut frame =
                frame::Audio::new(OPUS_FORMAT, OPUS_FRAME_SAMPLES, ChannelLayout::STEREO);
            frame.set_rate(OPUS_RATE);
            let frame_pts = clock.next_frame_pts;
            frame.set_pts(Some(frame_pts));
            for (dst, src) in frame
                .plane_mut::<(f32, f32)>(0)
                .iter_mut()
                .zip(self.fifo[consumed..consumed + 2 * OPUS_FRAME_SAMPLES].chunks_exact(2))
            {
                *dst = (src[0], src[1]);
            }
            consumed += 2 * OPUS_FRAME_SAMPLES;
            clock.next_frame_pts += OPUS_FRAME_SAMPLES as i64;

            self.encoder
                .send_frame(&frame)
                .map_err(TranscodeError::frame(Stage::EncodeOpus, pts_ms))?;
            loop {
                match self.encoder.receive_packet(&mut self.packet) {
                    Ok(()) => {
                        let data = self.packet.data().unwrap_or_default();
                        // libopus reports its 312-sample lookahead as a negative first pts.
                        let pts = self.packet.pts().unwrap_or(frame_pts);
                        out.push(OpusFrame {
                            data: Bytes::copy_from_slice(data),
                            timestamp_48k: clock.base_48k.wrapping_add(pts as u32),
                        });
                    }
                    Err(e) if drained(&e) => break,
                    Err(e) => return Err(TranscodeError::frame(Stage::EncodeOpus, pts_ms)(e)),
                }
            }
        }
        self.fifo.drain(..consumed);
        Ok(())
    }
}

impl Clock {
    /// The current input position, or `fallback` before anything was decoded.
    fn input_position_ms_or(&self, fallback: i64) -> i64 {
        if self.input_rate == 0 {
            fallback
        } else {
            self.input_position_ms()
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
