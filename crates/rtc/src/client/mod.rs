//! A WebRTC client peer for greenroom's own tools: the integration tests and the load generator.
//!
//! A [`Client`] is either a viewer (recvonly audio + video, counts what arrives) or a publisher
//! (sends synthetic Opus and VP8, optionally as three simulcast layers, and answers keyframe
//! requests). A publisher can send real VP8 from IVF files instead ([`MediaClip`], one per
//! layer, looped; a keyframe request restarts the clip at its first frame, a key frame). It speaks real ICE, DTLS and SRTP through webrtc-rs; it does not decode media.
//! Peer connections are not `Send`: run [`Client::run`] on a current-thread runtime or a
//! `LocalSet`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;

use crate::RtcError;

mod clip;
use crate::peer::{self, PeerOptions};
pub use clip::MediaClip;
use greenroom_sfu::Layer;

const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// What a client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Receives audio and video.
    Viewer,
    /// Sends Opus audio and VP8 video; `simulcast` sends layers q, h and f.
    Publisher { simulcast: bool },
}

/// What a client has seen; shared with whoever watches it.
#[derive(Debug, Default)]
pub struct ClientCounters {
    pub connected: AtomicBool,
    pub failed: AtomicBool,
    /// RTP packets received (viewer) or sent (publisher).
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub audio_packets: AtomicU64,
    /// Audio payload bytes (Opus silence is a few bytes a frame; a tone is far more).
    pub audio_bytes: AtomicU64,
    pub video_packets: AtomicU64,
    /// Packets missing from the received sequence (counted at the gap, so reordering within
    /// the window counts as loss).
    pub lost: AtomicU64,
    /// Video frames received that start a keyframe.
    pub keyframes: AtomicU64,
    /// Width of the last video keyframe received (VP8 only).
    pub last_width: AtomicU64,
    /// Keyframe requests received (publisher).
    pub keyframe_requests: AtomicU64,
    /// Video sequence numbers that did not follow the previous one (+1).
    pub video_seq_jumps: AtomicU64,
}

/// Sizes of the synthetic simulcast layers.
const LAYERS: [(Layer, u32, u32, u32); 3] = [
    // layer, width, height, bitrate
    (Layer::Low, 320, 180, 150_000),
    (Layer::Mid, 640, 360, 500_000),
    (Layer::High, 1280, 720, 1_450_000),
];
const FPS: u32 = 30;
const MAX_PAYLOAD: usize = 1100;
/// Datagrams a client reads in one turn before it lets the others on its thread run.
const READ_BURST: usize = 32;

struct SendLayer {
    layer: Layer,
    ssrc: u32,
    width: u32,
    height: u32,
    frame_bytes: usize,
    seq: u16,
    picture_id: u16,
    /// Real VP8 frames to send instead of synthetic ones, and the next one's index.
    clip: Option<(Arc<MediaClip>, usize)>,
}

/// A client peer connection bound to its own UDP socket.
pub struct Client {
    kind: ClientKind,
    pc: RTCPeerConnection,
    socket: std::net::UdpSocket,
    local_addr: SocketAddr,
    counters: Arc<ClientCounters>,
    audio_sender: Option<(RTCRtpSenderId, u32)>,
    video_sender: Option<RTCRtpSenderId>,
    layers: Vec<SendLayer>,
    audio_mid: String,
    video_mid: String,
    commands: tokio::sync::mpsc::Receiver<ControlCommand>,
    control: ClientControl,
}

/// Steers a running [`Client`].
#[derive(Debug, Clone)]
pub struct ClientControl {
    tx: tokio::sync::mpsc::Sender<ControlCommand>,
}

enum ControlCommand {
    /// Start an ICE restart: answers with the `trickle-ice-sdpfrag` to PATCH.
    RestartIce(tokio::sync::oneshot::Sender<Result<String, RtcError>>),
    /// Apply the server's answer fragment of an ICE restart.
    ApplyRestartAnswer(String, tokio::sync::oneshot::Sender<Result<(), RtcError>>),
}

impl ClientControl {
    /// Restarts ICE with new credentials; returns the fragment to send as WHIP/WHEP `PATCH`.
    pub async fn restart_ice(&self) -> Result<String, RtcError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(ControlCommand::RestartIce(tx))
            .await
            .map_err(|_| RtcError::Closed)?;
        rx.await.map_err(|_| RtcError::Closed)?
    }

    /// Applies the server's answer fragment (new credentials and candidates).
    pub async fn apply_restart_answer(&self, fragment: &str) -> Result<(), RtcError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(ControlCommand::ApplyRestartAnswer(fragment.to_owned(), tx))
            .await
            .map_err(|_| RtcError::Closed)?;
        rx.await.map_err(|_| RtcError::Closed)?
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("kind", &self.kind)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Creates the peer connection and its offer; the socket binds `bind_ip` on a free port.
    pub fn new(kind: ClientKind, bind_ip: IpAddr) -> Result<Client, RtcError> {
        let now = Instant::now();
        let addr = SocketAddr::new(bind_ip, 0);
        let socket =
            std::net::UdpSocket::bind(addr).map_err(|source| RtcError::Bind { addr, source })?;
        socket
            .set_nonblocking(true)
            .map_err(|source| RtcError::Bind { addr, source })?;
        let local_addr = socket
            .local_addr()
            .map_err(|source| RtcError::Bind { addr, source })?;
        let mut pc = peer::build(
            PeerOptions {
                ice_servers: &[],
                credentials: None,
                answering_role: None,
                feedback: None,
                key_capture: None,
                sends_media: kind != ClientKind::Viewer,
                receives_media: kind == ClientKind::Viewer,
            },
            now,
        )
        .map_err(pc_error)?;
        let mut audio_sender = None;
        let mut video_sender = None;
        let mut layers = Vec::new();
        match kind {
            ClientKind::Viewer => {
                for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                    pc.add_transceiver_from_kind(
                        kind,
                        Some(RTCRtpTransceiverInit {
                            direction: RTCRtpTransceiverDirection::Recvonly,
                            ..Default::default()
                        }),
                    )
                    .map_err(pc_error)?;
                }
            }
            ClientKind::Publisher { simulcast } => {
                let ssrc = rand::random::<u32>();
                let audio = MediaStreamTrack::new(
                    "load".to_owned(),
                    "audio".to_owned(),
                    "audio".to_owned(),
                    RtpCodecKind::Audio,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            ssrc: Some(ssrc),
                            ..Default::default()
                        },
                        codec: RTCRtpCodec {
                            mime_type: MIME_TYPE_OPUS.to_owned(),
                            clock_rate: 48000,
                            channels: 2,
                            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                            rtcp_feedback: vec![],
                        },
                        active: true,
                        ..Default::default()
                    }],
                );
                audio_sender = Some((pc.add_track(audio).map_err(pc_error)?, ssrc));
                let chosen: Vec<_> = if simulcast {
                    LAYERS.to_vec()
                } else {
                    vec![LAYERS[2]]
                };
                let vp8 = RTCRtpCodec {
                    mime_type: MIME_TYPE_VP8.to_owned(),
                    clock_rate: 90000,
                    channels: 0,
                    sdp_fmtp_line: String::new(),
                    rtcp_feedback: vec![],
                };
                let mut codings = Vec::new();
                for (layer, width, height, bitrate) in chosen {
                    let ssrc = rand::random::<u32>();
                    codings.push(RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            rid: if simulcast {
                                layer.rid().to_owned()
                            } else {
                                String::new()
                            },
                            ssrc: Some(ssrc),
                            ..Default::default()
                        },
                        codec: vp8.clone(),
                        active: true,
                        ..Default::default()
                    });
                    layers.push(SendLayer {
                        layer,
                        ssrc,
                        width,
                        height,
                        frame_bytes: (bitrate / 8 / FPS) as usize,
                        seq: rand::random(),
                        picture_id: rand::random::<u16>() & 0x7fff,
                        clip: None,
                    });
                }
                let video = MediaStreamTrack::new(
                    "load".to_owned(),
                    "video".to_owned(),
                    "video".to_owned(),
                    RtpCodecKind::Video,
                    codings,
                );
                video_sender = Some(pc.add_track(video).map_err(pc_error)?);
            }
        }
        let offer = pc.create_offer(None).map_err(pc_error)?;
        pc.set_local_description(now, offer).map_err(pc_error)?;
        let candidate = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: local_addr.ip().to_string(),
                port: local_addr.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
        let init = RTCIceCandidate::from(&candidate)
            .to_json()
            .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
        pc.add_local_candidate(init).map_err(pc_error)?;
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(pc_error)?;
        // Audio was added first, so it is the first media section.
        let mids: Vec<String> = pc
            .local_description()
            .map(|d| {
                d.sdp
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("a=mid:").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let (tx, commands) = tokio::sync::mpsc::channel(4);
        Ok(Client {
            commands,
            control: ClientControl { tx },
            audio_mid: mids.first().cloned().unwrap_or_default(),
            video_mid: mids.get(1).cloned().unwrap_or_default(),
            kind,
            pc,
            socket,
            local_addr,
            counters: Arc::new(ClientCounters::default()),
            audio_sender,
            video_sender,
            layers,
        })
    }

    /// A publisher sends these clips (lowest layer first: one per layer it sends) instead of
    /// synthetic frames.
    pub fn with_clips(mut self, clips: &[Arc<MediaClip>]) -> Result<Client, RtcError> {
        if clips.len() != self.layers.len() {
            return Err(RtcError::UnsupportedMedia(format!(
                "{} clips for {} layers",
                clips.len(),
                self.layers.len()
            )));
        }
        for (layer, clip) in self.layers.iter_mut().zip(clips) {
            layer.clip = Some((clip.clone(), 0));
        }
        Ok(self)
    }

    /// The SDP offer to POST to a WHIP or WHEP endpoint.
    pub fn offer_sdp(&self) -> Result<String, RtcError> {
        self.pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| RtcError::PeerConnection("no local description".into()))
    }

    /// Applies the server's SDP answer.
    pub fn apply_answer(&mut self, sdp: &str) -> Result<(), RtcError> {
        let answer = RTCSessionDescription::answer(sdp.to_owned())
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
        self.pc
            .set_remote_description(Instant::now(), answer)
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))
    }

    /// A handle to steer the client while it runs.
    pub fn control(&self) -> ClientControl {
        self.control.clone()
    }

    fn restart_ice(&mut self) -> Result<String, RtcError> {
        self.pc.restart_ice();
        let offer = self.pc.create_offer(None).map_err(pc_error)?;
        self.pc
            .set_local_description(Instant::now(), offer)
            .map_err(pc_error)?;
        let sdp = self
            .pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| RtcError::PeerConnection("no local description".into()))?;
        let ufrag = crate::worker::sdp_attribute(&sdp, "a=ice-ufrag:")
            .ok_or_else(|| RtcError::InvalidSdp("offer without ice-ufrag".into()))?;
        let pwd = crate::worker::sdp_attribute(&sdp, "a=ice-pwd:")
            .ok_or_else(|| RtcError::InvalidSdp("offer without ice-pwd".into()))?;
        Ok(format!(
            "a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:{}\r\na=candidate:1 1 udp 2130706431 {} {} typ host\r\na=end-of-candidates\r\n",
            self.audio_mid,
            self.local_addr.ip(),
            self.local_addr.port()
        ))
    }

    fn apply_restart_answer(&mut self, fragment: &str) -> Result<(), RtcError> {
        let frag = crate::sdpfrag::parse(fragment).map_err(RtcError::InvalidSdp)?;
        let (Some(ufrag), Some(pwd)) = (frag.ufrag, frag.pwd) else {
            return Err(RtcError::InvalidSdp(
                "answer fragment without credentials".into(),
            ));
        };
        let previous = self
            .pc
            .remote_description()
            .map(|d| d.sdp.clone())
            .ok_or_else(|| RtcError::PeerConnection("no remote description".into()))?;
        let mut sdp = crate::sdpfrag::replace_credentials(&previous, &ufrag, &pwd);
        // Candidates of the new generation go into every media section of the new answer.
        let candidates: String = frag
            .candidates
            .iter()
            .map(|(_, c)| format!("a={c}\r\n"))
            .collect();
        sdp = sdp.replace("a=mid:", &format!("{candidates}a=mid:"));
        self.apply_answer(&sdp)
    }

    /// What the client has seen so far.
    pub fn counters(&self) -> Arc<ClientCounters> {
        self.counters.clone()
    }

    /// Runs the client until `stop` turns true or the connection fails.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let socket = match UdpSocket::from_std(self.socket.try_clone().unwrap_or_else(|_| {
            // try_clone only fails on descriptor exhaustion; fall back to a fresh bind
            std::net::UdpSocket::bind(self.local_addr).unwrap_or_else(|_| {
                std::net::UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|_| std::process::abort())
            })
        })) {
            Ok(s) => s,
            Err(_) => {
                self.counters.failed.store(true, Ordering::Relaxed);
                return;
            }
        };
        let mut buf = vec![0u8; 2048];
        let frame_interval = Duration::from_millis(1000 / u64::from(FPS));
        let audio_interval = Duration::from_millis(20);
        let start = Instant::now();
        let mut next_frame = start;
        let mut next_audio = start;
        let mut frame_index: u64 = 0;
        let mut audio_seq: u16 = rand::random();
        let mut force_keyframe = true;
        let mut receive = ReceiveState {
            h264_payload_types: self
                .pc
                .remote_description()
                .map(|d| h264_payload_types(&d.sdp))
                .unwrap_or_default(),
            ..ReceiveState::default()
        };
        let sending = matches!(self.kind, ClientKind::Publisher { .. });
        // One timer for the whole run, moved to each new deadline.
        let timer = tokio::time::sleep_until(start.into());
        tokio::pin!(timer);
        loop {
            while let Some(msg) = self.pc.poll_write() {
                let _ = socket.try_send_to(&msg.message, msg.transport.peer_addr);
            }
            while let Some(event) = self.pc.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                    match state {
                        RTCPeerConnectionState::Connected => {
                            self.counters.connected.store(true, Ordering::Relaxed)
                        }
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                            self.counters.connected.store(false, Ordering::Relaxed);
                            self.counters.failed.store(true, Ordering::Relaxed);
                            return;
                        }
                        _ => {}
                    }
                }
            }
            while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
                match message {
                    RTCMessage::RtpPacket(_, packet) => receive.count(&self.counters, &packet),
                    RTCMessage::RtcpPacket(_, packets) if peer::is_keyframe_request(&packets) => {
                        self.counters
                            .keyframe_requests
                            .fetch_add(1, Ordering::Relaxed);
                        force_keyframe = true;
                    }
                    _ => {}
                }
            }
            let now = Instant::now();
            if sending && self.counters.connected.load(Ordering::Relaxed) {
                if now >= next_frame {
                    let forced = force_keyframe;
                    let keyframe = forced || frame_index.is_multiple_of(2 * u64::from(FPS));
                    force_keyframe = false;
                    let timestamp = (now.duration_since(start).as_micros() * 9 / 100) as u32;
                    self.send_video_frame(now, forced, keyframe, timestamp);
                    frame_index += 1;
                    next_frame += frame_interval;
                }
                if now >= next_audio {
                    let timestamp = (now.duration_since(start).as_micros() * 48 / 1000) as u32;
                    self.send_audio(now, audio_seq, timestamp);
                    audio_seq = audio_seq.wrapping_add(1);
                    next_audio += audio_interval;
                }
            }
            let mut deadline = self
                .pc
                .poll_timeout()
                .unwrap_or(now + Duration::from_secs(1));
            if sending && self.counters.connected.load(Ordering::Relaxed) {
                deadline = deadline.min(next_frame).min(next_audio);
            } else if sending {
                // Not connected yet: media starts from the moment the connection is up.
                next_frame = now;
                next_audio = now;
            }
            if timer.deadline() != deadline.into() {
                timer.as_mut().reset(deadline.into());
            }
            if deadline <= now {
                let _ = self.pc.handle_timeout(now);
                // Other clients share this thread.
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                Some(command) = self.commands.recv() => match command {
                    ControlCommand::RestartIce(reply) => {
                        let _ = reply.send(self.restart_ice());
                    }
                    ControlCommand::ApplyRestartAnswer(fragment, reply) => {
                        let _ = reply.send(self.apply_restart_answer(&fragment));
                    }
                },
                _ = stop.changed() => {
                    if *stop.borrow() {
                        let _ = self.pc.close();
                        while let Some(msg) = self.pc.poll_write() {
                            let _ = socket.try_send_to(&msg.message, msg.transport.peer_addr);
                        }
                        return;
                    }
                }
                _ = &mut timer => {
                    let _ = self.pc.handle_timeout(Instant::now());
                }
                received = socket.recv_from(&mut buf) => {
                    // What queued up meanwhile is read in the same turn: one wake-up per burst
                    // (a video frame is several packets), not one per packet.
                    let mut received = received.ok();
                    let mut left = READ_BURST;
                    while let Some((len, from)) = received {
                        let _ = self.pc.handle_read(TaggedBytesMut {
                            now: Instant::now(),
                            transport: TransportContext {
                                local_addr: self.local_addr,
                                peer_addr: from,
                                ecn: None,
                                transport_protocol: TransportProtocol::UDP,
                            },
                            message: BytesMut::from(&buf[..len]),
                        });
                        left -= 1;
                        received = if left > 0 { socket.try_recv_from(&mut buf).ok() } else { None };
                    }
                }
            }
        }
    }

    fn extension_ids(&mut self, sender: RTCRtpSenderId) -> (Option<u8>, Option<u8>, Option<u8>) {
        let Some(mut s) = self.pc.rtp_sender(sender) else {
            return (None, None, None);
        };
        let params = s.get_parameters();
        let id = |uri: &str| {
            params
                .rtp_parameters
                .header_extensions
                .iter()
                .find(|h| h.uri == uri)
                .map(|h| h.id as u8)
        };
        let pt = params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| {
                c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_VP8)
                    || c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_OPUS)
            })
            .map(|c| c.payload_type);
        (pt, id(MID_URI), id(RID_URI))
    }

    /// `forced_keyframe`: the receiver asked for one; `keyframe`: that, or a synthetic
    /// stream's periodic one.
    fn send_video_frame(
        &mut self,
        now: Instant,
        forced_keyframe: bool,
        keyframe: bool,
        timestamp: u32,
    ) {
        let Some(sender) = self.video_sender else {
            return;
        };
        let (Some(pt), mid_id, rid_id) = self.extension_ids(sender) else {
            return;
        };
        let mid = self.video_mid.clone();
        let mut packets = Vec::new();
        for layer in &mut self.layers {
            let frame = match &mut layer.clip {
                Some((clip, next)) => {
                    // A clip keeps its own key frames; asked for one, it starts over.
                    if forced_keyframe {
                        *next = 0;
                    }
                    let frame = clip.frames[*next].to_vec();
                    *next = (*next + 1) % clip.frames.len();
                    frame
                }
                None => vp8_frame(layer, keyframe),
            };
            layer.picture_id = (layer.picture_id + 1) & 0x7fff;
            let chunks: Vec<&[u8]> = frame.chunks(MAX_PAYLOAD).collect();
            let count = chunks.len();
            for (i, chunk) in chunks.into_iter().enumerate() {
                let mut payload = BytesMut::with_capacity(chunk.len() + 4);
                // X=1, S on the first packet, PID 0; I=1; M=1 + 15-bit picture id
                payload.extend_from_slice(&[
                    0x80 | if i == 0 { 0x10 } else { 0 },
                    0x80,
                    0x80 | (layer.picture_id >> 8) as u8,
                    layer.picture_id as u8,
                ]);
                payload.extend_from_slice(chunk);
                let mut header = rtc::rtp::header::Header {
                    version: 2,
                    marker: i + 1 == count,
                    payload_type: pt,
                    sequence_number: layer.seq,
                    timestamp,
                    ssrc: layer.ssrc,
                    ..Default::default()
                };
                if let Some(id) = mid_id {
                    let _ = header.set_extension(id, Bytes::from(mid.clone().into_bytes()));
                }
                if let (Some(id), true) = (
                    rid_id,
                    self.kind == ClientKind::Publisher { simulcast: true },
                ) {
                    let _ =
                        header.set_extension(id, Bytes::from_static(layer.layer.rid().as_bytes()));
                }
                layer.seq = layer.seq.wrapping_add(1);
                packets.push(rtc::rtp::Packet {
                    header,
                    payload: payload.freeze(),
                });
            }
        }
        for packet in packets {
            let len = packet.payload.len() as u64;
            if let Some(mut s) = self.pc.rtp_sender(sender)
                && s.write_rtp(now, packet).is_ok()
            {
                self.counters.packets.fetch_add(1, Ordering::Relaxed);
                self.counters.video_packets.fetch_add(1, Ordering::Relaxed);
                self.counters.bytes.fetch_add(len, Ordering::Relaxed);
            }
        }
    }

    fn send_audio(&mut self, now: Instant, seq: u16, timestamp: u32) {
        let Some((sender, ssrc)) = self.audio_sender else {
            return;
        };
        let (Some(pt), mid_id, _) = self.extension_ids(sender) else {
            return;
        };
        let mut header = rtc::rtp::header::Header {
            version: 2,
            marker: false,
            payload_type: pt,
            sequence_number: seq,
            timestamp,
            ssrc,
            ..Default::default()
        };
        if let Some(id) = mid_id {
            let _ = header.set_extension(id, Bytes::from(self.audio_mid.clone().into_bytes()));
        }
        let packet = rtc::rtp::Packet {
            header,
            payload: Bytes::from_static(&[0xfc; 80]),
        };
        if let Some(mut s) = self.pc.rtp_sender(sender)
            && s.write_rtp(now, packet).is_ok()
        {
            self.counters.packets.fetch_add(1, Ordering::Relaxed);
            self.counters.audio_packets.fetch_add(1, Ordering::Relaxed);
            self.counters.bytes.fetch_add(80, Ordering::Relaxed);
        }
    }
}

/// A synthetic VP8 frame: a valid frame tag (and key frame header with the layer's size), then
/// filler up to the layer's frame size.
fn vp8_frame(layer: &SendLayer, keyframe: bool) -> Vec<u8> {
    let size = if keyframe {
        layer.frame_bytes * 3
    } else {
        layer.frame_bytes
    }
    .max(16);
    let mut frame = vec![0x5a; size];
    // frame tag: P bit (bit 0) 0 = key frame; show_frame bit 4
    frame[0] = if keyframe { 0x10 } else { 0x11 };
    frame[1] = 0;
    frame[2] = 0;
    if keyframe {
        frame[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        frame[6..8].copy_from_slice(&(layer.width as u16 & 0x3fff).to_le_bytes());
        frame[8..10].copy_from_slice(&(layer.height as u16 & 0x3fff).to_le_bytes());
    }
    frame
}

/// Per-SSRC sequence tracking of a viewer.
#[derive(Default)]
struct ReceiveState {
    last_seq: HashMap<u32, u16>,
    /// Payload types the answer maps to H.264 (the rest of the video is VP8).
    h264_payload_types: Vec<u8>,
}

impl ReceiveState {
    fn count(&mut self, counters: &ClientCounters, packet: &rtc::rtp::Packet) {
        counters.packets.fetch_add(1, Ordering::Relaxed);
        counters
            .bytes
            .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
        let video = packet.header.payload_type != 111;
        if video {
            counters.video_packets.fetch_add(1, Ordering::Relaxed);
            let h264 = self
                .h264_payload_types
                .contains(&packet.header.payload_type);
            let (keyframe, resolution) = if h264 {
                (
                    greenroom_media::h264::is_keyframe_start(&packet.payload),
                    greenroom_media::h264::keyframe_resolution(&packet.payload),
                )
            } else {
                (
                    greenroom_media::vp8::is_keyframe_start(&packet.payload),
                    greenroom_media::vp8::keyframe_resolution(&packet.payload),
                )
            };
            if keyframe {
                counters.keyframes.fetch_add(1, Ordering::Relaxed);
            }
            if let Some((w, _)) = resolution {
                counters.last_width.store(u64::from(w), Ordering::Relaxed);
            }
        } else {
            counters.audio_packets.fetch_add(1, Ordering::Relaxed);
            counters
                .audio_bytes
                .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
        }
        let seq = packet.header.sequence_number;
        if let Some(last) = self.last_seq.insert(packet.header.ssrc, seq) {
            let delta = seq.wrapping_sub(last);
            if delta != 1 && video {
                counters.video_seq_jumps.fetch_add(1, Ordering::Relaxed);
            }
            if delta > 1 && delta < 1000 {
                counters
                    .lost
                    .fetch_add(u64::from(delta - 1), Ordering::Relaxed);
            }
        }
    }
}

/// Payload types an SDP maps to H.264 (`a=rtpmap:<pt> H264/90000`).
fn h264_payload_types(sdp: &str) -> Vec<u8> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=rtpmap:"))
        .filter_map(|rest| {
            let (pt, codec) = rest.split_once(' ')?;
            codec
                .to_ascii_uppercase()
                .starts_with("H264/")
                .then(|| pt.parse().ok())
                .flatten()
        })
        .collect()
}

fn pc_error(e: rtc::shared::error::Error) -> RtcError {
    RtcError::PeerConnection(e.to_string())
}
