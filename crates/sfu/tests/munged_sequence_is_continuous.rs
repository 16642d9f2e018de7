//! The subscriber's output is one RTP stream: sequence numbers advance by exactly one per
//! forwarded packet across switches, restarts and wrap-around; timestamps never go back and
//! jump by the elapsed time at a switch; reordered packets keep their place and duplicates
//! are dropped.

mod common;

use std::time::{Duration, Instant};

use common::{Bases, Delivery, Event, Session, Subscriber, bases, event, layer, layer_set};
use greenroom_media::Codec;
use greenroom_sfu::{Forwarder, ForwarderConfig, Layer, LayerSet, PacketInfo, TrackKind};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// In-order input: the checker asserts +1 steps, no gaps, no duplicates, timestamps
    /// never going back, and exact continuity at every segment start.
    #[test]
    fn in_order_output_has_no_gaps(
        start in bases(),
        available in layer_set(),
        maxes in proptest::collection::vec(layer(), 1..4),
        events in proptest::collection::vec(event(), 1..80),
    ) {
        let subscribers = maxes.iter().map(|max| Subscriber::new(Codec::Vp8, *max, true)).collect();
        let mut session = Session::new(Codec::Vp8, start, available, subscribers);
        for event in &events {
            session.run(event);
        }
    }

    /// Reordered and duplicated input: no duplicate output, offsets constant inside a
    /// segment, every segment continues right after the highest output so far.
    #[test]
    fn reordered_and_duplicated_input_keeps_mapping(
        start in bases(),
        available in layer_set(),
        max in layer(),
        swaps in proptest::collection::vec(proptest::bool::weighted(0.2), 1..50),
        duplicates in proptest::collection::vec(proptest::bool::weighted(0.1), 1..50),
        events in proptest::collection::vec(event(), 1..80),
    ) {
        let mut session = Session::new(Codec::Vp8, start, available, vec![Subscriber::new(Codec::Vp8, max, false)]);
        session.delivery = Delivery { swaps, duplicates };
        for event in &events {
            session.run(event);
        }
    }
}

#[test]
fn wraps_around_sixteen_and_thirty_two_bits() {
    // The publisher shifts layer k's bases by k * 7919 and k * 1_234_567; High is k = 3.
    let start = Bases {
        sequence_number: 65_500u16.wrapping_sub((3 * 7919) as u16),
        timestamp: (u32::MAX - 100_000).wrapping_sub(3 * 1_234_567),
        picture_id: 0x7ff0,
        tl0picidx: 250,
    };
    let mut session = Session::new(
        Codec::Vp8,
        start,
        LayerSet::only(Layer::High),
        vec![Subscriber::new(Codec::Vp8, Layer::High, true)],
    );
    session.run(&Event::Frames {
        count: 60,
        keyframes: LayerSet::only(Layer::High),
        packets: 3,
    });
    let sub = &session.subscribers[0];
    assert_eq!(sub.received.len(), 180);
    let seqs: Vec<u16> = sub
        .received
        .iter()
        .map(|r| r.munged.sequence_number)
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    assert!(seqs.contains(&65_535) && seqs.contains(&0));
    let stamps: Vec<u32> = sub.received.iter().map(|r| r.munged.timestamp).collect();
    assert!(stamps.windows(2).any(|w| w[1] < w[0]), "timestamps wrapped");
}

#[test]
fn restart_continues_after_pause() {
    let t0 = Instant::now();
    let mut fwd = Forwarder::new(ForwarderConfig {
        kind: TrackKind::Video,
        codec: Codec::H264,
        max_layer: Layer::High,
    });
    let idr = [0x65, 0x88];
    let slice = [0x41, 0x9a];
    let pkt =
        |seq, ts, payload| PacketInfo::parse(Codec::H264, Layer::High, seq, ts, true, payload);
    let a = fwd.handle_packet(t0, &pkt(65_535, 100, &idr[..]));
    let b = fwd.handle_packet(t0, &pkt(0, 3100, &slice[..]));
    assert_eq!(a.map(|m| m.sequence_number), Some(65_535));
    assert_eq!(b.map(|m| (m.sequence_number, m.timestamp)), Some((0, 3100)));
    fwd.handle_source_reset();
    let t1 = t0 + Duration::from_secs(2);
    assert_eq!(
        fwd.poll_keyframe_request(t1),
        None,
        "layers unknown until packets arrive"
    );
    assert_eq!(fwd.handle_packet(t1, &pkt(7, 5, &slice[..])), None);
    assert_eq!(fwd.poll_keyframe_request(t1), Some(Layer::High));
    let c = fwd.handle_packet(t1, &pkt(8, 3005, &idr[..]));
    assert_eq!(
        c.map(|m| (m.sequence_number, m.timestamp)),
        Some((1, 3100 + 180_000))
    );
    assert_eq!(
        fwd.handle_packet(t1, &pkt(7, 5, &slice[..])),
        None,
        "before the restart point"
    );
    let d = fwd.handle_packet(t1, &pkt(9, 6005, &slice[..]));
    assert_eq!(
        d.map(|m| (m.sequence_number, m.timestamp)),
        Some((2, 3100 + 183_000))
    );
}
