//! VP8 RTP payloads (RFC 7741): the payload descriptor, key-frame detection, the key frame's
//! resolution, and in-place rewriting of the picture id and TL0PICIDX.
//!
//! ```text
//!  0 1 2 3 4 5 6 7
//! |X|R|N|S|R| PID |  required
//! |I|L|T|K|  RSV  |  if X
//! |M| PictureID   |  if I (M=1: 15-bit picture id, one more byte)
//! |   PictureID   |  if M
//! |   TL0PICIDX   |  if L
//! |TID|Y| KEYIDX  |  if T or K
//! ```

use crate::MediaError;

/// The VP8 key frame start code that follows the 3-byte frame tag.
const START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];

/// A parsed VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Descriptor {
    /// X: the extension byte is present.
    pub extended: bool,
    /// N: the frame can be discarded without affecting other frames.
    pub non_reference: bool,
    /// S: this packet starts a VP8 partition.
    pub start_of_partition: bool,
    /// PID: the partition index (0..=7).
    pub partition_index: u8,
    /// The picture id (I bit), 7 or 15 bits wide.
    pub picture_id: Option<u16>,
    /// Whether the picture id uses the 15-bit form (M bit).
    pub picture_id_15bit: bool,
    /// TL0PICIDX (L bit).
    pub tl0picidx: Option<u8>,
    /// Temporal layer index (T bit).
    pub tid: Option<u8>,
    /// Y: layer sync bit (meaningful when `tid` is present).
    pub layer_sync: bool,
    /// Temporal key frame index (K bit).
    pub keyidx: Option<u8>,
    /// Length of the descriptor in bytes; the VP8 payload starts here.
    pub header_len: usize,
}

impl Vp8Descriptor {
    /// Parses the payload descriptor at the start of an RTP payload.
    ///
    /// The payload must hold the whole descriptor; it may end right after it.
    pub fn parse(payload: &[u8]) -> Result<Vp8Descriptor, MediaError> {
        let truncated = |needed: usize| MediaError::Truncated {
            what: "VP8 payload descriptor",
            needed,
            len: payload.len(),
        };
        let first = *payload.first().ok_or_else(|| truncated(1))?;
        let mut desc = Vp8Descriptor {
            extended: first & 0x80 != 0,
            non_reference: first & 0x20 != 0,
            start_of_partition: first & 0x10 != 0,
            partition_index: first & 0x07,
            header_len: 1,
            ..Vp8Descriptor::default()
        };
        if !desc.extended {
            return Ok(desc);
        }
        let mut at = 1;
        let next = |at: &mut usize| -> Result<u8, MediaError> {
            let byte = *payload.get(*at).ok_or_else(|| truncated(*at + 1))?;
            *at += 1;
            Ok(byte)
        };
        let ext = next(&mut at)?;
        if ext & 0x80 != 0 {
            let high = next(&mut at)?;
            if high & 0x80 != 0 {
                let low = next(&mut at)?;
                desc.picture_id = Some((u16::from(high & 0x7f) << 8) | u16::from(low));
                desc.picture_id_15bit = true;
            } else {
                desc.picture_id = Some(u16::from(high));
            }
        }
        if ext & 0x40 != 0 {
            desc.tl0picidx = Some(next(&mut at)?);
        }
        if ext & 0x30 != 0 {
            let tk = next(&mut at)?;
            if ext & 0x20 != 0 {
                desc.tid = Some(tk >> 6);
                desc.layer_sync = tk & 0x20 != 0;
            }
            if ext & 0x10 != 0 {
                desc.keyidx = Some(tk & 0x1f);
            }
        }
        desc.header_len = at;
        Ok(desc)
    }

    /// Whether `payload` (whose descriptor this is) starts a VP8 key frame: S=1, PID=0 and the
    /// frame tag's P bit is 0.
    pub fn starts_keyframe(&self, payload: &[u8]) -> bool {
        self.start_of_partition
            && self.partition_index == 0
            && payload
                .get(self.header_len)
                .is_some_and(|tag| tag & 0x01 == 0)
    }

    /// The picture id's modulus: 2^15 or 2^7.
    pub fn picture_id_modulus(&self) -> u32 {
        if self.picture_id_15bit {
            1 << 15
        } else {
            1 << 7
        }
    }
}

/// Whether an RTP payload starts a VP8 key frame (S=1, PID=0, P bit of the frame tag 0).
pub fn is_keyframe_start(payload: &[u8]) -> bool {
    Vp8Descriptor::parse(payload).is_ok_and(|desc| desc.starts_keyframe(payload))
}

/// The width and height announced by a VP8 key frame that starts in this RTP payload.
///
/// Reads the key frame header (frame tag, start code `9d 01 2a`, 14-bit width and height,
/// little endian; the top two bits are the scaling mode and are ignored).
pub fn keyframe_resolution(payload: &[u8]) -> Option<(u32, u32)> {
    let desc = Vp8Descriptor::parse(payload).ok()?;
    if !desc.starts_keyframe(payload) {
        return None;
    }
    let frame = payload.get(desc.header_len..)?;
    if frame.get(3..6)? != START_CODE {
        return None;
    }
    let size = frame.get(6..10)?;
    let width = u16::from_le_bytes([size[0], size[1]]) & 0x3fff;
    let height = u16::from_le_bytes([size[2], size[3]]) & 0x3fff;
    Some((u32::from(width), u32::from(height)))
}

/// Rewrites the picture id and/or TL0PICIDX of a VP8 payload in place.
///
/// The picture id keeps the width it has in the payload (7 or 15 bits); `picture_id` is wrapped
/// to that width. `None` leaves a field untouched. Asking to rewrite a field the descriptor does
/// not carry is an error and leaves the payload unchanged.
pub fn rewrite_descriptor(
    payload: &mut [u8],
    picture_id: Option<u16>,
    tl0picidx: Option<u8>,
) -> Result<(), MediaError> {
    let desc = Vp8Descriptor::parse(payload)?;
    if picture_id.is_some() && desc.picture_id.is_none() {
        return Err(MediaError::Vp8FieldAbsent {
            field: "picture id",
        });
    }
    if tl0picidx.is_some() && desc.tl0picidx.is_none() {
        return Err(MediaError::Vp8FieldAbsent { field: "TL0PICIDX" });
    }
    // The picture id, when present, starts at byte 2; TL0PICIDX follows it.
    let mut at = 2;
    if desc.picture_id.is_some() {
        let width = if desc.picture_id_15bit { 2 } else { 1 };
        if let Some(id) = picture_id {
            if desc.picture_id_15bit {
                let id = id & 0x7fff;
                payload[at] = 0x80 | (id >> 8) as u8;
                payload[at + 1] = (id & 0xff) as u8;
            } else {
                payload[at] = (id & 0x7f) as u8;
            }
        }
        at += width;
    }
    if let Some(tl0) = tl0picidx {
        payload[at] = tl0;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// X=1 S=1 PID=0, I L T K, 15-bit picture id 0x1234, TL0PICIDX 7, TID 2 Y KEYIDX 5,
    /// then a key frame tag and header for 640x360.
    const FULL: [u8; 16] = [
        0x90, 0xf0, 0x92, 0x34, 0x07, 0xa5, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68,
        0x01,
    ];

    #[test]
    fn parses_every_field() {
        let desc = Vp8Descriptor::parse(&FULL).expect("valid descriptor");
        assert_eq!(
            desc,
            Vp8Descriptor {
                extended: true,
                non_reference: false,
                start_of_partition: true,
                partition_index: 0,
                picture_id: Some(0x1234),
                picture_id_15bit: true,
                tl0picidx: Some(7),
                tid: Some(2),
                layer_sync: true,
                keyidx: Some(5),
                header_len: 6,
            }
        );
        assert!(is_keyframe_start(&FULL));
        assert_eq!(keyframe_resolution(&FULL), Some((640, 360)));
    }

    #[test]
    fn minimal_descriptor_and_seven_bit_id() {
        let desc = Vp8Descriptor::parse(&[0x10, 0x00]).expect("valid");
        assert_eq!(desc.header_len, 1);
        assert!(!desc.extended);
        assert_eq!(desc.picture_id, None);

        let desc = Vp8Descriptor::parse(&[0xa0, 0x80, 0x7f, 0x01]).expect("valid");
        assert!(desc.non_reference);
        assert!(!desc.start_of_partition);
        assert_eq!(desc.picture_id, Some(0x7f));
        assert!(!desc.picture_id_15bit);
        assert_eq!(desc.header_len, 3);
        assert_eq!(desc.picture_id_modulus(), 128);
    }

    #[test]
    fn k_without_t_reads_keyidx_only() {
        let desc = Vp8Descriptor::parse(&[0x80, 0x10, 0xff]).expect("valid");
        assert_eq!(desc.tid, None);
        assert_eq!(desc.keyidx, Some(0x1f));
        assert_eq!(desc.header_len, 3);
    }

    #[test]
    fn truncated_descriptors_are_errors() {
        for len in 0..6 {
            assert!(matches!(
                Vp8Descriptor::parse(&FULL[..len]),
                Err(MediaError::Truncated { .. })
            ));
        }
        assert!(Vp8Descriptor::parse(&FULL[..6]).is_ok());
    }

    #[test]
    fn keyframe_start_needs_s_pid0_and_p_clear() {
        // Inter frame: P bit set.
        assert!(!is_keyframe_start(&[0x10, 0x01]));
        // Not the start of a partition.
        assert!(!is_keyframe_start(&[0x00, 0x00]));
        // Partition index 1.
        assert!(!is_keyframe_start(&[0x11, 0x00]));
        // No VP8 payload after the descriptor.
        assert!(!is_keyframe_start(&[0x10]));
        assert!(is_keyframe_start(&[0x10, 0x00]));
        // Key frame without a complete header has no resolution.
        assert_eq!(keyframe_resolution(&[0x10, 0x00, 0x00, 0x00, 0x9d]), None);
        // Wrong start code.
        assert_eq!(
            keyframe_resolution(&[0x10, 0, 0, 0, 0x9d, 0x01, 0x2b, 0x80, 0x02, 0x68, 0x01]),
            None
        );
    }

    #[test]
    fn resolution_ignores_scaling_bits() {
        let payload = [0x10, 0, 0, 0, 0x9d, 0x01, 0x2a, 0x00, 0xc5, 0xd0, 0x42];
        assert_eq!(keyframe_resolution(&payload), Some((1280, 720)));
    }

    #[test]
    fn rewrite_keeps_width_and_wraps() {
        let mut payload = FULL;
        rewrite_descriptor(&mut payload, Some(0xffff), Some(200)).expect("rewrite");
        let desc = Vp8Descriptor::parse(&payload).expect("valid");
        assert_eq!(desc.picture_id, Some(0x7fff));
        assert_eq!(desc.tl0picidx, Some(200));
        assert_eq!(desc.tid, Some(2));
        assert_eq!(payload[6..], FULL[6..]);

        let mut short = [0x90, 0xc0, 0x05, 0x09, 0x00];
        rewrite_descriptor(&mut short, Some(300), None).expect("rewrite");
        let desc = Vp8Descriptor::parse(&short).expect("valid");
        assert_eq!(desc.picture_id, Some(300 % 128));
        assert_eq!(desc.tl0picidx, Some(9));
    }

    #[test]
    fn rewrite_of_absent_field_is_an_error() {
        let mut payload = [0x90, 0x40, 0x03, 0x00];
        let before = payload;
        assert_eq!(
            rewrite_descriptor(&mut payload, Some(1), Some(1)),
            Err(MediaError::Vp8FieldAbsent {
                field: "picture id"
            })
        );
        assert_eq!(payload, before);
        let mut no_ext = [0x10, 0x00];
        assert!(rewrite_descriptor(&mut no_ext, None, Some(1)).is_err());
        assert!(rewrite_descriptor(&mut no_ext, None, None).is_ok());
    }
}
