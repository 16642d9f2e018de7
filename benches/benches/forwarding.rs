//! The per-packet forwarding path of the SFU: for each incoming RTP packet of a three-layer
//! simulcast publisher, `PacketInfo::parse` runs once (the driver's work per packet) and then
//! `Forwarder::handle_packet` runs for every subscriber of the track (1, 100, 500 subscribers,
//! spread evenly over the three layers, warmed up so every one is forwarding its layer). One
//! iteration is one frame on every layer (2 packets per layer for VP8, 3 for H.264), so
//! `per_packet` groups report packet x subscriber decisions per second (time / element = ns per
//! packet per subscriber) and `per_forwarded` groups report packets actually forwarded to a
//! subscriber per second (each subscriber gets one layer's packets, a third of the input).
//! Sockets, SRTP and payload copies are not included: this is the decision and header-munging
//! cost only. `selection/{n}` is the per-viewer bandwidth work the driver does every 100 ms:
//! the NACK-based ceiling ([`LossBound`]) and the layer selector ([`LayerSelector`]) for `n`
//! viewers whose estimates wander around the layer rates (time / element = ns per viewer tick).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use greenroom_benches::SimulcastStream;
use greenroom_sfu::{
    Codec, Forwarder, ForwarderConfig, Layer, LayerSelector, LayerSet, LossBound, TrackKind,
};

const SUBSCRIBERS: [usize; 3] = [1, 100, 500];
const FRAME_INTERVAL: Duration = Duration::from_millis(33);

struct Fixture {
    stream: SimulcastStream,
    forwarders: Vec<Forwarder>,
    now: Instant,
    forwarded_per_round: u64,
}

impl Fixture {
    /// Subscribers pinned High, Mid, Low in turn (one subscriber: High), warmed up past the
    /// first key frames.
    fn new(codec: Codec, packets_per_frame: usize, subscribers: usize) -> Fixture {
        let forwarders = (0..subscribers)
            .map(|index| {
                let mut forwarder = Forwarder::new(ForwarderConfig {
                    kind: TrackKind::Video,
                    codec,
                    max_layer: Layer::ALL[2 - index % 3],
                });
                forwarder.set_available_layers(LayerSet::all());
                forwarder
            })
            .collect();
        let mut fixture = Fixture {
            stream: SimulcastStream::new(codec, packets_per_frame, 300),
            forwarders,
            now: Instant::now(),
            forwarded_per_round: 0,
        };
        for _ in 0..3 {
            fixture.forwarded_per_round = fixture.round();
        }
        assert_eq!(
            fixture.forwarded_per_round,
            (subscribers * packets_per_frame) as u64,
            "every subscriber forwards one layer"
        );
        fixture
    }

    /// One frame on every layer through every forwarder; returns packets forwarded.
    fn round(&mut self) -> u64 {
        let codec = self.stream.codec();
        let now = self.now;
        let forwarders = &mut self.forwarders;
        let mut forwarded = 0;
        self.stream.next_round(|packet| {
            let info = packet.parse(codec);
            for forwarder in forwarders.iter_mut() {
                if let Some(munged) = forwarder.handle_packet(now, black_box(&info)) {
                    black_box(munged);
                    forwarded += 1;
                }
            }
        });
        self.now += FRAME_INTERVAL;
        forwarded
    }
}

fn bench_codec(c: &mut Criterion, name: &str, codec: Codec, packets_per_frame: usize) {
    for (group_name, per_forwarded) in [("per_packet", false), ("per_forwarded", true)] {
        let mut group = c.benchmark_group(format!("forwarding/{name}/{group_name}"));
        for subscribers in SUBSCRIBERS {
            let mut fixture = Fixture::new(codec, packets_per_frame, subscribers);
            let elements = if per_forwarded {
                fixture.forwarded_per_round
            } else {
                (fixture.stream.packets_per_round() * subscribers) as u64
            };
            group.throughput(Throughput::Elements(elements));
            group.bench_function(BenchmarkId::from_parameter(subscribers), |b| {
                b.iter(|| fixture.round());
            });
        }
        group.finish();
    }
}

/// One viewer's bandwidth state and the counters the driver would feed it.
struct Viewer {
    selector: LayerSelector,
    bound: LossBound,
    sent_packets: u64,
    nacked_packets: u64,
    sent_bytes: u64,
}

fn bench_selection(c: &mut Criterion) {
    const TICK: Duration = Duration::from_millis(100);
    const RATES: [u64; 3] = [150_000, 500_000, 1_500_000];
    let mut group = c.benchmark_group("forwarding/selection");
    for subscribers in SUBSCRIBERS {
        let mut viewers: Vec<Viewer> = (0..subscribers)
            .map(|_| Viewer {
                selector: LayerSelector::new(),
                bound: LossBound::new(),
                sent_packets: 0,
                nacked_packets: 0,
                sent_bytes: 0,
            })
            .collect();
        let mut now = Instant::now();
        let mut tick: u64 = 0;
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(BenchmarkId::from_parameter(subscribers), |b| {
            b.iter(|| {
                now += TICK;
                tick += 1;
                for (index, viewer) in viewers.iter_mut().enumerate() {
                    // Estimates sweep 0.3–3 Mbit/s at each viewer's own phase; one viewer in
                    // seven drops a third of its packets now and then.
                    let phase = (tick + index as u64 * 13) % 100;
                    let estimate = 300_000 + phase * 27_000;
                    viewer.sent_packets += 15;
                    viewer.sent_bytes += 15 * 1_200;
                    if index % 7 == 0 && phase < 10 {
                        viewer.nacked_packets += 5;
                    }
                    let ceiling = viewer.bound.update(
                        now,
                        viewer.sent_packets,
                        viewer.nacked_packets,
                        viewer.sent_bytes,
                    );
                    let estimate = ceiling.map_or(estimate, |c| c.min(estimate));
                    black_box(viewer.selector.update(
                        now,
                        estimate,
                        RATES,
                        LayerSet::all(),
                        40_000,
                    ));
                }
            });
        });
    }
    group.finish();
}

fn forwarding(c: &mut Criterion) {
    bench_codec(c, "vp8", Codec::Vp8, 2);
    bench_codec(c, "h264", Codec::H264, 3);
    bench_selection(c);
}

criterion_group!(benches, forwarding);
criterion_main!(benches);
