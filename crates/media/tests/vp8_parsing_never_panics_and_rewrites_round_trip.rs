//! Property tests of the VP8 payload descriptor: parsing arbitrary bytes never panics, and
//! `rewrite_descriptor` round-trips with `Vp8Descriptor::parse`.

use greenroom_media::vp8::{self, Vp8Descriptor};
use proptest::prelude::*;

/// A descriptor built from its fields, followed by `tail`.
fn build(
    picture_id: Option<(u16, bool)>,
    tl0picidx: Option<u8>,
    tid: Option<(u8, bool)>,
    keyidx: Option<u8>,
    start: bool,
    tail: &[u8],
) -> Vec<u8> {
    let extended = picture_id.is_some() || tl0picidx.is_some() || tid.is_some() || keyidx.is_some();
    let mut out = vec![(u8::from(extended) << 7) | (u8::from(start) << 4)];
    if extended {
        out.push(
            (u8::from(picture_id.is_some()) << 7)
                | (u8::from(tl0picidx.is_some()) << 6)
                | (u8::from(tid.is_some()) << 5)
                | (u8::from(keyidx.is_some()) << 4),
        );
        if let Some((id, long)) = picture_id {
            if long {
                out.push(0x80 | ((id >> 8) as u8 & 0x7f));
                out.push(id as u8);
            } else {
                out.push(id as u8 & 0x7f);
            }
        }
        if let Some(tl0) = tl0picidx {
            out.push(tl0);
        }
        if tid.is_some() || keyidx.is_some() {
            let (t, y) = tid.unwrap_or((0, false));
            out.push((t << 6) | (u8::from(y) << 5) | keyidx.unwrap_or(0));
        }
    }
    out.extend_from_slice(tail);
    out
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
        if let Ok(desc) = Vp8Descriptor::parse(&bytes) {
            prop_assert!(desc.header_len <= bytes.len());
        }
        let _ = vp8::is_keyframe_start(&bytes);
        let _ = vp8::keyframe_resolution(&bytes);
        let mut copy = bytes.clone();
        let _ = vp8::rewrite_descriptor(&mut copy, Some(1234), Some(9));
        prop_assert_eq!(copy.len(), bytes.len());
    }

    #[test]
    fn built_descriptors_parse_back(
        picture_id in proptest::option::of((0u16..0x8000, any::<bool>())),
        tl0picidx in proptest::option::of(any::<u8>()),
        tid in proptest::option::of((0u8..4, any::<bool>())),
        keyidx in proptest::option::of(0u8..32),
        start in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let payload = build(picture_id, tl0picidx, tid, keyidx, start, &tail);
        let desc = Vp8Descriptor::parse(&payload).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected_id = picture_id.map(|(id, long)| if long { id } else { id & 0x7f });
        prop_assert_eq!(desc.picture_id, expected_id);
        prop_assert_eq!(desc.picture_id_15bit, picture_id.is_some_and(|(_, long)| long));
        prop_assert_eq!(desc.tl0picidx, tl0picidx);
        prop_assert_eq!(desc.tid, tid.map(|(t, _)| t));
        prop_assert_eq!(desc.keyidx, keyidx);
        prop_assert_eq!(desc.start_of_partition, start);
        prop_assert_eq!(desc.header_len, payload.len() - tail.len());
    }

    #[test]
    fn rewrite_round_trips_with_parse(
        picture_id in proptest::option::of((0u16..0x8000, any::<bool>())),
        tl0picidx in proptest::option::of(any::<u8>()),
        tid in proptest::option::of((0u8..4, any::<bool>())),
        keyidx in proptest::option::of(0u8..32),
        new_id in any::<u16>(),
        new_tl0 in any::<u8>(),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let original = build(picture_id, tl0picidx, tid, keyidx, true, &tail);
        let before = Vp8Descriptor::parse(&original).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut payload = original.clone();
        let want_id = before.picture_id.map(|_| new_id);
        let want_tl0 = before.tl0picidx.map(|_| new_tl0);
        vp8::rewrite_descriptor(&mut payload, want_id, want_tl0)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let after = Vp8Descriptor::parse(&payload).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let modulus = before.picture_id_modulus();
        prop_assert_eq!(after.picture_id, want_id.map(|id| (u32::from(id) % modulus) as u16));
        prop_assert_eq!(after.tl0picidx, want_tl0);
        prop_assert_eq!(
            Vp8Descriptor { picture_id: None, tl0picidx: None, ..after },
            Vp8Descriptor { picture_id: None, tl0picidx: None, ..before }
        );
        prop_assert_eq!(&payload[after.header_len..], &original[before.header_len..]);

        // Writing the parsed values back restores the original bytes.
        vp8::rewrite_descriptor(&mut payload, before.picture_id, before.tl0picidx)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(payload, original);
    }
}

#[test]
fn keyframe_with_header_reports_resolution() {
    let tail = [0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x07, 0x38, 0x04];
    let payload = build(Some((77, true)), Some(3), None, None, true, &tail);
    assert!(vp8::is_keyframe_start(&payload));
    assert_eq!(vp8::keyframe_resolution(&payload), Some((1920, 1080)));
    let inter = build(
        Some((78, true)),
        Some(3),
        None,
        None,
        true,
        &[0x51, 0x42, 0x00],
    );
    assert!(!vp8::is_keyframe_start(&inter));
    assert_eq!(vp8::keyframe_resolution(&inter), None);
}
