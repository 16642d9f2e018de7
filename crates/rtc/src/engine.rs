//! The engine: workers, the session directory and stream routes.
//!
//! Control calls (publish, subscribe, patch, close, stats) go through the directory, which maps a
//! session to its worker, then to that worker as a [`Command`]. The directory lock is held only
//! for map look-ups, never across an `.await`, and never on the media path: a publisher's worker
//! finds the workers that host viewers of its stream with one atomic load on [`StreamRoute`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::metrics::{Counters, MetricsSnapshot};
use crate::worker::{Command, MediaPacket, Worker, WorkerStats};
use crate::{
    Answer, IceServer, PatchOutcome, RtcConfig, RtcError, RtcEvent, SessionId, StreamStats,
    SubscribeOptions,
};
use greenroom_sfu::Layer;

/// No worker hosts the stream's publisher.
pub(crate) const NO_WORKER: usize = usize::MAX;
/// The stream's publisher is a [`crate::LocalPublisher`] (RTMP, RTSP), not on a worker.
pub(crate) const LOCAL_PUBLISHER: usize = usize::MAX - 1;

/// Routing facts about one stream shared by the workers.
#[derive(Debug)]
pub(crate) struct StreamRoute {
    pub stream: Arc<str>,
    /// Worker hosting the publisher (or [`NO_WORKER`]): where keyframe requests go.
    pub publisher_worker: AtomicUsize,
    /// Bit `i` set: worker `i` hosts at least one viewer of this stream.
    pub subscriber_workers: AtomicU64,
    /// Bumped for each new publisher session; forwarders reset when it changes.
    pub epoch: AtomicU64,
    /// In-process subscribers (HLS, recording).
    pub taps: crate::tap::Taps,
}

#[derive(Debug, Clone)]
pub(crate) struct SessionEntry {
    pub stream: Arc<str>,
    pub worker: usize,
    pub publisher: bool,
}

/// Sessions and routes, guarded by one mutex used only on the control path.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    inner: Mutex<DirectoryInner>,
}

#[derive(Debug, Default)]
struct DirectoryInner {
    sessions: HashMap<SessionId, SessionEntry>,
    routes: HashMap<Arc<str>, Arc<StreamRoute>>,
    /// Stream -> its publisher session (reserved before negotiation completes).
    publishers: HashMap<Arc<str>, SessionId>,
    /// Streams whose publisher is local (RTMP, RTSP).
    locals: HashMap<Arc<str>, crate::local::LocalEntry>,
}

impl Directory {
    fn lock(&self) -> MutexGuard<'_, DirectoryInner> {
        // A poisoned lock only means a panic elsewhere; the maps are still consistent
        // because every critical section is a handful of map operations.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn route(&self, stream: &str) -> Arc<StreamRoute> {
        let mut inner = self.lock();
        if let Some(route) = inner.routes.get(stream) {
            return route.clone();
        }
        let key: Arc<str> = Arc::from(stream);
        let route = Arc::new(StreamRoute {
            stream: key.clone(),
            publisher_worker: AtomicUsize::new(NO_WORKER),
            subscriber_workers: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            taps: crate::tap::Taps::default(),
        });
        inner.routes.insert(key, route.clone());
        route
    }

    fn reserve_publisher(
        &self,
        stream: &str,
        session: &SessionId,
        worker: usize,
    ) -> Result<Arc<StreamRoute>, RtcError> {
        let route = self.route(stream);
        let mut inner = self.lock();
        if inner.publishers.contains_key(stream) {
            return Err(RtcError::StreamBusy {
                stream: stream.to_owned(),
            });
        }
        inner
            .publishers
            .insert(route.stream.clone(), session.clone());
        inner.sessions.insert(
            session.clone(),
            SessionEntry {
                stream: route.stream.clone(),
                worker,
                publisher: true,
            },
        );
        Ok(route)
    }

    fn add_subscriber(&self, stream: &str, session: &SessionId, worker: usize) -> Arc<StreamRoute> {
        let route = self.route(stream);
        self.lock().sessions.insert(
            session.clone(),
            SessionEntry {
                stream: route.stream.clone(),
                worker,
                publisher: false,
            },
        );
        route
    }

    /// Where a viewer's keyframe request for a local publisher goes.
    pub(crate) fn local_keyframe_request(&self, stream: &str, layer: Layer) {
        if let Some(entry) = self.lock().locals.get(stream) {
            let _ = entry.keyframes.try_send(layer);
        }
    }

    fn local_stats(&self, stream: &str) -> Option<(bool, crate::PublisherStats)> {
        let inner = self.lock();
        let entry = inner.locals.get(stream)?;
        entry
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn close_local(&self, session: &SessionId) -> bool {
        let inner = self.lock();
        match inner.locals.values().find(|e| &e.session == session) {
            Some(entry) => {
                let _ = entry.close.send(true);
                true
            }
            None => false,
        }
    }

    /// Forgets a local publisher (its handle was dropped).
    pub(crate) fn remove_local(&self, route: &StreamRoute, session: &SessionId) {
        let _ = route.publisher_worker.compare_exchange(
            LOCAL_PUBLISHER,
            NO_WORKER,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        let mut inner = self.lock();
        if inner
            .locals
            .get(&route.stream)
            .is_some_and(|e| &e.session == session)
        {
            inner.locals.remove(&route.stream);
        }
        drop(inner);
        self.remove_session(session);
    }

    /// Forgets a session; for a publisher, frees the stream for the next one.
    pub(crate) fn remove_session(&self, session: &SessionId) -> Option<SessionEntry> {
        let mut inner = self.lock();
        let entry = inner.sessions.remove(session)?;
        if entry.publisher && inner.publishers.get(&entry.stream) == Some(session) {
            inner.publishers.remove(&entry.stream);
        }
        Some(entry)
    }

    fn session(&self, stream: &str, session: &SessionId) -> Result<SessionEntry, RtcError> {
        let inner = self.lock();
        match inner.sessions.get(session) {
            Some(entry) if &*entry.stream == stream => Ok(entry.clone()),
            _ => Err(RtcError::SessionNotFound {
                session: session.0.clone(),
            }),
        }
    }

    fn sessions_of(&self, stream: &str) -> Vec<(SessionId, SessionEntry)> {
        self.lock()
            .sessions
            .iter()
            .filter(|(_, e)| &*e.stream == stream)
            .map(|(s, e)| (s.clone(), e.clone()))
            .collect()
    }
}

struct WorkerHandle {
    control: mpsc::Sender<Command>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Everything behind an [`crate::RtcEngine`] handle.
pub(crate) struct Shared {
    workers: Vec<WorkerHandle>,
    ports: Vec<u16>,
    ice_servers: Vec<IceServer>,
    events: broadcast::Sender<RtcEvent>,
    directory: Arc<Directory>,
    medias: Vec<mpsc::Sender<Arc<MediaPacket>>>,
    counters: Vec<Arc<Counters>>,
    local_counters: Arc<Counters>,
    next_worker: AtomicUsize,
    closed: AtomicBool,
}

impl Shared {
    pub(crate) async fn start(config: RtcConfig) -> Result<Arc<Shared>, RtcError> {
        let workers = config.workers.max(1);
        let advertise = advertise_ips(&config);
        let directory = Arc::new(Directory::default());
        let (events, _) = broadcast::channel(256);
        let mut controls = Vec::with_capacity(workers);
        let mut control_rxs = Vec::with_capacity(workers);
        let mut medias = Vec::with_capacity(workers);
        let mut media_rxs = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (ctx, crx) = mpsc::channel::<Command>(1024);
            let (mtx, mrx) = mpsc::channel::<Arc<MediaPacket>>(4096);
            controls.push(ctx);
            control_rxs.push(crx);
            medias.push(mtx);
            media_rxs.push(mrx);
        }
        // Bind every socket up front so a port clash is reported by `start`.
        let mut bound = Vec::with_capacity(workers);
        let mut ports = Vec::with_capacity(workers);
        for index in 0..workers {
            let port = if config.udp_port == 0 {
                0
            } else {
                config
                    .udp_port
                    .checked_add(index as u16)
                    .ok_or_else(|| RtcError::Bind {
                        addr: SocketAddr::new(config.bind_ip, config.udp_port),
                        source: std::io::Error::other("port range overflows"),
                    })?
            };
            let mut sockets = Vec::new();
            let mut chosen_port = port;
            let plan = bind_plan(&config, &advertise);
            let shared = plan.len() > 1 && plan.iter().any(|(bind, _)| bind.is_unspecified());
            for (ip, stands_for) in plan {
                let addr = SocketAddr::new(ip, chosen_port);
                let socket =
                    bind_udp(addr, shared).map_err(|source| RtcError::Bind { addr, source })?;
                if chosen_port == 0 {
                    chosen_port = socket
                        .local_addr()
                        .map_err(|source| RtcError::Bind { addr, source })?
                        .port();
                }
                sockets.push((socket, stands_for));
            }
            ports.push(chosen_port);
            bound.push(sockets);
        }
        let counters: Vec<Arc<Counters>> = (0..workers).map(|_| Arc::default()).collect();
        let mut handles = Vec::with_capacity(workers);
        for (index, ((sockets, crx), mrx)) in bound
            .into_iter()
            .zip(control_rxs)
            .zip(media_rxs)
            .enumerate()
        {
            let worker = Worker::new(
                index,
                sockets,
                advertise.clone(),
                config.ice_servers.clone(),
                directory.clone(),
                events.clone(),
                controls.clone(),
                medias.clone(),
                counters[index].clone(),
                config.detach_viewers,
            );
            let thread = std::thread::Builder::new()
                .name(format!("greenroom-rtc-{index}"))
                .spawn(move || worker.run(crx, mrx))
                .map_err(|e| RtcError::PeerConnection(format!("cannot start worker: {e}")))?;
            handles.push(WorkerHandle {
                control: controls[index].clone(),
                thread: Mutex::new(Some(thread)),
            });
        }
        tracing::info!(workers, ?ports, ips = ?advertise, "WebRTC engine started");
        Ok(Arc::new(Shared {
            workers: handles,
            ports,
            ice_servers: config.ice_servers,
            events,
            directory,
            medias,
            counters,
            local_counters: Arc::default(),
            next_worker: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }))
    }

    pub(crate) fn route(&self, stream: &str) -> Arc<StreamRoute> {
        self.directory.route(stream)
    }

    pub(crate) fn udp_ports(&self) -> Vec<u16> {
        self.ports.clone()
    }

    pub(crate) fn ice_servers(&self) -> &[IceServer] {
        &self.ice_servers
    }

    pub(crate) fn metrics(&self) -> MetricsSnapshot {
        MetricsSnapshot::sum(&self.counters, &self.local_counters)
    }

    pub(crate) fn events(&self) -> broadcast::Receiver<RtcEvent> {
        self.events.subscribe()
    }

    fn pick_worker(&self) -> usize {
        self.next_worker.fetch_add(1, Ordering::Relaxed) % self.workers.len()
    }

    async fn call<T>(
        &self,
        worker: usize,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RtcError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RtcError::Closed);
        }
        let Some(handle) = self.workers.get(worker) else {
            // A local publisher's session has no peer connection to patch or steer.
            return Err(RtcError::NotWebRtc);
        };
        let (tx, rx) = oneshot::channel();
        handle
            .control
            .send(make(tx))
            .await
            .map_err(|_| RtcError::Closed)?;
        rx.await.map_err(|_| RtcError::Closed)
    }

    pub(crate) async fn publish(&self, stream: &str, offer: &str) -> Result<Answer, RtcError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RtcError::Closed);
        }
        let session = SessionId(crate::peer::random_token(22));
        let worker = self.pick_worker();
        let route = self.directory.reserve_publisher(stream, &session, worker)?;
        let result = self
            .call(worker, |reply| Command::Publish {
                session: session.clone(),
                route,
                offer: offer.to_owned(),
                reply,
            })
            .await
            .and_then(|r| r);
        if result.is_err() {
            self.directory.remove_session(&session);
        }
        result
    }

    /// Routes a keyframe request for `layer` to the stream's publisher, wherever it is.
    pub(crate) fn request_keyframe(&self, route: &StreamRoute, layer: Layer) {
        let worker = route.publisher_worker.load(Ordering::Acquire);
        if worker == NO_WORKER {
            return;
        }
        if worker == LOCAL_PUBLISHER {
            self.directory.local_keyframe_request(&route.stream, layer);
        } else if let Some(handle) = self.workers.get(worker) {
            let _ = handle.control.try_send(Command::KeyframeRequest {
                stream: route.stream.clone(),
                layer,
            });
        }
    }

    pub(crate) fn publish_local(&self, stream: &str) -> Result<crate::LocalPublisher, RtcError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RtcError::Closed);
        }
        let session = SessionId(crate::peer::random_token(22));
        let route = self
            .directory
            .reserve_publisher(stream, &session, LOCAL_PUBLISHER)?;
        route.epoch.fetch_add(1, Ordering::AcqRel);
        route
            .publisher_worker
            .store(LOCAL_PUBLISHER, Ordering::Release);
        let (keyframes_tx, keyframes) = mpsc::channel(16);
        let (close, closed) = tokio::sync::watch::channel(false);
        let stats = Arc::new(Mutex::new(None));
        self.directory.lock().locals.insert(
            route.stream.clone(),
            crate::local::LocalEntry {
                session: session.clone(),
                keyframes: keyframes_tx,
                stats: stats.clone(),
                close,
            },
        );
        tracing::info!(stream, session = %session, "local publisher joined");
        Ok(crate::LocalPublisher::new(crate::local::LocalParts {
            session,
            route,
            medias: self.medias.clone(),
            keyframes,
            stats,
            closed,
            directory: self.directory.clone(),
            events: self.events.clone(),
            counters: self.local_counters.clone(),
        }))
    }

    pub(crate) async fn subscribe(
        &self,
        stream: &str,
        offer: &str,
        options: SubscribeOptions,
    ) -> Result<Answer, RtcError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RtcError::Closed);
        }
        let session = SessionId(crate::peer::random_token(22));
        let worker = self.pick_worker();
        let route = self.directory.add_subscriber(stream, &session, worker);
        let result = self
            .call(worker, |reply| Command::Subscribe {
                session: session.clone(),
                route,
                offer: offer.to_owned(),
                options,
                reply,
            })
            .await
            .and_then(|r| r);
        if result.is_err() {
            self.directory.remove_session(&session);
        }
        result
    }

    pub(crate) async fn patch(
        &self,
        stream: &str,
        session: &SessionId,
        if_match: Option<&str>,
        frag: &str,
    ) -> Result<PatchOutcome, RtcError> {
        let entry = self.directory.session(stream, session)?;
        self.call(entry.worker, |reply| Command::Patch {
            session: session.clone(),
            if_match: if_match.map(str::to_owned),
            frag: frag.to_owned(),
            reply,
        })
        .await?
    }

    pub(crate) async fn close_session(
        &self,
        stream: &str,
        session: &SessionId,
    ) -> Result<(), RtcError> {
        let entry = self.directory.session(stream, session)?;
        if entry.worker == LOCAL_PUBLISHER {
            self.directory.close_local(session);
            return Ok(());
        }
        self.call(entry.worker, |reply| Command::Close {
            session: session.clone(),
            reply,
        })
        .await?
    }

    pub(crate) async fn end_stream(&self, stream: &str) {
        for (session, entry) in self.directory.sessions_of(stream) {
            if entry.worker == LOCAL_PUBLISHER {
                self.directory.close_local(&session);
                continue;
            }
            let closed = self
                .call(entry.worker, |reply| Command::Close {
                    session: session.clone(),
                    reply,
                })
                .await;
            if let Err(error) | Ok(Err(error)) = closed {
                tracing::debug!(%session, %error, "closing session of ended stream");
            }
        }
    }

    pub(crate) async fn set_max_layer(
        &self,
        stream: &str,
        session: &SessionId,
        layer: Layer,
    ) -> Result<(), RtcError> {
        let entry = self.directory.session(stream, session)?;
        self.call(entry.worker, |reply| Command::SetMaxLayer {
            session: session.clone(),
            layer,
            reply,
        })
        .await?
    }

    pub(crate) async fn extend_session(
        &self,
        stream: &str,
        session: &SessionId,
        valid_until: Option<std::time::Instant>,
    ) -> Result<(), RtcError> {
        let entry = self.directory.session(stream, session)?;
        self.call(entry.worker, |reply| Command::ExtendSession {
            session: session.clone(),
            valid_until,
            reply,
        })
        .await?
    }

    pub(crate) async fn stream_stats(&self, stream: &str) -> StreamStats {
        let mut stats = StreamStats::default();
        let key: Arc<str> = Arc::from(stream);
        for worker in 0..self.workers.len() {
            let part: Result<WorkerStats, _> = self
                .call(worker, |reply| Command::Stats {
                    stream: key.clone(),
                    reply,
                })
                .await;
            if let Ok(part) = part {
                if let Some(publisher) = part.publisher {
                    stats.live = part.live;
                    stats.publisher = Some(publisher);
                }
                stats.viewer_sessions.extend(part.viewers);
            }
        }
        if stats.publisher.is_none()
            && let Some((live, publisher)) = self.directory.local_stats(stream)
        {
            stats.live = live;
            stats.publisher = Some(publisher);
        }
        stats.viewers = stats.viewer_sessions.len();
        stats
    }

    pub(crate) async fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for entry in self.directory.lock().locals.values() {
            let _ = entry.close.send(true);
        }
        for handle in &self.workers {
            let (tx, rx) = oneshot::channel();
            if handle
                .control
                .send(Command::Shutdown { reply: tx })
                .await
                .is_ok()
            {
                let _ = rx.await;
            }
        }
        for handle in &self.workers {
            let thread = handle
                .thread
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(thread) = thread {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        }
        tracing::info!("WebRTC engine stopped");
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for handle in &self.workers {
            let (tx, _rx) = oneshot::channel();
            let _ = handle.control.try_send(Command::Shutdown { reply: tx });
        }
    }
}

/// The addresses put into candidates.
fn advertise_ips(config: &RtcConfig) -> Vec<IpAddr> {
    if !config.advertise_ips.is_empty() {
        return config.advertise_ips.clone();
    }
    if !config.bind_ip.is_unspecified() {
        return vec![config.bind_ip];
    }
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|list| {
            list.into_iter()
                .map(|i| i.ip())
                .filter(|ip| ip.is_ipv4() || config.bind_ip.is_ipv6())
                .collect()
        })
        .unwrap_or_default();
    ips.sort();
    ips.dedup();
    if ips.is_empty() {
        ips.push(IpAddr::from([127, 0, 0, 1]));
    }
    ips
}

/// Where a worker's sockets bind, and the address each one stands for in candidates (and
/// for ICE, which must see the exact local address a datagram arrived on).
///
/// - A specific bind address: one socket, standing for itself.
/// - The wildcard: one socket per advertised address that is this machine's own; an
///   advertised address that is not (a public IP in front of NAT) is served by one wildcard
///   socket standing for the first such address, next to the specific ones (the kernel hands
///   each datagram to the most specific socket).
fn bind_plan(config: &RtcConfig, advertise: &[IpAddr]) -> Vec<(IpAddr, IpAddr)> {
    if !config.bind_ip.is_unspecified() {
        return vec![(config.bind_ip, config.bind_ip)];
    }
    let own: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|list| list.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    let mut plan: Vec<(IpAddr, IpAddr)> = advertise
        .iter()
        .filter(|ip| own.contains(ip))
        .map(|ip| (*ip, *ip))
        .collect();
    if let Some(foreign) = advertise.iter().find(|ip| !own.contains(ip)) {
        plan.push((config.bind_ip, *foreign));
    }
    plan
}

/// `shared`: the port is bound both on the wildcard and on specific addresses.
fn bind_udp(addr: SocketAddr, shared: bool) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if shared {
        socket.set_reuse_address(true)?;
    }
    // Large buffers absorb fan-out bursts (one incoming packet becomes hundreds outgoing).
    let _ = socket.set_send_buffer_size(8 << 20);
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}
