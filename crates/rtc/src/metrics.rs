//! Counters of the media path for the node's `/metrics`.
//!
//! Each worker (and the local publishers) updates its own set of relaxed atomics, so counting
//! costs an uncontended add per packet and no lock; a scrape sums the sets. Nothing is labelled
//! by stream, user or SSRC.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// One worker's counters (a cache line or two, never shared with another worker's).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub rtp_in_packets: AtomicU64,
    pub rtp_in_bytes: AtomicU64,
    pub rtp_out_packets: AtomicU64,
    pub rtp_out_bytes: AtomicU64,
    /// Keyframe requests (PLI) sent to publishers.
    pub plis_to_publishers: AtomicU64,
    /// PLI/FIR received from viewers.
    pub viewer_keyframe_requests: AtomicU64,
    pub layer_switches: AtomicU64,
    /// Bandwidth caps lowered / raised (a viewer's link carried less / more).
    pub bandwidth_downswitches: AtomicU64,
    pub bandwidth_upswitches: AtomicU64,
    /// Packets viewers NACKed (answered from the per-track send buffer, as RTX when
    /// negotiated).
    pub viewer_nacks: AtomicU64,
    /// Packets sent again in answer to viewers' NACKs.
    pub retransmissions: AtomicU64,
    /// Probes of viewers' links, and those that showed the next layer fits.
    pub probes: AtomicU64,
    pub probes_passed: AtomicU64,
    /// Media packets another worker's full queue refused.
    pub cross_worker_drops: AtomicU64,
    pub publishers: AtomicI64,
    pub viewers: AtomicI64,
    /// Viewers whose connection greenroom carries without webrtc-rs after the handshake.
    pub viewers_detached: AtomicI64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A point-in-time sum over the workers, for the metrics page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// WebRTC publishers (WHIP) connected now.
    pub webrtc_publishers: u64,
    /// RTMP and RTSP publishers now.
    pub local_publishers: u64,
    /// WHEP viewers now.
    pub viewers: u64,
    /// Of those, viewers carried without webrtc-rs after their handshake.
    pub viewers_detached: u64,
    pub rtp_in_packets: u64,
    pub rtp_in_bytes: u64,
    pub rtp_out_packets: u64,
    pub rtp_out_bytes: u64,
    pub plis_to_publishers: u64,
    pub viewer_keyframe_requests: u64,
    pub layer_switches: u64,
    pub bandwidth_downswitches: u64,
    pub bandwidth_upswitches: u64,
    pub viewer_nacks: u64,
    pub retransmissions: u64,
    pub probes: u64,
    pub probes_passed: u64,
    pub cross_worker_drops: u64,
    pub workers: u64,
}

impl MetricsSnapshot {
    pub(crate) fn sum(sets: &[std::sync::Arc<Counters>], local: &Counters) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let gauge = |c: &AtomicI64| c.load(Ordering::Relaxed).max(0) as u64;
        let mut out = MetricsSnapshot {
            workers: sets.len() as u64,
            local_publishers: gauge(&local.publishers),
            ..MetricsSnapshot::default()
        };
        for c in sets
            .iter()
            .map(|c| c.as_ref())
            .chain(std::iter::once(local))
        {
            out.rtp_in_packets += get(&c.rtp_in_packets);
            out.rtp_in_bytes += get(&c.rtp_in_bytes);
            out.rtp_out_packets += get(&c.rtp_out_packets);
            out.rtp_out_bytes += get(&c.rtp_out_bytes);
            out.plis_to_publishers += get(&c.plis_to_publishers);
            out.viewer_keyframe_requests += get(&c.viewer_keyframe_requests);
            out.layer_switches += get(&c.layer_switches);
            out.bandwidth_downswitches += get(&c.bandwidth_downswitches);
            out.bandwidth_upswitches += get(&c.bandwidth_upswitches);
            out.viewer_nacks += get(&c.viewer_nacks);
            out.retransmissions += get(&c.retransmissions);
            out.probes += get(&c.probes);
            out.probes_passed += get(&c.probes_passed);
            out.cross_worker_drops += get(&c.cross_worker_drops);
        }
        for c in sets {
            out.webrtc_publishers += gauge(&c.publishers);
            out.viewers += gauge(&c.viewers);
            out.viewers_detached += gauge(&c.viewers_detached);
        }
        out
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "greenroom_publishers",
            "gauge",
            "WebRTC (WHIP) publishers connected now.",
            self.webrtc_publishers,
        );
        metric(
            "greenroom_local_publishers",
            "gauge",
            "RTMP and RTSP publishers now.",
            self.local_publishers,
        );
        metric(
            "greenroom_viewers",
            "gauge",
            "WebRTC (WHEP) viewers connected now.",
            self.viewers,
        );
        metric(
            "greenroom_viewers_detached",
            "gauge",
            "WHEP viewers carried on greenroom's own lightweight transport after the handshake.",
            self.viewers_detached,
        );
        metric(
            "greenroom_rtc_workers",
            "gauge",
            "WebRTC worker threads.",
            self.workers,
        );
        metric(
            "greenroom_rtp_received_packets_total",
            "counter",
            "RTP packets received from publishers.",
            self.rtp_in_packets,
        );
        metric(
            "greenroom_rtp_received_bytes_total",
            "counter",
            "RTP payload bytes received from publishers.",
            self.rtp_in_bytes,
        );
        metric(
            "greenroom_rtp_sent_packets_total",
            "counter",
            "RTP packets forwarded to viewers.",
            self.rtp_out_packets,
        );
        metric(
            "greenroom_rtp_sent_bytes_total",
            "counter",
            "RTP payload bytes forwarded to viewers.",
            self.rtp_out_bytes,
        );
        metric(
            "greenroom_publisher_keyframe_requests_total",
            "counter",
            "Keyframe requests (PLI) sent to publishers, after throttling.",
            self.plis_to_publishers,
        );
        metric(
            "greenroom_viewer_keyframe_requests_total",
            "counter",
            "PLI and FIR received from viewers.",
            self.viewer_keyframe_requests,
        );
        metric(
            "greenroom_layer_switches_total",
            "counter",
            "Simulcast layer switches of viewers.",
            self.layer_switches,
        );
        metric(
            "greenroom_bandwidth_layer_downswitches_total",
            "counter",
            "Times a viewer's bandwidth estimate lowered its layer cap.",
            self.bandwidth_downswitches,
        );
        metric(
            "greenroom_bandwidth_layer_upswitches_total",
            "counter",
            "Times a viewer's bandwidth estimate raised its layer cap.",
            self.bandwidth_upswitches,
        );
        metric(
            "greenroom_viewer_nacked_packets_total",
            "counter",
            "Packets viewers asked to be retransmitted.",
            self.viewer_nacks,
        );
        metric(
            "greenroom_viewer_retransmitted_packets_total",
            "counter",
            "Packets sent again from the send cache in answer to viewers' NACKs.",
            self.retransmissions,
        );
        metric(
            "greenroom_bandwidth_probes_total",
            "counter",
            "Probes of viewers' links held below a layer by lost packets.",
            self.probes,
        );
        metric(
            "greenroom_bandwidth_probes_passed_total",
            "counter",
            "Probes that showed the viewer's link carries the next layer.",
            self.probes_passed,
        );
        metric(
            "greenroom_cross_worker_drops_total",
            "counter",
            "Media packets dropped because a worker's queue was full.",
            self.cross_worker_drops,
        );
        out
    }
}
