//! When the publisher stops or resumes layers, every viewer moves to the best remaining layer
//! at most its pin (or the lowest one above it), at that layer's next key frame.

mod common;

use common::{Event, Session, Subscriber, bases, expected_target, layer, layer_set};
use greenroom_media::Codec;
use greenroom_sfu::{Layer, LayerSet};
use proptest::prelude::*;

proptest! {
    #[test]
    fn viewers_follow_available_layers(
        start in bases(),
        maxes in proptest::collection::vec(layer(), 1..4),
        changes in proptest::collection::vec(layer_set(), 1..10),
    ) {
        let subscribers = maxes.iter().map(|max| Subscriber::new(Codec::Vp8, *max, true)).collect();
        let mut session = Session::new(Codec::Vp8, start, LayerSet::all(), subscribers);
        for layers in changes {
            session.run(&Event::SetAvailable(layers));
            // Key frame requests are answered on the next frame; two frames settle it.
            session.run(&Event::Frames { count: 2, keyframes: LayerSet::new(), packets: 2 });
            for sub in &session.subscribers {
                let want = expected_target(layers, sub.forwarder.max_layer());
                prop_assert_eq!(sub.forwarder.target_layer(), want);
                prop_assert_eq!(sub.forwarder.current_layer(), want);
                prop_assert_eq!(sub.received.last().map(|r| r.layer), want);
            }
        }
    }
}

#[test]
fn losing_high_moves_to_mid_and_back() {
    let start = common::Bases {
        sequence_number: 9,
        timestamp: 9,
        picture_id: 9,
        tl0picidx: 9,
    };
    let mut session = Session::new(
        Codec::H264,
        start,
        LayerSet::all(),
        vec![Subscriber::new(Codec::H264, Layer::High, true)],
    );
    let frames = Event::Frames {
        count: 3,
        keyframes: LayerSet::new(),
        packets: 3,
    };
    session.run(&frames);
    assert_eq!(
        session.subscribers[0].forwarder.current_layer(),
        Some(Layer::High)
    );
    session.run(&Event::SetAvailable(
        [Layer::Low, Layer::Mid].into_iter().collect(),
    ));
    assert_eq!(
        session.subscribers[0].forwarder.target_layer(),
        Some(Layer::Mid)
    );
    session.run(&frames);
    assert_eq!(
        session.subscribers[0].forwarder.current_layer(),
        Some(Layer::Mid)
    );
    session.run(&Event::SetAvailable(LayerSet::all()));
    session.run(&frames);
    assert_eq!(
        session.subscribers[0].forwarder.current_layer(),
        Some(Layer::High)
    );
    // Only layers above the pin: the lowest of them.
    session.subscribers[0].forwarder.set_max_layer(Layer::Low);
    session.run(&Event::SetAvailable(
        [Layer::Mid, Layer::High].into_iter().collect(),
    ));
    session.run(&frames);
    assert_eq!(
        session.subscribers[0].forwarder.current_layer(),
        Some(Layer::Mid)
    );
}
