//! The per-packet forwarding path of the SFU: for each incoming RTP packet of a three-layer
//! simulcast publisher, `PacketInfo::parse` runs once (the driver's work per packet) and then
//! `Forwarder::handle_packet` runs for every subscriber of the track (1, 100, 500 subscribers,
//! spread evenly over the three layers, warmed up so every one is forwarding its layer). One
//! iteration is one frame on every layer (2 packets per layer for VP8, 3 for H.264), so
//! `per_packet` groups report packet x subscriber decisions per second (time / element = ns per
//! packet per subscriber) and `per_forwarded` groups report packets actually forwarded to a
//! subscriber per second (each subscriber gets one layer's packets, a third of the input).
//! Sockets, SRTP and payload copies are not included: this is the decision and header-munging
//! cost only.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use greenroom_benches::SimulcastStream;
use greenroom_sfu::{Codec, Forwarder, ForwarderConfig, Layer, LayerSet, TrackKind};

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

fn forwarding(c: &mut Criterion) {
    bench_codec(c, "vp8", Codec::Vp8, 2);
    bench_codec(c, "h264", Codec::H264, 3);
}

criterion_group!(benches, forwarding);
criterion_main!(benches);
