//! A worker: one OS thread with a current-thread runtime that owns UDP sockets and the peer
//! connections bound to them.
//!
//! The loop waits for whichever comes first: a datagram, a control command, a media packet
//! from another worker, or the earliest peer deadline. Every input is handed to the sans-IO peer
//! connection, then the peer is drained (datagrams out, events, inbound RTP/RTCP). A publisher's
//! RTP is forwarded to local viewers right there and posted once to every other worker that
//! hosts viewers of the stream.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::engine::{Directory, NO_WORKER, StreamRoute};
use crate::peer::{self, PeerOptions, PeerRole};
use crate::publisher::Publisher;
use crate::sdpfrag;
use crate::stun;
use crate::subscriber::Subscriber;
use crate::{
    Answer, IceServer, PatchOutcome, PublisherStats, RtcError, RtcEvent, SessionId,
    SubscribeOptions, ViewerStats,
};
use greenroom_media::Codec;
use greenroom_sfu::{Layer, LayerSet, TrackKind};

/// How long a peer may stay without a connection before it is dropped.
const CONNECT_DEADLINE: Duration = Duration::from_secs(30);
/// Datagrams read per wake-up before the loop looks at its other inputs.
const RECV_BATCH: usize = 64;

/// One RTP packet of a publisher, as every forwarder sees it.
#[derive(Debug)]
pub(crate) struct MediaPacket {
    pub stream: Arc<str>,
    pub epoch: u64,
    pub kind: TrackKind,
    pub codec: Codec,
    pub layer: Layer,
    /// Layers the publisher is sending right now.
    pub available: LayerSet,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Bytes,
}

/// A worker's share of a stream's statistics.
#[derive(Debug, Default)]
pub(crate) struct WorkerStats {
    pub live: bool,
    pub publisher: Option<PublisherStats>,
    pub viewers: Vec<ViewerStats>,
}

pub(crate) enum Command {
    Publish {
        session: SessionId,
        route: Arc<StreamRoute>,
        offer: String,
        reply: oneshot::Sender<Result<Answer, RtcError>>,
    },
    Subscribe {
        session: SessionId,
        route: Arc<StreamRoute>,
        offer: String,
        options: SubscribeOptions,
        reply: oneshot::Sender<Result<Answer, RtcError>>,
    },
    Patch {
        session: SessionId,
        if_match: Option<String>,
        frag: String,
        reply: oneshot::Sender<Result<PatchOutcome, RtcError>>,
    },
    Close {
        session: SessionId,
        reply: oneshot::Sender<Result<(), RtcError>>,
    },
    SetMaxLayer {
        session: SessionId,
        layer: Layer,
        reply: oneshot::Sender<Result<(), RtcError>>,
    },
    Stats {
        stream: Arc<str>,
        reply: oneshot::Sender<WorkerStats>,
    },
    /// A viewer on another worker needs a keyframe of this layer.
    KeyframeRequest { stream: Arc<str>, layer: Layer },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

pub(crate) enum Role {
    Publisher(Publisher),
    Subscriber(Subscriber),
}

pub(crate) struct Peer {
    pub session: SessionId,
    pub route: Arc<StreamRoute>,
    pub pc: RTCPeerConnection,
    pub ufrag: String,
    pub etag: String,
    pub created: Instant,
    pub connected: bool,
    pub next_timeout: Option<Instant>,
    pub addrs: Vec<(usize, SocketAddr)>,
    pub role: Role,
    pub remove: bool,
}

/// Viewers and publisher of one stream on this worker.
#[derive(Default)]
struct LocalStream {
    publisher: Option<u64>,
    subscribers: Vec<u64>,
}

pub(crate) struct Worker {
    index: usize,
    sockets: Vec<std::net::UdpSocket>,
    advertise: Vec<IpAddr>,
    ice_servers: Vec<IceServer>,
    directory: Arc<Directory>,
    events: broadcast::Sender<RtcEvent>,
    controls: Vec<mpsc::Sender<Command>>,
    medias: Vec<mpsc::Sender<Arc<MediaPacket>>>,
}

/// The running state of a worker (built inside its thread).
struct State {
    index: usize,
    sockets: Vec<UdpSocket>,
    local_addrs: Vec<SocketAddr>,
    advertise: Vec<IpAddr>,
    ice_servers: Vec<IceServer>,
    directory: Arc<Directory>,
    events: broadcast::Sender<RtcEvent>,
    controls: Vec<mpsc::Sender<Command>>,
    medias: Vec<mpsc::Sender<Arc<MediaPacket>>>,
    peers: HashMap<u64, Peer>,
    by_ufrag: HashMap<String, u64>,
    by_addr: HashMap<(usize, SocketAddr), u64>,
    by_session: HashMap<SessionId, u64>,
    streams: HashMap<Arc<str>, LocalStream>,
    next_key: u64,
    inbox: Vec<TaggedRTCMessage>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        sockets: Vec<std::net::UdpSocket>,
        advertise: Vec<IpAddr>,
        ice_servers: Vec<IceServer>,
        directory: Arc<Directory>,
        events: broadcast::Sender<RtcEvent>,
        controls: Vec<mpsc::Sender<Command>>,
        medias: Vec<mpsc::Sender<Arc<MediaPacket>>>,
    ) -> Self {
        Worker {
            index,
            sockets,
            advertise,
            ice_servers,
            directory,
            events,
            controls,
            medias,
        }
    }

    /// The worker thread's body.
    pub(crate) fn run(
        self,
        control: mpsc::Receiver<Command>,
        media: mpsc::Receiver<Arc<MediaPacket>>,
    ) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(error) => {
                tracing::error!(%error, worker = self.index, "cannot start worker runtime");
                return;
            }
        };
        runtime.block_on(async move {
            let mut sockets = Vec::with_capacity(self.sockets.len());
            let mut local_addrs = Vec::with_capacity(self.sockets.len());
            for socket in self.sockets {
                let addr = match socket.local_addr() {
                    Ok(addr) => addr,
                    Err(error) => {
                        tracing::error!(%error, "worker socket has no address");
                        return;
                    }
                };
                match UdpSocket::from_std(socket) {
                    Ok(s) => {
                        sockets.push(s);
                        local_addrs.push(addr);
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot register worker socket");
                        return;
                    }
                }
            }
            let mut state = State {
                index: self.index,
                sockets,
                local_addrs,
                advertise: self.advertise,
                ice_servers: self.ice_servers,
                directory: self.directory,
                events: self.events,
                controls: self.controls,
                medias: self.medias,
                peers: HashMap::new(),
                by_ufrag: HashMap::new(),
                by_addr: HashMap::new(),
                by_session: HashMap::new(),
                streams: HashMap::new(),
                next_key: 1,
                inbox: Vec::new(),
            };
            state.run(control, media).await;
        });
    }
}

impl State {
    async fn run(
        &mut self,
        mut control: mpsc::Receiver<Command>,
        mut media: mpsc::Receiver<Arc<MediaPacket>>,
    ) {
        let mut buf = vec![0u8; 2048];
        loop {
            let deadline = self
                .peers
                .values()
                .filter_map(|p| p.next_timeout)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let sleep = tokio::time::sleep_until(deadline.into());
            tokio::select! {
                biased;
                cmd = control.recv() => match cmd {
                    Some(Command::Shutdown { reply }) => {
                        self.close_all();
                        let _ = reply.send(());
                        return;
                    }
                    Some(cmd) => self.handle_command(cmd),
                    None => {
                        self.close_all();
                        return;
                    }
                },
                received = recv_any(&self.sockets, &mut buf) => {
                    if let Some((socket, len, from)) = received {
                        let now = Instant::now();
                        self.handle_datagram(socket, from, &buf[..len], now);
                        // Drain what else is queued on the sockets before looking elsewhere.
                        for _ in 0..RECV_BATCH {
                            let Some((socket, len, from)) = try_recv_any(&self.sockets, &mut buf) else {
                                break;
                            };
                            self.handle_datagram(socket, from, &buf[..len], Instant::now());
                        }
                    }
                }
                packet = media.recv() => {
                    if let Some(packet) = packet {
                        let now = Instant::now();
                        self.deliver(&packet, now);
                        while let Ok(packet) = media.try_recv() {
                            self.deliver(&packet, now);
                        }
                    }
                }
                _ = sleep => {}
            }
            self.handle_timeouts(Instant::now());
            self.reap();
        }
    }

    // ----- control -------------------------------------------------------------------------

    fn handle_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Publish {
                session,
                route,
                offer,
                reply,
            } => {
                let result = self.accept(session, route, &offer, None, now);
                let _ = reply.send(result);
            }
            Command::Subscribe {
                session,
                route,
                offer,
                options,
                reply,
            } => {
                let result = self.accept(session, route, &offer, Some(options), now);
                let _ = reply.send(result);
            }
            Command::Patch {
                session,
                if_match,
                frag,
                reply,
            } => {
                let _ = reply.send(self.patch(&session, if_match.as_deref(), &frag, now));
            }
            Command::Close { session, reply } => {
                let result = match self.by_session.get(&session).copied() {
                    Some(key) => {
                        self.remove_peer(key, "closed by request");
                        Ok(())
                    }
                    None => Err(RtcError::SessionNotFound { session: session.0 }),
                };
                let _ = reply.send(result);
            }
            Command::SetMaxLayer {
                session,
                layer,
                reply,
            } => {
                let result = match self
                    .by_session
                    .get(&session)
                    .and_then(|k| self.peers.get_mut(k))
                {
                    Some(Peer {
                        role: Role::Subscriber(sub),
                        ..
                    }) => {
                        sub.set_max_layer(layer);
                        Ok(())
                    }
                    _ => Err(RtcError::SessionNotFound { session: session.0 }),
                };
                let _ = reply.send(result);
            }
            Command::Stats { stream, reply } => {
                let _ = reply.send(self.stats(&stream, now));
            }
            Command::KeyframeRequest { stream, layer } => {
                self.handle_keyframe_request(&stream, layer, now);
            }
            Command::Shutdown { reply } => {
                self.close_all();
                let _ = reply.send(());
            }
        }
    }

    /// Negotiates a new session: `options` is `None` for a publisher.
    fn accept(
        &mut self,
        session: SessionId,
        route: Arc<StreamRoute>,
        offer: &str,
        options: Option<SubscribeOptions>,
        now: Instant,
    ) -> Result<Answer, RtcError> {
        let offer = RTCSessionDescription::offer(offer.to_owned())
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
        check_offer(&offer.sdp, options.is_some())?;
        let (ufrag, pwd) = peer::ice_credentials();
        let role = if options.is_some() {
            PeerRole::Sender
        } else {
            PeerRole::Receiver
        };
        let mut pc = peer::build(
            PeerOptions {
                ice_servers: &self.ice_servers,
                ufrag: ufrag.clone(),
                pwd,
                answering: true,
                role,
            },
            now,
        )
        .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
        let mut subscriber = match &options {
            Some(options) => Some(
                Subscriber::add_tracks(&mut pc, options.max_layer.unwrap_or(Layer::High))
                    .map_err(|e| RtcError::PeerConnection(e.to_string()))?,
            ),
            None => None,
        };
        pc.set_remote_description(now, offer)
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
        self.add_local_candidates(&mut pc)?;
        let answer = pc
            .create_answer(None)
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
        pc.set_local_description(now, answer)
            .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
        let sdp = pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| RtcError::PeerConnection("no local description".into()))?;
        tracing::trace!(%sdp, "local answer");
        check_answer(&sdp)?;
        if let Some(sub) = subscriber.as_mut() {
            sub.bind_payload_types(&mut pc);
        }
        let etag = peer::random_token(16);
        let key = self.next_key;
        self.next_key += 1;
        let role = match subscriber {
            Some(sub) => Role::Subscriber(sub),
            None => {
                route.epoch.fetch_add(1, Ordering::AcqRel);
                route.publisher_worker.store(self.index, Ordering::Release);
                Role::Publisher(Publisher::new(route.epoch.load(Ordering::Acquire)))
            }
        };
        let stream = route.stream.clone();
        let local = self.streams.entry(stream.clone()).or_default();
        match role {
            Role::Publisher(_) => local.publisher = Some(key),
            Role::Subscriber(_) => {
                local.subscribers.push(key);
                route
                    .subscriber_workers
                    .fetch_or(1 << self.index, Ordering::AcqRel);
            }
        }
        tracing::info!(
            stream = %stream,
            session = %session,
            worker = self.index,
            kind = if matches!(role, Role::Publisher(_)) { "publisher" } else { "viewer" },
            "session negotiated"
        );
        self.by_ufrag.insert(ufrag.clone(), key);
        self.by_session.insert(session.clone(), key);
        self.peers.insert(
            key,
            Peer {
                session: session.clone(),
                route,
                pc,
                ufrag,
                etag: etag.clone(),
                created: now,
                connected: false,
                next_timeout: Some(now),
                addrs: Vec::new(),
                role,
                remove: false,
            },
        );
        self.drive(key, now);
        if let Some(Peer {
            role: Role::Subscriber(_),
            route,
            ..
        }) = self.peers.get(&key)
        {
            // A joining viewer wants a keyframe as soon as media flows.
            let stream = route.stream.clone();
            self.request_keyframe(&stream, Layer::Low, now);
        }
        Ok(Answer { session, sdp, etag })
    }

    fn add_local_candidates(&self, pc: &mut RTCPeerConnection) -> Result<(), RtcError> {
        for addr in &self.local_addrs {
            let ips: Vec<IpAddr> = if addr.ip().is_unspecified() {
                self.advertise.clone()
            } else {
                vec![addr.ip()]
            };
            for ip in ips {
                let candidate = CandidateHostConfig {
                    base_config: CandidateConfig {
                        network: "udp".to_owned(),
                        address: ip.to_string(),
                        port: addr.port(),
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
                pc.add_local_candidate(init)
                    .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
            }
        }
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
        Ok(())
    }

    fn patch(
        &mut self,
        session: &SessionId,
        if_match: Option<&str>,
        body: &str,
        now: Instant,
    ) -> Result<PatchOutcome, RtcError> {
        let key = *self
            .by_session
            .get(session)
            .ok_or_else(|| RtcError::SessionNotFound {
                session: session.0.clone(),
            })?;
        let frag = sdpfrag::parse(body).map_err(RtcError::InvalidSdp)?;
        let peer = self
            .peers
            .get_mut(&key)
            .ok_or_else(|| RtcError::SessionNotFound {
                session: session.0.clone(),
            })?;
        let current_remote_ufrag = peer
            .pc
            .remote_description()
            .and_then(|d| sdp_attribute(&d.sdp, "a=ice-ufrag:"));
        let restart = matches!((&frag.ufrag, &current_remote_ufrag), (Some(new), Some(old)) if new != old);
        if let Some(tag) = if_match {
            let tag = tag.trim().trim_start_matches("W/").trim_matches('"');
            if tag != "*" && tag != peer.etag {
                return Err(RtcError::PreconditionFailed {
                    session: session.0.clone(),
                });
            }
        }
        let outcome = if restart {
            let (Some(ufrag), Some(pwd)) = (&frag.ufrag, &frag.pwd) else {
                return Err(RtcError::InvalidSdp(
                    "ICE restart needs both a=ice-ufrag and a=ice-pwd".into(),
                ));
            };
            let previous = peer
                .pc
                .remote_description()
                .map(|d| d.sdp.clone())
                .ok_or_else(|| RtcError::PeerConnection("no remote description".into()))?;
            let offer = RTCSessionDescription::offer(sdpfrag::replace_credentials(
                &previous, ufrag, pwd,
            ))
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
            peer.pc
                .set_remote_description(now, offer)
                .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
            let answer = peer
                .pc
                .create_answer(None)
                .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
            peer.pc
                .set_local_description(now, answer)
                .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
            let local = peer
                .pc
                .local_description()
                .map(|d| d.sdp)
                .ok_or_else(|| RtcError::PeerConnection("no local description".into()))?;
            peer.etag = peer::random_token(16);
            if let Some(new_ufrag) = sdp_attribute(&local, "a=ice-ufrag:") {
                if new_ufrag != peer.ufrag {
                    self.by_ufrag.remove(&peer.ufrag);
                    peer.ufrag = new_ufrag.clone();
                    self.by_ufrag.insert(new_ufrag, key);
                }
            }
            tracing::info!(session = %session, "ICE restarted");
            PatchOutcome::Restarted {
                sdpfrag: sdpfrag::answer_fragment(&local),
                etag: peer.etag.clone(),
            }
        } else {
            PatchOutcome::Trickled {
                etag: peer.etag.clone(),
            }
        };
        let peer = self
            .peers
            .get_mut(&key)
            .ok_or_else(|| RtcError::SessionNotFound {
                session: session.0.clone(),
            })?;
        for (mid, candidate) in frag.candidates {
            let init = RTCIceCandidateInit {
                candidate,
                sdp_mid: mid,
                sdp_mline_index: Some(0),
                username_fragment: frag.ufrag.clone(),
                ..Default::default()
            };
            if let Err(error) = peer.pc.add_remote_candidate(init) {
                tracing::debug!(session = %session, %error, "remote candidate ignored");
            }
        }
        self.drive(key, now);
        Ok(outcome)
    }

    fn stats(&self, stream: &str, now: Instant) -> WorkerStats {
        let mut out = WorkerStats::default();
        let Some(local) = self.streams.get(stream) else {
            return out;
        };
        if let Some(peer) = local.publisher.and_then(|k| self.peers.get(&k)) {
            if let Role::Publisher(publisher) = &peer.role {
                out.live = publisher.is_live();
                out.publisher = Some(publisher.stats(
                    &peer.session,
                    now.duration_since(peer.created),
                    now,
                ));
            }
        }
        for key in &local.subscribers {
            if let Some(Peer {
                role: Role::Subscriber(sub),
                session,
                ..
            }) = self.peers.get(key)
            {
                out.viewers.push(sub.stats(session));
            }
        }
        out
    }

    // ----- network -------------------------------------------------------------------------

    fn handle_datagram(&mut self, socket: usize, from: SocketAddr, data: &[u8], now: Instant) {
        tracing::trace!(%from, len = data.len(), stun = stun::is_stun(data), ufrag = ?stun::local_ufrag(data), "datagram");
        let key = match self.by_addr.get(&(socket, from)) {
            Some(key) => *key,
            None => {
                let Some(key) = stun::local_ufrag(data).and_then(|u| self.by_ufrag.get(u)) else {
                    return;
                };
                let key = *key;
                self.by_addr.insert((socket, from), key);
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.addrs.push((socket, from));
                }
                key
            }
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            self.by_addr.remove(&(socket, from));
            return;
        };
        let result = peer.pc.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.local_addrs[socket],
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        });
        if let Err(error) = result {
            tracing::trace!(session = %peer.session, %error, "datagram rejected");
        }
        self.drive(key, now);
    }

    fn send(&self, msg: &TaggedBytesMut) {
        let socket = if self.sockets.len() == 1 {
            0
        } else {
            match self
                .local_addrs
                .iter()
                .position(|a| *a == msg.transport.local_addr)
            {
                Some(i) => i,
                None => return,
            }
        };
        if let Err(error) = self.sockets[socket].try_send_to(&msg.message, msg.transport.peer_addr)
        {
            tracing::trace!(%error, to = %msg.transport.peer_addr, "datagram dropped");
        }
    }

    /// Flushes a peer's outgoing datagrams only (the cheap path after forwarding a packet).
    fn flush(&mut self, key: u64) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        while let Some(msg) = peer.pc.poll_write() {
            let socket = if self.sockets.len() == 1 {
                0
            } else {
                match self
                    .local_addrs
                    .iter()
                    .position(|a| *a == msg.transport.local_addr)
                {
                    Some(i) => i,
                    None => continue,
                }
            };
            let _ = self.sockets[socket].try_send_to(&msg.message, msg.transport.peer_addr);
        }
        peer.next_timeout = peer.pc.poll_timeout();
    }

    /// Drains a peer: datagrams out, events, inbound messages; then acts on the messages.
    fn drive(&mut self, key: u64, now: Instant) {
        let mut inbox = std::mem::take(&mut self.inbox);
        let mut live_changed = false;
        {
            let Some(peer) = self.peers.get_mut(&key) else {
                self.inbox = inbox;
                return;
            };
            while let Some(msg) = peer.pc.poll_write() {
                let socket = if self.sockets.len() == 1 {
                    Some(0)
                } else {
                    self.local_addrs
                        .iter()
                        .position(|a| *a == msg.transport.local_addr)
                };
                if let Some(socket) = socket {
                    if let Err(error) = self.sockets[socket].try_send_to(&msg.message, msg.transport.peer_addr) {
                        tracing::trace!(%error, "send failed");
                    }
                }
            }
            while let Some(event) = peer.pc.poll_event() {
                match event {
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                        tracing::debug!(session = %peer.session, %state, "connection state");
                        match state {
                            RTCPeerConnectionState::Connected => peer.connected = true,
                            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                                peer.remove = true
                            }
                            _ => {}
                        }
                    }
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        if let Role::Publisher(publisher) = &mut peer.role {
                            publisher.handle_track_open(&mut peer.pc, &init);
                        }
                    }
                    _ => {}
                }
            }
            while let Some(msg) = peer.pc.poll_read() {
                inbox.push(msg);
            }
        }
        for msg in inbox.drain(..) {
            match msg.message {
                RTCMessage::RtpPacket(track_id, packet) => {
                    live_changed |= self.handle_publisher_rtp(key, &track_id, packet, msg.now);
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    if peer::is_keyframe_request(&packets) {
                        self.handle_viewer_pli(key, now);
                    }
                }
                _ => {}
            }
        }
        self.inbox = inbox;
        if let Some(peer) = self.peers.get_mut(&key) {
            // Writes produced while handling the messages (PLIs, reports) go out now.
            while let Some(msg) = peer.pc.poll_write() {
                let socket = if self.sockets.len() == 1 {
                    Some(0)
                } else {
                    self.local_addrs
                        .iter()
                        .position(|a| *a == msg.transport.local_addr)
                };
                if let Some(socket) = socket {
                    let _ = self.sockets[socket].try_send_to(&msg.message, msg.transport.peer_addr);
                }
            }
            peer.next_timeout = peer.pc.poll_timeout();
            if live_changed {
                let stream = peer.route.stream.to_string();
                tracing::info!(stream = %stream, session = %peer.session, "stream is live");
                let _ = self.events.send(RtcEvent::Live { stream });
            }
        }
    }

    fn handle_timeouts(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| p.next_timeout.is_some_and(|t| t <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            if let Some(peer) = self.peers.get_mut(&key) {
                if let Err(error) = peer.pc.handle_timeout(now) {
                    tracing::debug!(session = %peer.session, %error, "timeout handling failed");
                }
                if !peer.connected && now.duration_since(peer.created) > CONNECT_DEADLINE {
                    peer.remove = true;
                }
            }
            self.drive(key, now);
        }
    }

    // ----- media ---------------------------------------------------------------------------

    /// Returns true when this packet made the stream live.
    fn handle_publisher_rtp(
        &mut self,
        key: u64,
        track_id: &str,
        packet: rtc::rtp::Packet,
        now: Instant,
    ) -> bool {
        let Some(peer) = self.peers.get_mut(&key) else {
            return false;
        };
        let Role::Publisher(publisher) = &mut peer.role else {
            return false;
        };
        let Some((media, became_live)) =
            publisher.handle_rtp(&mut peer.pc, &peer.route.stream, track_id, packet, now)
        else {
            return false;
        };
        let media = Arc::new(media);
        let mask = peer.route.subscriber_workers.load(Ordering::Acquire);
        for (worker, tx) in self.medias.iter().enumerate() {
            if worker != self.index && mask & (1 << worker) != 0 {
                // A full queue means that worker is overloaded: dropping is what a congested
                // link would do, and the viewers' NACK/PLI machinery recovers.
                let _ = tx.try_send(media.clone());
            }
        }
        if mask & (1 << self.index) != 0 {
            self.deliver(&media, now);
        }
        became_live
    }

    /// Hands one publisher packet to every local viewer of its stream.
    fn deliver(&mut self, media: &MediaPacket, now: Instant) {
        let Some(local) = self.streams.get_mut(&media.stream) else {
            return;
        };
        let subscribers = std::mem::take(&mut local.subscribers);
        let info = greenroom_sfu::PacketInfo::parse(
            media.codec,
            media.layer,
            media.sequence_number,
            media.timestamp,
            media.marker,
            &media.payload,
        );
        let mut wanted = LayerSet::new();
        for key in &subscribers {
            let Some(peer) = self.peers.get_mut(key) else {
                continue;
            };
            let Role::Subscriber(sub) = &mut peer.role else {
                continue;
            };
            if !peer.connected {
                continue;
            }
            let (written, wants) = sub.forward(&mut peer.pc, media, &info, now);
            if let Some(layer) = wants {
                wanted.insert(layer);
            }
            if written {
                self.flush(*key);
            }
        }
        if let Some(local) = self.streams.get_mut(&media.stream) {
            local.subscribers = subscribers;
        }
        for layer in wanted.iter() {
            self.request_keyframe(&media.stream, layer, now);
        }
    }

    fn handle_viewer_pli(&mut self, key: u64, now: Instant) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Role::Subscriber(sub) = &mut peer.role else {
            return;
        };
        let layer = sub.handle_keyframe_request();
        let stream = peer.route.stream.clone();
        if let Some(layer) = layer {
            self.request_keyframe(&stream, layer, now);
        }
    }

    fn request_keyframe(&mut self, stream: &Arc<str>, layer: Layer, now: Instant) {
        let worker = self
            .directory
            .route(stream)
            .publisher_worker
            .load(Ordering::Acquire);
        if worker == NO_WORKER {
            return;
        }
        if worker == self.index {
            self.handle_keyframe_request(stream, layer, now);
        } else if let Some(tx) = self.controls.get(worker) {
            let _ = tx.try_send(Command::KeyframeRequest {
                stream: stream.clone(),
                layer,
            });
        }
    }

    fn handle_keyframe_request(&mut self, stream: &str, layer: Layer, now: Instant) {
        let Some(key) = self.streams.get(stream).and_then(|l| l.publisher) else {
            return;
        };
        if let Some(Peer {
            role: Role::Publisher(publisher),
            pc,
            ..
        }) = self.peers.get_mut(&key)
        {
            publisher.request_keyframe(pc, layer, now);
        }
        self.flush(key);
    }

    // ----- teardown ------------------------------------------------------------------------

    fn reap(&mut self) {
        let doomed: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| p.remove)
            .map(|(k, _)| *k)
            .collect();
        for key in doomed {
            self.remove_peer(key, "connection closed or failed");
        }
    }

    fn remove_peer(&mut self, key: u64, why: &str) {
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        let _ = peer.pc.close();
        while let Some(msg) = peer.pc.poll_write() {
            self.send(&msg);
        }
        self.by_ufrag.remove(&peer.ufrag);
        self.by_session.remove(&peer.session);
        for addr in &peer.addrs {
            self.by_addr.remove(addr);
        }
        self.directory.remove_session(&peer.session);
        let stream = peer.route.stream.clone();
        let mut went_idle = false;
        if let Some(local) = self.streams.get_mut(&stream) {
            match &peer.role {
                Role::Publisher(publisher) => {
                    if local.publisher == Some(key) {
                        local.publisher = None;
                        let _ = peer.route.publisher_worker.compare_exchange(
                            self.index,
                            NO_WORKER,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                        went_idle = true;
                        let _ = publisher;
                    }
                }
                Role::Subscriber(_) => {
                    local.subscribers.retain(|k| *k != key);
                    if local.subscribers.is_empty() {
                        peer.route
                            .subscriber_workers
                            .fetch_and(!(1 << self.index), Ordering::AcqRel);
                    }
                }
            }
            if local.publisher.is_none() && local.subscribers.is_empty() {
                self.streams.remove(&stream);
            }
        }
        tracing::info!(stream = %stream, session = %peer.session, why, "session ended");
        if went_idle {
            let _ = self.events.send(RtcEvent::Idle {
                stream: stream.to_string(),
            });
        }
    }

    fn close_all(&mut self) {
        let keys: Vec<u64> = self.peers.keys().copied().collect();
        for key in keys {
            self.remove_peer(key, "server shutting down");
        }
    }
}

/// Waits for a datagram on any of the sockets.
async fn recv_any(sockets: &[UdpSocket], buf: &mut [u8]) -> Option<(usize, usize, SocketAddr)> {
    if sockets.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        for (i, socket) in sockets.iter().enumerate() {
            let mut read = tokio::io::ReadBuf::new(buf);
            match socket.poll_recv_from(cx, &mut read) {
                Poll::Ready(Ok(from)) => return Poll::Ready(Some((i, read.filled().len(), from))),
                // ICMP errors surface as read errors on UDP: nothing to do but go on.
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}

fn try_recv_any(sockets: &[UdpSocket], buf: &mut [u8]) -> Option<(usize, usize, SocketAddr)> {
    for (i, socket) in sockets.iter().enumerate() {
        if let Ok((len, from)) = socket.try_recv_from(buf) {
            return Some((i, len, from));
        }
    }
    None
}

/// The first value of an SDP attribute line.
pub(crate) fn sdp_attribute(sdp: &str, prefix: &str) -> Option<String> {
    sdp.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::to_owned)
}

/// Rejects offers that cannot work before any state is created.
fn check_offer(sdp: &str, viewer: bool) -> Result<(), RtcError> {
    let media: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).collect();
    if media.is_empty() {
        return Err(RtcError::InvalidSdp("the offer has no media section".into()));
    }
    if !media
        .iter()
        .any(|m| m.starts_with("m=audio") || m.starts_with("m=video"))
    {
        return Err(RtcError::UnsupportedMedia(
            "the offer has neither audio nor video".into(),
        ));
    }
    let _ = viewer;
    Ok(())
}

/// An answer that rejects every media section means nothing can flow.
fn check_answer(sdp: &str) -> Result<(), RtcError> {
    let accepted = sdp
        .lines()
        .filter(|l| l.starts_with("m=audio") || l.starts_with("m=video"))
        .any(|l| l.split_whitespace().nth(1).is_some_and(|port| port != "0"));
    if accepted {
        Ok(())
    } else {
        Err(RtcError::UnsupportedMedia(
            "no offered codec is supported (greenroom takes Opus, VP8 and H.264)".into(),
        ))
    }
}
