//! The tokio driver: accepts TCP connections, runs the `rml_rtmp` handshake, then drives a
//! [`ServerSession`] per connection and hands the media of accepted publishes to a
//! [`MediaSink`] the [`PublishHandler`] provides.
//!
//! Invariants: each connection is its own task with a fixed read buffer, a handshake timeout
//! and an idle timeout (reads and writes); any error ends that connection only; a sink is
//! finished exactly once, whatever ends the publish; on shutdown no new connection is taken
//! and the running ones are closed and awaited.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tracing::{Instrument, debug, info, info_span, warn};

use super::error::RtmpError;
use super::session::{RtmpEvent, ServerSession, ServerSessionConfig, StreamMetadata};

/// Where the media of one accepted publish goes.
pub trait MediaSink: Send {
    /// An FLV video tag body with its DTS in milliseconds.
    fn video(&mut self, timestamp_ms: u32, body: Bytes);
    /// An FLV audio tag body with its timestamp in milliseconds.
    fn audio(&mut self, timestamp_ms: u32, body: Bytes);
    /// The publisher's `onMetaData` (ignored unless overridden).
    fn metadata(&mut self, _metadata: &StreamMetadata) {}
    /// The publish ended (unpublish, disconnect, error, shutdown or [`MediaSink::closed`]).
    fn finish(self: Box<Self>);
    /// Resolves when the server ends the publish (stream ended, key revoked); the connection
    /// is then closed and the sink finished.
    fn closed(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Decides who may publish and provides the sink of an accepted publish.
pub trait PublishHandler: Clone + Send + Sync + 'static {
    /// `Ok(sink)` accepts the publish; `Err(reason)` refuses it (the reason is logged, the
    /// publisher gets `NetStream.Publish.BadName`).
    fn publish(
        &self,
        app: &str,
        stream_key: &str,
        peer: SocketAddr,
    ) -> impl Future<Output = Result<Box<dyn MediaSink>, String>> + Send;
}

/// Bounds and timeouts of [`serve_with_config`].
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// The whole handshake (C0/C1/C2) must complete within this.
    pub handshake_timeout: Duration,
    /// A connection that sends nothing (or does not read) for this long is dropped.
    pub idle_timeout: Duration,
    /// Connections beyond this are closed at once.
    pub max_connections: usize,
    /// Size of each connection's read buffer.
    pub read_buffer_bytes: usize,
    pub session: ServerSessionConfig,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 256,
            read_buffer_bytes: 64 * 1024,
            session: ServerSessionConfig::default(),
        }
    }
}

/// Serves RTMP publishers on `listener` until `shutdown` resolves, with the default
/// [`ListenerConfig`].
pub async fn serve<H, F>(listener: TcpListener, handler: H, shutdown: F)
where
    H: PublishHandler,
    F: Future,
{
    serve_with_config(listener, handler, ListenerConfig::default(), shutdown).await;
}

/// Serves RTMP publishers on `listener` until `shutdown` resolves, then closes the running
/// connections and waits for them.
pub async fn serve_with_config<H, F>(
    listener: TcpListener,
    handler: H,
    config: ListenerConfig,
    shutdown: F,
) where
    H: PublishHandler,
    F: Future,
{
    let config = Arc::new(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while let Some(done) = tasks.try_join_next() {
            log_join(done);
        }
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %err, "RTMP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if tasks.len() >= config.max_connections {
            warn!(%peer, limit = config.max_connections, "RTMP connection refused: too many");
            continue;
        }
        let span = info_span!("rtmp", %peer);
        let handler = handler.clone();
        let config = Arc::clone(&config);
        let stop = stop_rx.clone();
        tasks.spawn(
            async move {
                match connection(socket, peer, handler, &config, stop).await {
                    Ok(()) => debug!("RTMP connection closed"),
                    Err(
                        err @ (RtmpError::Io(_)
                        | RtmpError::IdleTimeout { .. }
                        | RtmpError::Handshake { .. }),
                    ) => info!(error = %err, "RTMP connection dropped"),
                    Err(err) => warn!(error = %err, "RTMP protocol error, connection dropped"),
                }
            }
            .instrument(span),
        );
    }
    let _ = stop_tx.send(true);
    while let Some(done) = tasks.join_next().await {
        log_join(done);
    }
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(err) = done {
        warn!(error = %err, "RTMP connection task failed");
    }
}

async fn connection<H: PublishHandler>(
    mut socket: TcpStream,
    peer: SocketAddr,
    handler: H,
    config: &ListenerConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<(), RtmpError> {
    let _ = socket.set_nodelay(true);
    let mut buf = vec![0u8; config.read_buffer_bytes.max(1)];
    let handshake = timeout(config.handshake_timeout, handshake(&mut socket, &mut buf));
    let leftover = match handshake.await {
        Ok(Ok(Some(leftover))) => leftover,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(err)) => return Err(err),
        Err(_) => {
            return Err(RtmpError::Handshake {
                reason: format!("not done within {:?}", config.handshake_timeout),
            });
        }
    };
    let mut connection = Connection {
        socket,
        session: ServerSession::new(config.session.clone()),
        sink: None,
        peer,
        config,
    };
    let result = connection
        .drive(&leftover, &mut buf, &handler, &mut stop)
        .await;
    if let Some(sink) = connection.sink.take() {
        sink.finish();
    }
    if result.is_err() {
        // Best effort: the error answer (if any) and a clean close.
        let _ = connection.flush().await;
    }
    let _ = timeout(Duration::from_secs(1), connection.socket.shutdown()).await;
    result
}

/// Runs the server handshake; `None` when the peer closed before finishing it.
async fn handshake(socket: &mut TcpStream, buf: &mut [u8]) -> Result<Option<Vec<u8>>, RtmpError> {
    let mut handshake = Handshake::new(PeerType::Server);
    loop {
        let n = socket.read(buf).await?;
        if n == 0 {
            return Ok(None);
        }
        let step = handshake
            .process_bytes(&buf[..n])
            .map_err(|err| RtmpError::Handshake {
                reason: err.to_string(),
            })?;
        match step {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket.write_all(&response_bytes).await?;
                return Ok(Some(remaining_bytes));
            }
        }
    }
}

enum Wake {
    Read(Result<Result<usize, std::io::Error>, tokio::time::error::Elapsed>),
    SinkClosed,
    Shutdown,
}

/// One connection after its handshake.
struct Connection<'a> {
    socket: TcpStream,
    session: ServerSession,
    sink: Option<Box<dyn MediaSink>>,
    peer: SocketAddr,
    config: &'a ListenerConfig,
}

impl Connection<'_> {
    async fn drive<H: PublishHandler>(
        &mut self,
        leftover: &[u8],
        buf: &mut [u8],
        handler: &H,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), RtmpError> {
        self.session.handle_input(leftover)?;
        loop {
            while let Some(event) = self.session.poll_event() {
                self.handle_event(event, handler).await;
            }
            self.flush().await?;
            if self.session.is_closed() || *stop.borrow() {
                return Ok(());
            }
            let idle = self.config.idle_timeout;
            let wake = tokio::select! {
                read = timeout(idle, self.socket.read(buf)) => Wake::Read(read),
                () = sink_closed(&mut self.sink) => Wake::SinkClosed,
                _ = stop.changed() => Wake::Shutdown,
            };
            match wake {
                Wake::Read(Err(_)) => {
                    return Err(RtmpError::IdleTimeout {
                        seconds: idle.as_secs(),
                    });
                }
                Wake::Read(Ok(read)) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    self.session.handle_input(&buf[..n])?;
                }
                Wake::SinkClosed => {
                    info!("RTMP publish ended by the server");
                    return Ok(());
                }
                Wake::Shutdown => return Ok(()),
            }
        }
    }

    async fn handle_event<H: PublishHandler>(&mut self, event: RtmpEvent, handler: &H) {
        match event {
            RtmpEvent::PublishRequested { app, stream_key } => {
                match handler.publish(&app, &stream_key, self.peer).await {
                    Ok(accepted) => {
                        info!(%app, "RTMP publish accepted");
                        self.sink = Some(accepted);
                        self.session.accept_publish();
                    }
                    Err(reason) => {
                        // The stream key is a secret: log the app and the reason only.
                        warn!(peer = %self.peer, %app, %reason, "RTMP publish refused");
                        self.session.reject_publish("publish refused");
                    }
                }
            }
            RtmpEvent::Metadata(metadata) => {
                if let Some(sink) = self.sink.as_mut() {
                    sink.metadata(&metadata);
                }
            }
            RtmpEvent::Video { timestamp_ms, body } => {
                if let Some(sink) = self.sink.as_mut() {
                    sink.video(timestamp_ms, body);
                }
            }
            RtmpEvent::Audio { timestamp_ms, body } => {
                if let Some(sink) = self.sink.as_mut() {
                    sink.audio(timestamp_ms, body);
                }
            }
            RtmpEvent::Unpublished => {
                info!("RTMP publish ended by the publisher");
                if let Some(sink) = self.sink.take() {
                    sink.finish();
                }
            }
        }
    }

    async fn flush(&mut self) -> Result<(), RtmpError> {
        let idle = self.config.idle_timeout;
        while let Some(bytes) = self.session.poll_output() {
            match timeout(idle, self.socket.write_all(&bytes)).await {
                Ok(written) => written?,
                Err(_) => {
                    return Err(RtmpError::IdleTimeout {
                        seconds: idle.as_secs(),
                    });
                }
            }
        }
        Ok(())
    }
}

async fn sink_closed(sink: &mut Option<Box<dyn MediaSink>>) {
    match sink {
        Some(sink) => sink.closed().await,
        None => std::future::pending().await,
    }
}
