//! A local (RTMP/RTSP-style) publisher feeds RTP straight into the engine: WebRTC viewers on
//! every worker receive it, their keyframe requests come back to the source, it holds the
//! stream's single publisher slot, and ending the stream tells the source to stop.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use greenroom_rtc::{Codec, Layer, LocalPublisher, LocalRtp, RtcError, RtcEvent, TrackKind};

const WAIT: Duration = Duration::from_secs(20);

/// One synthetic VP8 frame in one packet: descriptor, frame tag and (for a key frame) the
/// 1280x720 key frame header.
fn vp8_packet(keyframe: bool, picture_id: u16) -> Bytes {
    let mut p = vec![0x90, 0x80, 0x80 | (picture_id >> 8) as u8, picture_id as u8];
    let mut frame = vec![0x5a; 600];
    frame[0] = if keyframe { 0x10 } else { 0x11 };
    if keyframe {
        frame[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        frame[6..8].copy_from_slice(&1280u16.to_le_bytes());
        frame[8..10].copy_from_slice(&720u16.to_le_bytes());
    }
    p.extend_from_slice(&frame);
    Bytes::from(p)
}

/// Sends 30 frames a second until `frames` were sent, a key frame every 60 or when asked.
async fn feed(publisher: &mut LocalPublisher, frames: u32, requests: &mut u32) {
    let mut seq: u16 = 65_000; // wraps during the test
    for i in 0..frames {
        let asked = publisher.poll_keyframe_request().is_some();
        if asked {
            *requests += 1;
        }
        // No key frame at the start: the viewers must ask for one.
        let keyframe = asked || (i > 0 && i % 60 == 0);
        publisher.send(LocalRtp {
            kind: TrackKind::Video,
            codec: Codec::Vp8,
            layer: Layer::High,
            sequence_number: seq,
            timestamp: i.wrapping_mul(3000),
            marker: true,
            payload: vp8_packet(keyframe, (i % 0x7fff) as u16),
        });
        publisher.send(LocalRtp {
            kind: TrackKind::Audio,
            codec: Codec::Opus,
            layer: Layer::High,
            sequence_number: seq,
            timestamp: i.wrapping_mul(1600),
            marker: false,
            payload: Bytes::from_static(&[0xfc; 60]),
        });
        seq = seq.wrapping_add(1);
        tokio::time::sleep(Duration::from_millis(33)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn local_source_reaches_webrtc_viewers_and_answers_keyframe_requests() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let engine = engine(2).await;
            let mut events = engine.events();
            let first = watch(&engine, "rtmp", None).await;
            let second = watch(&engine, "rtmp", Some(Layer::Low)).await;
            assert!(
                eventually(WAIT, || first.counters.connected.load(Ordering::Relaxed)
                    && second.counters.connected.load(Ordering::Relaxed))
                .await
            );

            let mut source = engine
                .publish_local("rtmp")
                .expect("publisher slot is free");
            let busy = engine
                .publish_local("rtmp")
                .expect_err("one publisher per stream");
            assert!(matches!(busy, RtcError::StreamBusy { .. }), "{busy}");
            let intruder = greenroom_rtc::client::Client::new(
                greenroom_rtc::client::ClientKind::Publisher { simulcast: false },
                LOOPBACK,
            )
            .expect("client");
            let busy = engine
                .publish("rtmp", &intruder.offer_sdp().expect("offer"))
                .await
                .expect_err("WHIP refused while RTMP publishes");
            assert!(matches!(busy, RtcError::StreamBusy { .. }), "{busy}");

            let mut requests = 0;
            feed(&mut source, 90, &mut requests).await;
            assert!(
                requests >= 1,
                "joining viewers asked the source for a keyframe"
            );
            for viewer in [&first, &second] {
                assert!(get(&viewer.counters.keyframes) >= 1);
                assert_eq!(viewer.counters.last_width.load(Ordering::Relaxed), 1280);
                assert!(get(&viewer.counters.video_packets) >= 50);
                assert!(get(&viewer.counters.audio_packets) >= 50);
                assert_eq!(get(&viewer.counters.video_seq_jumps), 0);
            }
            let stats = engine.stream_stats("rtmp").await;
            assert!(stats.live);
            assert_eq!(stats.viewers, 2);
            let publisher = stats.publisher.expect("publisher stats");
            assert_eq!(&publisher.session, source.session());
            assert!(publisher.tracks.iter().any(|t| t.codec == "video/VP8"));
            assert!(publisher.tracks.iter().any(|t| t.codec == "audio/opus"));
            assert_eq!(
                events.try_recv().ok(),
                Some(RtcEvent::Live {
                    stream: "rtmp".into()
                })
            );

            // Ending the stream tells the source to stop; dropping it frees the slot.
            engine.end_stream("rtmp").await;
            tokio::time::timeout(WAIT, source.closed())
                .await
                .expect("the source is told to stop");
            drop(source);
            assert!(!engine.stream_stats("rtmp").await.live);
            let again = engine.publish_local("rtmp").expect("slot free again");
            drop(again);

            first.stop().await;
            second.stop().await;
            engine.shutdown().await;
        })
        .await;
}
