//! VP8 picture id and TL0PICIDX rewriting, continuous across layer switches.
//!
//! Each simulcast layer numbers its pictures on its own. At a segment start the output picture
//! id is one past the last one forwarded (TL0PICIDX likewise), and within a segment the output
//! follows the input's deltas. Picture ids are kept in the 15-bit space; a 7-bit input field
//! receives the value wrapped to 7 bits when the driver rewrites it, which keeps 7-bit
//! streams continuous too since 2^7 divides 2^15.

use crate::Vp8Meta;

const PICTURE_ID_MASK: u16 = 0x7fff;

/// The output picture id and TL0PICIDX where they differ from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Rewrite {
    /// The new picture id, when it differs from the packet's.
    pub picture_id: Option<u16>,
    /// The new TL0PICIDX, when it differs from the packet's.
    pub tl0picidx: Option<u8>,
}

/// Picture id and TL0PICIDX state of one output stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct Vp8Munger {
    /// Offsets of the current segment, set by the segment's first packet carrying the field.
    picture_id_offset: Option<u16>,
    tl0picidx_offset: Option<u8>,
    /// Values of the newest forwarded packet.
    last_picture_id: Option<u16>,
    last_tl0picidx: Option<u8>,
}

impl Vp8Munger {
    /// Starts a new segment: offsets are chosen again at the next packet carrying each field.
    pub fn start_segment(&mut self) {
        self.picture_id_offset = None;
        self.tl0picidx_offset = None;
    }

    /// Maps one packet's fields; `newest` tells whether it is the newest of its segment (late
    /// packets do not move the "last forwarded" values).
    pub fn munge(&mut self, meta: &Vp8Meta, newest: bool) -> Option<Vp8Rewrite> {
        let mut rewrite = Vp8Rewrite::default();
        if let Some(input) = meta.picture_id {
            let offset = *self.picture_id_offset.get_or_insert_with(|| {
                self.last_picture_id.map_or(0, |last| {
                    last.wrapping_add(1).wrapping_sub(input) & PICTURE_ID_MASK
                })
            });
            let output = input.wrapping_add(offset) & PICTURE_ID_MASK;
            if newest {
                self.last_picture_id = Some(output);
            }
            if output != input {
                rewrite.picture_id = Some(output);
            }
        }
        if let Some(input) = meta.tl0picidx {
            let offset = *self.tl0picidx_offset.get_or_insert_with(|| {
                self.last_tl0picidx
                    .map_or(0, |last| last.wrapping_add(1).wrapping_sub(input))
            });
            let output = input.wrapping_add(offset);
            if newest {
                self.last_tl0picidx = Some(output);
            }
            if output != input {
                rewrite.tl0picidx = Some(output);
            }
        }
        (rewrite != Vp8Rewrite::default()).then_some(rewrite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(picture_id: u16, tl0picidx: u8) -> Vp8Meta {
        Vp8Meta {
            picture_id: Some(picture_id),
            tl0picidx: Some(tl0picidx),
        }
    }

    #[test]
    fn first_segment_is_untouched() {
        let mut munger = Vp8Munger::default();
        munger.start_segment();
        assert_eq!(munger.munge(&meta(100, 5), true), None);
        assert_eq!(munger.munge(&meta(101, 6), true), None);
    }

    #[test]
    fn switch_continues_from_last_output() {
        let mut munger = Vp8Munger::default();
        munger.start_segment();
        munger.munge(&meta(0x7ffe, 255), true);
        munger.munge(&meta(0x7fff, 255), true);
        munger.start_segment();
        assert_eq!(
            munger.munge(&meta(42, 17), true),
            Some(Vp8Rewrite {
                picture_id: Some(0),
                tl0picidx: Some(0)
            })
        );
        assert_eq!(
            munger.munge(&meta(44, 18), true),
            Some(Vp8Rewrite {
                picture_id: Some(2),
                tl0picidx: Some(1)
            })
        );
        // A late packet maps with the same offset and does not move the last values.
        assert_eq!(
            munger.munge(&meta(43, 17), false),
            Some(Vp8Rewrite {
                picture_id: Some(1),
                tl0picidx: Some(0)
            })
        );
        munger.start_segment();
        let next = munger.munge(&meta(9, 9), true);
        assert_eq!(next.and_then(|r| r.picture_id), Some(3));
        assert_eq!(next.and_then(|r| r.tl0picidx), Some(2));
    }

    #[test]
    fn only_changed_fields_are_reported() {
        let mut munger = Vp8Munger::default();
        munger.start_segment();
        munger.munge(&meta(10, 3), true);
        munger.start_segment();
        // Picture id 11 continues naturally; TL0PICIDX must move.
        assert_eq!(
            munger.munge(&meta(11, 9), true),
            Some(Vp8Rewrite {
                picture_id: None,
                tl0picidx: Some(4)
            })
        );
        let no_fields = Vp8Meta::default();
        assert_eq!(munger.munge(&no_fields, true), None);
    }
}
