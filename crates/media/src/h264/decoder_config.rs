//! The AVC decoder configuration record (ISO/IEC 14496-15 §5.3.3.1): the body of an FLV/RTMP
//! AVC sequence header and of an MP4 `avcC` box.
//!
//! ```text
//! 01 | profile_idc | profile_compat | level_idc | 111111 lengthSizeMinusOne:2
//!    | 111 numOfSPS:5 | { u16 length, SPS }* | numOfPPS:8 | { u16 length, PPS }*
//!    [| high-profile extension: chroma format, bit depths, SPS extensions (ignored)]
//! ```

use bytes::Bytes;

use super::sps_resolution;
use crate::MediaError;

/// A parsed `AVCDecoderConfigurationRecord`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfig {
    /// `AVCProfileIndication` (`profile_idc` of the SPS): 66 baseline, 77 main, 100 high, ...
    pub profile_indication: u8,
    /// `profile_compatibility`: the constraint flags byte of the SPS.
    pub profile_compatibility: u8,
    /// `AVCLevelIndication`: `level_idc`, ten times the level (31 is level 3.1).
    pub level: u8,
    /// Size in bytes (1, 2 or 4) of the NAL unit length prefixes in the stream's AVCC frames.
    pub length_size: u8,
    /// The sequence parameter set NAL units, each with its NAL header byte; empty ones are
    /// dropped.
    pub sps: Vec<Bytes>,
    /// The picture parameter set NAL units, each with its NAL header byte; empty ones are
    /// dropped.
    pub pps: Vec<Bytes>,
}

impl AvcDecoderConfig {
    /// Parses a record. Trailing bytes (the high-profile extension) are ignored.
    ///
    /// Fails on a version other than 1, a length size of 3 (not allowed by the format), or
    /// a truncated parameter set list.
    pub fn parse(record: &[u8]) -> Result<AvcDecoderConfig, MediaError> {
        let Some((header, rest)) = record.split_first_chunk::<6>() else {
            return Err(MediaError::Truncated {
                what: "AVC decoder configuration record",
                needed: 6,
                len: record.len(),
            });
        };
        let [
            version,
            profile_indication,
            profile_compatibility,
            level,
            lengths,
            sps_count,
        ] = *header;
        if version != 1 {
            return Err(MediaError::Invalid {
                what: "AVC decoder configuration record version",
                value: u32::from(version),
            });
        }
        let length_size = (lengths & 0x03) + 1;
        if length_size == 3 {
            return Err(MediaError::InvalidLengthSize(3));
        }
        let (sps, rest) = parameter_sets(
            rest,
            usize::from(sps_count & 0x1f),
            "AVC decoder configuration SPS",
        )?;
        let Some((&pps_count, rest)) = rest.split_first() else {
            return Err(MediaError::Truncated {
                what: "AVC decoder configuration PPS count",
                needed: 1,
                len: 0,
            });
        };
        let (pps, _extension) = parameter_sets(
            rest,
            usize::from(pps_count),
            "AVC decoder configuration PPS",
        )?;
        Ok(AvcDecoderConfig {
            profile_indication,
            profile_compatibility,
            level,
            length_size,
            sps,
            pps,
        })
    }

    /// A record for in-band parameter sets (4-byte NAL lengths), profile and level from the
    /// first SPS. Fails when there is no SPS or PPS, or one is too short or too long for the
    /// record's 16-bit lengths.
    pub fn from_parameter_sets(
        sps: &[Bytes],
        pps: &[Bytes],
    ) -> Result<AvcDecoderConfig, MediaError> {
        let first = sps.first().ok_or(MediaError::Truncated {
            what: "SPS for an AVC decoder configuration",
            needed: 1,
            len: 0,
        })?;
        if pps.is_empty() {
            return Err(MediaError::Truncated {
                what: "PPS for an AVC decoder configuration",
                needed: 1,
                len: 0,
            });
        }
        let Some(&[_, profile_indication, profile_compatibility, level]) = first.get(..4) else {
            return Err(MediaError::Truncated {
                what: "SPS",
                needed: 4,
                len: first.len(),
            });
        };
        for set in sps.iter().chain(pps) {
            if set.len() > usize::from(u16::MAX) {
                return Err(MediaError::Invalid {
                    what: "parameter set length",
                    value: u32::try_from(set.len()).unwrap_or(u32::MAX),
                });
            }
        }
        if sps.len() > 31 || pps.len() > 255 {
            return Err(MediaError::Invalid {
                what: "parameter set count",
                value: u32::try_from(sps.len() + pps.len()).unwrap_or(u32::MAX),
            });
        }
        Ok(AvcDecoderConfig {
            profile_indication,
            profile_compatibility,
            level,
            length_size: 4,
            sps: sps.to_vec(),
            pps: pps.to_vec(),
        })
    }

    /// The record's bytes (an `avcC` box payload), without the high-profile extension.
    pub fn to_record(&self) -> Vec<u8> {
        let mut out = vec![
            1,
            self.profile_indication,
            self.profile_compatibility,
            self.level,
            0xfc | (self.length_size.saturating_sub(1) & 0x03),
            0xe0 | (self.sps.len().min(31) as u8),
        ];
        for set in self.sps.iter().take(31) {
            out.extend_from_slice(&(set.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
            out.extend_from_slice(&set[..set.len().min(usize::from(u16::MAX))]);
        }
        out.push(self.pps.len().min(255) as u8);
        for set in self.pps.iter().take(255) {
            out.extend_from_slice(&(set.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
            out.extend_from_slice(&set[..set.len().min(usize::from(u16::MAX))]);
        }
        out
    }

    /// The displayed width and height announced by the first SPS, if it parses.
    pub fn resolution(&self) -> Option<(u32, u32)> {
        self.sps.first().and_then(|sps| sps_resolution(sps))
    }
}

/// Reads `count` parameter sets, each prefixed by a big-endian `u16` length; `what` names
/// them in errors.
fn parameter_sets<'a>(
    mut data: &'a [u8],
    count: usize,
    what: &'static str,
) -> Result<(Vec<Bytes>, &'a [u8]), MediaError> {
    let mut sets = Vec::with_capacity(count);
    for _ in 0..count {
        let Some((len, tail)) = data.split_first_chunk::<2>() else {
            return Err(MediaError::Truncated {
                what: "AVC decoder configuration parameter set length",
                needed: 2,
                len: data.len(),
            });
        };
        let len = usize::from(u16::from_be_bytes(*len));
        let Some((set, after)) = tail.split_at_checked(len) else {
            return Err(MediaError::Truncated {
                what,
                needed: len,
                len: tail.len(),
            });
        };
        if !set.is_empty() {
            sets.push(Bytes::copy_from_slice(set));
        }
        data = after;
    }
    Ok((sets, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_record_built_from_parameter_sets_parses_back() {
        let sps = [Bytes::from_static(&SPS_720P)];
        let pps = [Bytes::from_static(&PPS)];
        let config = AvcDecoderConfig::from_parameter_sets(&sps, &pps).expect("config");
        assert_eq!(config.profile_indication, 0x42);
        assert_eq!(config.level, 0x1f);
        let parsed = AvcDecoderConfig::parse(&config.to_record()).expect("parse");
        assert_eq!(parsed, config);
        assert_eq!(parsed.resolution(), Some((1280, 720)));
        assert!(AvcDecoderConfig::from_parameter_sets(&sps, &[]).is_err());
        assert!(AvcDecoderConfig::from_parameter_sets(&[], &pps).is_err());
    }

    const SPS_720P: [u8; 10] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
    const PPS: [u8; 4] = [0x68, 0xce, 0x38, 0x80];

    fn record(length_size_minus_one: u8, sps: &[&[u8]], pps: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![
            1,
            0x42,
            0xc0,
            0x1f,
            0xfc | length_size_minus_one,
            0xe0 | sps.len() as u8,
        ];
        for set in sps {
            out.extend_from_slice(&(set.len() as u16).to_be_bytes());
            out.extend_from_slice(set);
        }
        out.push(pps.len() as u8);
        for set in pps {
            out.extend_from_slice(&(set.len() as u16).to_be_bytes());
            out.extend_from_slice(set);
        }
        out
    }

    #[test]
    fn parses_a_baseline_record() {
        let config = AvcDecoderConfig::parse(&record(3, &[&SPS_720P], &[&PPS])).expect("parse");
        assert_eq!(config.profile_indication, 0x42);
        assert_eq!(config.profile_compatibility, 0xc0);
        assert_eq!(config.level, 31);
        assert_eq!(config.length_size, 4);
        assert_eq!(config.sps, vec![Bytes::from_static(&SPS_720P)]);
        assert_eq!(config.pps, vec![Bytes::from_static(&PPS)]);
        assert_eq!(config.resolution(), Some((1280, 720)));
    }

    #[test]
    fn ignores_the_high_profile_extension_and_empty_sets() {
        let mut data = record(1, &[&SPS_720P, &[]], &[&PPS, &PPS]);
        data.extend_from_slice(&[0xfd, 0xf8, 0xf8, 0x00]);
        let config = AvcDecoderConfig::parse(&data).expect("parse");
        assert_eq!(config.length_size, 2);
        assert_eq!(config.sps.len(), 1);
        assert_eq!(config.pps.len(), 2);
    }

    #[test]
    fn rejects_bad_records() {
        assert!(matches!(
            AvcDecoderConfig::parse(&[]),
            Err(MediaError::Truncated { .. })
        ));
        let mut data = record(3, &[&SPS_720P], &[&PPS]);
        data[0] = 0;
        assert_eq!(
            AvcDecoderConfig::parse(&data),
            Err(MediaError::Invalid {
                what: "AVC decoder configuration record version",
                value: 0
            })
        );
        assert_eq!(
            AvcDecoderConfig::parse(&record(2, &[&SPS_720P], &[&PPS])),
            Err(MediaError::InvalidLengthSize(3))
        );
        let data = record(3, &[&SPS_720P], &[&PPS]);
        for cut in 6..data.len() {
            assert!(
                matches!(
                    AvcDecoderConfig::parse(&data[..cut]),
                    Err(MediaError::Truncated { .. })
                ),
                "cut at {cut}"
            );
        }
        // No SPS at all still parses; the resolution is unknown.
        let config = AvcDecoderConfig::parse(&record(3, &[], &[])).expect("parse");
        assert_eq!(config.resolution(), None);
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = AvcDecoderConfig::parse(&data);
        }

        #[test]
        fn round_trips(
            lsm1 in prop_oneof![Just(0u8), Just(1), Just(3)],
            sps in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..4),
            pps in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..20), 0..4),
        ) {
            let sps_refs: Vec<&[u8]> = sps.iter().map(Vec::as_slice).collect();
            let pps_refs: Vec<&[u8]> = pps.iter().map(Vec::as_slice).collect();
            let config = AvcDecoderConfig::parse(&record(lsm1, &sps_refs, &pps_refs))
                .expect("parse");
            prop_assert_eq!(config.length_size, lsm1 + 1);
            prop_assert_eq!(config.sps, sps.into_iter().map(Bytes::from).collect::<Vec<_>>());
            prop_assert_eq!(config.pps, pps.into_iter().map(Bytes::from).collect::<Vec<_>>());
        }
    }
}
