//! H.264 RTP packetization, packetization mode 1 (RFC 6184 §6.3): single NAL unit packets,
//! STAP-A aggregation of small NAL units and FU-A fragmentation of large ones.
//!
//! ```text
//! single NAL: | NAL header | NAL body ...                                  (NAL fits the MTU)
//! STAP-A:     | F|NRI|24 | size:16 | NAL | size:16 | NAL | ...             (several fit together)
//! FU-A:       | F|NRI|28 | S|E|R|type | fragment of the NAL body ...       (NAL over the MTU)
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::RtpPayload;
use crate::h264::{NAL_AUD, NAL_FILLER, NAL_FU_A, NAL_PPS, NAL_SPS, NAL_STAP_A, nal_type};

/// Size of the FU indicator and FU header.
const FU_A_HEADER_LEN: usize = 2;
/// Size of a STAP-A NAL unit size field.
const STAP_A_SIZE_LEN: usize = 2;

/// Splits H.264 access units into RTP payloads no larger than an MTU.
#[derive(Debug, Clone)]
pub struct H264Packetizer {
    mtu: usize,
}

impl H264Packetizer {
    /// The smallest usable payload size: an FU-A header and one byte of NAL unit.
    pub const MIN_MTU: usize = 3;

    /// A packetizer whose payloads are at most `mtu` bytes (the RTP payload budget, after the
    /// RTP header and extensions). Values below [`MIN_MTU`](Self::MIN_MTU) are raised to it.
    pub fn new(mtu: usize) -> H264Packetizer {
        H264Packetizer {
            mtu: mtu.max(Self::MIN_MTU),
        }
    }

    /// The largest payload this packetizer produces.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Appends the payloads of one access unit (`nals`, without start codes or length
    /// prefixes) to `out`; the last one has the marker bit set.
    ///
    /// With `parameter_sets` (SPS list, PPS list), they are sent first, aggregated in one
    /// STAP-A when they fit; pass them on every key frame so that a receiver can join there.
    /// In-band copies identical to a given parameter set are dropped, as are empty NAL units,
    /// access unit delimiters, filler data and the types H.264 leaves unspecified (0, 24..=31,
    /// which RTP uses for its own packet types). Consecutive NAL units that fit one payload
    /// together share a STAP-A. An access unit with nothing left produces no payload.
    pub fn packetize_access_unit(
        &mut self,
        nals: &[&[u8]],
        parameter_sets: Option<(&[Bytes], &[Bytes])>,
        out: &mut Vec<RtpPayload>,
    ) {
        let (sps, pps) = parameter_sets.unwrap_or_default();
        let given = || sps.iter().chain(pps);
        let in_band = nals.iter().copied().filter(|nal| {
            let kind = nal_type(nal);
            let repeated =
                matches!(kind, Some(NAL_SPS | NAL_PPS)) && given().any(|set| set.as_ref() == *nal);
            !repeated
        });
        let units = given()
            .map(Bytes::as_ref)
            .chain(in_band)
            .filter(|nal| is_sendable(nal));

        let first = out.len();
        let mut group: Vec<&[u8]> = Vec::new();
        let mut group_len = 1;
        for nal in units {
            let aggregatable = nal.len() <= usize::from(u16::MAX);
            if nal.len() > self.mtu || !aggregatable {
                self.flush(&mut group, out);
                group_len = 1;
                if nal.len() > self.mtu {
                    self.fragment(nal, out);
                } else {
                    push(out, Bytes::copy_from_slice(nal));
                }
                continue;
            }
            if !group.is_empty() && group_len + STAP_A_SIZE_LEN + nal.len() > self.mtu {
                self.flush(&mut group, out);
                group_len = 1;
            }
            group.push(nal);
            group_len += STAP_A_SIZE_LEN + nal.len();
        }
        self.flush(&mut group, out);
        if out.len() > first
            && let Some(last) = out.last_mut()
        {
            last.marker = true;
        }
    }

    /// Emits the pending group: one NAL unit as a single NAL unit packet, more as a STAP-A.
    fn flush(&self, group: &mut Vec<&[u8]>, out: &mut Vec<RtpPayload>) {
        match group.as_slice() {
            [] => {}
            [nal] => push(out, Bytes::copy_from_slice(nal)),
            units => {
                // F is set if any unit has it, NRI is the highest NRI.
                let header = units
                    .iter()
                    .filter_map(|unit| unit.first())
                    .fold(0u8, |acc, byte| {
                        (acc & 0x80) | (byte & 0x80) | (acc & 0x60).max(byte & 0x60)
                    });
                let len = 1 + units
                    .iter()
                    .map(|u| STAP_A_SIZE_LEN + u.len())
                    .sum::<usize>();
                let mut payload = BytesMut::with_capacity(len);
                payload.put_u8(header | NAL_STAP_A);
                for unit in units {
                    // Group members are at most u16::MAX bytes long.
                    payload.put_u16(u16::try_from(unit.len()).unwrap_or(u16::MAX));
                    payload.put_slice(unit);
                }
                push(out, payload.freeze());
            }
        }
        group.clear();
    }

    /// Emits FU-A fragments of a NAL unit longer than the MTU.
    fn fragment(&self, nal: &[u8], out: &mut Vec<RtpPayload>) {
        let Some((&header, body)) = nal.split_first() else {
            return;
        };
        let indicator = (header & 0xe0) | NAL_FU_A;
        let kind = header & 0x1f;
        let chunk_len = self.mtu - FU_A_HEADER_LEN;
        let count = body.len().div_ceil(chunk_len);
        for (index, chunk) in body.chunks(chunk_len).enumerate() {
            let mut fu_header = kind;
            if index == 0 {
                fu_header |= 0x80;
            }
            if index + 1 == count {
                fu_header |= 0x40;
            }
            let mut payload = BytesMut::with_capacity(FU_A_HEADER_LEN + chunk.len());
            payload.put_u8(indicator);
            payload.put_u8(fu_header);
            payload.put_slice(chunk);
            push(out, payload.freeze());
        }
    }
}

/// Whether a NAL unit is sent at all.
fn is_sendable(nal: &[u8]) -> bool {
    match nal_type(nal) {
        None | Some(0 | NAL_AUD | NAL_FILLER) => false,
        Some(kind) => kind < NAL_STAP_A,
    }
}

fn push(out: &mut Vec<RtpPayload>, payload: Bytes) {
    out.push(RtpPayload {
        payload,
        marker: false,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::{NAL_IDR, is_keyframe_start, keyframe_resolution};
    use crate::rtp::H264Depacketizer;
    use proptest::prelude::*;

    const SPS_720P: [u8; 10] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
    const PPS: [u8; 4] = [0x68, 0xce, 0x38, 0x80];

    fn depacketize(payloads: &[RtpPayload]) -> Vec<Bytes> {
        let mut depacketizer = H264Depacketizer::new();
        let mut nals = Vec::new();
        for payload in payloads {
            depacketizer
                .push(&payload.payload, &mut nals)
                .expect("depacketize");
        }
        nals
    }

    fn idr(len: usize) -> Vec<u8> {
        let mut nal = vec![0x65];
        nal.extend((0..len - 1).map(|i| i as u8));
        nal
    }

    #[test]
    fn keyframe_with_parameter_sets() {
        let sps = [Bytes::from_static(&SPS_720P)];
        let pps = [Bytes::from_static(&PPS)];
        let idr = idr(3000);
        let aud = [0x09, 0xf0];
        let sei = [0x06, 0x05, 0x01, 0x80];
        let mut packetizer = H264Packetizer::new(1200);
        let mut out = Vec::new();
        packetizer.packetize_access_unit(
            &[&aud, &SPS_720P, &PPS, &sei, &idr],
            Some((&sps, &pps)),
            &mut out,
        );
        // STAP-A(SPS, PPS, SEI), then three FU-A fragments of the IDR.
        assert_eq!(out.len(), 4);
        assert_eq!(nal_type(&out[0].payload), Some(NAL_STAP_A));
        assert!(is_keyframe_start(&out[0].payload));
        assert_eq!(keyframe_resolution(&out[0].payload), Some((1280, 720)));
        assert!(
            out[1..]
                .iter()
                .all(|p| nal_type(&p.payload) == Some(NAL_FU_A))
        );
        assert!(is_keyframe_start(&out[1].payload));
        assert_eq!(out[1].payload[1] & 0x1f, NAL_IDR);
        assert!(out.iter().all(|p| p.payload.len() <= 1200));
        let markers: Vec<bool> = out.iter().map(|p| p.marker).collect();
        assert_eq!(markers, [false, false, false, true]);
        let nals = depacketize(&out);
        assert_eq!(nals, [&SPS_720P[..], &PPS[..], &sei[..], &idr[..]]);
        assert_eq!(out[0].payload[0], 0x78, "F clear, highest NRI (3)");
    }

    #[test]
    fn small_frames_go_out_as_single_nal_units() {
        let mut packetizer = H264Packetizer::new(1200);
        let mut out = Vec::new();
        let slice = vec![0x41; 1000];
        packetizer.packetize_access_unit(&[&slice], None, &mut out);
        assert_eq!(
            out,
            [RtpPayload {
                payload: Bytes::from(slice.clone()),
                marker: true
            }]
        );
        assert!(!is_keyframe_start(&out[0].payload));
        // Two slices that do not fit together are two packets.
        out.clear();
        packetizer.packetize_access_unit(&[&slice, &slice], None, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(depacketize(&out), [&slice[..], &slice[..]]);
    }

    #[test]
    fn nothing_to_send() {
        let mut packetizer = H264Packetizer::new(1200);
        let mut out = Vec::new();
        packetizer.packetize_access_unit(&[], None, &mut out);
        packetizer.packetize_access_unit(
            &[&[], &[0x09, 0xf0], &[0x0c, 0xff], &[0x78]],
            None,
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn tiny_mtu_still_works() {
        let mut packetizer = H264Packetizer::new(0);
        assert_eq!(packetizer.mtu(), H264Packetizer::MIN_MTU);
        let sps = [Bytes::from_static(&SPS_720P)];
        let pps = [Bytes::from_static(&PPS)];
        let idr = idr(10);
        let mut out = Vec::new();
        packetizer.packetize_access_unit(&[&idr, &[0x06]], Some((&sps, &pps)), &mut out);
        assert!(out.iter().all(|p| p.payload.len() <= 3));
        assert!(is_keyframe_start(&out[0].payload));
        assert_eq!(
            depacketize(&out),
            [&SPS_720P[..], &PPS[..], &idr[..], &[0x06][..]]
        );
    }

    fn nal_strategy() -> impl Strategy<Value = Vec<u8>> {
        (
            0u8..4,
            1u8..24,
            proptest::collection::vec(any::<u8>(), 0..3000),
        )
            .prop_map(|(nri, kind, body)| {
                let mut nal = vec![(nri << 5) | kind];
                nal.extend(body);
                nal
            })
    }

    proptest! {
        #[test]
        fn round_trips_within_the_mtu(
            mtu in 3usize..1500,
            nals in proptest::collection::vec(nal_strategy(), 0..8),
            with_sets in any::<bool>(),
        ) {
            let sps = [Bytes::from_static(&SPS_720P)];
            let pps = [Bytes::from_static(&PPS), Bytes::from_static(&[0x68, 0xee])];
            let refs: Vec<&[u8]> = nals.iter().map(Vec::as_slice).collect();
            let mut packetizer = H264Packetizer::new(mtu);
            let mut out = Vec::new();
            let sets = with_sets.then_some((&sps[..], &pps[..]));
            packetizer.packetize_access_unit(&refs, sets, &mut out);

            let mut expected: Vec<&[u8]> = Vec::new();
            if with_sets {
                expected.extend(sps.iter().chain(&pps).map(Bytes::as_ref));
            }
            expected.extend(refs.iter().copied().filter(|nal| {
                let kind = nal[0] & 0x1f;
                let repeated = with_sets && sps.iter().chain(&pps).any(|s| s.as_ref() == *nal);
                kind != NAL_AUD && kind != NAL_FILLER && !repeated
            }));
            prop_assert_eq!(depacketize(&out), expected.clone());
            prop_assert!(out.iter().all(|p| p.payload.len() <= mtu));
            if let Some((last, rest)) = out.split_last() {
                prop_assert!(last.marker);
                prop_assert!(rest.iter().all(|p| !p.marker));
            } else {
                prop_assert!(expected.is_empty());
            }
            if with_sets {
                prop_assert!(is_keyframe_start(&out[0].payload));
            }
        }
    }
}
