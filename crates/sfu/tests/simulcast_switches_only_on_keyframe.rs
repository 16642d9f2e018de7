//! A video subscriber starts, and changes layer, only at a packet that starts a key frame of
//! its target layer; it never receives packets of another layer in between.

mod common;

use common::{Event, Session, Subscriber, bases, event, layer, layer_set};
use greenroom_media::Codec;
use greenroom_sfu::{Layer, LayerSet};
use proptest::prelude::*;

fn codec() -> impl Strategy<Value = Codec> {
    prop_oneof![Just(Codec::Vp8), Just(Codec::H264)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random sessions; the subscriber's checker asserts at every forwarded packet that a new
    /// layer or a restarted source begins at a key frame of the target layer.
    #[test]
    fn random_sessions_switch_only_on_keyframes(
        codec in codec(),
        start in bases(),
        available in layer_set(),
        maxes in proptest::collection::vec(layer(), 3),
        honor_requests in any::<bool>(),
        events in proptest::collection::vec(event(), 1..60),
    ) {
        let subscribers = maxes.iter().map(|max| Subscriber::new(codec, *max, true)).collect();
        let mut session = Session::new(codec, start, available, subscribers);
        session.honor_requests = honor_requests;
        for event in &events {
            session.run(event);
        }
        for sub in &session.subscribers {
            if let Some(first) = sub.received.first() {
                prop_assert!(first.segment_start);
            }
            let switches = sub.received.iter().filter(|r| r.segment_start).count();
            let keyframes = sub.received.iter().filter(|r| r.input.info(codec).keyframe_start).count();
            prop_assert!(switches <= keyframes);
        }
    }
}

#[test]
fn switch_waits_for_keyframe_of_new_target() {
    let start = common::Bases {
        sequence_number: 100,
        timestamp: 1000,
        picture_id: 10,
        tl0picidx: 1,
    };
    let mut session = Session::new(
        Codec::Vp8,
        start,
        LayerSet::all(),
        vec![Subscriber::new(Codec::Vp8, Layer::High, true)],
    );
    session.honor_requests = false;
    let frames = |count, keyframes| Event::Frames {
        count,
        keyframes,
        packets: 2,
    };
    // Key frames on Low and Mid only: the High viewer waits.
    session.run(&frames(
        3,
        LayerSet::all()
            .iter()
            .filter(|l| *l != Layer::High)
            .collect(),
    ));
    assert!(session.subscribers[0].received.is_empty());
    session.run(&frames(2, LayerSet::only(Layer::High)));
    let sub = &session.subscribers[0];
    assert_eq!(sub.received.len(), 4);
    assert!(sub.received.iter().all(|r| r.layer == Layer::High));

    // Pin Low: High keeps flowing until a Low key frame arrives.
    session.subscribers[0].forwarder.set_max_layer(Layer::Low);
    session.run(&frames(3, LayerSet::only(Layer::Mid)));
    let sub = &session.subscribers[0];
    assert_eq!(sub.forwarder.current_layer(), Some(Layer::High));
    assert_eq!(sub.received.len(), 10);
    session.run(&frames(1, LayerSet::only(Layer::Low)));
    let sub = &session.subscribers[0];
    assert_eq!(sub.forwarder.current_layer(), Some(Layer::Low));
    let last = &sub.received[sub.received.len() - 2];
    assert!(last.segment_start && last.layer == Layer::Low);
}
