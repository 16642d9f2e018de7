//! Opus (WebRTC sources) to AAC-LC for HLS.

use bytes::Bytes;
use ffmpeg_next::util::format::Sample;
use ffmpeg_next::util::format::sample::Type as SampleType;
use ffmpeg_next::{ChannelLayout, Packet, codec, decoder, encoder, frame, software};

use super::error::TranscodeError;
use super::{drained, init};

const RATE: u32 = 48_000;
const AAC_FRAME: usize = 1024;
const AAC_BITRATE_BPS: usize = 128_000;
const PLANAR: Sample = Sample::F32(SampleType::Planar);

/// One AAC frame; `pts` counts samples at 48 kHz.
#[derive(Debug, Clone)]
pub struct AacFrame {
    pub data: Bytes,
    pub pts: i64,
}

/// Opus packets (48 kHz, mono or stereo) to 1024-sample stereo AAC-LC frames at 128 kbit/s.
///
/// Output time is continuous: the first packet's pts (in 48 kHz samples) starts it and each
/// frame adds 1024; a gap in the input of more than 100 ms restarts it from the input's pts
/// (the packager resynchronizes on it).
pub struct OpusToAac {
    decoder: decoder::Audio,
    decoded: frame::Audio,
    resampler: Option<(software::resampling::Context, (Sample, ChannelLayout, u32))>,
    resampled: frame::Audio,
    encoder: encoder::audio::Encoder,
    packet: Packet,
    left: Vec<f32>,
    right: Vec<f32>,
    /// The pts (48 kHz samples) of the first sample in the buffer.
    buffer_pts: Option<i64>,
}

impl std::fmt::Debug for OpusToAac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusToAac")
            .field("buffered", &self.left.len())
            .field("buffer_pts", &self.buffer_pts)
            .finish_non_exhaustive()
    }
}

impl OpusToAac {
    pub fn new() -> Result<OpusToAac, TranscodeError> {
        init();
        let opus = decoder::find(codec::Id::OPUS).ok_or(TranscodeError::CodecNotFound {
            codec: "opus decoder",
        })?;
        let mut context = codec::context::Context::new_with_codec(opus);
        context.set_time_base((1, RATE as i32));
        let mut dec = context.decoder();
        dec.set_time_base((1, RATE as i32));
        let mut decoder = dec
            .audio()
            .map_err(TranscodeError::setup("opening the Opus decoder"))?;
        decoder.set_channel_layout(ChannelLayout::STEREO);

        let aac = encoder::find(codec::Id::AAC).ok_or(TranscodeError::CodecNotFound {
            codec: "aac encoder",
        })?;
        let mut ectx = codec::context::Context::new_with_codec(aac)
            .encoder()
            .audio()
            .map_err(TranscodeError::setup("opening the AAC encoder"))?;
        ectx.set_rate(RATE as i32);
        ectx.set_format(PLANAR);
        ectx.set_channel_layout(ChannelLayout::STEREO);
        ectx.set_bit_rate(AAC_BITRATE_BPS);
        ectx.set_time_base((1, RATE as i32));
        let encoder = ectx
            .open_as(aac)
            .map_err(TranscodeError::setup("opening the AAC encoder"))?;
        Ok(OpusToAac {
            decoder,
            decoded: frame::Audio::empty(),
            resampler: None,
            resampled: frame::Audio::empty(),
            encoder,
            packet: Packet::empty(),
            left: Vec::with_capacity(4 * AAC_FRAME),
            right: Vec::with_capacity(4 * AAC_FRAME),
            buffer_pts: None,
        })
    }

    /// The output's `AudioSpecificConfig` (AAC-LC, 48 kHz, stereo).
    pub fn audio_specific_config() -> [u8; 2] {
        [0x11, 0x90]
    }

    /// Output sample rate.
    pub fn sample_rate() -> u32 {
        RATE
    }

    /// Decodes one Opus packet whose first sample plays at `pts` (48 kHz samples), returning
    /// the AAC frames now complete. An error concerns this packet only.
    pub fn push(&mut self, opus: &[u8], pts: i64) -> Result<Vec<AacFrame>, TranscodeError> {
        let mut out = Vec::new();
        if let Some(start) = self.buffer_pts {
            let expected = start + self.left.len() as i64;
            if (pts - expected).abs() > i64::from(RATE) / 10 {
                // A gap (or a restart): drop the partial frame and start over at `pts`.
                self.left.clear();
                self.right.clear();
                self.buffer_pts = Some(pts);
            }
        } else {
            self.buffer_pts = Some(pts);
        }
        let mut packet = Packet::copy(opus);
        packet.set_pts(Some(pts));
        self.decoder
            .send_packet(&packet)
            .map_err(TranscodeError::frame("decoding Opus", pts))?;
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => self.take_decoded(pts)?,
                Err(e) if drained(&e) => break,
                Err(e) => return Err(TranscodeError::frame("decoding Opus", pts)(e)),
            }
        }
        self.encode_full_frames(pts, &mut out)?;
        Ok(out)
    }

    fn take_decoded(&mut self, pts: i64) -> Result<(), TranscodeError> {
        let layout = if self.decoded.channels() == 1 {
            ChannelLayout::MONO
        } else {
            ChannelLayout::STEREO
        };
        let input = (self.decoded.format(), layout, self.decoded.rate().max(1));
        self.decoded.set_channel_layout(layout);
        let needs_new = self.resampler.as_ref().is_none_or(|(_, i)| *i != input);
        if needs_new {
            let context = software::resampling::Context::get(
                input.0,
                input.1,
                input.2,
                PLANAR,
                ChannelLayout::STEREO,
                RATE,
            )
            .map_err(TranscodeError::frame("resampling", pts))?;
            self.resampler = Some((context, input));
        }
        let Some((resampler, _)) = self.resampler.as_mut() else {
            return Ok(());
        };
        resampler
            .run(&self.decoded, &mut self.resampled)
            .map_err(TranscodeError::frame("resampling", pts))?;
        let n = self.resampled.samples();
        self.left
            .extend_from_slice(&self.resampled.plane::<f32>(0)[..n]);
        self.right
            .extend_from_slice(&self.resampled.plane::<f32>(1)[..n]);
        Ok(())
    }

    fn encode_full_frames(
        &mut self,
        pts: i64,
        out: &mut Vec<AacFrame>,
    ) -> Result<(), TranscodeError> {
        while self.left.len() >= AAC_FRAME {
            let start = self.buffer_pts.unwrap_or(pts);
            let mut frame = frame::Audio::new(PLANAR, AAC_FRAME, ChannelLayout::STEREO);
            frame.set_rate(RATE);
            frame.plane_mut::<f32>(0)[..AAC_FRAME].copy_from_slice(&self.left[..AAC_FRAME]);
            frame.plane_mut::<f32>(1)[..AAC_FRAME].copy_from_slice(&self.right[..AAC_FRAME]);
            frame.set_pts(Some(start));
            self.left.drain(..AAC_FRAME);
            self.right.drain(..AAC_FRAME);
            self.buffer_pts = Some(start + AAC_FRAME as i64);
            self.encoder
                .send_frame(&frame)
                .map_err(TranscodeError::frame("encoding AAC", start))?;
            loop {
                match self.encoder.receive_packet(&mut self.packet) {
                    Ok(()) => out.push(AacFrame {
                        data: Bytes::copy_from_slice(self.packet.data().unwrap_or_default()),
                        pts: self.packet.pts().unwrap_or(start),
                    }),
                    Err(e) if drained(&e) => break,
                    Err(e) => return Err(TranscodeError::frame("encoding AAC", start)(e)),
                }
            }
        }
        Ok(())
    }
}
