//! AAC: the `AudioSpecificConfig` (ISO/IEC 14496-3 §1.6.2.1) that an FLV/RTMP AAC sequence
//! header carries, and the ADTS header (§1.A.2) that frames raw AAC for decoders without
//! out-of-band configuration.
//!
//! ```text
//! audioObjectType:5 [31: 32 + escape:6] | samplingFrequencyIndex:4 [15: frequency:24]
//!   | channelConfiguration:4 | [AOT 5/29: extension index:4 (+24), core audioObjectType]
//!   | GASpecificConfig | [syncExtensionType 0x2b7: SBR/PS signalling]
//! ```

use crate::MediaError;

/// Sampling frequencies by `samplingFrequencyIndex` (0..=12; 13 and 14 are reserved).
const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];
/// `samplingFrequencyIndex` escape: a 24-bit frequency follows.
const EXPLICIT_RATE: u8 = 0x0f;
/// Explicit SBR (HE-AAC) and PS (HE-AAC v2) object types.
const AOT_SBR: u8 = 5;
const AOT_PS: u8 = 29;
/// Object types whose configuration is a `GASpecificConfig`.
const GA_OBJECT_TYPES: [u8; 12] = [1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23];
/// Largest ADTS `frame_length` (13 bits), header included.
const ADTS_MAX_FRAME: usize = 0x1fff;
/// Length of an ADTS header without CRC.
const ADTS_HEADER_LEN: usize = 7;

/// A parsed `AudioSpecificConfig`.
///
/// For explicitly signalled HE-AAC (object type 5 or 29) the fields describe the core AAC
/// stream, and `sbr`/`ps` and `extension_sample_rate_hz` describe the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// Audio object type of the core stream: 1 main, 2 LC, 3 SSR, 4 LTP, ...
    pub object_type: u8,
    /// `samplingFrequencyIndex` (0..=12), or 15 when the frequency is explicit.
    pub sampling_frequency_index: u8,
    /// Sampling frequency of the core stream in Hz.
    pub sample_rate_hz: u32,
    /// `channelConfiguration` (0 = defined by a program config element).
    pub channel_configuration: u8,
    /// Spectral band replication (HE-AAC) is signalled present.
    pub sbr: bool,
    /// Parametric stereo (HE-AAC v2) is signalled present.
    pub ps: bool,
    /// Output sampling frequency of the SBR extension in Hz, when signalled.
    pub extension_sample_rate_hz: Option<u32>,
    /// Samples per frame per channel: 1024, or 960 when `frameLengthFlag` is set.
    pub samples_per_frame: u16,
}

impl AudioSpecificConfig {
    /// Parses a config. The object type, frequency and channel configuration are required;
    /// the `GASpecificConfig` and backward-compatible SBR/PS signalling after them are read
    /// when present and well-formed, and ignored otherwise.
    pub fn parse(data: &[u8]) -> Result<AudioSpecificConfig, MediaError> {
        let truncated = || MediaError::Truncated {
            what: "AAC AudioSpecificConfig",
            needed: (data.len() + 1).max(2),
            len: data.len(),
        };
        let mut r = BitReader::new(data);
        let mut object_type = r.object_type().ok_or_else(truncated)?;
        let (sampling_frequency_index, sample_rate_hz) = r.frequency().ok_or_else(truncated)??;
        let channel_configuration = r.bits(4).ok_or_else(truncated)? as u8;
        let mut config = AudioSpecificConfig {
            object_type,
            sampling_frequency_index,
            sample_rate_hz,
            channel_configuration,
            sbr: false,
            ps: false,
            extension_sample_rate_hz: None,
            samples_per_frame: 1024,
        };
        let explicit = object_type == AOT_SBR || object_type == AOT_PS;
        if explicit {
            config.sbr = true;
            config.ps = object_type == AOT_PS;
            let (_, rate) = r.frequency().ok_or_else(truncated)??;
            config.extension_sample_rate_hz = Some(rate);
            object_type = r.object_type().ok_or_else(truncated)?;
            config.object_type = object_type;
        }
        if object_type == 0 {
            return Err(MediaError::Invalid {
                what: "AAC audio object type",
                value: 0,
            });
        }
        if GA_OBJECT_TYPES.contains(&object_type)
            && r.ga_specific_config(&mut config) == Some(true)
            && !explicit
        {
            r.sync_extension(&mut config);
        }
        Ok(config)
    }

    /// Sampling frequency of the coded AAC frames in Hz (the core rate for HE-AAC): with
    /// [`samples_per_frame`](Self::samples_per_frame), the clock for frame timestamps.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate_hz
    }

    /// Sampling frequency a decoder outputs: the SBR rate when SBR is signalled.
    pub fn output_sample_rate(&self) -> u32 {
        self.extension_sample_rate_hz
            .filter(|_| self.sbr)
            .unwrap_or(self.sample_rate_hz)
    }

    /// Number of output channels, or `None` when the configuration is in a program config
    /// element (channel configuration 0) or reserved.
    pub fn channels(&self) -> Option<u8> {
        match self.channel_configuration {
            count @ 1..=6 => Some(count),
            11 => Some(7),
            7 | 12 | 14 => Some(8),
            _ => None,
        }
    }

    /// The 7-byte ADTS header (MPEG-4, no CRC, one raw data block, VBR buffer fullness) for
    /// one raw AAC frame of `payload_len` bytes.
    ///
    /// Fails when ADTS cannot express this config (object type outside 1..=4, a frequency
    /// without an index, channel configuration 0 or above 7) or the frame is longer than the
    /// 13-bit frame length allows.
    pub fn adts_header(&self, payload_len: usize) -> Result<[u8; 7], MediaError> {
        if !(1..=4).contains(&self.object_type) {
            return Err(MediaError::Unsupported {
                what: "ADTS audio object type",
                value: u32::from(self.object_type),
            });
        }
        let Some(index) = SAMPLE_RATES
            .iter()
            .position(|&rate| rate == self.sample_rate_hz)
        else {
            return Err(MediaError::Unsupported {
                what: "ADTS sampling frequency",
                value: self.sample_rate_hz,
            });
        };
        if !(1..=7).contains(&self.channel_configuration) {
            return Err(MediaError::Unsupported {
                what: "ADTS channel configuration",
                value: u32::from(self.channel_configuration),
            });
        }
        let len = payload_len
            .checked_add(ADTS_HEADER_LEN)
            .filter(|&len| len <= ADTS_MAX_FRAME)
            .ok_or(MediaError::TooLarge {
                what: "ADTS frame",
                len: payload_len.saturating_add(ADTS_HEADER_LEN),
                max: ADTS_MAX_FRAME,
            })?;
        let profile = self.object_type - 1;
        let index = index as u8;
        let channels = self.channel_configuration;
        Ok([
            0xff,
            0xf1,
            (profile << 6) | (index << 2) | (channels >> 2),
            ((channels & 0x03) << 6) | ((len >> 11) as u8 & 0x03),
            (len >> 3) as u8,
            ((len as u8 & 0x07) << 5) | 0x1f,
            0xfc,
        ])
    }
}

/// Reads bits MSB-first from a byte slice.
struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, bit: 0 }
    }

    fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.bit)
    }

    fn bits(&mut self, count: u32) -> Option<u32> {
        if self.remaining() < count as usize {
            return None;
        }
        (0..count).try_fold(0u32, |acc, _| {
            let byte = self.data.get(self.bit / 8)?;
            let value = (byte >> (7 - self.bit % 8)) & 1;
            self.bit += 1;
            Some((acc << 1) | u32::from(value))
        })
    }

    /// `GetAudioObjectType()`: 5 bits, 31 escapes to 32 + 6 more bits.
    fn object_type(&mut self) -> Option<u8> {
        match self.bits(5)? as u8 {
            31 => Some(32 + self.bits(6)? as u8),
            object_type => Some(object_type),
        }
    }

    /// A frequency index and its frequency; `Some(Err)` for a reserved index.
    fn frequency(&mut self) -> Option<Result<(u8, u32), MediaError>> {
        let index = self.bits(4)? as u8;
        if index == EXPLICIT_RATE {
            return Some(Ok((index, self.bits(24)?)));
        }
        Some(
            SAMPLE_RATES
                .get(usize::from(index))
                .map(|&rate| (index, rate))
                .ok_or(MediaError::Invalid {
                    what: "AAC sampling frequency index",
                    value: u32::from(index),
                }),
        )
    }

    /// Reads a `GASpecificConfig`; `Some(true)` when it was read completely, `Some(false)`
    /// when a program config element stops the parse.
    fn ga_specific_config(&mut self, config: &mut AudioSpecificConfig) -> Option<bool> {
        if self.bits(1)? == 1 {
            config.samples_per_frame = 960;
        }
        if self.bits(1)? == 1 {
            let _core_coder_delay = self.bits(14)?;
        }
        let extension = self.bits(1)? == 1;
        if config.channel_configuration == 0 {
            return Some(false);
        }
        let object_type = config.object_type;
        if object_type == 6 || object_type == 20 {
            let _layer = self.bits(3)?;
        }
        if extension {
            if object_type == 22 {
                let _sub_frames_and_layer_length = self.bits(16)?;
            }
            if matches!(object_type, 17 | 19 | 20 | 23) {
                let _resilience_flags = self.bits(3)?;
            }
            let _extension3 = self.bits(1)?;
        }
        Some(true)
    }

    /// Backward-compatible SBR/PS signalling (`syncExtensionType` 0x2b7 and 0x548).
    fn sync_extension(&mut self, config: &mut AudioSpecificConfig) -> Option<()> {
        if self.remaining() < 16 || self.bits(11)? != 0x2b7 {
            return None;
        }
        if self.object_type()? != AOT_SBR {
            return None;
        }
        config.sbr = self.bits(1)? == 1;
        if !config.sbr {
            return None;
        }
        let (_, rate) = self.frequency()?.ok()?;
        config.extension_sample_rate_hz = Some(rate);
        if self.remaining() >= 12 && self.bits(11)? == 0x548 {
            config.ps = self.bits(1)? == 1;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Writes bits MSB-first, for building configs.
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        bit: usize,
    }

    impl BitWriter {
        fn put(&mut self, value: u32, count: u32) {
            for shift in (0..count).rev() {
                if self.bit.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                let bit = ((value >> shift) & 1) as u8;
                if let Some(last) = self.bytes.last_mut() {
                    *last |= bit << (7 - self.bit % 8);
                }
                self.bit += 1;
            }
        }
    }

    /// Fields of an ADTS header, decoded back.
    fn decode_adts(header: &[u8; 7]) -> (u8, u8, u8, usize) {
        assert_eq!(header[0], 0xff);
        assert_eq!(header[1], 0xf1);
        let profile = header[2] >> 6;
        let index = (header[2] >> 2) & 0x0f;
        let channels = ((header[2] & 1) << 2) | (header[3] >> 6);
        let len = (usize::from(header[3] & 0x03) << 11)
            | (usize::from(header[4]) << 3)
            | usize::from(header[5] >> 5);
        assert_eq!(header[5] & 0x1f, 0x1f);
        assert_eq!(header[6], 0xfc);
        (profile, index, channels, len)
    }

    #[test]
    fn ffmpeg_lc_mono_with_sync_extension() {
        let config = AudioSpecificConfig::parse(&[0x12, 0x08, 0x56, 0xe5, 0x00]).expect("parse");
        assert_eq!(config.object_type, 2);
        assert_eq!(config.sampling_frequency_index, 4);
        assert_eq!(config.sample_rate(), 44_100);
        assert_eq!(config.channels(), Some(1));
        assert!(!config.sbr);
        assert_eq!(config.output_sample_rate(), 44_100);
        assert_eq!(config.samples_per_frame, 1024);
    }

    #[test]
    fn lc_stereo_48k() {
        let config = AudioSpecificConfig::parse(&[0x11, 0x90]).expect("parse");
        assert_eq!((config.object_type, config.sample_rate()), (2, 48_000));
        assert_eq!(config.channels(), Some(2));
        let header = config.adts_header(300).expect("adts");
        assert_eq!(decode_adts(&header), (1, 3, 2, 307));
    }

    #[test]
    fn explicit_he_aac() {
        // AOT 5, core 22050 Hz stereo, SBR at 44100 Hz, core AOT 2.
        let config = AudioSpecificConfig::parse(&[0x2b, 0x92, 0x08, 0x00]).expect("parse");
        assert_eq!(config.object_type, 2);
        assert!(config.sbr && !config.ps);
        assert_eq!(config.sample_rate(), 22_050);
        assert_eq!(config.output_sample_rate(), 44_100);
        assert_eq!(config.channels(), Some(2));
        let (profile, index, channels, _) = decode_adts(&config.adts_header(10).expect("adts"));
        assert_eq!((profile, index, channels), (1, 7, 2));
    }

    #[test]
    fn implicit_sbr_and_ps_signalling() {
        let mut w = BitWriter::default();
        w.put(2, 5);
        w.put(6, 4); // 24000
        w.put(1, 4);
        w.put(0, 3); // GASpecificConfig
        w.put(0x2b7, 11);
        w.put(5, 5);
        w.put(1, 1);
        w.put(3, 4); // 48000
        w.put(0x548, 11);
        w.put(1, 1);
        let config = AudioSpecificConfig::parse(&w.bytes).expect("parse");
        assert!(config.sbr && config.ps);
        assert_eq!(config.sample_rate(), 24_000);
        assert_eq!(config.output_sample_rate(), 48_000);
    }

    #[test]
    fn escaped_object_type_and_explicit_frequency() {
        let mut w = BitWriter::default();
        w.put(31, 5);
        w.put(10, 6); // AOT 42 (USAC)
        w.put(15, 4);
        w.put(44_100, 24);
        w.put(2, 4);
        let config = AudioSpecificConfig::parse(&w.bytes).expect("parse");
        assert_eq!(config.object_type, 42);
        assert_eq!(config.sampling_frequency_index, 15);
        assert_eq!(config.sample_rate(), 44_100);
        assert_eq!(config.channels(), Some(2));
        assert_eq!(
            config.adts_header(1),
            Err(MediaError::Unsupported {
                what: "ADTS audio object type",
                value: 42
            })
        );

        // An explicit standard frequency still maps to its ADTS index.
        let mut w = BitWriter::default();
        w.put(2, 5);
        w.put(15, 4);
        w.put(32_000, 24);
        w.put(1, 4);
        let config = AudioSpecificConfig::parse(&w.bytes).expect("parse");
        let (_, index, _, _) = decode_adts(&config.adts_header(1).expect("adts"));
        assert_eq!(index, 5);

        let mut w = BitWriter::default();
        w.put(2, 5);
        w.put(15, 4);
        w.put(12_345, 24);
        w.put(1, 4);
        let config = AudioSpecificConfig::parse(&w.bytes).expect("parse");
        assert_eq!(config.sample_rate(), 12_345);
        assert!(matches!(
            config.adts_header(1),
            Err(MediaError::Unsupported { .. })
        ));
    }

    #[test]
    fn frame_length_flag_and_channel_layouts() {
        // LC, 48 kHz, 5.1, frameLengthFlag = 1.
        let config = AudioSpecificConfig::parse(&[0x11, 0xb4]).expect("parse");
        assert_eq!(config.samples_per_frame, 960);
        assert_eq!(config.channels(), Some(6));
        let mut config = config;
        config.channel_configuration = 7;
        assert_eq!(config.channels(), Some(8));
        config.channel_configuration = 0;
        assert_eq!(config.channels(), None);
        assert!(matches!(
            config.adts_header(1),
            Err(MediaError::Unsupported { .. })
        ));
    }

    #[test]
    fn rejects_bad_configs() {
        assert!(matches!(
            AudioSpecificConfig::parse(&[]),
            Err(MediaError::Truncated { .. })
        ));
        assert!(matches!(
            AudioSpecificConfig::parse(&[0x12]),
            Err(MediaError::Truncated { .. })
        ));
        // Reserved frequency index 13.
        assert_eq!(
            AudioSpecificConfig::parse(&[0x16, 0x88]),
            Err(MediaError::Invalid {
                what: "AAC sampling frequency index",
                value: 13
            })
        );
        // Object type 0.
        assert!(matches!(
            AudioSpecificConfig::parse(&[0x02, 0x08]),
            Err(MediaError::Invalid { .. })
        ));
    }

    #[test]
    fn adts_frame_length_limit() {
        let config = AudioSpecificConfig::parse(&[0x12, 0x10]).expect("parse");
        let header = config.adts_header(ADTS_MAX_FRAME - 7).expect("fits");
        assert_eq!(decode_adts(&header).3, ADTS_MAX_FRAME);
        assert_eq!(
            config.adts_header(ADTS_MAX_FRAME - 6),
            Err(MediaError::TooLarge {
                what: "ADTS frame",
                len: ADTS_MAX_FRAME + 1,
                max: ADTS_MAX_FRAME
            })
        );
        assert!(config.adts_header(usize::MAX).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..16), len in any::<usize>()) {
            if let Ok(config) = AudioSpecificConfig::parse(&data) {
                let _ = config.adts_header(len);
                let _ = (config.channels(), config.output_sample_rate());
            }
        }

        #[test]
        fn config_and_adts_round_trip(
            object_type in 1u8..=4,
            index in 0u8..=12,
            channels in 1u8..=7,
            payload_len in 0usize..=(ADTS_MAX_FRAME - 7),
        ) {
            let mut w = BitWriter::default();
            w.put(u32::from(object_type), 5);
            w.put(u32::from(index), 4);
            w.put(u32::from(channels), 4);
            w.put(0, 3);
            let config = AudioSpecificConfig::parse(&w.bytes).expect("parse");
            prop_assert_eq!(config.object_type, object_type);
            prop_assert_eq!(config.sampling_frequency_index, index);
            prop_assert_eq!(config.sample_rate(), SAMPLE_RATES[usize::from(index)]);
            prop_assert_eq!(config.channel_configuration, channels);
            let header = config.adts_header(payload_len).expect("adts");
            prop_assert_eq!(
                decode_adts(&header),
                (object_type - 1, index, channels, payload_len + 7)
            );
        }
    }
}
