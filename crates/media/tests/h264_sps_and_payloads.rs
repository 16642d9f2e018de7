//! H.264: SPS resolutions of SPSes written bit by bit (all profiles' branches, cropping,
//! interlacing, emulation prevention), key-frame detection on RTP payloads, Annex B / AVCC
//! round trips, and parsers that never panic on arbitrary bytes.

use greenroom_media::h264;
use proptest::prelude::*;

/// Writes an RBSP bit by bit, then adds emulation prevention bytes.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    fn bit(&mut self, bit: bool) {
        if self.bits.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if bit {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 0x80 >> (self.bits % 8);
        }
        self.bits += 1;
    }

    fn bits(&mut self, value: u32, count: u32) {
        for shift in (0..count).rev() {
            self.bit((value >> shift) & 1 == 1);
        }
    }

    fn ue(&mut self, value: u32) {
        let code = u64::from(value) + 1;
        let len = 64 - code.leading_zeros();
        self.bits(0, len - 1);
        for shift in (0..len).rev() {
            self.bit((code >> shift) & 1 == 1);
        }
    }

    fn se(&mut self, value: i32) {
        let code = if value > 0 { 2 * value - 1 } else { -2 * value };
        self.ue(code as u32);
    }

    /// The NAL unit: header byte, then the RBSP with trailing bits and emulation prevention.
    fn into_nal(mut self, header: u8) -> Vec<u8> {
        self.bit(true);
        while !self.bits.is_multiple_of(8) {
            self.bit(false);
        }
        let mut nal = vec![header];
        let mut zeros = 0;
        for byte in self.bytes {
            if zeros >= 2 && byte <= 3 {
                nal.push(3);
                zeros = 0;
            }
            zeros = if byte == 0 { zeros + 1 } else { 0 };
            nal.push(byte);
        }
        nal
    }
}

#[derive(Debug, Clone)]
struct SpsParams {
    profile_idc: u8,
    chroma_format_idc: u32,
    scaling_lists: bool,
    poc_type: u32,
    width_mbs: u32,
    height_units: u32,
    frame_mbs_only: bool,
    crop: Option<[u32; 4]>,
}

fn write_sps(p: &SpsParams) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.bits(u32::from(p.profile_idc), 8);
    w.bits(0, 8);
    w.bits(40, 8);
    w.ue(0);
    if p.profile_idc >= 100 {
        w.ue(p.chroma_format_idc);
        if p.chroma_format_idc == 3 {
            w.bit(false);
        }
        w.ue(0);
        w.ue(0);
        w.bit(false);
        w.bit(p.scaling_lists);
        if p.scaling_lists {
            let lists = if p.chroma_format_idc == 3 { 12 } else { 8 };
            for index in 0..lists {
                let present = index % 2 == 0;
                w.bit(present);
                if present {
                    let size = if index < 6 { 16 } else { 64 };
                    // Deltas +3, -3, ... keep the scale at 8 or 11 for a whole list; every
                    // other list instead ends early with a delta that makes next_scale 0.
                    let full = index % 4 == 0;
                    for j in 0..size {
                        if !full && j == 3 {
                            w.se(-11);
                            break;
                        }
                        w.se(if j % 2 == 0 { 3 } else { -3 });
                    }
                }
            }
        }
    }
    w.ue(0); // log2_max_frame_num_minus4
    w.ue(p.poc_type);
    match p.poc_type {
        0 => w.ue(2),
        1 => {
            w.bit(false);
            w.se(-2);
            w.se(5);
            w.ue(2);
            w.se(1);
            w.se(-1);
        }
        _ => {}
    }
    w.ue(4); // max_num_ref_frames
    w.bit(false);
    w.ue(p.width_mbs - 1);
    w.ue(p.height_units - 1);
    w.bit(p.frame_mbs_only);
    if !p.frame_mbs_only {
        w.bit(true);
    }
    w.bit(true);
    w.bit(p.crop.is_some());
    if let Some(crop) = p.crop {
        for value in crop {
            w.ue(value);
        }
    }
    w.bit(false); // vui_parameters_present_flag
    w.into_nal(0x67)
}

fn expected(p: &SpsParams) -> (u32, u32) {
    let field = if p.frame_mbs_only { 1 } else { 2 };
    let (cx, cy) = match p.chroma_format_idc {
        1 => (2, 2 * field),
        2 => (2, field),
        _ => (1, field),
    };
    let [l, r, t, b] = p.crop.unwrap_or_default();
    (
        p.width_mbs * 16 - (l + r) * cx,
        p.height_units * 16 * field - (t + b) * cy,
    )
}

#[test]
fn high_profile_1080p_with_cropping() {
    let params = SpsParams {
        profile_idc: 100,
        chroma_format_idc: 1,
        scaling_lists: false,
        poc_type: 0,
        width_mbs: 120,
        height_units: 68,
        frame_mbs_only: true,
        crop: Some([0, 0, 0, 4]),
    };
    let sps = write_sps(&params);
    assert_eq!(h264::sps_resolution(&sps), Some((1920, 1080)));
}

#[test]
fn interlaced_main_profile() {
    let params = SpsParams {
        profile_idc: 77,
        chroma_format_idc: 1,
        scaling_lists: false,
        poc_type: 1,
        width_mbs: 45,
        height_units: 18,
        frame_mbs_only: false,
        crop: None,
    };
    assert_eq!(h264::sps_resolution(&write_sps(&params)), Some((720, 576)));
}

#[test]
fn high_444_with_scaling_lists() {
    let params = SpsParams {
        profile_idc: 244,
        chroma_format_idc: 3,
        scaling_lists: true,
        poc_type: 2,
        width_mbs: 40,
        height_units: 30,
        frame_mbs_only: true,
        crop: Some([1, 1, 2, 2]),
    };
    assert_eq!(h264::sps_resolution(&write_sps(&params)), Some((638, 476)));
}

#[test]
fn emulation_prevention_inside_sps() {
    // Large sizes give long runs of zero bits; some of them need `00 00 03` escapes.
    let mut escaped = 0;
    for shift in 8..25 {
        for height_units in [1, 3, 1 << 8, 1 << 12] {
            let params = SpsParams {
                profile_idc: 66,
                chroma_format_idc: 1,
                scaling_lists: false,
                poc_type: 2,
                width_mbs: 1 << shift,
                height_units,
                frame_mbs_only: true,
                crop: None,
            };
            let sps = write_sps(&params);
            escaped += usize::from(sps.windows(3).any(|w| w == [0, 0, 3]));
            assert_eq!(
                h264::sps_resolution(&sps),
                Some(expected(&params)),
                "{sps:02x?}"
            );
        }
    }
    assert!(escaped > 0, "no SPS needed emulation prevention");
}

#[test]
fn crop_larger_than_picture_is_rejected() {
    let params = SpsParams {
        profile_idc: 66,
        chroma_format_idc: 1,
        scaling_lists: false,
        poc_type: 2,
        width_mbs: 2,
        height_units: 2,
        frame_mbs_only: true,
        crop: Some([8, 8, 0, 0]),
    };
    assert_eq!(h264::sps_resolution(&write_sps(&params)), None);
}

#[test]
fn keyframe_resolution_in_stap_a_with_real_sps() {
    let sps = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
    let pps = [0x68, 0xce, 0x3c, 0x80];
    let mut stap = vec![0x78];
    for unit in [&sps[..], &pps[..]] {
        stap.extend_from_slice(&(unit.len() as u16).to_be_bytes());
        stap.extend_from_slice(unit);
    }
    assert!(h264::is_keyframe_start(&stap));
    assert_eq!(h264::keyframe_resolution(&stap), Some((1280, 720)));
}

fn sps_params() -> impl Strategy<Value = SpsParams> {
    (
        prop_oneof![
            Just(66u8),
            Just(77),
            Just(100),
            Just(110),
            Just(122),
            Just(244)
        ],
        0u32..4,
        any::<bool>(),
        0u32..3,
        1u32..300,
        1u32..200,
        any::<bool>(),
        proptest::option::of([0u32..4, 0u32..4, 0u32..4, 0u32..4]),
    )
        .prop_map(
            |(profile_idc, chroma, scaling_lists, poc_type, w, h, fmo, crop)| SpsParams {
                profile_idc,
                chroma_format_idc: if profile_idc >= 100 { chroma } else { 1 },
                scaling_lists,
                poc_type,
                width_mbs: w,
                height_units: h,
                frame_mbs_only: fmo,
                crop,
            },
        )
}

proptest! {
    #[test]
    fn written_sps_parses_to_its_resolution(params in sps_params()) {
        prop_assert_eq!(h264::sps_resolution(&write_sps(&params)), Some(expected(&params)));
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = h264::is_keyframe_start(&bytes);
        let _ = h264::keyframe_resolution(&bytes);
        let mut sps = bytes.clone();
        if let Some(first) = sps.first_mut() {
            *first = 0x67;
        }
        let _ = h264::sps_resolution(&sps);
        let _ = h264::annexb_to_nals(&bytes).count();
        let _ = h264::avcc_to_annexb(&bytes, 4);
        let _ = h264::avcc_to_annexb(&bytes, 2);
        let _ = h264::annexb_to_avcc(&bytes);
    }

    #[test]
    fn avcc_annexb_round_trip(units in proptest::collection::vec(
        (1u8..=255, proptest::collection::vec(1u8..=255, 0..40)), 0..6)) {
        let units: Vec<Vec<u8>> = units
            .into_iter()
            .map(|(head, mut body)| { body.insert(0, head); body })
            .collect();
        let mut annexb = Vec::new();
        for unit in &units {
            annexb.extend_from_slice(&[0, 0, 0, 1]);
            annexb.extend_from_slice(unit);
        }
        let split: Vec<&[u8]> = h264::annexb_to_nals(&annexb).collect();
        prop_assert_eq!(&split, &units.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let avcc = h264::annexb_to_avcc(&annexb).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(h264::avcc_to_annexb(&avcc, 4).map_err(|e| TestCaseError::fail(e.to_string()))?, annexb);
    }
}
