//! A viewer pinned to the Low layer receives only Low packets, starting at a Low key frame,
//! whatever else the publisher sends and whatever other viewers watch.

mod common;

use common::{Event, Session, Subscriber, bases, event};
use greenroom_media::Codec;
use greenroom_sfu::{Layer, LayerSet};
use proptest::prelude::*;

proptest! {
    #[test]
    fn pinned_low_viewer_gets_only_low(
        start in bases(),
        events in proptest::collection::vec(event(), 1..60),
    ) {
        let subscribers = vec![
            Subscriber::new(Codec::Vp8, Layer::Low, true),
            Subscriber::new(Codec::Vp8, Layer::High, true),
        ];
        let mut session = Session::new(Codec::Vp8, start, LayerSet::all(), subscribers);
        for event in events.iter().filter(|e| !matches!(e, Event::SetMax(_) | Event::SetAvailable(_))) {
            session.run(event);
        }
        let low = &session.subscribers[0];
        prop_assert!(low.received.iter().all(|r| r.layer == Layer::Low));
        if let Some(first) = low.received.first() {
            prop_assert!(first.input.info(Codec::Vp8).keyframe_start);
        }
        let high = &session.subscribers[1];
        prop_assert!(high.received.iter().all(|r| r.layer == Layer::High));
    }
}

#[test]
fn low_viewer_receives_low_resolution() {
    let start = common::Bases {
        sequence_number: 1,
        timestamp: 1,
        picture_id: 1,
        tl0picidx: 1,
    };
    let mut session = Session::new(
        Codec::Vp8,
        start,
        LayerSet::all(),
        vec![Subscriber::new(Codec::Vp8, Layer::Low, true)],
    );
    session.run(&Event::Frames {
        count: 10,
        keyframes: LayerSet::all(),
        packets: 2,
    });
    let sub = &session.subscribers[0];
    assert_eq!(sub.received.len(), 20);
    let first = sub.received[0].input.info(Codec::Vp8);
    assert_eq!(first.resolution, Some((320, 180)));
}
