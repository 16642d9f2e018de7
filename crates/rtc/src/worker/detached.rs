//! Viewers carried without webrtc-rs after their handshake (see [`crate::direct::ice`]): when
//! to let go of a viewer's connection, and what the worker does with its datagrams then.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Peer, Role, State, sdp_attribute};
use crate::direct::ice::{self, Responder};

impl State {
    /// A datagram for a detached viewer: STUN is answered, SRTCP read, a DTLS alert ends the
    /// session; anything else (a stray handshake record, RTP) is dropped.
    pub(super) fn handle_detached(
        &mut self,
        key: u64,
        socket: usize,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Peer {
            detached: Some(responder),
            role: Role::Subscriber(sub),
            session,
            ..
        } = peer.as_mut()
        else {
            return;
        };
        match data.first() {
            Some(0..=3) => {
                let Some(answered) = responder.answer(data, from, self.crypto.crypto(), now) else {
                    tracing::trace!(session = %session, %from, "STUN refused");
                    return;
                };
                self.net.send_to(socket, from, &answered.response);
                if answered.nominated {
                    sub.set_route((socket, from));
                }
            }
            Some(20..=63) => {
                if ice::is_dtls_alert(data) {
                    self.remove_peer(key, "the viewer closed the connection");
                }
                return;
            }
            Some(128..=191) if ice::is_rtcp(data) => {
                let Some(keyframe) = sub.handle_rtcp(data, now) else {
                    return;
                };
                responder.heard(now);
                if keyframe {
                    self.handle_viewer_pli(key, now);
                }
                self.handle_viewer_feedback(key, now);
            }
            _ => return,
        }
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.next_timeout = peer.detached.as_ref().map(Responder::deadline);
            self.timers.schedule(key, peer);
        }
    }

    /// Drops a viewer's webrtc-rs connection once the direct path can carry it alone: the
    /// handshake is done on both sides and its keys are in hand (see [`crate::direct::ice`]).
    pub(super) fn detach(&mut self, key: u64, now: Instant) {
        if !self.detach_viewers {
            return;
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Peer {
            pc: Some(pc),
            role: Role::Subscriber(sub),
            connected: true,
            session,
            ..
        } = peer.as_mut()
        else {
            return;
        };
        if !sub.can_detach() {
            return;
        }
        let remote_ufrag = pc
            .remote_description()
            .and_then(|d| sdp_attribute(&d.sdp, "a=ice-ufrag:"));
        let fragment = pc
            .local_description()
            .map(|d| crate::sdpfrag::answer_fragment(&d.sdp));
        let (Some(remote_ufrag), Some(fragment)) = (remote_ufrag, fragment) else {
            return;
        };
        if !sub.detach() {
            tracing::warn!(session = %session, "no SRTCP keys: the viewer stays on webrtc-rs");
            return;
        }
        // Whatever webrtc-rs still had to send goes first.
        let _ = self.net.send_pending(pc);
        peer.pc = None;
        peer.detached = Some(Responder::new(
            peer.ufrag.clone(),
            std::mem::take(&mut peer.pwd),
            remote_ufrag,
            fragment,
            now,
        ));
        peer.next_timeout = peer.detached.as_ref().map(Responder::deadline);
        self.timers.schedule(key, peer);
        self.counters
            .viewers_detached
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(session = %peer.session, "viewer detached from webrtc-rs");
    }
}
