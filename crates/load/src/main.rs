//! greenroom-load: puts WebRTC load on a greenroom server and reports what the viewers got.
//!
//! It attaches N WHEP subscribers to a stream (real ICE, DTLS and SRTP; packets are counted,
//! not decoded) and, with `--publish`, first publishes a synthetic simulcast stream through WHIP.
//! After `--duration` seconds it prints a JSON report: per subscriber the received bitrate,
//! packets, loss and the width of the last keyframe (which tells the layer), and a summary.
//!
//! Only loopback or this machine's own test addresses are meant as targets.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use greenroom_rtc::client::{Client, ClientCounters, ClientKind};
use serde::Serialize;
use tokio::sync::watch;

#[derive(Debug, Parser)]
#[command(name = "greenroom-load", about = "WebRTC load generator for greenroom")]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Stream id to watch (and publish to with --publish).
    #[arg(long)]
    stream: String,
    /// Publish a synthetic 3-layer simulcast stream first, with this stream key.
    #[arg(long)]
    publish_key: Option<String>,
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
    connected: bool,
    packets: u64,
    bitrate_bps: u64,
    loss_percent: f64,
    keyframe_width: u64,
}

#[derive(Debug, Serialize)]
struct Summary {
    subscribers: usize,
    connected: usize,
    duration_s: f64,
    mean_bitrate_bps: u64,
    min_bitrate_bps: u64,
    mean_loss_percent: f64,
    under_1_percent_loss: usize,
    publisher_packets_sent: Option<u64>,
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
    if args.subscribers == 0 && args.publish_key.is_none() {
        bail!("nothing to do: --subscribers is 0 and no --publish-key");
    }
    let threads = args.threads.max(1);
    let (stop_tx, stop_rx) = watch::channel(false);
    let http = reqwest::Client::new();

    // One current-thread runtime per thread: peer connections are not Send.
    let mut handles = Vec::new();
    let (client_txs, client_rxs): (Vec<_>, Vec<_>) = (0..threads)
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
        let mut publisher_counters = None;
        if let Some(key) = &args.publish_key {
            let mut client = Client::new(ClientKind::Publisher { simulcast: true }, args.bind_ip)?;
            let answer = post_sdp(
                &http,
                &format!("{}/whip/{}", args.server, args.stream),
                &client.offer_sdp()?,
                Some(key),
            )
            .await
            .context("WHIP publish")?;
            client.apply_answer(&answer)?;
            publisher_counters = Some(client.counters());
            client_txs[0]
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
        for i in 0..args.subscribers {
            let mut client = Client::new(ClientKind::Viewer, args.bind_ip)?;
            let answer = post_sdp(
                &http,
                &format!("{}/whep/{}{}", args.server, args.stream, layer),
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
        for (index, (c, (b0, p0, l0))) in counters.iter().zip(start).enumerate() {
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
                connected: c.connected.load(Ordering::Relaxed),
                packets,
                bitrate_bps: (bytes as f64 * 8.0 / elapsed) as u64,
                loss_percent: (loss * 100.0).round() / 100.0,
                keyframe_width: c.last_width.load(Ordering::Relaxed),
            });
        }
        let _ = stop_tx.send(true);
        let n = subscribers.len().max(1);
        let summary = Summary {
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
            publisher_packets_sent: publisher_counters.map(|c| c.packets.load(Ordering::Relaxed)),
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
