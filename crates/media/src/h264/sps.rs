//! Sequence parameter set parsing (H.264 §7.3.2.1.1), as far as the picture size.

/// Profiles whose SPS carries chroma format, bit depths and scaling lists.
const HIGH_PROFILES: [u8; 12] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134];
/// Profile 135 (MFC high depth) also carries them.
const MFC_DEPTH_HIGH: u8 = 135;

/// Reads bits MSB-first from an RBSP (emulation prevention already removed).
struct BitReader {
    rbsp: Vec<u8>,
    bit: usize,
}

impl BitReader {
    /// Removes emulation prevention bytes (`00 00 03` -> `00 00`) from a NAL unit body.
    fn from_nal_body(body: &[u8]) -> BitReader {
        let mut rbsp = Vec::with_capacity(body.len());
        let mut zeros = 0;
        for &byte in body {
            if zeros >= 2 && byte == 0x03 {
                zeros = 0;
                continue;
            }
            zeros = if byte == 0 { zeros + 1 } else { 0 };
            rbsp.push(byte);
        }
        BitReader { rbsp, bit: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = self.rbsp.get(self.bit / 8)?;
        let value = (byte >> (7 - self.bit % 8)) & 1;
        self.bit += 1;
        Some(u32::from(value))
    }

    fn bits(&mut self, count: u32) -> Option<u32> {
        (0..count).try_fold(0, |acc, _| Some((acc << 1) | self.bit()?))
    }

    fn flag(&mut self) -> Option<bool> {
        self.bit().map(|bit| bit == 1)
    }

    /// Unsigned exp-Golomb, at most 32 bits of value.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let suffix = self.bits(zeros)?;
        // 2^zeros - 1 + suffix: at most 2^32 - 2 for 31 leading zeros.
        let value = (1u64 << zeros) - 1 + u64::from(suffix);
        u32::try_from(value).ok()
    }

    /// Signed exp-Golomb.
    fn se(&mut self) -> Option<i64> {
        let code = i64::from(self.ue()?);
        Some(if code % 2 == 1 {
            (code + 1) / 2
        } else {
            -(code / 2)
        })
    }
}

fn skip_scaling_list(reader: &mut BitReader, size: usize) -> Option<()> {
    let mut last_scale: i64 = 8;
    let mut next_scale: i64 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = reader.se()?;
            next_scale = (last_scale + delta).rem_euclid(256);
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Some(())
}

/// The displayed width and height encoded in an SPS NAL unit (including its one-byte NAL
/// header): macroblock size minus the frame cropping rectangle.
///
/// Handles emulation prevention bytes, the high profiles' chroma format, bit depths and
/// scaling lists, all picture order count types, interlaced (`frame_mbs_only_flag = 0`)
/// streams and cropping. Returns `None` on anything malformed or not an SPS.
pub fn sps_resolution(sps_nal: &[u8]) -> Option<(u32, u32)> {
    let (&header, body) = sps_nal.split_first()?;
    if header & 0x1f != super::NAL_SPS {
        return None;
    }
    let mut r = BitReader::from_nal_body(body);
    let profile_idc = r.bits(8)? as u8;
    let _constraints_and_level = r.bits(16)?;
    let _sps_id = r.ue()?;
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if HIGH_PROFILES.contains(&profile_idc) || profile_idc == MFC_DEPTH_HIGH {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return None;
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        let _bit_depth_luma = r.ue()?;
        let _bit_depth_chroma = r.ue()?;
        let _qpprime_bypass = r.flag()?;
        if r.flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for index in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if index < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let _log2_max_frame_num = r.ue()?;
    match r.ue()? {
        0 => {
            let _log2_max_poc_lsb = r.ue()?;
        }
        1 => {
            let _delta_pic_order_always_zero = r.flag()?;
            let _offset_for_non_ref_pic = r.se()?;
            let _offset_for_top_to_bottom_field = r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                let _offset_for_ref_frame = r.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    let _max_num_ref_frames = r.ue()?;
    let _gaps_allowed = r.flag()?;
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        let _mb_adaptive_frame_field = r.flag()?;
    }
    let _direct_8x8_inference = r.flag()?;
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let mut width = width_mbs * 16;
    let mut height = height_map_units * 16 * field_factor;
    if r.flag()? {
        let left = u64::from(r.ue()?);
        let right = u64::from(r.ue()?);
        let top = u64::from(r.ue()?);
        let bottom = u64::from(r.ue()?);
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (crop_x, crop_y) = match chroma_array_type {
            0 => (1, field_factor),
            1 => (2, 2 * field_factor),
            2 => (2, field_factor),
            _ => (1, field_factor),
        };
        width = width.checked_sub((left + right) * crop_x)?;
        height = height.checked_sub((top + bottom) * crop_y)?;
    }
    if width == 0 || height == 0 {
        return None;
    }
    Some((u32::try_from(width).ok()?, u32::try_from(height).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_720p() {
        let sps = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
        assert_eq!(sps_resolution(&sps), Some((1280, 720)));
    }

    #[test]
    fn exp_golomb_values() {
        // 1 | 010 | 011 | 00100 | 00101 | 00110 -> 0, 1, 2, 3, 4, 5
        let mut r = BitReader::from_nal_body(&[0b1010_0110, 0b0100_0010, 0b1001_1000]);
        let values: Vec<u32> = (0..6).filter_map(|_| r.ue()).collect();
        assert_eq!(values, [0, 1, 2, 3, 4, 5]);
        let mut r = BitReader::from_nal_body(&[0b0100_1100, 0b1000_0000]);
        assert_eq!((r.se(), r.se(), r.se()), (Some(1), Some(-1), Some(2)));
        let mut r = BitReader::from_nal_body(&[0, 0, 0, 0, 0]);
        assert_eq!(r.ue(), None);
    }

    #[test]
    fn emulation_prevention_is_removed() {
        let r = BitReader::from_nal_body(&[0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x03]);
        assert_eq!(r.rbsp, [0x00, 0x00, 0x01, 0x00, 0x00, 0x03]);
    }

    #[test]
    fn rejects_non_sps_and_garbage() {
        assert_eq!(sps_resolution(&[]), None);
        assert_eq!(sps_resolution(&[0x68, 0x42, 0xc0, 0x1f, 0xda]), None);
        assert_eq!(sps_resolution(&[0x67, 0x42, 0xc0]), None);
        assert_eq!(
            sps_resolution(&[0x67, 0x42, 0xc0, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00]),
            None
        );
    }
}
