//! H.264 RTP depacketization, packetization modes 0 and 1 (RFC 6184): single NAL unit
//! packets, STAP-A and FU-A. Interleaved mode (STAP-B, MTAP, FU-B) is refused.

use bytes::Bytes;

use crate::MediaError;
use crate::h264::{NAL_FU_A, NAL_STAP_A};

/// Reassembles NAL units from H.264 RTP payloads given in sequence number order.
///
/// The caller detects loss: after a gap in sequence numbers it calls
/// [`reset`](Self::reset) so that a half-received fragmented NAL unit is dropped.
#[derive(Debug, Clone, Default)]
pub struct H264Depacketizer {
    /// The NAL unit being reassembled from FU-A fragments, header byte first.
    fragment: Vec<u8>,
    in_fragment: bool,
}

impl H264Depacketizer {
    /// The largest NAL unit reassembled from fragments; larger ones are dropped.
    pub const MAX_NAL_LEN: usize = 8 << 20;

    /// A depacketizer with no fragment in progress.
    pub fn new() -> H264Depacketizer {
        H264Depacketizer::default()
    }

    /// Drops a fragmented NAL unit in progress (after packet loss).
    pub fn reset(&mut self) {
        self.fragment.clear();
        self.in_fragment = false;
    }

    /// Appends the complete NAL units that `payload` carries or completes to `out`.
    ///
    /// A packet that is not the continuation of a fragment in progress drops that fragment.
    /// On error nothing is appended and any fragment in progress is dropped.
    pub fn push(&mut self, payload: &[u8], out: &mut Vec<Bytes>) -> Result<(), MediaError> {
        let Some((&header, body)) = payload.split_first() else {
            return Err(MediaError::Truncated {
                what: "H.264 RTP payload",
                needed: 1,
                len: 0,
            });
        };
        let kind = header & 0x1f;
        if kind != NAL_FU_A {
            self.reset();
        }
        match kind {
            1..=23 => {
                out.push(Bytes::copy_from_slice(payload));
                Ok(())
            }
            NAL_STAP_A => {
                let mut units = Vec::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let Some((size, tail)) = rest.split_first_chunk::<2>() else {
                        return Err(truncated("STAP-A NAL unit size", 2, rest.len()));
                    };
                    let size = usize::from(u16::from_be_bytes(*size));
                    let unit = match tail.split_at_checked(size) {
                        Some((unit, after)) if size > 0 => {
                            rest = after;
                            unit
                        }
                        _ => return Err(truncated("STAP-A NAL unit", size.max(1), tail.len())),
                    };
                    units.push(Bytes::copy_from_slice(unit));
                }
                out.extend(units);
                Ok(())
            }
            NAL_FU_A => self.push_fragment(header, body, out),
            other => Err(MediaError::Unsupported {
                what: "H.264 RTP packet type",
                value: u32::from(other),
            }),
        }
    }

    fn push_fragment(
        &mut self,
        indicator: u8,
        body: &[u8],
        out: &mut Vec<Bytes>,
    ) -> Result<(), MediaError> {
        let Some((&fu_header, data)) = body.split_first() else {
            self.reset();
            return Err(truncated("FU-A header", 2, 1));
        };
        if fu_header & 0x80 != 0 {
            self.reset();
            self.fragment.push((indicator & 0xe0) | (fu_header & 0x1f));
            self.in_fragment = true;
        } else if !self.in_fragment {
            return Err(MediaError::Invalid {
                what: "FU-A continuation without a start fragment, header",
                value: u32::from(fu_header),
            });
        }
        if self.fragment.len() + data.len() > Self::MAX_NAL_LEN {
            let len = self.fragment.len() + data.len();
            self.reset();
            return Err(MediaError::TooLarge {
                what: "fragmented NAL unit",
                len,
                max: Self::MAX_NAL_LEN,
            });
        }
        self.fragment.extend_from_slice(data);
        if fu_header & 0x40 != 0 {
            out.push(Bytes::from(std::mem::take(&mut self.fragment)));
            self.in_fragment = false;
        }
        Ok(())
    }
}

fn truncated(what: &'static str, needed: usize, len: usize) -> MediaError {
    MediaError::Truncated { what, needed, len }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn push_all(payloads: &[&[u8]]) -> (Vec<Bytes>, Vec<Result<(), MediaError>>) {
        let mut depacketizer = H264Depacketizer::new();
        let mut nals = Vec::new();
        let results = payloads
            .iter()
            .map(|payload| depacketizer.push(payload, &mut nals))
            .collect();
        (nals, results)
    }

    #[test]
    fn single_stap_a_and_fu_a() {
        let (nals, results) = push_all(&[
            &[0x41, 0x9a],
            &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68],
            &[0x7c, 0x85, 0x88, 0x84],
            &[0x7c, 0x05, 0x21],
            &[0x7c, 0x45, 0xff],
        ]);
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(
            nals,
            [
                &[0x41, 0x9a][..],
                &[0x67, 0x42][..],
                &[0x68][..],
                &[0x65, 0x88, 0x84, 0x21, 0xff][..],
            ]
        );
    }

    #[test]
    fn lost_fragments_are_dropped() {
        // Start, then a new single NAL unit, then an orphan continuation.
        let (nals, results) = push_all(&[&[0x7c, 0x85, 0x88], &[0x41], &[0x7c, 0x45, 0xff]]);
        assert_eq!(nals, [&[0x41][..]]);
        assert!(matches!(results[2], Err(MediaError::Invalid { .. })));

        let mut depacketizer = H264Depacketizer::new();
        let mut nals = Vec::new();
        depacketizer
            .push(&[0x7c, 0x85, 0x88], &mut nals)
            .expect("start");
        depacketizer.reset();
        assert!(depacketizer.push(&[0x7c, 0x45, 0xff], &mut nals).is_err());
        assert!(nals.is_empty());
    }

    #[test]
    fn malformed_payloads() {
        let (nals, results) = push_all(&[
            &[],
            &[0x78, 0x00, 0x05, 0x67],
            &[0x78, 0x00, 0x00],
            &[0x78, 0x00, 0x01, 0x67, 0x00],
            &[0x7c],
            &[0x79, 0x00],
            &[0x00],
        ]);
        assert!(nals.is_empty());
        assert!(results.iter().all(Result::is_err));
        assert!(matches!(
            results[5],
            Err(MediaError::Unsupported { value: 25, .. })
        ));
    }

    proptest! {
        #[test]
        fn never_panics(payloads in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..32), 0..16)
        ) {
            let mut depacketizer = H264Depacketizer::new();
            let mut nals = Vec::new();
            for payload in &payloads {
                let _ = depacketizer.push(payload, &mut nals);
            }
        }
    }
}
