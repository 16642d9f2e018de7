//! H.264 on RTP (RFC 6184) and in byte streams: NAL unit types, key-frame detection in RTP
//! payloads (single NAL, STAP-A, FU-A), the resolution announced by a sequence parameter set,
//! and conversion between Annex B (start codes) and AVCC (length prefixes) framing.

mod decoder_config;
mod sps;

pub use decoder_config::AvcDecoderConfig;
pub use sps::sps_resolution;

use crate::MediaError;

/// Coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// Supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// Sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// Picture parameter set.
pub const NAL_PPS: u8 = 8;
/// Access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// Filler data.
pub const NAL_FILLER: u8 = 12;
/// Single-time aggregation packet (RFC 6184 §5.7.1).
pub const NAL_STAP_A: u8 = 24;
/// Fragmentation unit A (RFC 6184 §5.8).
pub const NAL_FU_A: u8 = 28;

/// The NAL unit type (low five bits of the first byte) of a NAL unit or RTP payload.
pub fn nal_type(payload: &[u8]) -> Option<u8> {
    payload.first().map(|header| header & 0x1f)
}

fn starts_keyframe(nal_type: u8) -> bool {
    nal_type == NAL_IDR || nal_type == NAL_SPS
}

/// The NAL units aggregated in a STAP-A payload (without the STAP-A header byte).
///
/// Stops at the first truncated unit.
fn stap_a_units(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = payload.get(1..).unwrap_or_default();
    std::iter::from_fn(move || {
        let (size, tail) = rest.split_first_chunk::<2>()?;
        let size = usize::from(u16::from_be_bytes(*size));
        if size == 0 || size > tail.len() {
            rest = &[];
            return None;
        }
        let (unit, after) = tail.split_at(size);
        rest = after;
        Some(unit)
    })
}

/// Whether an RTP payload starts an H.264 key frame: a single IDR slice or SPS NAL unit, a
/// STAP-A that aggregates one, or the first FU-A fragment of one.
pub fn is_keyframe_start(payload: &[u8]) -> bool {
    match nal_type(payload) {
        Some(NAL_STAP_A) => {
            stap_a_units(payload).any(|unit| nal_type(unit).is_some_and(starts_keyframe))
        }
        Some(NAL_FU_A) => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && starts_keyframe(fu & 0x1f)),
        Some(kind) => starts_keyframe(kind),
        None => false,
    }
}

/// The resolution announced by an SPS carried in this RTP payload, either as a single NAL
/// unit or inside a STAP-A.
pub fn keyframe_resolution(payload: &[u8]) -> Option<(u32, u32)> {
    match nal_type(payload)? {
        NAL_SPS => sps_resolution(payload),
        NAL_STAP_A => stap_a_units(payload)
            .filter(|unit| nal_type(unit) == Some(NAL_SPS))
            .find_map(sps_resolution),
        _ => None,
    }
}

/// Position and length of the first start code (`00 00 01`) at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at + 3 <= data.len() {
        match data[at + 2] {
            0x01 if data[at] == 0 && data[at + 1] == 0 => return Some(at),
            0x00 => at += 1,
            _ => at += 3,
        }
    }
    None
}

/// Splits an Annex B byte stream into its NAL units, without start codes.
///
/// Both 3- and 4-byte start codes are accepted; bytes before the first start code and empty
/// units are skipped, and trailing zero bytes (the leading zero of a 4-byte start code) are
/// not part of a unit.
pub fn annexb_to_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut next = find_start_code(data, 0).map(|at| at + 3);
    std::iter::from_fn(move || {
        loop {
            let start = next?;
            let end = match find_start_code(data, start) {
                Some(code) => {
                    next = Some(code + 3);
                    code
                }
                None => {
                    next = None;
                    data.len()
                }
            };
            let mut unit = &data[start..end];
            while let [head @ .., 0] = unit {
                unit = head;
            }
            if !unit.is_empty() {
                return Some(unit);
            }
        }
    })
}

/// Splits AVCC framing (each NAL unit prefixed by a big-endian length of `length_size`
/// bytes, 1..=4) into its NAL units, borrowing from `avcc`.
///
/// Zero-length units are yielded as empty slices. An invalid `length_size` or a truncated
/// prefix or unit yields one error, after which the iterator ends.
pub fn avcc_nals(avcc: &[u8], length_size: u8) -> impl Iterator<Item = Result<&[u8], MediaError>> {
    let mut rest = avcc;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || rest.is_empty() {
            return None;
        }
        let item = split_avcc_nal(rest, usize::from(length_size));
        match item {
            Ok((unit, after)) => {
                rest = after;
                Some(Ok(unit))
            }
            Err(error) => {
                failed = true;
                Some(Err(error))
            }
        }
    })
}

/// Splits the first length-prefixed NAL unit off non-empty AVCC data.
fn split_avcc_nal(data: &[u8], length_size: usize) -> Result<(&[u8], &[u8]), MediaError> {
    if !(1..=4).contains(&length_size) {
        return Err(MediaError::InvalidLengthSize(length_size));
    }
    let Some((prefix, tail)) = data.split_at_checked(length_size) else {
        return Err(MediaError::Truncated {
            what: "AVCC NAL length",
            needed: length_size,
            len: data.len(),
        });
    };
    let len = prefix
        .iter()
        .fold(0usize, |len, byte| (len << 8) | usize::from(*byte));
    tail.split_at_checked(len).ok_or(MediaError::Truncated {
        what: "AVCC NAL unit",
        needed: len,
        len: tail.len(),
    })
}

/// Converts AVCC framing (each NAL unit prefixed by a big-endian length of `length_size`
/// bytes, 1..=4) to Annex B with 4-byte start codes.
pub fn avcc_to_annexb(data: &[u8], length_size: usize) -> Result<Vec<u8>, MediaError> {
    let length_size =
        u8::try_from(length_size).map_err(|_| MediaError::InvalidLengthSize(length_size))?;
    if !(1..=4).contains(&length_size) {
        return Err(MediaError::InvalidLengthSize(usize::from(length_size)));
    }
    let mut out = Vec::with_capacity(data.len() + 16);
    for unit in avcc_nals(data, length_size) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(unit?);
    }
    Ok(out)
}

/// Converts an Annex B byte stream to AVCC framing with 4-byte length prefixes.
pub fn annexb_to_avcc(data: &[u8]) -> Result<Vec<u8>, MediaError> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for unit in annexb_to_nals(data) {
        let len = u32::try_from(unit.len()).map_err(|_| MediaError::NalTooLarge {
            len: unit.len(),
            length_size: 4,
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(unit);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS_720P: [u8; 10] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];

    #[test]
    fn nal_types() {
        assert_eq!(nal_type(&[0x65, 0x88]), Some(NAL_IDR));
        assert_eq!(nal_type(&[0x67]), Some(NAL_SPS));
        assert_eq!(nal_type(&[0x7c, 0x85]), Some(NAL_FU_A));
        assert_eq!(nal_type(&[]), None);
    }

    #[test]
    fn single_nal_keyframes() {
        assert!(is_keyframe_start(&[0x65, 0x88, 0x84]));
        assert!(is_keyframe_start(&SPS_720P));
        assert!(!is_keyframe_start(&[0x41, 0x9a]));
        assert!(!is_keyframe_start(&[0x68, 0xce]));
        assert!(!is_keyframe_start(&[]));
    }

    #[test]
    fn stap_a_keyframes() {
        let mut stap = vec![0x78];
        for unit in [&SPS_720P[..], &[0x68, 0xce, 0x38, 0x80][..]] {
            stap.extend_from_slice(&(unit.len() as u16).to_be_bytes());
            stap.extend_from_slice(unit);
        }
        assert!(is_keyframe_start(&stap));
        assert_eq!(keyframe_resolution(&stap), Some((1280, 720)));
        // PPS + SEI only.
        let stap = [0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x02, 0x06, 0x05];
        assert!(!is_keyframe_start(&stap));
        // Truncated size.
        assert!(!is_keyframe_start(&[0x78, 0x00, 0x09, 0x65]));
        assert!(!is_keyframe_start(&[0x78, 0x00]));
    }

    #[test]
    fn fu_a_keyframes() {
        assert!(is_keyframe_start(&[0x7c, 0x85, 0x88]));
        // Middle fragment of an IDR.
        assert!(!is_keyframe_start(&[0x7c, 0x05, 0x88]));
        // First fragment of a non-IDR slice.
        assert!(!is_keyframe_start(&[0x7c, 0x81, 0x9a]));
        assert!(!is_keyframe_start(&[0x7c]));
        assert_eq!(keyframe_resolution(&[0x7c, 0x87, 0x42]), None);
    }

    #[test]
    fn single_sps_resolution() {
        assert_eq!(keyframe_resolution(&SPS_720P), Some((1280, 720)));
        assert_eq!(keyframe_resolution(&[0x65, 0x88]), None);
    }

    #[test]
    fn annexb_splits_on_both_start_codes() {
        let data = [
            0xff, 0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 0, 1, 0x65, 0x88, 0, 0, 1,
        ];
        let units: Vec<&[u8]> = annexb_to_nals(&data).collect();
        assert_eq!(
            units,
            vec![&[0x67, 0x42][..], &[0x68, 0xce][..], &[0x65, 0x88][..]]
        );
        assert_eq!(annexb_to_nals(&[0x65, 0x88]).count(), 0);
        assert_eq!(annexb_to_nals(&[]).count(), 0);
        assert_eq!(annexb_to_nals(&[0, 0, 1]).count(), 0);
    }

    #[test]
    fn avcc_and_annexb_convert_both_ways() {
        let annexb = [0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x65, 0x88, 0x84];
        let avcc = annexb_to_avcc(&annexb).expect("convert");
        assert_eq!(avcc, [0, 0, 0, 2, 0x67, 0x42, 0, 0, 0, 3, 0x65, 0x88, 0x84]);
        assert_eq!(avcc_to_annexb(&avcc, 4).expect("convert"), annexb);

        let two_byte = [0, 2, 0x67, 0x42, 0, 1, 0x65];
        assert_eq!(
            avcc_to_annexb(&two_byte, 2).expect("convert"),
            [0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x65]
        );
    }

    #[test]
    fn avcc_errors() {
        assert_eq!(
            avcc_to_annexb(&[0, 0, 0, 5, 0x65], 4),
            Err(MediaError::Truncated {
                what: "AVCC NAL unit",
                needed: 5,
                len: 1
            })
        );
        assert!(matches!(
            avcc_to_annexb(&[0, 0], 4),
            Err(MediaError::Truncated { .. })
        ));
        assert_eq!(
            avcc_to_annexb(&[], 0),
            Err(MediaError::InvalidLengthSize(0))
        );
        assert_eq!(
            avcc_to_annexb(&[], 5),
            Err(MediaError::InvalidLengthSize(5))
        );
        assert_eq!(avcc_to_annexb(&[], 4), Ok(Vec::new()));
    }

    #[test]
    fn avcc_nals_borrow_units() {
        let avcc = [0, 0, 0, 2, 0x67, 0x42, 0, 0, 0, 0, 0, 0, 0, 1, 0x65];
        let units: Vec<&[u8]> = avcc_nals(&avcc, 4)
            .collect::<Result<_, _>>()
            .expect("split");
        assert_eq!(units, vec![&[0x67, 0x42][..], &[][..], &[0x65][..]]);
        let units: Vec<_> = avcc_nals(&[1, 0x09, 2, 0x65, 0x88], 1).collect();
        assert_eq!(units, vec![Ok(&[0x09][..]), Ok(&[0x65, 0x88][..])]);
        assert_eq!(avcc_nals(&[], 4).count(), 0);
    }

    #[test]
    fn avcc_nals_stop_after_an_error() {
        let units: Vec<_> = avcc_nals(&[0, 1, 0x65, 0, 9, 0x41], 2).collect();
        assert_eq!(
            units,
            vec![
                Ok(&[0x65][..]),
                Err(MediaError::Truncated {
                    what: "AVCC NAL unit",
                    needed: 9,
                    len: 1
                })
            ]
        );
        let units: Vec<_> = avcc_nals(&[0, 1, 0x65], 0).collect();
        assert_eq!(units, vec![Err(MediaError::InvalidLengthSize(0))]);
        let units: Vec<_> = avcc_nals(&[0, 1, 0x65], 5).collect();
        assert_eq!(units, vec![Err(MediaError::InvalidLengthSize(5))]);
        assert_eq!(
            avcc_to_annexb(&[], 300),
            Err(MediaError::InvalidLengthSize(300))
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn avcc_nals_never_panic(
                data in proptest::collection::vec(any::<u8>(), 0..64),
                length_size in 0u8..6,
            ) {
                let _ = avcc_nals(&data, length_size).count();
            }

            #[test]
            fn avcc_nals_round_trip(
                nals in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
                length_size in prop_oneof![Just(1u8), Just(2), Just(4)],
            ) {
                let max = (1usize << (8 * u32::from(length_size))) - 1;
                let mut avcc = Vec::new();
                for nal in &nals {
                    let len = nal.len().min(max);
                    let prefix = (len as u32).to_be_bytes();
                    avcc.extend_from_slice(&prefix[4 - usize::from(length_size)..]);
                    avcc.extend_from_slice(&nal[..len]);
                }
                let back: Vec<&[u8]> = avcc_nals(&avcc, length_size)
                    .collect::<Result<_, _>>()
                    .expect("split");
                let expected: Vec<&[u8]> = nals.iter().map(|nal| &nal[..nal.len().min(max)]).collect();
                prop_assert_eq!(back, expected);
            }
        }
    }
}
