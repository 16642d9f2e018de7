//! `greenroom serve`: open the database, start the engine, bind HTTP, print where to go,
//! serve until SIGTERM/SIGINT, then stop the engine.

use std::net::SocketAddr;

use anyhow::Context;
use greenroom_control::{Store, Stream};
use greenroom_rtc::{RtcEngine, RtcEvent};
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;

use crate::admin_token::{self, TokenOrigin};
use crate::app::{self, AppState};
use crate::authority::ControlAuthority;
use crate::config::Config;

const FIRST_STREAM_TITLE: &str = "My first stream";

/// Runs the server until a shutdown signal.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let admin = admin_token::resolve(config.admin_token.as_deref(), &config.data_dir)?;
    let playback =
        crate::access::resolve_playback_key(config.playback_key.as_deref(), &config.data_dir)?;
    let payments = crate::app::Payments::from_config(&config).context("cannot set up payments")?;
    let identity = match config.identity_config()? {
        Some(identity) => Some(
            greenroom_control::ExternalIdentity::new(identity)
                .context("cannot use the identity provider's key")?,
        ),
        None => None,
    };

    let store = Store::connect(&config.database_url())
        .await
        .context("cannot open the database")?;
    tracing::info!(backend = store.backend().name(), "database ready");

    let engine = RtcEngine::start(config.rtc_config())
        .await
        .context("cannot start the WebRTC engine")?;
    tracing::info!(udp_ports = ?engine.udp_ports(), "WebRTC engine started");
    tokio::spawn(follow_engine_events(engine.clone(), store.clone()));

    let listener = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let bound = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let public_url = config.public_url_for(bound);
    let mut state = AppState::new(store.clone(), engine.clone(), &public_url, &admin.token)
        .with_playback(playback, config.playback_token_ttl_secs);
    if let Some(payments) = payments {
        tracing::info!(
            currency = %payments.currency,
            platform_fee_bps = payments.platform_fee_bps,
            "payments on"
        );
        state = state.with_payments(payments);
    }
    if let Some(identity) = identity {
        tracing::info!(
            algorithm = identity.algorithm(),
            "identity provider sign-in on"
        );
        state = state.with_identity(identity);
    }
    let hls = if config.hls {
        let recordings = open_recordings(&config, &store).await?;
        recordings.recover().await;
        recordings.spawn_retention(std::time::Duration::from_secs(
            config.retention_interval_secs,
        ));
        let hub = crate::hls::HlsHub::new(config.hls_options(), Some(recordings.clone()));
        hub.follow(engine.clone());
        state = state.with_hls(hub.clone(), recordings);
        Some(hub)
    } else {
        None
    };

    // One signal stops both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };
    let rtmp = match config.rtmp_addr {
        Some(addr) => {
            let rtmp_listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for RTMP on {addr}"))?;
            let rtmp_bound = rtmp_listener
                .local_addr()
                .context("cannot read the RTMP listening address")?;
            state = state.with_rtmp_port(rtmp_bound.port());
            tracing::info!(%rtmp_bound, "RTMP ingest listening");
            let mut handler = greenroom_ingest::rtmp_publish::RtmpPublishing::new(
                engine.clone(),
                ControlAuthority::for_state(&state),
            );
            if let Some(hub) = &hls {
                handler = handler.with_frame_taps(std::sync::Arc::new(hub.clone()));
            }
            Some(tokio::spawn(greenroom_ingest::rtmp::listener::serve(
                rtmp_listener,
                handler,
                stopped(stop_rx.clone()),
            )))
        }
        None => None,
    };

    let stream = first_stream(&store).await?;
    let sources = state.sources.clone();
    match sources.start_open(&store).await {
        Ok(0) => {}
        Ok(pulls) => tracing::info!(pulls, "RTSP sources started"),
        Err(error) => tracing::error!(%error, "cannot read the streams with RTSP sources"),
    }
    let signal = shutdown_signal()?;
    print_banner(
        bound,
        &public_url,
        &admin,
        &stream,
        state.rtmp_base.as_deref(),
        hls.is_some(),
    );
    tokio::spawn(async move {
        signal.await;
        let _ = stop_tx.send(true);
    });

    let state_recordings = state.recordings.clone();
    let served = axum::serve(listener, app::router(state))
        .with_graceful_shutdown(stopped(stop_rx))
        .await
        .context("the HTTP server failed");
    tracing::info!("shutting down");
    sources.shutdown().await;
    if let Some(rtmp) = rtmp {
        let _ = rtmp.await;
    }
    engine.shutdown().await;
    if let Some(hub) = &hls {
        hub.shutdown().await;
    }
    if let Some(recordings) = &state_recordings {
        recordings
            .wait_idle(std::time::Duration::from_secs(10))
            .await;
        if !recordings
            .spool
            .flush(std::time::Duration::from_secs(10))
            .await
        {
            let pending = recordings.spool.pending();
            tracing::warn!(
                entries = pending.entries,
                "recording uploads still pending; they resume at the next start"
            );
        }
    }
    store.close().await;
    served
}

/// The object store and upload spool for recordings (local directory or S3).
async fn open_recordings(
    config: &Config,
    store: &Store,
) -> anyhow::Result<crate::recording::Recordings> {
    use greenroom_storage::{ObjectStore, S3Config, Spool};
    let storage = match &config.s3 {
        Some(s3) => {
            let mut s3config = S3Config::new(s3.bucket.clone());
            s3config.region = s3.region.clone();
            s3config.endpoint = s3.endpoint.clone();
            s3config.access_key_id = s3.access_key_id.clone();
            s3config.secret_access_key = s3.secret_access_key.clone();
            s3config.path_style = s3.path_style;
            s3config.prefix = s3.prefix.clone();
            ObjectStore::s3(s3config).context("invalid S3 settings")?
        }
        None => ObjectStore::local(config.storage_dir())
            .context("cannot open the local media directory")?,
    };
    tracing::info!(storage = %storage.describe(), "recording storage");
    let spool = Spool::open(config.data_dir.join("spool"), storage.clone())
        .await
        .context("cannot open the upload spool")?;
    Ok(crate::recording::Recordings {
        store: store.clone(),
        storage,
        spool,
        default_retention_days: config.recording_retention_days,
        active: Default::default(),
    })
}

/// The newest stream that has not ended; one is created when there is none.
async fn first_stream(store: &Store) -> anyhow::Result<Stream> {
    if let Some(stream) = store
        .latest_open_stream()
        .await
        .context("cannot read the streams")?
    {
        return Ok(stream);
    }
    store
        .create_stream(FIRST_STREAM_TITLE)
        .await
        .context("cannot create the first stream")
}

/// Prints where to go. A closed or broken stdout must not stop a server, so write errors are
/// ignored (the same lines are in the log).
fn print_banner(
    bound: SocketAddr,
    public_url: &str,
    admin: &admin_token::AdminToken,
    stream: &Stream,
    rtmp_base: Option<&str>,
    hls: bool,
) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    macro_rules! say {
        ($($arg:tt)*) => {{
            let _ = writeln!(out, $($arg)*);
        }};
    }
    say!("greenroom listening on {public_url} (bound to {bound})");
    match &admin.origin {
        TokenOrigin::Generated(path) => {
            say!("admin token: {} (saved to {})", admin.token, path.display());
        }
        TokenOrigin::Stored(path) => say!("admin token: stored in {}", path.display()),
        TokenOrigin::Configured => say!("admin token: from the configuration"),
    }
    say!(
        "studio: {public_url}/studio/{}#key={}",
        stream.id,
        stream.stream_key.expose()
    );
    say!("watch: {public_url}/watch/{}", stream.id);
    if let Some(base) = rtmp_base {
        say!("rtmp: {base}/{}", stream.stream_key.expose());
    }
    if hls {
        say!("hls: {public_url}/hls/{}/master.m3u8", stream.id);
    }
    let _ = out.flush();
    tracing::info!(%public_url, stream = %stream.id, "ready");
}

/// Follows the engine's events: a stream's first media marks it started in the store (once;
/// later sessions change nothing). A stream cancelled while its publisher was connecting is
/// ended at once instead.
async fn follow_engine_events(engine: RtcEngine, store: greenroom_control::Store) {
    let mut events = engine.events();
    loop {
        match events.recv().await {
            Ok(RtcEvent::Live { stream }) => {
                tracing::info!(%stream, "stream is live");
                let now = chrono::Utc::now().timestamp_millis();
                match store.mark_stream_started(&stream, now).await {
                    Ok(_) => {}
                    Err(
                        err @ (greenroom_control::ControlError::InvalidTransition { .. }
                        | greenroom_control::ControlError::StreamEnded { .. }),
                    ) => {
                        tracing::warn!(%stream, reason = %err, "media for a stream that cannot go live: disconnecting");
                        engine.end_stream(&stream).await;
                    }
                    Err(err) => {
                        tracing::error!(%stream, error = %err, "could not mark a stream started")
                    }
                }
            }
            Ok(RtcEvent::Idle { stream }) => tracing::info!(%stream, "stream is idle"),
            Err(RecvError::Lagged(missed)) => tracing::warn!(missed, "engine events skipped"),
            Err(RecvError::Closed) => break,
        }
    }
}

/// Registers the SIGINT (Ctrl-C) and SIGTERM handlers now, so a signal sent as soon as the
/// start-up lines are printed is not lost, and returns a future that resolves on either.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    })
}
