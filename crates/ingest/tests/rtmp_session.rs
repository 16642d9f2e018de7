//! RTMP ingest behaviour: greenroom's `ServerSession` against a real RTMP peer (rml_rtmp's
//! client, in memory), against hostile bytes (proptest), and `serve` against the real ffmpeg CLI.

use std::net::SocketAddr;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use greenroom_ingest::rtmp::amf0::{self, Amf0Value};
use greenroom_ingest::rtmp::chunk::{ChunkEncoder, message_type};
use greenroom_ingest::rtmp::{
    MediaSink, PublishHandler, RtmpError, RtmpEvent, ServerSession, ServerSessionConfig, serve,
};
use proptest::prelude::*;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
    PublishRequestType, StreamMetadata as RmlMetadata,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};

// ---------------------------------------------------------------------------------------------
// In-memory peer: rml_rtmp's client session speaking to greenroom's server session.

struct Pair {
    client: ClientSession,
    server: ServerSession,
    accept: bool,
    events: Vec<RtmpEvent>,
    client_events: Vec<ClientSessionEvent>,
}

impl Pair {
    /// Handshakes (rml_rtmp on both sides, as in production), then starts both sessions.
    fn new(accept: bool) -> Pair {
        let mut client_hs = Handshake::new(PeerType::Client);
        let mut server_hs = Handshake::new(PeerType::Server);
        let c0c1 = client_hs.generate_outbound_p0_and_p1().expect("c0c1");
        let HandshakeProcessResult::InProgress { response_bytes } =
            server_hs.process_bytes(&c0c1).expect("s0s1s2")
        else {
            panic!("server handshake finished early");
        };
        let HandshakeProcessResult::Completed {
            response_bytes: c2,
            remaining_bytes,
        } = client_hs.process_bytes(&response_bytes).expect("c2")
        else {
            panic!("client handshake not finished");
        };
        assert!(remaining_bytes.is_empty());
        let HandshakeProcessResult::Completed {
            remaining_bytes, ..
        } = server_hs.process_bytes(&c2).expect("server done")
        else {
            panic!("server handshake not finished");
        };
        let (client, initial) = ClientSession::new(ClientSessionConfig::new()).expect("client");
        let mut pair = Pair {
            client,
            server: ServerSession::new(ServerSessionConfig::default()),
            accept,
            events: Vec::new(),
            client_events: Vec::new(),
        };
        pair.server
            .handle_input(&remaining_bytes)
            .expect("no leftover");
        pair.send(initial).expect("initial");
        pair
    }

    /// Delivers client results to the server and pumps both ways until both are quiet.
    fn send(&mut self, results: Vec<ClientSessionResult>) -> Result<(), RtmpError> {
        let mut to_server = Vec::new();
        self.collect(results, &mut to_server);
        loop {
            if !to_server.is_empty() {
                self.server.handle_input(&std::mem::take(&mut to_server))?;
            }
            while let Some(event) = self.server.poll_event() {
                if matches!(event, RtmpEvent::PublishRequested { .. }) {
                    if self.accept {
                        self.server.accept_publish();
                    } else {
                        self.server.reject_publish("refused by test");
                    }
                }
                self.events.push(event);
            }
            let mut to_client = Vec::new();
            while let Some(bytes) = self.server.poll_output() {
                to_client.extend_from_slice(&bytes);
            }
            if to_client.is_empty() {
                return Ok(());
            }
            let results = self.client.handle_input(&to_client).expect("client input");
            self.collect(results, &mut to_server);
        }
    }

    fn send_one(&mut self, result: ClientSessionResult) -> Result<(), RtmpError> {
        self.send(vec![result])
    }

    fn collect(&mut self, results: Vec<ClientSessionResult>, to_server: &mut Vec<u8>) {
        for result in results {
            match result {
                ClientSessionResult::OutboundResponse(packet) => {
                    to_server.extend_from_slice(&packet.bytes)
                }
                ClientSessionResult::RaisedEvent(event) => self.client_events.push(event),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
    }

    fn connect_and_publish(&mut self, key: &str) {
        let connect = self
            .client
            .request_connection("live".to_owned())
            .expect("connect");
        self.send_one(connect).expect("connect accepted");
        assert!(
            self.client_events
                .contains(&ClientSessionEvent::ConnectionRequestAccepted),
            "{:?}",
            self.client_events
        );
        let publish = self
            .client
            .request_publishing(key.to_owned(), PublishRequestType::Live)
            .expect("publish");
        self.send_one(publish).expect("publish sent");
    }

    fn video(&mut self, ts: u32, body: &[u8]) -> Result<(), RtmpError> {
        let packet = self
            .client
            .publish_video_data(Bytes::copy_from_slice(body), RtmpTimestamp::new(ts), false)
            .expect("video");
        self.send_one(packet)
    }

    fn audio(&mut self, ts: u32, body: &[u8]) -> Result<(), RtmpError> {
        let packet = self
            .client
            .publish_audio_data(Bytes::copy_from_slice(body), RtmpTimestamp::new(ts), false)
            .expect("audio");
        self.send_one(packet)
    }

    fn media(&self) -> Vec<(char, u32, Bytes)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                RtmpEvent::Video { timestamp_ms, body } => Some(('v', *timestamp_ms, body.clone())),
                RtmpEvent::Audio { timestamp_ms, body } => Some(('a', *timestamp_ms, body.clone())),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn rml_client_publishes_and_events_carry_timestamps_and_bodies() {
    let mut pair = Pair::new(true);
    pair.connect_and_publish("KEY");
    assert_eq!(
        pair.events.first(),
        Some(&RtmpEvent::PublishRequested {
            app: "live".into(),
            stream_key: "KEY".into()
        })
    );
    assert!(
        pair.client_events
            .contains(&ClientSessionEvent::PublishRequestAccepted),
        "{:?}",
        pair.client_events
    );
    let mut metadata = RmlMetadata::new();
    metadata.video_width = Some(320);
    metadata.encoder = Some("test".into());
    let meta = pair.client.publish_metadata(&metadata).expect("metadata");
    pair.send_one(meta).expect("metadata");

    // A 10 KB key frame crosses several 4096-byte chunks (the client raised its chunk size).
    let key_frame: Vec<u8> = std::iter::once(0x17)
        .chain(std::iter::once(0x01))
        .chain((0..10_000u32).map(|i| i as u8))
        .collect();
    pair.video(0, &[0x17, 0x00, 0, 0, 0, 1, 0x64]).expect("v");
    pair.audio(0, &[0xaf, 0x00, 0x12, 0x08]).expect("a");
    pair.video(0, &key_frame).expect("v");
    pair.audio(23, &[0xaf, 0x01, 1, 2, 3]).expect("a");
    pair.video(33, &[0x27, 0x01, 0, 0, 0, 9]).expect("v");
    pair.audio(46, &[0xaf, 0x01, 4]).expect("a");
    pair.video(67, &[0x27, 0x01, 0, 0, 0, 8]).expect("v");

    let metadata = pair.events.iter().find_map(|e| match e {
        RtmpEvent::Metadata(m) => Some(m.clone()),
        _ => None,
    });
    let metadata = metadata.expect("metadata event");
    assert_eq!(metadata.number("width"), Some(320.0));
    assert_eq!(metadata.string("encoder"), Some("test"));

    let media = pair.media();
    let summary: Vec<(char, u32, usize)> =
        media.iter().map(|(k, t, b)| (*k, *t, b.len())).collect();
    assert_eq!(
        summary,
        vec![
            ('v', 0, 7),
            ('a', 0, 4),
            ('v', 0, key_frame.len()),
            ('a', 23, 5),
            ('v', 33, 6),
            ('a', 46, 3),
            ('v', 67, 6),
        ]
    );
    assert_eq!(&media[2].2[..], &key_frame[..]);

    let stop = pair.client.stop_publishing().expect("stop");
    pair.send(stop).expect("stop");
    assert_eq!(pair.events.last(), Some(&RtmpEvent::Unpublished));
}

#[test]
fn rejected_publish_gets_an_error_status_and_no_media() {
    let mut pair = Pair::new(false);
    pair.connect_and_publish("WRONG");
    assert!(pair.server.is_closed());
    assert!(
        !pair
            .client_events
            .contains(&ClientSessionEvent::PublishRequestAccepted)
    );
    assert!(
        pair.client_events.iter().any(|e| matches!(
            e,
            ClientSessionEvent::UnhandleableOnStatusCode { code } if code == "NetStream.Publish.BadName"
        )),
        "{:?}",
        pair.client_events
    );
}

#[test]
fn extended_timestamps_and_deltas_from_a_real_client() {
    let mut pair = Pair::new(true);
    pair.connect_and_publish("KEY");
    let base = 0x00FF_FFFF - 40;
    let stamps = [
        base,
        base + 33,
        base + 66,
        base + 99,
        0x0200_0000,
        0x0200_0021,
    ];
    for (i, ts) in stamps.iter().enumerate() {
        // Same length and type in a row lets the client use header formats 2 and 3.
        let body = if i == 2 {
            vec![0x27u8; 500]
        } else {
            vec![0x27u8; 6]
        };
        pair.video(*ts, &body).expect("video");
    }
    let got: Vec<u32> = pair.media().iter().map(|(_, t, _)| *t).collect();
    assert_eq!(got, stamps);
}

// ---------------------------------------------------------------------------------------------
// A scripted raw peer on greenroom's own encoder, for what rml_rtmp's client does not do.

fn s(v: &str) -> Amf0Value {
    Amf0Value::String(v.to_owned())
}

fn n(v: f64) -> Amf0Value {
    Amf0Value::Number(v)
}

fn command(enc: &ChunkEncoder, stream_id: u32, values: &[Amf0Value]) -> BytesMut {
    let mut out = BytesMut::new();
    enc.encode(
        3,
        message_type::COMMAND_AMF0,
        stream_id,
        0,
        &amf0::encode_all(values),
        &mut out,
    );
    out
}

/// connect, createStream and publish("KEY") from a raw peer.
fn raw_prelude(enc: &ChunkEncoder) -> Vec<u8> {
    let app = Amf0Value::Object(vec![("app".to_owned(), s("live"))]);
    let mut b = Vec::new();
    b.extend_from_slice(&command(enc, 0, &[s("connect"), n(1.0), app]));
    b.extend_from_slice(&command(
        enc,
        0,
        &[s("createStream"), n(2.0), Amf0Value::Null],
    ));
    b.extend_from_slice(&command(
        enc,
        1,
        &[s("publish"), n(3.0), Amf0Value::Null, s("KEY"), s("live")],
    ));
    b
}

fn accepted_session() -> ServerSession {
    let mut server = ServerSession::new(ServerSessionConfig::default());
    server
        .handle_input(&raw_prelude(&ChunkEncoder::new()))
        .expect("prelude");
    assert!(matches!(
        server.poll_event(),
        Some(RtmpEvent::PublishRequested { .. })
    ));
    server.accept_publish();
    while server.poll_output().is_some() {}
    server
}

fn drain_media(server: &mut ServerSession) -> Vec<(u32, Bytes)> {
    let mut out = Vec::new();
    while let Some(event) = server.poll_event() {
        if let RtmpEvent::Video { timestamp_ms, body } | RtmpEvent::Audio { timestamp_ms, body } =
            event
        {
            out.push((timestamp_ms, body));
        }
    }
    out
}

#[test]
fn chunk_size_changes_apply_to_the_next_chunk() {
    let mut server = accepted_session();
    let mut enc = ChunkEncoder::new();
    let small: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let large: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let mut b = BytesMut::new();
    enc.set_chunk_size(1, &mut b);
    enc.encode(6, message_type::VIDEO, 1, 10, &small, &mut b);
    enc.set_chunk_size(65_536, &mut b);
    enc.encode(6, message_type::VIDEO, 1, 20, &large, &mut b);
    enc.set_chunk_size(0x7fff_ffff, &mut b);
    enc.encode(6, message_type::VIDEO, 1, 30, &large, &mut b);
    // Delivered in odd slices.
    for piece in b.chunks(777) {
        server.handle_input(piece).expect("valid input");
    }
    let media = drain_media(&mut server);
    assert_eq!(media.len(), 3);
    assert_eq!((media[0].0, &media[0].1[..]), (10, &small[..]));
    assert_eq!((media[1].0, &media[1].1[..]), (20, &large[..]));
    assert_eq!((media[2].0, &media[2].1[..]), (30, &large[..]));
}

#[test]
fn timestamp_deltas_wrap_at_32_bits() {
    let mut server = accepted_session();
    let enc = ChunkEncoder::new();
    let mut b = BytesMut::new();
    enc.encode(6, message_type::AUDIO, 1, u32::MAX - 5, &[0xaf, 1], &mut b);
    // Format 2 (delta 23) twice, then format 3 (same delta again).
    b.extend_from_slice(&[0x86, 0, 0, 23, 0xaf, 1]);
    b.extend_from_slice(&[0x86, 0, 0, 23, 0xaf, 1]);
    b.extend_from_slice(&[0xc6, 0xaf, 1]);
    server.handle_input(&b).expect("valid");
    let stamps: Vec<u32> = drain_media(&mut server).iter().map(|(t, _)| *t).collect();
    assert_eq!(stamps, vec![u32::MAX - 5, 17, 40, 63]);
}

#[test]
fn garbage_after_the_handshake_is_an_error_not_a_panic() {
    let mut server = ServerSession::new(ServerSessionConfig::default());
    let garbage = pseudo_random(1 << 20, 7);
    let err = server.handle_input(&garbage).expect_err("must fail");
    // Whatever it is, it names the problem; and the session stays closed.
    assert!(!err.to_string().is_empty());
    assert!(server.is_closed());
    server
        .handle_input(&garbage)
        .expect("closed sessions ignore input");
}

#[test]
fn deep_amf0_nesting_is_an_error() {
    let mut server = ServerSession::new(ServerSessionConfig::default());
    // connect, 1, then 15 000 nested objects (60 KB, under the 64 KiB command limit).
    let mut body = amf0::encode_all(&[s("connect"), n(1.0)]).to_vec();
    for _ in 0..15_000 {
        body.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
    }
    let mut b = BytesMut::new();
    ChunkEncoder::new().encode(3, message_type::COMMAND_AMF0, 0, 0, &body, &mut b);
    let err = server.handle_input(&b).expect_err("must fail");
    assert!(
        matches!(
            err,
            RtmpError::Amf0 {
                csid: 3,
                message_type: 20,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("nesting deeper than 16"), "{err}");
}

#[test]
fn oversized_messages_are_errors() {
    // A 9 MiB video message is refused at its header.
    let mut server = accepted_session();
    let header = [0x06, 0, 0, 0, 0x90, 0, 0, 9, 1, 0, 0, 0];
    let err = server.handle_input(&header).expect_err("must fail");
    assert!(
        matches!(
            err,
            RtmpError::MessageTooLarge {
                csid: 6,
                message_type: 9,
                length: 0x90_0000,
                limit: 0x80_0000
            }
        ),
        "{err}"
    );
    // A 100 KB command is refused too (commands are capped at 64 KiB).
    let mut server = ServerSession::new(ServerSessionConfig::default());
    let big = command(
        &ChunkEncoder::new(),
        0,
        &[s("connect"), n(1.0), s(&"x".repeat(100_000))],
    );
    let err = server.handle_input(&big).expect_err("must fail");
    assert!(
        matches!(err, RtmpError::MessageTooLarge { limit: 65_536, .. }),
        "{err}"
    );
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut server = ServerSession::new(ServerSessionConfig::default());
        let _ = server.handle_input(&bytes);
        while server.poll_event().is_some() {}
        while server.poll_output().is_some() {}
    }

    #[test]
    fn arbitrary_bytes_split_anywhere_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        after_publish in any::<bool>(),
    ) {
        let mut server = if after_publish {
            accepted_session()
        } else {
            ServerSession::new(ServerSessionConfig::default())
        };
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for cut in cuts.into_iter().chain(std::iter::once(bytes.len())) {
            if server.handle_input(&bytes[start..cut]).is_err() {
                break;
            }
            start = cut;
            while server.poll_event().is_some() {}
        }
    }

    #[test]
    fn valid_stream_split_anywhere_decodes_the_same(
        cuts in proptest::collection::vec(any::<usize>(), 0..32),
    ) {
        let mut server = accepted_session();
        let mut enc = ChunkEncoder::new();
        let mut b = BytesMut::new();
        enc.set_chunk_size(100, &mut b);
        for i in 0..10u32 {
            enc.encode(6, message_type::VIDEO, 1, i * 33, &vec![i as u8; 250], &mut b);
            enc.encode(4, message_type::AUDIO, 1, i * 23 + 0x00FF_FFF0, &[0xaf, 1, i as u8], &mut b);
        }
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (b.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        let mut media = Vec::new();
        for cut in cuts.into_iter().chain(std::iter::once(b.len())) {
            server.handle_input(&b[start..cut]).expect("valid input");
            start = cut;
            media.extend(drain_media(&mut server));
        }
        let expected: Vec<(u32, usize)> = (0..10u32)
            .flat_map(|i| [(i * 33, 250), (i * 23 + 0x00FF_FFF0, 3)])
            .collect();
        let got: Vec<(u32, usize)> = media.iter().map(|(t, b)| (*t, b.len())).collect();
        prop_assert_eq!(got, expected);
    }
}

// ---------------------------------------------------------------------------------------------
// serve() against the real ffmpeg CLI.

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Publish { app: String, key: String },
    Video(u32, Bytes),
    Audio(u32, Bytes),
    Finished,
}

#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    finished: Arc<Notify>,
}

impl Recorder {
    fn push(&self, seen: Seen) {
        if let Ok(mut log) = self.seen.lock() {
            log.push(seen);
        }
    }

    fn snapshot(&self) -> Vec<Seen> {
        self.seen.lock().map(|log| log.clone()).unwrap_or_default()
    }
}

struct RecordingSink(Recorder);

impl MediaSink for RecordingSink {
    fn video(&mut self, timestamp_ms: u32, body: Bytes) {
        self.0.push(Seen::Video(timestamp_ms, body));
    }

    fn audio(&mut self, timestamp_ms: u32, body: Bytes) {
        self.0.push(Seen::Audio(timestamp_ms, body));
    }

    fn finish(self: Box<Self>) {
        self.0.push(Seen::Finished);
        self.0.finished.notify_one();
    }

    fn closed(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::pending())
    }
}

impl PublishHandler for Recorder {
    async fn publish(
        &self,
        app: &str,
        stream_key: &str,
        _peer: SocketAddr,
    ) -> Result<Box<dyn MediaSink>, String> {
        if app != "live" || stream_key != "KEY" {
            return Err(format!("unknown stream key on app {app}"));
        }
        self.push(Seen::Publish {
            app: app.to_owned(),
            key: stream_key.to_owned(),
        });
        Ok(Box::new(RecordingSink(self.clone())))
    }
}

struct Server {
    port: u16,
    recorder: Recorder,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let recorder = Recorder::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, recorder.clone(), async move {
            let _ = stopped.await;
        }));
        Server {
            port,
            recorder,
            stop: Some(stop),
            task,
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task");
    }
}

/// Publishes `seconds` of test pattern and tone to `rtmp://127.0.0.1:PORT/live/KEY`; the child
/// is killed if the test drops it.
async fn ffmpeg_publish(port: u16, key: &str, seconds: u32) -> std::process::ExitStatus {
    let url = format!("rtmp://127.0.0.1:{port}/live/{key}");
    let mut child = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v", "libx264", "-g", "30", "-bf", "0", "-c:a", "aac", "-f", "flv",
        ])
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg on PATH");
    tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("ffmpeg finishes")
        .expect("ffmpeg status")
}

fn assert_good_publish(seen: &[Seen], min_video: usize) {
    assert_eq!(
        seen.first(),
        Some(&Seen::Publish {
            app: "live".into(),
            key: "KEY".into()
        })
    );
    let videos: Vec<(u32, &Bytes)> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Video(t, b) => Some((*t, b)),
            _ => None,
        })
        .collect();
    let audios: Vec<&Bytes> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Audio(_, b) => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(videos.first().map(|v| &v.1[..2]), Some(&[0x17, 0x00][..]));
    assert_eq!(audios.first().map(|a| &a[..2]), Some(&[0xaf, 0x00][..]));
    assert!(videos.len() >= min_video, "{} video messages", videos.len());
    // Frames (after the sequence header) have strictly increasing DTS.
    let frames: Vec<u32> = videos
        .iter()
        .filter(|(_, b)| b.get(1) == Some(&1))
        .map(|(t, _)| *t)
        .collect();
    assert!(frames.windows(2).all(|w| w[0] < w[1]), "{frames:?}");
    assert_eq!(seen.last(), Some(&Seen::Finished));
    assert_eq!(seen.iter().filter(|s| **s == Seen::Finished).count(), 1);
}

async fn wait_finished(recorder: &Recorder) {
    for _ in 0..100 {
        if recorder.snapshot().contains(&Seen::Finished) {
            return;
        }
        let _ =
            tokio::time::timeout(Duration::from_millis(100), recorder.finished.notified()).await;
    }
    panic!("the sink was never finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publish_reaches_the_handler() {
    let server = Server::start().await;
    let status = ffmpeg_publish(server.port, "KEY", 3).await;
    assert!(status.success(), "ffmpeg: {status}");
    wait_finished(&server.recorder).await;
    assert_good_publish(&server.recorder.snapshot(), 60);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_is_refused_and_the_server_keeps_serving() {
    let server = Server::start().await;
    let refused = ffmpeg_publish(server.port, "WRONG", 1).await;
    assert!(!refused.success(), "ffmpeg should fail: {refused}");
    assert!(server.recorder.snapshot().is_empty());
    let status = ffmpeg_publish(server.port, "KEY", 2).await;
    assert!(status.success(), "ffmpeg: {status}");
    wait_finished(&server.recorder).await;
    assert_good_publish(&server.recorder.snapshot(), 40);
    server.shutdown().await;
}

/// Sends `garbage` and reports whether the server closed the connection.
async fn send_garbage(port: u16, handshake_first: bool, garbage: Vec<u8>) -> bool {
    let mut socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    if handshake_first {
        let mut hs = Handshake::new(PeerType::Client);
        let c0c1 = hs.generate_outbound_p0_and_p1().expect("c0c1");
        socket.write_all(&c0c1).await.expect("c0c1 sent");
        let mut buf = vec![0u8; 8192];
        loop {
            let n = socket.read(&mut buf).await.expect("s0s1s2");
            assert!(n > 0, "server closed during the handshake");
            if let HandshakeProcessResult::Completed { response_bytes, .. } =
                hs.process_bytes(&buf[..n]).expect("handshake")
            {
                socket.write_all(&response_bytes).await.expect("c2 sent");
                break;
            }
        }
    }
    let (mut reader, mut writer) = socket.into_split();
    let writing = tokio::spawn(async move {
        // The server may close before all of it is written: that is the point.
        let _ = writer.write_all(&garbage).await;
        writer
    });
    let mut buf = vec![0u8; 8192];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    writing.abort();
    closed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_are_dropped_while_a_good_publish_continues() {
    let server = Server::start().await;
    let port = server.port;
    let publish = tokio::spawn(async move { ffmpeg_publish(port, "KEY", 3).await });
    // Let the publish get going, then attack before and after a valid handshake.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let raw = send_garbage(port, false, pseudo_random(1 << 20, 1));
    let after_handshake = send_garbage(port, true, pseudo_random(1 << 20, 2));
    let (raw, after_handshake) = tokio::join!(raw, after_handshake);
    assert!(raw, "raw garbage connection not closed");
    assert!(
        after_handshake,
        "post-handshake garbage connection not closed"
    );
    let status = publish.await.expect("publish task");
    assert!(status.success(), "ffmpeg: {status}");
    wait_finished(&server.recorder).await;
    assert_good_publish(&server.recorder.snapshot(), 60);
    server.shutdown().await;
}
