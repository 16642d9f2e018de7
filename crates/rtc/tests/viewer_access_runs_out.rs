//! A viewer whose access runs out (its playback token expires) is disconnected at that
//! instant, unless the session is extended first; a viewer without an end stays.

mod common;

use std::time::{Duration, Instant};

use common::*;
use greenroom_rtc::SubscribeOptions;

const WAIT: Duration = Duration::from_secs(20);

async fn viewers(engine: &greenroom_rtc::RtcEngine, stream: &str) -> usize {
    engine.stream_stats(stream).await.viewers
}

#[tokio::test(flavor = "current_thread")]
async fn sessions_end_when_access_runs_out_unless_extended() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let engine = engine(1).await;
            let publisher = publish(&engine, "paid", false).await;
            let limited = |secs: u64| SubscribeOptions {
                max_layer: None,
                valid_until: Some(Instant::now() + Duration::from_secs(secs)),
            };
            let expiring = watch_with(&engine, "paid", limited(2)).await;
            let extended = watch_with(&engine, "paid", limited(2)).await;
            let unlimited = watch(&engine, "paid", None).await;
            assert!(
                eventually(WAIT, || get(&expiring.counters.keyframes) >= 1
                    && get(&extended.counters.keyframes) >= 1)
                .await,
                "both limited viewers receive media first"
            );
            engine
                .extend_session(
                    "paid",
                    &extended.session,
                    Some(Instant::now() + Duration::from_secs(60)),
                )
                .await
                .expect("extend");
            assert_eq!(viewers(&engine, "paid").await, 3);
            let deadline = Instant::now() + WAIT;
            while viewers(&engine, "paid").await != 2 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(
                viewers(&engine, "paid").await,
                2,
                "the expiring viewer is gone"
            );
            // The one that ran out cannot be extended any more.
            assert!(
                engine
                    .extend_session("paid", &expiring.session, None)
                    .await
                    .is_err()
            );
            // The others keep receiving.
            let before = get(&extended.counters.packets);
            let unlimited_before = get(&unlimited.counters.packets);
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(get(&extended.counters.packets) > before);
            assert!(get(&unlimited.counters.packets) > unlimited_before);
            for running in [expiring, extended, unlimited, publisher] {
                running.stop().await;
            }
            engine.shutdown().await;
        })
        .await;
}
