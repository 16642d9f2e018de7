//! The media path: a publisher's RTP to every viewer's forwarder, keyframe requests back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Command, MediaPacket, Peer, Role, State};
use crate::engine::{LOCAL_PUBLISHER, NO_WORKER};
use crate::metrics::Counters;
use greenroom_sfu::{CapChange, Layer, LayerSet};

impl State {
    /// Returns true when this packet made the stream live.
    pub(super) fn handle_publisher_rtp(
        &mut self,
        key: u64,
        track_id: &str,
        packet: rtc::rtp::Packet,
        now: Instant,
    ) -> bool {
        let Some(peer) = self.peers.get_mut(&key) else {
            return false;
        };
        let Peer {
            role: Role::Publisher(publisher),
            pc: Some(pc),
            route,
            ..
        } = peer.as_mut()
        else {
            return false;
        };
        let Some((media, became_live)) =
            publisher.handle_rtp(pc, &route.stream, track_id, packet, now)
        else {
            return false;
        };
        Counters::add(&self.counters.rtp_in_packets, 1);
        Counters::add(&self.counters.rtp_in_bytes, media.payload.len() as u64);
        peer.route.taps.offer(&media);
        let media = Arc::new(media);
        let mask = peer.route.subscriber_workers.load(Ordering::Acquire);
        for (worker, tx) in self.medias.iter().enumerate() {
            if worker != self.index && mask & (1 << worker) != 0 {
                // A full queue means that worker is overloaded: dropping is what a congested
                // link would do, and the viewers' NACK/PLI machinery recovers.
                if tx.try_send(media.clone()).is_err() {
                    Counters::add(&self.counters.cross_worker_drops, 1);
                }
            }
        }
        if mask & (1 << self.index) != 0 {
            self.deliver(&media, now);
        }
        became_live
    }

    /// Hands one publisher packet to every local viewer of its stream.
    pub(super) fn deliver(&mut self, media: &MediaPacket, now: Instant) {
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
            let Peer {
                role: Role::Subscriber(sub),
                pc,
                connected: true,
                ..
            } = peer.as_mut()
            else {
                continue;
            };
            let forwarded = sub.forward(pc.as_deref_mut(), media, &info, now, self.net.outbox());
            if let Some(layer) = forwarded.wants {
                wanted.insert(layer);
            }
            if forwarded.switched {
                Counters::add(&self.counters.layer_switches, 1);
            }
            // At the selector's pace (every 100 ms), not per packet.
            if let Some(events) = sub.take_events() {
                match events.cap_change {
                    Some(CapChange::Down { .. }) => {
                        Counters::add(&self.counters.bandwidth_downswitches, 1);
                    }
                    Some(CapChange::Up { .. }) => {
                        Counters::add(&self.counters.bandwidth_upswitches, 1);
                    }
                    None => {}
                }
                Counters::add(&self.counters.viewer_nacks, events.nacks);
                if let Some(passed) = events.probe_passed {
                    Counters::add(&self.counters.probes, 1);
                    Counters::add(&self.counters.probes_passed, u64::from(passed));
                }
            }
            if let Some(bytes) = forwarded.written {
                Counters::add(&self.counters.rtp_out_packets, 1);
                Counters::add(&self.counters.rtp_out_bytes, bytes as u64);
            }
            if forwarded.through_connection {
                self.queue_forwarded(*key);
            }
        }
        self.net.send_queued();
        if let Some(local) = self.streams.get_mut(&media.stream) {
            local.subscribers = subscribers;
        }
        for layer in wanted.iter() {
            self.request_keyframe(&media.stream, layer, now);
        }
    }

    /// A viewer's NACKs and congestion feedback, on the direct path.
    pub(super) fn handle_viewer_feedback(&mut self, key: u64, now: Instant) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Role::Subscriber(sub) = &mut peer.role else {
            return;
        };
        let resent = sub.handle_link_feedback(now, self.net.outbox());
        if resent > 0 {
            Counters::add(&self.counters.retransmissions, resent as u64);
            self.net.send_queued();
        }
    }

    pub(super) fn handle_viewer_pli(&mut self, key: u64, now: Instant) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Role::Subscriber(sub) = &mut peer.role else {
            return;
        };
        let layer = sub.handle_keyframe_request();
        let stream = peer.route.stream.clone();
        Counters::add(&self.counters.viewer_keyframe_requests, 1);
        if let Some(layer) = layer {
            self.request_keyframe(&stream, layer, now);
        }
    }

    pub(super) fn request_keyframe(&mut self, stream: &Arc<str>, layer: Layer, now: Instant) {
        // The stream's route is kept beside its local viewers: no directory lock here.
        let Some(route) = self.streams.get(stream).and_then(|l| l.route.clone()) else {
            return;
        };
        let worker = route.publisher_worker.load(Ordering::Acquire);
        if worker == NO_WORKER {
            return;
        }
        if worker == LOCAL_PUBLISHER {
            self.directory.local_keyframe_request(stream, layer);
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

    pub(super) fn handle_keyframe_request(&mut self, stream: &str, layer: Layer, now: Instant) {
        let Some(key) = self.streams.get(stream).and_then(|l| l.publisher) else {
            return;
        };
        if let Some(Peer {
            role: Role::Publisher(publisher),
            pc: Some(pc),
            ..
        }) = self.peers.get_mut(&key).map(Box::as_mut)
            && publisher.request_keyframe(pc, layer, now)
        {
            Counters::add(&self.counters.plis_to_publishers, 1);
        }
        self.flush(key);
    }
}
