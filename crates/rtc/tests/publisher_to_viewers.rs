//! A Rust WebRTC publisher sends simulcast through the engine to several Rust viewers over real
//! ICE, DTLS and SRTP on loopback.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use greenroom_rtc::{Layer, RtcEvent};

const WAIT: Duration = Duration::from_secs(20);

async fn local<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(f).await
}

#[tokio::test(flavor = "current_thread")]
async fn viewers_receive_their_layer_across_workers() {
    local(async {
        let engine = engine(2).await;
        let mut events = engine.events();
        let publisher = publish(&engine, "s1", true).await;
        let full = watch(&engine, "s1", None).await;
        let low = watch(&engine, "s1", Some(Layer::Low)).await;
        let mid = watch(&engine, "s1", Some(Layer::Mid)).await;

        assert!(
            eventually(WAIT, || get(&full.counters.keyframes) >= 2
                && get(&low.counters.keyframes) >= 2
                && get(&mid.counters.keyframes) >= 2)
            .await,
            "every viewer receives keyframes"
        );
        assert_eq!(full.counters.last_width.load(Ordering::Relaxed), 1280);
        assert_eq!(mid.counters.last_width.load(Ordering::Relaxed), 640);
        assert_eq!(low.counters.last_width.load(Ordering::Relaxed), 320);
        assert!(
            eventually(WAIT, || get(&full.counters.audio_packets) > 20).await,
            "audio arrives"
        );
        assert_eq!(
            events.try_recv().ok(),
            Some(RtcEvent::Live {
                stream: "s1".into()
            })
        );

        let stats = engine.stream_stats("s1").await;
        assert!(stats.live);
        assert_eq!(stats.viewers, 3);
        let publisher_stats = stats.publisher.expect("publisher stats");
        let video = publisher_stats
            .tracks
            .iter()
            .find(|t| t.kind == "video")
            .expect("video track");
        assert_eq!(video.codec, "video/VP8");
        assert_eq!(video.layers.len(), 3);
        let widths: Vec<_> = video.layers.iter().map(|l| l.width).collect();
        assert_eq!(widths, vec![Some(320), Some(640), Some(1280)]);

        // Sequence numbers reach each viewer without jumps (no loss on loopback).
        assert_eq!(get(&low.counters.video_seq_jumps), 0);
        assert_eq!(get(&full.counters.video_seq_jumps), 0);

        // Every viewer's transport-wide CC feedback gives it a GCC estimate; on loopback it
        // carries the top layer, so the unpinned viewer keeps it.
        let mut estimated = false;
        for _ in 0..100 {
            let stats = engine.stream_stats("s1").await;
            if stats.viewer_sessions.len() == 3
                && stats
                    .viewer_sessions
                    .iter()
                    .all(|v| v.estimate_source == Some("twcc") && v.estimate_bps.is_some())
            {
                estimated = true;
                for viewer in &stats.viewer_sessions {
                    assert_eq!(viewer.bandwidth_layer, "f", "{viewer:?}");
                    assert!(viewer.loss < 0.01, "{viewer:?}");
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            estimated,
            "{:?}",
            engine.stream_stats("s1").await.viewer_sessions
        );

        publisher.stop().await;
        for v in [full, low, mid] {
            v.stop().await;
        }
        engine.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn viewer_joining_before_publisher_gets_media_and_survives_restart() {
    local(async {
        let engine = engine(1).await;
        let viewer = watch(&engine, "early", None).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(get(&viewer.counters.video_packets), 0);

        let first = publish(&engine, "early", true).await;
        assert!(eventually(WAIT, || get(&viewer.counters.keyframes) >= 1).await);
        let session = first.session.clone();
        engine
            .close_session("early", &session)
            .await
            .expect("publisher session closes");
        first.stop().await;
        let stats = engine.stream_stats("early").await;
        assert!(!stats.live, "stream idle after the publisher left");
        assert_eq!(stats.viewers, 1, "the viewer stays");

        let jumps_before = get(&viewer.counters.video_seq_jumps);
        let packets_before = get(&viewer.counters.video_packets);
        let second = publish(&engine, "early", false).await;
        assert!(
            eventually(WAIT, || get(&viewer.counters.video_packets)
                > packets_before + 100)
            .await,
            "the same viewer session resumes with the new publisher"
        );
        assert_eq!(
            get(&viewer.counters.video_seq_jumps),
            jumps_before,
            "sequence numbers stay continuous across the publisher restart"
        );
        second.stop().await;
        viewer.stop().await;
        engine.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn second_publisher_is_refused_and_first_keeps_flowing() {
    local(async {
        let engine = engine(1).await;
        let first = publish(&engine, "busy", false).await;
        let viewer = watch(&engine, "busy", None).await;
        assert!(eventually(WAIT, || get(&viewer.counters.video_packets) > 50).await);

        let intruder = greenroom_rtc::client::Client::new(
            greenroom_rtc::client::ClientKind::Publisher { simulcast: false },
            LOOPBACK,
        )
        .expect("client");
        let err = engine
            .publish("busy", &intruder.offer_sdp().expect("offer"))
            .await
            .expect_err("second publisher refused");
        assert!(
            matches!(err, greenroom_rtc::RtcError::StreamBusy { .. }),
            "{err}"
        );

        let before = get(&viewer.counters.video_packets);
        assert!(eventually(WAIT, || get(&viewer.counters.video_packets) > before + 50).await);
        first.stop().await;
        viewer.stop().await;
        engine.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn pinned_viewer_switches_layer_at_a_keyframe() {
    local(async {
        let engine = engine(1).await;
        let publisher = publish(&engine, "pin", true).await;
        let viewer = watch(&engine, "pin", Some(Layer::Low)).await;
        assert!(
            eventually(WAIT, || viewer.counters.last_width.load(Ordering::Relaxed)
                == 320)
            .await
        );
        engine
            .set_max_layer("pin", &viewer.session, Layer::High)
            .await
            .expect("layer change");
        assert!(
            eventually(WAIT, || viewer.counters.last_width.load(Ordering::Relaxed)
                == 1280)
            .await,
            "the viewer moves up"
        );
        assert_eq!(
            get(&viewer.counters.video_seq_jumps),
            0,
            "sequence numbers continuous across the switch"
        );
        assert!(get(&publisher.counters.keyframe_requests) >= 1);
        publisher.stop().await;
        viewer.stop().await;
        engine.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn malformed_and_unknown_requests_are_rejected() {
    let engine = engine(1).await;
    let err = engine
        .publish("x", "this is not sdp")
        .await
        .expect_err("garbage refused");
    assert!(
        matches!(err, greenroom_rtc::RtcError::InvalidSdp(_)),
        "{err}"
    );
    let err = engine
        .close_session("x", &greenroom_rtc::SessionId("nope".into()))
        .await
        .expect_err("unknown session");
    assert!(
        matches!(err, greenroom_rtc::RtcError::SessionNotFound { .. }),
        "{err}"
    );
    // The stream is free again after a refused offer.
    let stats = engine.stream_stats("x").await;
    assert!(!stats.live);
    engine.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn ice_restart_by_patch_keeps_the_session() {
    local(async {
        let engine = engine(1).await;
        let publisher = publish(&engine, "restart", false).await;
        let viewer = watch(&engine, "restart", None).await;
        assert!(eventually(WAIT, || get(&viewer.counters.video_packets) > 50).await);
        // Once the viewer's RTCP shows its handshake is done, the server carries the session
        // without webrtc-rs: the restart below is answered by greenroom's own ICE responder.
        assert!(
            eventually(WAIT, || engine.metrics().viewers_detached == 1).await,
            "the viewer is detached: {:?}",
            engine.metrics()
        );

        let fragment = viewer
            .control
            .restart_ice()
            .await
            .expect("client restarts ICE");
        let err = engine
            .patch("restart", &viewer.session, Some("\"stale\""), &fragment)
            .await
            .expect_err("a stale ETag is refused");
        assert!(
            matches!(err, greenroom_rtc::RtcError::PreconditionFailed { .. }),
            "{err}"
        );
        let outcome = engine
            .patch("restart", &viewer.session, Some("*"), &fragment)
            .await
            .expect("restart accepted");
        let greenroom_rtc::PatchOutcome::Restarted { sdpfrag, .. } = outcome else {
            panic!("new credentials must restart ICE, got {outcome:?}");
        };
        assert!(sdpfrag.contains("a=ice-ufrag:"), "{sdpfrag}");
        assert!(sdpfrag.contains("a=candidate:"), "{sdpfrag}");
        viewer
            .control
            .apply_restart_answer(&sdpfrag)
            .await
            .expect("answer fragment applies");
        let before = get(&viewer.counters.video_packets);
        assert!(
            eventually(WAIT, || get(&viewer.counters.video_packets) > before + 100).await,
            "media keeps flowing after the restart"
        );
        assert!(viewer.counters.connected.load(Ordering::Relaxed));
        publisher.stop().await;
        viewer.stop().await;
        engine.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn detached_viewers_that_leave_or_vanish_are_let_go() {
    local(async {
        let engine = engine(1).await;
        let publisher = publish(&engine, "leaving", false).await;
        let leaving = watch(&engine, "leaving", None).await;
        let vanishing = watch(&engine, "leaving", None).await;
        assert!(
            eventually(WAIT, || engine.metrics().viewers_detached == 2).await,
            "both viewers are detached: {:?}",
            engine.metrics()
        );
        // A viewer that closes its connection says so (DTLS close_notify): it is let go at
        // once, well before the silence limit.
        leaving.stop().await;
        assert!(
            eventually(Duration::from_secs(5), || engine.metrics().viewers == 1).await,
            "the closing viewer is gone: {:?}",
            engine.metrics()
        );
        // One that vanishes without a word is let go once nothing has come from it for the
        // silence limit (10 s).
        let before = get(&vanishing.counters.video_packets);
        assert!(
            eventually(WAIT, || get(&vanishing.counters.video_packets)
                > before + 20)
            .await
        );
        vanishing.task.abort();
        assert!(
            eventually(Duration::from_secs(20), || engine.metrics().viewers == 0).await,
            "the silent viewer is gone: {:?}",
            engine.metrics()
        );
        assert_eq!(engine.metrics().viewers_detached, 0);
        publisher.stop().await;
        engine.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn viewers_stay_on_webrtc_rs_when_detaching_is_off() {
    local(async {
        let engine = engine_with(1, false).await;
        let publisher = publish(&engine, "attached", false).await;
        let viewer = watch(&engine, "attached", None).await;
        // Long past the viewer's first RTCP, when a detaching engine would have let go.
        assert!(eventually(WAIT, || get(&viewer.counters.video_packets) > 400).await);
        assert_eq!(engine.metrics().viewers, 1);
        assert_eq!(engine.metrics().viewers_detached, 0);
        publisher.stop().await;
        viewer.stop().await;
        engine.shutdown().await;
    })
    .await;
}
