//! `poll_keyframe_request` asks for the target layer when a wait for a key frame begins (join,
//! switch, source reset), repeats at most once a second while the wait lasts, and stops once
//! the key frame arrived.

use std::time::{Duration, Instant};

use greenroom_media::Codec;
use greenroom_sfu::{
    Forwarder, ForwarderConfig, KeyframeThrottle, Layer, LayerSet, PacketInfo, TrackKind,
};

const KEY: [u8; 2] = [0x10, 0x00];
const DELTA: [u8; 2] = [0x10, 0x01];

fn forwarder(max_layer: Layer) -> Forwarder {
    let mut fwd = Forwarder::new(ForwarderConfig {
        kind: TrackKind::Video,
        codec: Codec::Vp8,
        max_layer,
    });
    fwd.set_available_layers(LayerSet::all());
    fwd
}

fn pkt(layer: Layer, seq: u16, payload: &[u8]) -> PacketInfo<'_> {
    PacketInfo::parse(Codec::Vp8, layer, seq, u32::from(seq) * 3000, true, payload)
}

#[test]
fn join_switch_and_reset_each_ask_once_then_every_second() {
    let t0 = Instant::now();
    let mut fwd = forwarder(Layer::Mid);
    assert_eq!(fwd.poll_keyframe_request(t0), Some(Layer::Mid));
    for ms in [1, 500, 999] {
        assert_eq!(
            fwd.poll_keyframe_request(t0 + Duration::from_millis(ms)),
            None
        );
    }
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(fwd.poll_keyframe_request(t1), Some(Layer::Mid));
    assert!(fwd.handle_packet(t1, &pkt(Layer::Mid, 1, &KEY)).is_some());
    assert_eq!(fwd.poll_keyframe_request(t1 + Duration::from_secs(5)), None);

    // Switch.
    fwd.set_max_layer(Layer::High);
    assert_eq!(fwd.poll_keyframe_request(t1), Some(Layer::High));
    assert_eq!(fwd.poll_keyframe_request(t1), None);
    assert!(fwd.handle_packet(t1, &pkt(Layer::Mid, 2, &DELTA)).is_some());
    assert!(
        fwd.handle_packet(t1, &pkt(Layer::High, 700, &KEY))
            .is_some()
    );
    assert_eq!(fwd.poll_keyframe_request(t1 + Duration::from_secs(5)), None);

    // Reset.
    fwd.handle_source_reset();
    assert_eq!(fwd.current_layer(), None);
    assert_eq!(fwd.poll_keyframe_request(t1), Some(Layer::High));
    assert_eq!(fwd.handle_packet(t1, &pkt(Layer::High, 5, &DELTA)), None);
    let t2 = t1 + Duration::from_millis(1500);
    assert_eq!(fwd.poll_keyframe_request(t2), Some(Layer::High));
    assert!(fwd.handle_packet(t2, &pkt(Layer::High, 6, &KEY)).is_some());
    assert_eq!(fwd.poll_keyframe_request(t2 + Duration::from_secs(2)), None);
}

#[test]
fn throttle_merges_many_viewers_requests() {
    let t0 = Instant::now();
    let mut throttle = KeyframeThrottle::default();
    let mut viewers: Vec<Forwarder> = (0..50).map(|_| forwarder(Layer::High)).collect();
    let mut sent = 0;
    for step in 0..40u32 {
        let now = t0 + Duration::from_millis(100) * step;
        for viewer in &mut viewers {
            if let Some(layer) = viewer.poll_keyframe_request(now) {
                sent += usize::from(throttle.request(now, layer));
            }
        }
    }
    // Four seconds of waiting: requests at 0, 1, 2, 3 s from every viewer, one PLI each.
    assert_eq!(sent, 4);
}

#[test]
fn back_to_current_layer_cancels_the_wait() {
    let t0 = Instant::now();
    let mut fwd = forwarder(Layer::Low);
    fwd.handle_packet(t0, &pkt(Layer::Low, 1, &KEY));
    fwd.set_max_layer(Layer::High);
    fwd.set_max_layer(Layer::Low);
    assert_eq!(fwd.poll_keyframe_request(t0), None);
    let mut only_mid = LayerSet::new();
    only_mid.insert(Layer::Mid);
    fwd.set_available_layers(only_mid);
    assert_eq!(fwd.poll_keyframe_request(t0), Some(Layer::Mid));
}
