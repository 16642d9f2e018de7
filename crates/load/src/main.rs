//! greenroom-load: puts WebRTC load on a greenroom server and reports what the viewers got.
//!
//! Publishers: with `--publishers N --admin-token T` it creates N streams and publishes to each
//! through WHIP; with `--stream ID --publish-key K` it publishes to one existing stream; with
//! `--stream ID` alone it only watches. A publisher sends three simulcast layers, synthetic or,
//! with `--media q.ivf,h.ivf,f.ivf` (or one file: a single layer), real VP8 from IVF files,
//! looped. Subscribers: `--subscribers M` WHEP viewers spread over the streams (real ICE, DTLS
//! and SRTP; packets are counted, not decoded), optionally capped with `--layer`.
//!
//! After `--duration` seconds it prints a JSON report: per subscriber its stream, received
//! bitrate, packets, loss and the width of the last keyframe (which tells the layer), and a
//! summary. Only loopback or this machine's own test addresses are meant as targets.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use greenroom_rtc::client::{Client, ClientCounters, ClientKind, MediaClip};
use serde::Serialize;
use tokio::sync::watch;

#[derive(Debug, Parser)]
#[command(name = "greenroom-load", about = "WebRTC load generator for greenroom")]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Stream id to watch (and publish to with --publish-key).
    #[arg(long, conflicts_with = "publishers")]
    stream: Option<String>,
    /// Publish to --stream first, with this stream key.
    #[arg(long, requires = "stream")]
    publish_key: Option<String>,
    /// Create this many streams (needs --admin-token) and publish to each.
    #[arg(long, requires = "admin_token")]
    publishers: Option<usize>,
    /// The server's admin token, to create streams.
    #[arg(long, env = "GREENROOM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// VP8 IVF files the publishers send, lowest layer first: three for simulcast (q,h,f),
    /// one for a single layer. Default: synthetic frames in three layers.
    #[arg(long, value_delimiter = ',')]
    media: Vec<std::path::PathBuf>,
    /// Number of WHEP subscribers.
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Maximum layer of the subscribers (q, h or f).
    #[arg(long)]
    layer: Option<String>,
    /// Seconds to measure once every subscriber is connected.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Subscribers started per second.
    #[arg(long, default_value_t = 50)]
    ramp: usize,
    /// Threads running the subscribers.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Address the client sockets bind to.
    #[arg(long, default_value = "127.0.0.1")]
    bind_ip: IpAddr,
}

#[derive(Debug, Serialize)]
struct SubscriberReport {
    index: usize,
    stream: String,
    connected: bool,
    packets: u64,
    bitrate_bps: u64,
    loss_percent: f64,
    keyframe_width: u64,
}

#[derive(Debug, Serialize)]
struct Summary {
    publishers: usize,
    subscribers: usize,
    connected: usize,
    duration_s: f64,
    mean_bitrate_bps: u64,
    min_bitrate_bps: u64,
    mean_loss_percent: f64,
    under_1_percent_loss: usize,
    publisher_packets_sent: u64,
    /// Publishers still connected at the end (one that failed stopped feeding its viewers).
    publishers_connected: usize,
    /// Subscribers by the width of the last key frame they got (the layer they are on).
    by_width: std::collections::BTreeMap<u64, usize>,
}

#[derive(Debug, Serialize)]
struct Report {
    summary: Summary,
    subscribers: Vec<SubscriberReport>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GREENROOM_LOG")
                .unwrap_or_else(|_| "warn,rtc_dtls=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if args.stream.is_none() && args.publishers.is_none() {
        bail!("name a --stream to watch, or --publishers N to create and publish streams");
    }
    if args.subscribers == 0 && args.publish_key.is_none() && args.publishers.is_none() {
        bail!("nothing to do: --subscribers is 0 and nothing is published");
    }
    let clips = args
        .media
        .iter()
        .map(|path| {
            MediaClip::load(path)
                .map(Arc::new)
                .with_context(|| format!("media file {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    if !matches!(clips.len(), 0 | 1 | 3) {
        bail!(
            "--media takes one IVF file (one layer) or three (q,h,f), not {}",
            clips.len()
        );
    }
    let threads = args.threads.max(1);
    let (stop_tx, stop_rx) = watch::channel(false);
    let http = reqwest::Client::new();

    // One current-thread runtime per thread: peer connections are not Send. The publishers
    // have a thread of their own (the last one): subscribers that keep their threads busy must
    // not slow down what everyone is watching.
    let mut handles = Vec::new();
    let (client_txs, client_rxs): (Vec<_>, Vec<_>) = (0..=threads)
        .map(|_| tokio::sync::mpsc::unbounded_channel::<Client>())
        .unzip();
    for rx in client_rxs {
        let stop = stop_rx.clone();
        handles.push(std::thread::spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let mut rx = rx;
                let mut tasks = Vec::new();
                while let Some(client) = rx.recv().await {
                    tasks.push(tokio::task::spawn_local(client.run(stop.clone())));
                }
                for task in tasks {
                    let _ = task.await;
                }
            });
            Ok(())
        }));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        // The streams and their keys: created, or the one named.
        let mut streams: Vec<(String, Option<String>)> = Vec::new();
        if let Some(count) = args.publishers {
            let token = args.admin_token.as_deref().unwrap_or_default();
            for i in 0..count {
                streams.push(create_stream(&http, &args.server, token, i).await?);
            }
        } else if let Some(stream) = &args.stream {
            streams.push((stream.clone(), args.publish_key.clone()));
        }
        let mut publisher_counters = Vec::new();
        for (stream, key) in &streams {
            let Some(key) = key else { continue };
            let simulcast = clips.len() != 1;
            let mut client = Client::new(ClientKind::Publisher { simulcast }, args.bind_ip)?;
            if !clips.is_empty() {
                client = client.with_clips(&clips)?;
            }
            let answer = post_sdp(
                &http,
                &format!("{}/whip/{stream}", args.server),
                &client.offer_sdp()?,
                Some(key),
            )
            .await
            .with_context(|| format!("WHIP publish to {stream}"))?;
            client.apply_answer(&answer)?;
            publisher_counters.push(client.counters());
            client_txs[threads]
                .send(client)
                .map_err(|_| anyhow::anyhow!("client thread gone"))?;
        }
        let mut counters: Vec<Arc<ClientCounters>> = Vec::with_capacity(args.subscribers);
        let pace = Duration::from_secs_f64(1.0 / args.ramp.max(1) as f64);
        let layer = args
            .layer
            .as_deref()
            .map(|l| format!("?layer={l}"))
            .unwrap_or_default();
        let mut watched = Vec::with_capacity(args.subscribers);
        for i in 0..args.subscribers {
            let stream = &streams[i % streams.len()].0;
            watched.push(stream.clone());
            let mut client = Client::new(ClientKind::Viewer, args.bind_ip)?;
            let answer = post_sdp(
                &http,
                &format!("{}/whep/{stream}{layer}", args.server),
                &client.offer_sdp()?,
                None,
            )
            .await
            .with_context(|| format!("WHEP subscriber {i}"))?;
            client.apply_answer(&answer)?;
            counters.push(client.counters());
            client_txs[i % threads]
                .send(client)
                .map_err(|_| anyhow::anyhow!("client thread gone"))?;
            tokio::time::sleep(pace).await;
        }
        // Let everyone connect and settle on a layer, then measure a clean window.
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_secs(10)
            && counters
                .iter()
                .any(|c| !c.connected.load(Ordering::Relaxed))
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let start: Vec<(u64, u64, u64)> = counters
            .iter()
            .map(|c| {
                (
                    c.bytes.load(Ordering::Relaxed),
                    c.packets.load(Ordering::Relaxed),
                    c.lost.load(Ordering::Relaxed),
                )
            })
            .collect();
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(args.duration)).await;
        let elapsed = t0.elapsed().as_secs_f64();
        let mut subscribers = Vec::with_capacity(counters.len());
        for (index, ((c, (b0, p0, l0)), stream)) in
            counters.iter().zip(start).zip(watched).enumerate()
        {
            let bytes = c.bytes.load(Ordering::Relaxed) - b0;
            let packets = c.packets.load(Ordering::Relaxed) - p0;
            let lost = c.lost.load(Ordering::Relaxed) - l0;
            let loss = if packets + lost == 0 {
                100.0
            } else {
                lost as f64 * 100.0 / (packets + lost) as f64
            };
            subscribers.push(SubscriberReport {
                index,
                stream,
                connected: c.connected.load(Ordering::Relaxed),
                packets,
                bitrate_bps: (bytes as f64 * 8.0 / elapsed) as u64,
                loss_percent: (loss * 100.0).round() / 100.0,
                keyframe_width: c.last_width.load(Ordering::Relaxed),
            });
        }
        let _ = stop_tx.send(true);
        let n = subscribers.len().max(1);
        let mut by_width = std::collections::BTreeMap::new();
        for s in &subscribers {
            *by_width.entry(s.keyframe_width).or_insert(0) += 1;
        }
        let summary = Summary {
            publishers: publisher_counters.len(),
            subscribers: subscribers.len(),
            connected: subscribers.iter().filter(|s| s.connected).count(),
            duration_s: (elapsed * 10.0).round() / 10.0,
            mean_bitrate_bps: subscribers.iter().map(|s| s.bitrate_bps).sum::<u64>() / n as u64,
            min_bitrate_bps: subscribers.iter().map(|s| s.bitrate_bps).min().unwrap_or(0),
            mean_loss_percent: ((subscribers.iter().map(|s| s.loss_percent).sum::<f64>()
                / n as f64)
                * 100.0)
                .round()
                / 100.0,
            under_1_percent_loss: subscribers.iter().filter(|s| s.loss_percent < 1.0).count(),
            publisher_packets_sent: publisher_counters
                .iter()
                .map(|c| c.packets.load(Ordering::Relaxed))
                .sum(),
            publishers_connected: publisher_counters
                .iter()
                .filter(|c| c.connected.load(Ordering::Relaxed))
                .count(),
            by_width,
        };
        anyhow::Ok(Report {
            summary,
            subscribers,
        })
    });
    drop(client_txs);
    let report = report?;
    for handle in handles {
        let _ = handle.join();
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Creates a stream through the admin API; its id and stream key.
async fn create_stream(
    http: &reqwest::Client,
    server: &str,
    admin_token: &str,
    index: usize,
) -> Result<(String, Option<String>)> {
    let response = http
        .post(format!("{server}/api/v1/streams"))
        .bearer_auth(admin_token)
        .json(&serde_json::json!({ "title": format!("load {index}"), "record": false }))
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    if status.as_u16() != 201 {
        bail!("creating a stream answered {status}: {body}");
    }
    let field = |name: &str| {
        body[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no {name} in {body}"))
    };
    Ok((field("id")?, Some(field("stream_key")?)))
}

/// POSTs an SDP offer and returns the answer.
async fn post_sdp(
    http: &reqwest::Client,
    url: &str,
    offer: &str,
    bearer: Option<&str>,
) -> Result<String> {
    let mut request = http
        .post(url)
        .header("content-type", "application/sdp")
        .body(offer.to_owned());
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.text().await?;
    if status.as_u16() != 201 {
        bail!("{url} answered {status}: {body}");
    }
    Ok(body)
}
