//! Audio is forwarded packet for packet: no key frame waits, no requests, continuous numbering
//! across publisher restarts.

mod common;

use common::{Event, Session, Subscriber, bases};
use greenroom_media::Codec;
use greenroom_sfu::{Layer, LayerSet};
use proptest::prelude::*;

proptest! {
    #[test]
    fn audio_is_forwarded_continuously(
        start in bases(),
        restarts in proptest::collection::vec((bases(), 1usize..30, 0u64..500), 1..6),
    ) {
        let mut session = Session::new(
            Codec::Opus,
            start,
            LayerSet::only(Layer::High),
            vec![Subscriber::new(Codec::Opus, Layer::Low, true)],
        );
        let mut sent = 0;
        for (bases, count, pause_ms) in restarts {
            session.run(&Event::Frames { count, keyframes: LayerSet::new(), packets: 1 });
            sent += count;
            session.run(&Event::Pause(std::time::Duration::from_millis(pause_ms)));
            session.run(&Event::Restart(bases));
            prop_assert_eq!(session.subscribers[0].forwarder.poll_keyframe_request(session.now), None);
        }
        prop_assert_eq!(session.subscribers[0].received.len(), sent);
    }
}
