//! Sessions: new WHIP/WHEP sessions, PATCH (trickle ICE and ICE restart), statistics, and
//! their end.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::sansio::Protocol;

use super::{Peer, Role, State, WorkerStats};
use crate::direct::Transport;
use crate::direct::keys::KeyCapture;
use crate::engine::{NO_WORKER, StreamRoute};
use crate::metrics::Counters;
use crate::peer::{self, PeerOptions};
use crate::publisher::Publisher;
use crate::sdpfrag;
use crate::subscriber::Subscriber;
use crate::{Answer, PatchOutcome, RtcError, RtcEvent, SessionId, SubscribeOptions};
use greenroom_sfu::Layer;

impl State {
    /// Negotiates a new session: `options` is `None` for a publisher.
    pub(super) fn accept(
        &mut self,
        session: SessionId,
        route: Arc<StreamRoute>,
        offer: &str,
        options: Option<SubscribeOptions>,
        now: Instant,
    ) -> Result<Answer, RtcError> {
        let offer = RTCSessionDescription::offer(offer.to_owned())
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
        check_offer(&offer.sdp)?;
        let (ufrag, pwd) = peer::ice_credentials();
        let feedback = options
            .as_ref()
            .map(|_| Arc::new(crate::feedback::PeerFeedback::default()));
        let key_capture = match options {
            Some(_) => {
                Some(KeyCapture::new().map_err(|e| RtcError::PeerConnection(e.to_string()))?)
            }
            None => None,
        };
        let dtls_role = peer::answering_dtls_role(&offer.sdp);
        let mut pc = peer::build(
            PeerOptions {
                ice_servers: &self.ice_servers,
                credentials: Some((ufrag.clone(), pwd.clone())),
                answering_role: Some(dtls_role),
                feedback: feedback.clone(),
                key_capture: key_capture.clone(),
                sends_media: options.is_some(),
                receives_media: options.is_none(),
            },
            now,
        )
        .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
        let mut subscriber = match (&options, feedback, key_capture) {
            (Some(options), Some(feedback), Some(keys)) => {
                let transport =
                    Transport::new(keys, dtls_role == RTCDtlsRole::Client, feedback.clone());
                Some(
                    Subscriber::add_tracks(
                        &mut pc,
                        options.max_layer.unwrap_or(Layer::High),
                        feedback,
                        transport,
                    )
                    .map_err(|e| RtcError::PeerConnection(e.to_string()))?,
                )
            }
            _ => None,
        };
        pc.set_remote_description(now, offer)
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
        self.add_local_candidates(&mut pc)?;
        let answer = pc
            .create_answer(None)
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
        pc.set_local_description(now, answer)
            .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
        let sdp = pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| RtcError::PeerConnection("no local description".into()))?;
        tracing::trace!(%sdp, "local answer");
        check_answer(&sdp)?;
        if let Some(sub) = subscriber.as_mut() {
            sub.bind_payload_types(&mut pc);
        }
        let etag = peer::random_token(16);
        let key = self.next_key;
        self.next_key += 1;
        let role = match subscriber {
            Some(sub) => Role::Subscriber(sub),
            None => {
                route.epoch.fetch_add(1, Ordering::AcqRel);
                route.publisher_worker.store(self.index, Ordering::Release);
                Role::Publisher(Publisher::new(route.epoch.load(Ordering::Acquire)))
            }
        };
        let stream = route.stream.clone();
        let local = self.streams.entry(stream.clone()).or_default();
        local.route = Some(route.clone());
        match role {
            Role::Publisher(_) => {
                local.publisher = Some(key);
                self.counters.publishers.fetch_add(1, Ordering::Relaxed);
            }
            Role::Subscriber(_) => {
                self.counters.viewers.fetch_add(1, Ordering::Relaxed);
                local.subscribers.push(key);
                route
                    .subscriber_workers
                    .fetch_or(1 << self.index, Ordering::AcqRel);
            }
        }
        tracing::info!(
            stream = %stream,
            session = %session,
            worker = self.index,
            kind = if matches!(role, Role::Publisher(_)) { "publisher" } else { "viewer" },
            "session negotiated"
        );
        self.by_ufrag.insert(ufrag.clone(), key);
        self.by_session.insert(session.clone(), key);
        self.peers.insert(
            key,
            Box::new(Peer {
                session: session.clone(),
                route,
                pc: Some(Box::new(pc)),
                detached: None,
                ufrag,
                pwd,
                etag: etag.clone(),
                created: now,
                connected: false,
                next_timeout: Some(now),
                valid_until: options.as_ref().and_then(|o| o.valid_until),
                addrs: Vec::new(),
                role,
                remove: false,
                scheduled: None,
            }),
        );
        // The viewer's forwarder asks for a keyframe of its layer with the first packet it sees.
        self.drive(key, now);
        Ok(Answer { session, sdp, etag })
    }

    fn add_local_candidates(&self, pc: &mut RTCPeerConnection) -> Result<(), RtcError> {
        for addr in &self.net.local_addrs {
            let ips: Vec<IpAddr> = if addr.ip().is_unspecified() {
                self.advertise.clone()
            } else {
                vec![addr.ip()]
            };
            for ip in ips {
                let candidate = CandidateHostConfig {
                    base_config: CandidateConfig {
                        network: "udp".to_owned(),
                        address: ip.to_string(),
                        port: addr.port(),
                        component: 1,
                        ..Default::default()
                    },
                    ..Default::default()
                }
                .new_candidate_host()
                .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
                let init = RTCIceCandidate::from(&candidate)
                    .to_json()
                    .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
                pc.add_local_candidate(init)
                    .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
            }
        }
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
        Ok(())
    }

    pub(super) fn patch(
        &mut self,
        session: &SessionId,
        if_match: Option<&str>,
        body: &str,
        now: Instant,
    ) -> Result<PatchOutcome, RtcError> {
        let key = *self
            .by_session
            .get(session)
            .ok_or_else(|| RtcError::SessionNotFound {
                session: session.0.clone(),
            })?;
        let frag = sdpfrag::parse(body).map_err(RtcError::InvalidSdp)?;
        let peer = self
            .peers
            .get_mut(&key)
            .ok_or_else(|| RtcError::SessionNotFound {
                session: session.0.clone(),
            })?;
        let current_remote_ufrag = match (peer.pc.as_deref(), &peer.detached) {
            (Some(pc), _) => pc
                .remote_description()
                .and_then(|d| sdp_attribute(&d.sdp, "a=ice-ufrag:")),
            (None, Some(detached)) => Some(detached.remote_ufrag().to_owned()),
            (None, None) => None,
        };
        let restart =
            matches!((&frag.ufrag, &current_remote_ufrag), (Some(new), Some(old)) if new != old);
        if let Some(tag) = if_match {
            let tag = tag.trim().trim_start_matches("W/").trim_matches('"');
            if tag != "*" && tag != peer.etag {
                return Err(RtcError::PreconditionFailed {
                    session: session.0.clone(),
                });
            }
        }
        let outcome = if restart
            && let (None, Some(detached)) = (peer.pc.as_deref(), peer.detached.as_mut())
        {
            // A detached viewer: new local credentials, the same candidates; the viewer's
            // checks with them nominate the new pair (see `crate::direct::ice`).
            let Some(remote_ufrag) = frag.ufrag.clone().filter(|_| frag.pwd.is_some()) else {
                return Err(RtcError::InvalidSdp(
                    "ICE restart needs both a=ice-ufrag and a=ice-pwd".into(),
                ));
            };
            let (ufrag, pwd) = peer::ice_credentials();
            let sdpfrag = detached.restart(remote_ufrag, ufrag.clone(), pwd);
            peer.etag = peer::random_token(16);
            self.by_ufrag.remove(&peer.ufrag);
            self.by_ufrag.insert(ufrag.clone(), key);
            peer.ufrag = ufrag;
            tracing::info!(session = %session, "ICE restarted");
            PatchOutcome::Restarted {
                sdpfrag,
                etag: peer.etag.clone(),
            }
        } else if restart && let Some(pc) = peer.pc.as_deref_mut() {
            let (Some(ufrag), Some(pwd)) = (&frag.ufrag, &frag.pwd) else {
                return Err(RtcError::InvalidSdp(
                    "ICE restart needs both a=ice-ufrag and a=ice-pwd".into(),
                ));
            };
            let previous = pc
                .remote_description()
                .map(|d| d.sdp.clone())
                .ok_or_else(|| RtcError::PeerConnection("no remote description".into()))?;
            let offer =
                RTCSessionDescription::offer(sdpfrag::replace_credentials(&previous, ufrag, pwd))
                    .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
            pc.set_remote_description(now, offer)
                .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
            let answer = pc
                .create_answer(None)
                .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
            pc.set_local_description(now, answer)
                .map_err(|e| RtcError::PeerConnection(e.to_string()))?;
            let local = pc
                .local_description()
                .map(|d| d.sdp)
                .ok_or_else(|| RtcError::PeerConnection("no local description".into()))?;
            peer.etag = peer::random_token(16);
            if let Some(new_ufrag) = sdp_attribute(&local, "a=ice-ufrag:")
                && new_ufrag != peer.ufrag
            {
                self.by_ufrag.remove(&peer.ufrag);
                peer.ufrag = new_ufrag.clone();
                self.by_ufrag.insert(new_ufrag, key);
            }
            tracing::info!(session = %session, "ICE restarted");
            PatchOutcome::Restarted {
                sdpfrag: sdpfrag::answer_fragment(&local),
                etag: peer.etag.clone(),
            }
        } else {
            PatchOutcome::Trickled {
                etag: peer.etag.clone(),
            }
        };
        let peer = self
            .peers
            .get_mut(&key)
            .ok_or_else(|| RtcError::SessionNotFound {
                session: session.0.clone(),
            })?;
        // A detached viewer needs no candidates of its own: it answers the viewer's checks.
        let Some(pc) = peer.pc.as_deref_mut() else {
            return Ok(outcome);
        };
        for (mid, candidate) in frag.candidates {
            let init = RTCIceCandidateInit {
                candidate,
                sdp_mid: mid,
                sdp_mline_index: Some(0),
                username_fragment: frag.ufrag.clone(),
                ..Default::default()
            };
            if let Err(error) = pc.add_remote_candidate(init) {
                tracing::debug!(session = %session, %error, "remote candidate ignored");
            }
        }
        self.drive(key, now);
        Ok(outcome)
    }

    pub(super) fn stats(&self, stream: &str, now: Instant) -> WorkerStats {
        let mut out = WorkerStats::default();
        let Some(local) = self.streams.get(stream) else {
            return out;
        };
        if let Some(peer) = local.publisher.and_then(|k| self.peers.get(&k))
            && let Role::Publisher(publisher) = &peer.role
        {
            out.live = publisher.is_live();
            out.publisher =
                Some(publisher.stats(&peer.session, now.duration_since(peer.created), now));
        }
        for key in &local.subscribers {
            if let Some(Peer {
                role: Role::Subscriber(sub),
                session,
                ..
            }) = self.peers.get(key).map(Box::as_ref)
            {
                out.viewers.push(sub.stats(session));
            }
        }
        out
    }
}

/// The first value of an SDP attribute line.
pub(crate) fn sdp_attribute(sdp: &str, prefix: &str) -> Option<String> {
    sdp.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::to_owned)
}

// ----- the end of sessions -------------------------------------------------------------------

impl State {
    /// Removes the peers whose connection closed or failed.
    pub(super) fn reap(&mut self) {
        while let Some(key) = self.doomed.pop() {
            self.remove_peer(key, "connection closed or failed");
        }
    }

    /// Ends a session: its connection is closed (a detached viewer gets an RTCP BYE), it leaves
    /// the worker's indexes and its stream, and the node's counters.
    pub(super) fn remove_peer(&mut self, key: u64, why: &str) {
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        match &mut peer.role {
            Role::Publisher(_) => {
                self.counters.publishers.fetch_sub(1, Ordering::Relaxed);
            }
            Role::Subscriber(sub) => {
                self.counters.viewers.fetch_sub(1, Ordering::Relaxed);
                Counters::add(&self.counters.viewer_nacks, sub.take_uncounted_nacks());
            }
        }
        match peer.pc.as_deref_mut() {
            Some(pc) => {
                let _ = pc.close();
                let _ = self.net.send_pending(pc);
            }
            None => {
                self.counters
                    .viewers_detached
                    .fetch_sub(1, Ordering::Relaxed);
                if let Role::Subscriber(sub) = &mut peer.role {
                    sub.goodbye(self.net.outbox());
                    self.net.send_queued();
                }
            }
        }
        self.by_ufrag.remove(&peer.ufrag);
        self.by_session.remove(&peer.session);
        for addr in &peer.addrs {
            self.by_addr.remove(addr);
        }
        self.directory.remove_session(&peer.session);
        let stream = peer.route.stream.clone();
        let mut went_idle = false;
        if let Some(local) = self.streams.get_mut(&stream) {
            match &peer.role {
                Role::Publisher(publisher) => {
                    if local.publisher == Some(key) {
                        local.publisher = None;
                        let _ = peer.route.publisher_worker.compare_exchange(
                            self.index,
                            NO_WORKER,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                        went_idle = true;
                        let _ = publisher;
                    }
                }
                Role::Subscriber(_) => {
                    local.subscribers.retain(|k| *k != key);
                    if local.subscribers.is_empty() {
                        peer.route
                            .subscriber_workers
                            .fetch_and(!(1 << self.index), Ordering::AcqRel);
                    }
                }
            }
            if local.publisher.is_none() && local.subscribers.is_empty() {
                self.streams.remove(&stream);
            }
        }
        tracing::info!(stream = %stream, session = %peer.session, why, "session ended");
        if went_idle {
            let _ = self.events.send(RtcEvent::Idle {
                stream: stream.to_string(),
            });
        }
    }

    /// Ends every session (the server is shutting down).
    pub(super) fn close_all(&mut self) {
        let keys: Vec<u64> = self.peers.keys().copied().collect();
        for key in keys {
            self.remove_peer(key, "server shutting down");
        }
    }
}

/// Rejects offers that cannot work before any state is created.
fn check_offer(sdp: &str) -> Result<(), RtcError> {
    let media: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).collect();
    if media.is_empty() {
        return Err(RtcError::InvalidSdp(
            "the offer has no media section".into(),
        ));
    }
    if !media
        .iter()
        .any(|m| m.starts_with("m=audio") || m.starts_with("m=video"))
    {
        return Err(RtcError::UnsupportedMedia(
            "the offer has neither audio nor video".into(),
        ));
    }
    Ok(())
}

/// An answer that rejects every media section means nothing can flow.
fn check_answer(sdp: &str) -> Result<(), RtcError> {
    let accepted = sdp
        .lines()
        .filter(|l| l.starts_with("m=audio") || l.starts_with("m=video"))
        .any(|l| l.split_whitespace().nth(1).is_some_and(|port| port != "0"));
    if accepted {
        Ok(())
    } else {
        Err(RtcError::UnsupportedMedia(
            "no offered codec is supported (greenroom takes Opus, VP8 and H.264)".into(),
        ))
    }
}
