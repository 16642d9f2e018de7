//! Shared set-up of the engine tests: an engine on loopback and client peers driven on the
//! test's own current-thread runtime.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use greenroom_rtc::client::{Client, ClientCounters, ClientKind};
use greenroom_rtc::{Layer, RtcConfig, RtcEngine, SessionId, SubscribeOptions};
use tokio::sync::watch;

pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub async fn engine(workers: usize) -> RtcEngine {
    engine_with(workers, true).await
}

/// An engine that detaches viewers from webrtc-rs after their handshake, or not.
pub async fn engine_with(workers: usize, detach_viewers: bool) -> RtcEngine {
    if let Ok(filter) = std::env::var("GREENROOM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    RtcEngine::start(RtcConfig {
        bind_ip: LOOPBACK,
        udp_port: 0,
        workers,
        detach_viewers,
        advertise_ips: vec![],
        ice_servers: vec![],
    })
    .await
    .expect("engine starts on loopback")
}

/// A running client: its counters and a switch to stop it.
pub struct Running {
    pub session: SessionId,
    pub counters: Arc<ClientCounters>,
    pub control: greenroom_rtc::client::ClientControl,
    stop: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

pub async fn publish(engine: &RtcEngine, stream: &str, simulcast: bool) -> Running {
    let mut client = Client::new(ClientKind::Publisher { simulcast }, LOOPBACK).expect("client");
    let answer = engine
        .publish(stream, &client.offer_sdp().expect("offer"))
        .await
        .expect("publish accepted");
    client.apply_answer(&answer.sdp).expect("answer applies");
    start(client, answer.session)
}

pub async fn watch(engine: &RtcEngine, stream: &str, max_layer: Option<Layer>) -> Running {
    watch_with(
        engine,
        stream,
        SubscribeOptions {
            max_layer,
            valid_until: None,
        },
    )
    .await
}

pub async fn watch_with(engine: &RtcEngine, stream: &str, options: SubscribeOptions) -> Running {
    let mut client = Client::new(ClientKind::Viewer, LOOPBACK).expect("client");
    let answer = engine
        .subscribe(stream, &client.offer_sdp().expect("offer"), options)
        .await
        .expect("subscribe accepted");
    client.apply_answer(&answer.sdp).expect("answer applies");
    start(client, answer.session)
}

fn start(client: Client, session: SessionId) -> Running {
    let counters = client.counters();
    let control = client.control();
    let (stop, rx) = watch::channel(false);
    let task = tokio::task::spawn_local(client.run(rx));
    Running {
        session,
        counters,
        control,
        stop,
        task,
    }
}

/// Waits (up to `limit`) until `check` holds.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

pub fn get(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
