//! RTSP pull against a real RTSP server: GStreamer's gst-rtsp-server
//! (`scripts/rtsp-test-server.py`) serves an H.264 + AAC clip made by ffmpeg; an
//! [`RtspPuller`] pulls it into a real engine (loopback) over TCP or UDP, and a Rust WebRTC
//! viewer must get H.264 keyframes of the clip's width and Opus audio. The RTSP server is then
//! killed (the puller backs off with the error), started again on the same port (the puller
//! plays again) and the same viewer session gets media again. Stopping the puller frees the
//! stream's publisher slot. No process outlives a test.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use greenroom_ingest::rtsp::{PullerOptions, RtspPuller, RtspTransport, SourcePhase, SourceState};
use greenroom_rtc::client::{Client, ClientCounters, ClientKind};
use greenroom_rtc::{
    MediaHandling, RtcConfig, RtcEngine, RtcError, SourceProtocol, SubscribeOptions,
};
use tokio::sync::watch;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WIDTH: u64 = 640;
const WAIT: Duration = Duration::from_secs(25);

/// The RTSP server process; killed (SIGKILL, like a crash) and reaped on drop.
struct RtspServer {
    child: Child,
}

impl RtspServer {
    fn start(port: u16, media: &Path) -> RtspServer {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/rtsp-test-server.py");
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut child = Command::new(python)
            .arg(&script)
            .arg(port.to_string())
            .arg(media)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with gi (scripts/install-deps.sh test)");
        let stdout = child.stdout.take().expect("stdout");
        let mut server = RtspServer { child };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read");
        if line.trim() != "ready" {
            let _ = server.child.kill();
            panic!("the RTSP test server did not start (scripts/install-deps.sh test): {line:?}");
        }
        server
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 60 s 640x360 30 fps H.264 (a keyframe a second) + 48 kHz AAC clip, with `b_frames`.
fn make_clip(dir: &Path, b_frames: u32) -> PathBuf {
    let path = dir.join("clip.mkv");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "60", "-c:v", "libx264", "-preset", "ultrafast"])
        .args([
            "-bf",
            &b_frames.to_string(),
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-b:a", "96k"])
        .arg(&path)
        .stdin(Stdio::null())
        .status()
        .expect("ffmpeg on PATH");
    assert!(status.success(), "ffmpeg made the clip");
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind((LOOPBACK, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn engine() -> RtcEngine {
    if let Ok(filter) = std::env::var("GREENROOM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    RtcEngine::start(RtcConfig {
        bind_ip: LOOPBACK,
        udp_port: 0,
        workers: 1,
        detach_viewers: true,
        advertise_ips: vec![],
        ice_servers: vec![],
    })
    .await
    .expect("engine on loopback")
}

async fn viewer(
    engine: &RtcEngine,
    stream: &str,
    stop: watch::Receiver<bool>,
) -> Arc<ClientCounters> {
    let mut client = Client::new(ClientKind::Viewer, LOOPBACK).expect("client");
    let answer = engine
        .subscribe(
            stream,
            &client.offer_sdp().expect("offer"),
            SubscribeOptions {
                max_layer: None,
                valid_until: None,
            },
        )
        .await
        .expect("subscribe");
    client.apply_answer(&answer.sdp).expect("answer applies");
    let counters = client.counters();
    tokio::task::spawn_local(client.run(stop));
    counters
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

async fn wait_phase(state: &mut watch::Receiver<SourceState>, phase: SourcePhase) -> SourceState {
    let reached = tokio::time::timeout(WAIT, state.wait_for(|s| s.phase == phase))
        .await
        .map(|reached| reached.map(|state| state.clone()));
    match reached {
        Ok(Ok(state)) => state,
        _ => panic!("the puller never reached {phase:?}: {:?}", *state.borrow()),
    }
}

/// Media arrives until the viewer has `keyframes` more keyframes and `audio` more audio packets.
async fn media_flows(counters: &ClientCounters, keyframes: u64, audio: u64, what: &str) {
    let (k0, a0) = (get(&counters.keyframes), get(&counters.audio_packets));
    let flowed = eventually(WAIT, || {
        get(&counters.keyframes) >= k0 + keyframes && get(&counters.audio_packets) >= a0 + audio
    })
    .await;
    assert!(
        flowed,
        "{what}: keyframes {} -> {}, audio packets {a0} -> {}",
        k0,
        get(&counters.keyframes),
        get(&counters.audio_packets)
    );
    assert_eq!(
        get(&counters.last_width),
        WIDTH,
        "{what}: keyframes of the clip's width"
    );
}

async fn pull_play_kill_restart(transport: RtspTransport) {
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = make_clip(dir.path(), 0);
    let port = free_port();
    let engine = engine().await;
    let stream = format!("rtsp{}", transport.as_str());

    let mut server = Some(RtspServer::start(port, &clip));
    let (state_tx, mut state) = watch::channel(SourceState::connecting());
    let puller = RtspPuller::spawn_with(
        engine.clone(),
        &stream,
        // Credentials are accepted (and unused by this server).
        &format!("rtsp://viewer:secret@127.0.0.1:{port}/clip"),
        transport,
        state_tx,
        PullerOptions {
            // Quick retries while the server is down.
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(2),
            ..PullerOptions::default()
        },
    );
    let (stop_tx, stop) = watch::channel(false);
    let counters = viewer(&engine, &stream, stop).await;

    let playing = wait_phase(&mut state, SourcePhase::Playing).await;
    assert_eq!(playing.reconnects, 0);
    media_flows(&counters, 2, 100, "first session").await;
    // While it plays, the source holds the publisher slot.
    assert!(matches!(
        engine.publish_local(&stream),
        Err(RtcError::StreamBusy { .. })
    ));

    // The RTSP server dies: the puller backs off and says why.
    drop(server.take());
    let backoff = wait_phase(&mut state, SourcePhase::Backoff).await;
    let error = backoff.last_error.clone().unwrap_or_default();
    assert!(!error.is_empty(), "{backoff:?}");
    assert!(
        !error.contains("secret"),
        "credentials in the error: {error}"
    );

    // Back again on the same port: the puller plays again, into the same viewer session.
    server = Some(RtspServer::start(port, &clip));
    let again = tokio::time::timeout(
        WAIT,
        state.wait_for(|s| s.phase == SourcePhase::Playing && s.reconnects >= 1),
    )
    .await
    .map(|s| s.map(|s| s.clone()));
    let Ok(Ok(again)) = again else {
        panic!("the puller did not play again: {:?}", *state.borrow());
    };
    assert!(again.last_error.is_some(), "{again:?}");
    media_flows(&counters, 2, 100, "after the restart").await;

    // Stopping frees the slot and says so.
    puller.stop().await;
    assert_eq!(state.borrow().phase, SourcePhase::Stopped);
    let freed = eventually(Duration::from_secs(5), || {
        engine.publish_local(&stream).is_ok()
    })
    .await;
    assert!(freed, "the publisher slot is free after stop");

    let _ = stop_tx.send(true);
    drop(server);
    engine.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn pulls_over_tcp_backs_off_when_the_server_dies_and_resumes() {
    tokio::task::LocalSet::new()
        .run_until(pull_play_kill_restart(RtspTransport::Tcp))
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn pulls_over_udp_backs_off_when_the_server_dies_and_resumes() {
    tokio::task::LocalSet::new()
        .run_until(pull_play_kill_restart(RtspTransport::Udp))
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn b_frames_from_rtsp_are_reencoded_and_say_so() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let dir = tempfile::tempdir().expect("temp dir");
            let clip = make_clip(dir.path(), 2);
            let port = free_port();
            let _server = RtspServer::start(port, &clip);
            let engine = engine().await;
            let (state_tx, mut state) = watch::channel(SourceState::connecting());
            let puller = RtspPuller::spawn(
                engine.clone(),
                "rtspbframes",
                &format!("rtsp://127.0.0.1:{port}/clip"),
                RtspTransport::Tcp,
                state_tx,
            );
            let (stop_tx, stop) = watch::channel(false);
            let counters = viewer(&engine, "rtspbframes", stop).await;
            wait_phase(&mut state, SourcePhase::Playing).await;
            media_flows(&counters, 2, 100, "B-frames").await;
            let stats = engine.stream_stats("rtspbframes").await;
            let source = stats.publisher.expect("live publisher").source;
            assert_eq!(source.protocol, SourceProtocol::Rtsp);
            assert_eq!(source.video, MediaHandling::Transcoded, "{source:?}");
            assert_eq!(source.audio, MediaHandling::Transcoded, "{source:?}");
            puller.stop().await;
            let _ = stop_tx.send(true);
            engine.shutdown().await;
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn unsupported_scheme_fails_for_good_and_stops_on_request() {
    let engine = engine().await;
    let (state_tx, mut state) = watch::channel(SourceState::connecting());
    let puller = RtspPuller::spawn(
        engine.clone(),
        "rtspsfail",
        "rtsps://u:secret@127.0.0.1:1/x",
        RtspTransport::Tcp,
        state_tx,
    );
    let failed = wait_phase(&mut state, SourcePhase::Failed).await;
    let error = failed.last_error.unwrap_or_default();
    assert!(error.contains("rtsps"), "{error}");
    assert!(!error.contains("secret"), "{error}");
    puller.stop().await;
    assert_eq!(state.borrow().phase, SourcePhase::Stopped);
    engine.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn nothing_listening_means_backoff_with_growing_reconnects() {
    let engine = engine().await;
    let port = free_port();
    let (state_tx, mut state) = watch::channel(SourceState::connecting());
    let puller = RtspPuller::spawn_with(
        engine.clone(),
        "rtspnone",
        &format!("rtsp://127.0.0.1:{port}/x"),
        RtspTransport::Tcp,
        state_tx,
        PullerOptions {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(200),
            ..PullerOptions::default()
        },
    );
    let reconnected = tokio::time::timeout(WAIT, state.wait_for(|s| s.reconnects >= 2))
        .await
        .is_ok_and(|reached| reached.is_ok());
    assert!(reconnected, "{:?}", *state.borrow());
    let seen = state.borrow().clone();
    assert!(seen.last_error.is_some(), "{seen:?}");
    // Never played: the slot stayed free.
    drop(
        engine
            .publish_local("rtspnone")
            .expect("slot free while not playing"),
    );
    drop(puller);
    wait_phase(&mut state, SourcePhase::Stopped).await;
    engine.shutdown().await;
}
