//! A worker: one OS thread with a current-thread runtime that owns UDP sockets and the peer
//! connections bound to them.
//!
//! The loop waits for whichever comes first: a datagram, a control command, a media packet
//! from another worker, or the earliest peer deadline. Every input is handed to the sans-IO peer
//! connection, then the peer is drained (datagrams out, events, inbound RTP/RTCP); a viewer
//! detached from its connection after the handshake ([`crate::direct::ice`]) is served by the
//! worker itself (STUN answered, SRTCP read, liveness timed). A publisher's
//! RTP is forwarded to local viewers right there and posted once to every other worker that
//! hosts viewers of the stream.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::crypto::RTCCryptoProvider;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::direct::ice::Responder;
use crate::engine::{Directory, StreamRoute};
use crate::metrics::Counters;
use crate::peer::{self};
use crate::publisher::Publisher;
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
    /// Wire bitrate of the video layers `[q, h, f]` and of the audio, bits per second
    /// (0: not measured).
    pub rates: [u64; 4],
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
    ExtendSession {
        session: SessionId,
        valid_until: Option<Instant>,
        reply: oneshot::Sender<Result<(), RtcError>>,
    },
    Stats {
        stream: Arc<str>,
        reply: oneshot::Sender<WorkerStats>,
    },
    /// A viewer on another worker needs a keyframe of this layer.
    KeyframeRequest {
        stream: Arc<str>,
        layer: Layer,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

// One role per peer, stored in place and never moved per packet: size differences are fine.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Role {
    Publisher(Publisher),
    Subscriber(Subscriber),
}

mod detached;
mod media;
mod net;
mod session;

use net::Net;
pub(crate) use session::sdp_attribute;

pub(crate) struct Peer {
    pub session: SessionId,
    pub route: Arc<StreamRoute>,
    /// The webrtc-rs connection; `None` once a viewer is detached from it (see
    /// [`crate::direct::ice`]). Boxed so a detached viewer does not keep its 8.5 KiB.
    pub pc: Option<Box<RTCPeerConnection>>,
    /// A detached viewer's ICE, STUN and liveness.
    pub detached: Option<Responder>,
    /// The local ICE credentials (the ufrag routes STUN; the password is handed to the
    /// [`Responder`] when the viewer is detached).
    pub ufrag: String,
    pub pwd: String,
    pub etag: String,
    pub created: Instant,
    pub connected: bool,
    pub next_timeout: Option<Instant>,
    /// A viewer whose access runs out is closed then (unless extended).
    pub valid_until: Option<Instant>,
    pub addrs: Vec<(usize, SocketAddr)>,
    pub role: Role,
    /// Queued for removal at the end of this turn of the loop (it is in `State::doomed`).
    pub remove: bool,
    /// The earliest deadline of this peer in the worker's timer queue.
    pub scheduled: Option<Instant>,
}

impl Peer {
    /// A viewer's direct media path sends where the connection last sent DTLS or RTCP.
    fn note_route(&mut self, route: Option<(usize, SocketAddr)>) {
        if let (Some(route), Role::Subscriber(sub)) = (route, &mut self.role) {
            sub.set_route(route);
        }
    }

    /// When this peer next needs the worker: its own timers, the end of its access, or the
    /// end of the time it has to connect.
    fn deadline(&self) -> Option<Instant> {
        let connect = (!self.connected).then(|| self.created + CONNECT_DEADLINE);
        [self.next_timeout, self.valid_until, connect]
            .into_iter()
            .flatten()
            .min()
    }
}

/// The worker's timers: one entry per peer deadline, earliest first. An entry whose peer has
/// since scheduled an earlier deadline, or is gone, is stale and skipped when it comes up;
/// a later deadline needs no entry of its own until the earlier one has fired, so the
/// per-packet path pushes nothing in the common case.
#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Timers {
    fn schedule(&mut self, key: u64, peer: &mut Peer) {
        let Some(deadline) = peer.deadline() else {
            return;
        };
        if peer.scheduled.is_none_or(|queued| deadline < queued) {
            peer.scheduled = Some(deadline);
            self.heap.push(Reverse((deadline, key)));
        }
    }

    fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next entry due at `now`.
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, u64)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }
}

/// Viewers and publisher of one stream on this worker.
#[derive(Default)]
struct LocalStream {
    /// The stream's shared routing facts (where its publisher is).
    route: Option<Arc<StreamRoute>>,
    publisher: Option<u64>,
    subscribers: Vec<u64>,
}

pub(crate) struct Worker {
    index: usize,
    /// Each socket and the address it stands for (its own, or an advertised one for a
    /// wildcard socket).
    sockets: Vec<(std::net::UdpSocket, IpAddr)>,
    advertise: Vec<IpAddr>,
    ice_servers: Vec<IceServer>,
    directory: Arc<Directory>,
    events: broadcast::Sender<RtcEvent>,
    controls: Vec<mpsc::Sender<Command>>,
    medias: Vec<mpsc::Sender<Arc<MediaPacket>>>,
    counters: Arc<Counters>,
    detach_viewers: bool,
}

/// The running state of a worker (built inside its thread).
struct State {
    index: usize,
    net: Net,
    advertise: Vec<IpAddr>,
    ice_servers: Vec<IceServer>,
    directory: Arc<Directory>,
    events: broadcast::Sender<RtcEvent>,
    controls: Vec<mpsc::Sender<Command>>,
    medias: Vec<mpsc::Sender<Arc<MediaPacket>>>,
    counters: Arc<Counters>,
    /// Authenticates detached viewers' STUN.
    crypto: Arc<dyn RTCCryptoProvider>,
    /// Whether viewers are detached from webrtc-rs after their handshake.
    detach_viewers: bool,
    /// Boxed: a peer is some 11 KiB, and a map of them inline would carry up to as many again
    /// in empty slots.
    peers: HashMap<u64, Box<Peer>>,
    by_ufrag: HashMap<String, u64>,
    by_addr: HashMap<(usize, SocketAddr), u64>,
    by_session: HashMap<SessionId, u64>,
    streams: HashMap<Arc<str>, LocalStream>,
    next_key: u64,
    inbox: Vec<TaggedRTCMessage>,
    timers: Timers,
    /// Peers to remove at the end of this turn of the loop.
    doomed: Vec<u64>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        sockets: Vec<(std::net::UdpSocket, IpAddr)>,
        advertise: Vec<IpAddr>,
        ice_servers: Vec<IceServer>,
        directory: Arc<Directory>,
        events: broadcast::Sender<RtcEvent>,
        controls: Vec<mpsc::Sender<Command>>,
        medias: Vec<mpsc::Sender<Arc<MediaPacket>>>,
        counters: Arc<Counters>,
        detach_viewers: bool,
    ) -> Self {
        Worker {
            counters,
            detach_viewers,
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
        let crypto = match rtc::crypto::default_provider() {
            Ok(crypto) => crypto,
            Err(error) => {
                tracing::error!(%error, worker = self.index, "no cryptographic provider");
                return;
            }
        };
        runtime.block_on(async move {
            let mut sockets = Vec::with_capacity(self.sockets.len());
            let mut local_addrs = Vec::with_capacity(self.sockets.len());
            for (socket, stands_for) in self.sockets {
                let addr = match socket.local_addr() {
                    Ok(addr) => SocketAddr::new(stands_for, addr.port()),
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
                net: Net::new(sockets, local_addrs),
                advertise: self.advertise,
                ice_servers: self.ice_servers,
                directory: self.directory,
                events: self.events,
                controls: self.controls,
                medias: self.medias,
                counters: self.counters,
                crypto,
                detach_viewers: self.detach_viewers,
                peers: HashMap::new(),
                by_ufrag: HashMap::new(),
                by_addr: HashMap::new(),
                by_session: HashMap::new(),
                streams: HashMap::new(),
                next_key: 1,
                inbox: Vec::new(),
                timers: Timers::default(),
                doomed: Vec::new(),
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
                .timers
                .next()
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
                received = self.net.recv_any(&mut buf) => {
                    if let Some((socket, len, from)) = received {
                        let now = Instant::now();
                        self.handle_datagram(socket, from, &buf[..len], now);
                        // Drain what else is queued on the sockets before looking elsewhere.
                        for _ in 0..RECV_BATCH {
                            let Some((socket, len, from)) = self.net.try_recv_any(&mut buf) else {
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
                    .map(Box::as_mut)
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
            Command::ExtendSession {
                session,
                valid_until,
                reply,
            } => {
                let key = self.by_session.get(&session).copied();
                let result = match key.and_then(|k| Some((k, self.peers.get_mut(&k)?.as_mut()))) {
                    Some((
                        key,
                        peer @ Peer {
                            role: Role::Subscriber(_),
                            ..
                        },
                    )) => {
                        peer.valid_until = valid_until;
                        // A later end needs nothing: the earlier entry finds the new value.
                        self.timers.schedule(key, peer);
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
        let Some(pc) = peer.pc.as_deref_mut() else {
            self.handle_detached(key, socket, from, data, now);
            return;
        };
        let result = pc.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.net.local_addrs[socket],
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

    /// Flushes a peer's outgoing datagrams only (the cheap path after forwarding a packet).
    fn flush(&mut self, key: u64) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(pc) = peer.pc.as_deref_mut() else {
            return;
        };
        let route = self.net.send_pending(pc);
        peer.next_timeout = pc.poll_timeout();
        peer.note_route(route);
        self.timers.schedule(key, peer);
    }

    /// Queues what forwarding one packet to a viewer produced; [`Net::send_queued`] sends it.
    /// Writing RTP moves none of the connection's timers earlier (reports, keepalives and
    /// retransmission timers run on their own clocks), so the deadline is not polled here.
    fn queue_forwarded(&mut self, key: u64) {
        if let Some(peer) = self.peers.get_mut(&key)
            && let Some(pc) = peer.pc.as_deref_mut()
        {
            let route = self.net.queue_pending(pc);
            peer.note_route(route);
        }
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
            let Peer {
                pc,
                session,
                connected,
                remove,
                role,
                ..
            } = peer.as_mut();
            if let Some(pc) = pc.as_deref_mut() {
                let route = self.net.send_pending(pc);
                if let (Some(route), Role::Subscriber(sub)) = (route, &mut *role) {
                    sub.set_route(route);
                }
                while let Some(event) = pc.poll_event() {
                    match event {
                        RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                            tracing::debug!(session = %session, %state, "connection state");
                            match state {
                                RTCPeerConnectionState::Connected => *connected = true,
                                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                                    if !std::mem::replace(remove, true) =>
                                {
                                    self.doomed.push(key);
                                }
                                _ => {}
                            }
                        }
                        RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                            if let Role::Publisher(publisher) = &mut *role {
                                publisher.handle_track_open(pc, &init);
                            }
                        }
                        _ => {}
                    }
                }
                while let Some(msg) = pc.poll_read() {
                    inbox.push(msg);
                }
            }
        }
        for msg in inbox.drain(..) {
            match msg.message {
                RTCMessage::RtpPacket(track_id, packet) => {
                    live_changed |= self.handle_publisher_rtp(key, &track_id, packet, msg.now);
                }
                RTCMessage::RtcpPacket(_, packets) if peer::is_keyframe_request(&packets) => {
                    self.handle_viewer_pli(key, now);
                }
                _ => {}
            }
        }
        self.inbox = inbox;
        self.handle_viewer_feedback(key, now);
        let mut attached_viewer = false;
        if let Some(peer) = self.peers.get_mut(&key) {
            attached_viewer = peer.pc.is_some() && matches!(peer.role, Role::Subscriber(_));
            // Writes produced while handling the messages (PLIs, reports) go out now.
            match peer.pc.as_deref_mut() {
                Some(pc) => {
                    let route = self.net.send_pending(pc);
                    peer.next_timeout = pc.poll_timeout();
                    peer.note_route(route);
                }
                None => peer.next_timeout = peer.detached.as_ref().map(Responder::deadline),
            }
            self.timers.schedule(key, peer);
            if live_changed {
                let stream = peer.route.stream.to_string();
                tracing::info!(stream = %stream, session = %peer.session, "stream is live");
                let _ = self.events.send(RtcEvent::Live { stream });
            }
        }
        if attached_viewer {
            self.detach(key, now);
        }
    }

    fn handle_timeouts(&mut self, now: Instant) {
        while let Some((at, key)) = self.timers.pop_due(now) {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if peer.scheduled != Some(at) {
                continue;
            }
            peer.scheduled = None;
            if peer.valid_until.is_some_and(|t| t <= now) {
                self.remove_peer(key, "the viewer's access ran out");
                continue;
            }
            if !peer.connected && now.duration_since(peer.created) > CONNECT_DEADLINE {
                self.remove_peer(key, "no connection within the deadline");
                continue;
            }
            if peer.next_timeout.is_some_and(|t| t <= now) {
                match peer.pc.as_deref_mut() {
                    Some(pc) => {
                        if let Err(error) = pc.handle_timeout(now) {
                            tracing::debug!(session = %peer.session, %error, "timeout handling failed");
                        }
                    }
                    None => {
                        if peer.detached.as_ref().is_some_and(|d| d.deadline() <= now) {
                            self.remove_peer(key, "nothing heard from the viewer");
                            continue;
                        }
                    }
                }
            }
            // Drains the peer and schedules its next deadline.
            self.drive(key, now);
        }
    }
}
