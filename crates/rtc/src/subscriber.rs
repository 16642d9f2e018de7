//! The server side of a WHEP session: one audio and one video sender, each fed by a forwarder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters,
    RtpCodecKind,
};
use rtc::shared::error::Error;

use crate::direct::{Datagram, Outbound, Rtp, Transport};
use crate::feedback::{LinkFeedback, PeerFeedback};
use crate::worker::MediaPacket;
use crate::{SessionId, ViewerStats};
use greenroom_media::Codec;
use greenroom_sfu::{
    CapChange, Forwarder, ForwarderConfig, Layer, LayerSelector, LayerSet, LossBound, MAX_SPREAD,
    PROBE_DURATION, PacketInfo, TrackKind,
};

struct OutTrack {
    sender: RTCRtpSenderId,
    ssrc: u32,
    /// What the direct path keeps of this stream (RTX, retransmission cache, report counts).
    out: Outbound,
    forwarder: Forwarder,
    /// Negotiated payload type per codec.
    payload_types: Vec<(Codec, u8)>,
    epoch: u64,
    codec: Option<Codec>,
    available: LayerSet,
}

impl OutTrack {
    fn payload_type(&self, codec: Codec) -> Option<u8> {
        self.payload_types
            .iter()
            .find(|(c, _)| *c == codec)
            .map(|(_, pt)| *pt)
    }
}

/// How often a viewer's bandwidth estimate is looked at.
const SELECT_INTERVAL: Duration = Duration::from_millis(100);

pub(crate) struct Subscriber {
    max_layer: Layer,
    audio: OutTrack,
    video: OutTrack,
    packets_sent: u64,
    bytes_sent: u64,
    video_packets_sent: u64,
    /// What the viewer's NACKs say its link carries when it drops much of what it gets.
    loss_bound: LossBound,
    /// What the viewer's RTCP says (estimate, loss, RTT), written by the interceptor chain.
    feedback: Arc<PeerFeedback>,
    /// The bandwidth-driven layer cap.
    selector: LayerSelector,
    selected_at: Option<Instant>,
    /// A cap change not yet counted by the worker.
    cap_change: Option<CapChange>,
    /// A probe's outcome (passed or not) not yet counted by the worker.
    probe_passed: Option<bool>,
    /// NACKed packets already counted by the worker.
    nacks_counted: u64,
    /// A selection ran since the worker last took the events.
    events_ready: bool,
    /// Encryption, destination and congestion control of the direct media path.
    transport: Transport,
}

/// What handing one publisher packet to a viewer did.
#[derive(Debug, Default)]
pub(crate) struct Forwarded {
    /// Payload bytes sent.
    pub written: Option<usize>,
    /// A layer this viewer needs a keyframe of.
    pub wants: Option<Layer>,
    /// The viewer just switched layers.
    pub switched: bool,
    /// Something was written through the peer connection (media and its reports when the
    /// handshake gave the direct path no keys): the worker must drain it.
    pub through_connection: bool,
}

/// What happened to a viewer since the worker last asked, for the node's counters.
#[derive(Debug, Default)]
pub(crate) struct SubscriberEvents {
    pub cap_change: Option<CapChange>,
    pub nacks: u64,
    /// A probe of the viewer's link ended: whether it passed.
    pub probe_passed: Option<bool>,
}

fn add_track(
    pc: &mut RTCPeerConnection,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    config: ForwarderConfig,
) -> Result<OutTrack, Error> {
    let ssrc = rand::random::<u32>();
    let name = if kind == RtpCodecKind::Audio {
        "audio"
    } else {
        "video"
    };
    let track = MediaStreamTrack::new(
        "greenroom".to_owned(),
        name.to_owned(),
        name.to_owned(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                // Video retransmissions go out as RTX (RFC 4588) on their own SSRC when the
                // viewer negotiated it, so they never disturb the media stream's sequence.
                rtx: (kind == RtpCodecKind::Video).then(|| RTCRtpRtxParameters {
                    ssrc: rand::random::<u32>(),
                }),
                ..Default::default()
            },
            codec,
            active: true,
            ..Default::default()
        }],
    );
    let sender = pc.add_track(track)?;
    let video = kind == RtpCodecKind::Video;
    Ok(OutTrack {
        sender,
        ssrc,
        out: Outbound::new(ssrc, if video { 90_000 } else { 48_000 }, video),
        forwarder: Forwarder::new(config),
        payload_types: Vec::new(),
        epoch: 0,
        codec: None,
        available: LayerSet::new(),
    })
}

impl Subscriber {
    /// Adds the audio and video senders; call before applying the viewer's offer.
    pub(crate) fn add_tracks(
        pc: &mut RTCPeerConnection,
        max_layer: Layer,
        feedback: Arc<PeerFeedback>,
        transport: Transport,
    ) -> Result<Self, Error> {
        let audio = add_track(
            pc,
            RtpCodecKind::Audio,
            RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            ForwarderConfig {
                kind: TrackKind::Audio,
                codec: Codec::Opus,
                max_layer: Layer::High,
            },
        )?;
        let video = add_track(
            pc,
            RtpCodecKind::Video,
            RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
            ForwarderConfig {
                kind: TrackKind::Video,
                codec: Codec::Vp8,
                max_layer,
            },
        )?;
        Ok(Subscriber {
            max_layer,
            audio,
            video,
            packets_sent: 0,
            bytes_sent: 0,
            video_packets_sent: 0,
            // Each viewer waits its back-offs out a share longer of its own: viewers do not retry
            // in step.
            loss_bound: LossBound::with_spread(rand::random::<f64>() * MAX_SPREAD),
            feedback,
            selector: LayerSelector::new(),
            selected_at: None,
            cap_change: None,
            probe_passed: None,
            nacks_counted: 0,
            events_ready: false,
            transport,
        })
    }

    /// Learns the negotiated payload types (after the answer is set).
    pub(crate) fn bind_payload_types(&mut self, pc: &mut RTCPeerConnection) {
        for track in [&mut self.audio, &mut self.video] {
            let Some(mut sender) = pc.rtp_sender(track.sender) else {
                continue;
            };
            let parameters = sender.get_parameters();
            let twcc = parameters
                .rtp_parameters
                .header_extensions
                .iter()
                .find(|e| e.uri == rtc::sdp::extmap::TRANSPORT_CC_URI)
                .and_then(|e| u8::try_from(e.id).ok());
            let rtx_types: Vec<(u8, u8)> = parameters
                .rtp_parameters
                .codecs
                .iter()
                .filter(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_RTX))
                .filter_map(|c| {
                    let apt = c
                        .rtp_codec
                        .sdp_fmtp_line
                        .split(';')
                        .find_map(|p| p.trim().strip_prefix("apt=")?.parse::<u8>().ok())?;
                    Some((apt, c.payload_type))
                })
                .collect();
            let rtx_ssrc = parameters
                .encodings
                .first()
                .and_then(|e| e.rtp_coding_parameters.rtx.as_ref())
                .map(|rtx| rtx.ssrc);
            track.out.bind(twcc, rtx_ssrc.map(|ssrc| (ssrc, rtx_types)));
            let mut types: Vec<(Codec, u8)> = Vec::new();
            for c in &parameters.rtp_parameters.codecs {
                let Some(codec) = Codec::from_mime(&c.rtp_codec.mime_type) else {
                    continue;
                };
                let fmtp = &c.rtp_codec.sdp_fmtp_line;
                if codec == Codec::H264 && !fmtp.contains("packetization-mode=1") {
                    continue;
                }
                if !types.iter().any(|(known, _)| *known == codec) {
                    types.push((codec, c.payload_type));
                }
            }
            tracing::debug!(?types, "viewer payload types");
            track.payload_types = types;
        }
    }

    pub(crate) fn set_max_layer(&mut self, layer: Layer) {
        self.max_layer = layer;
        self.video.forwarder.set_max_layer(layer);
    }

    /// The layer a viewer's PLI should be answered from.
    pub(crate) fn handle_keyframe_request(&mut self) -> Option<Layer> {
        self.video
            .forwarder
            .target_layer()
            .or(self.video.forwarder.current_layer())
    }

    /// Forwards one publisher packet if this viewer should get it: on the direct path into
    /// `out`, or through the peer connection when the handshake gave no usable keys.
    pub(crate) fn forward(
        &mut self,
        pc: Option<&mut RTCPeerConnection>,
        media: &MediaPacket,
        info: &PacketInfo<'_>,
        now: Instant,
        out: &mut Vec<Datagram>,
    ) -> Forwarded {
        let track = match media.kind {
            TrackKind::Audio => &mut self.audio,
            TrackKind::Video => &mut self.video,
        };
        if track.codec != Some(media.codec) {
            track.forwarder.set_codec(media.codec);
            track.codec = Some(media.codec);
            track.epoch = media.epoch;
        } else if track.epoch != media.epoch {
            track.forwarder.handle_source_reset();
            track.epoch = media.epoch;
        }
        if track.available != media.available && media.kind == TrackKind::Video {
            track.forwarder.set_available_layers(media.available);
            track.available = media.available;
        }
        if media.kind == TrackKind::Video
            && self
                .selected_at
                .is_none_or(|at| now.saturating_duration_since(at) >= SELECT_INTERVAL)
        {
            self.selected_at = Some(now);
            self.events_ready = true;
            self.transport.prune(now);
            if let Some((probed, received)) = self.transport.take_probe_outcome(now) {
                let passed = self.loss_bound.probe_done(now, probed, received);
                if passed {
                    self.transport.raise_estimate(probed);
                }
                self.probe_passed = Some(passed);
            }
            let feedback = self.feedback.snapshot();
            self.loss_bound.update(
                now,
                self.video_packets_sent,
                feedback.nacked,
                self.bytes_sent,
            );
            let [q, h, f, audio] = media.rates;
            let estimate = Self::estimate(&self.loss_bound, feedback.estimate_bps, feedback.source);
            // Probe when the estimate keeps the viewer below a layer it may have.
            if let Some((estimate, _)) = estimate
                && self.transport.can_probe(&track.out)
                && let Some(wanted) =
                    self.selector
                        .up_need([q, h, f], media.available, audio, self.max_layer)
                && let Some(rate) = self.loss_bound.probe_rate(now, estimate, wanted)
            {
                self.transport.start_probe(now, rate, PROBE_DURATION);
            }
            if let Some((estimate, source)) = estimate
                && let Some(change) =
                    self.selector
                        .update(now, estimate, [q, h, f], media.available, audio)
            {
                tracing::debug!(?change, estimate, ?source, "viewer's layer cap changed");
                track.forwarder.set_bandwidth_cap(self.selector.cap());
                self.cap_change = Some(change);
            }
        }
        let before = track.forwarder.current_layer();
        let munged = track.forwarder.handle_packet(now, info);
        let mut result = Forwarded {
            wants: track.forwarder.poll_keyframe_request(now),
            switched: media.kind == TrackKind::Video
                && before.is_some()
                && track.forwarder.current_layer() != before,
            ..Forwarded::default()
        };
        let Some(munged) = munged else {
            return result;
        };
        let Some(payload_type) = track.payload_type(media.codec) else {
            return result;
        };
        let len = media.payload.len();
        let sent = if self.transport.ready() {
            let packet = Rtp {
                payload_type,
                sequence_number: munged.sequence_number,
                timestamp: munged.timestamp,
                marker: munged.marker,
                payload: &media.payload,
                vp8: munged.vp8,
            };
            let sent = self.transport.send(&mut track.out, packet, now, out);
            if media.kind == TrackKind::Video {
                self.transport.pad(&mut track.out, now, out);
            }
            sent.is_some()
        } else if self.transport.keys_missing()
            && let Some(pc) = pc
        {
            result.through_connection = true;
            let payload = match munged.vp8 {
                Some(rewrite) => {
                    let mut copy = BytesMut::from(&media.payload[..]);
                    if greenroom_media::vp8::rewrite_descriptor(
                        &mut copy,
                        rewrite.picture_id,
                        rewrite.tl0picidx,
                    )
                    .is_err()
                    {
                        return result;
                    }
                    copy.freeze()
                }
                None => media.payload.clone(),
            };
            let sent = Self::write_through(pc, track, payload_type, &munged, payload, now);
            // Without keys of its own the connection also carries the reports.
            if let Some(report) = track.out.due_report(now)
                && let Some(mut sender) = pc.rtp_sender(track.sender)
                && let Err(error) = sender.write_rtcp(now, vec![Box::new(report)])
            {
                tracing::trace!(%error, "sender report not written");
            }
            sent
        } else {
            // Connected but nothing sent on the pair yet: the packet is lost like any other.
            false
        };
        if sent {
            self.packets_sent += 1;
            self.bytes_sent += len as u64;
            if media.kind == TrackKind::Video {
                self.video_packets_sent += 1;
            }
            result.written = Some(len);
        }
        if self.transport.ready()
            && let Some(report) = track.out.due_report(now)
        {
            self.transport.send_report(report, now, out);
        }
        result
    }

    /// Whether the worker can drop the viewer's peer connection (see [`crate::direct::ice`]).
    pub(crate) fn can_detach(&self) -> bool {
        self.transport.can_detach()
    }

    /// Prepares the direct path to carry the connection alone; false if it cannot.
    pub(crate) fn detach(&mut self) -> bool {
        self.transport.detach()
    }

    /// One SRTCP datagram from a detached viewer: what it says goes where the feedback tap
    /// would have put it. Returns whether it asks for a keyframe; `None` if it did not open.
    pub(crate) fn handle_rtcp(&mut self, datagram: &[u8], now: Instant) -> Option<bool> {
        let packets = self.transport.open_rtcp(datagram)?;
        self.feedback.observe_rtcp(&packets, now);
        Some(crate::peer::is_keyframe_request(&packets))
    }

    /// An RTCP BYE for the viewer's streams (RFC 3550 §6.6), when the server ends a detached
    /// session: there is no DTLS state left to send close_notify with.
    pub(crate) fn goodbye(&mut self, out: &mut Vec<Datagram>) {
        let bye = rtc::rtcp::goodbye::Goodbye {
            sources: vec![self.audio.ssrc, self.video.ssrc],
            reason: bytes::Bytes::from_static(b"session ended"),
        };
        self.transport.send_rtcp(&[Box::new(bye)], out);
    }

    /// The way without the direct path: webrtc-rs encrypts and sends.
    fn write_through(
        pc: &mut RTCPeerConnection,
        track: &OutTrack,
        payload_type: u8,
        munged: &greenroom_sfu::Munged,
        payload: bytes::Bytes,
        now: Instant,
    ) -> bool {
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: munged.marker,
                payload_type,
                sequence_number: munged.sequence_number,
                timestamp: munged.timestamp,
                ssrc: track.ssrc,
                ..Default::default()
            },
            payload,
        };
        let Some(mut sender) = pc.rtp_sender(track.sender) else {
            return false;
        };
        match sender.write_rtp(now, packet) {
            Ok(()) => true,
            Err(error) => {
                tracing::trace!(%error, "viewer write failed");
                false
            }
        }
    }

    /// The viewer's NACKs and transport-wide CC feedback (queued by the feedback tap): lost
    /// video packets are sent again, the feedback updates the estimate. Returns the packets
    /// resent.
    pub(crate) fn handle_link_feedback(&mut self, now: Instant, out: &mut Vec<Datagram>) -> usize {
        let mut resent = 0;
        for feedback in self.feedback.take_link_feedback() {
            match feedback {
                LinkFeedback::Nack(nack) => {
                    if nack.media_ssrc == self.video.ssrc && self.transport.ready() {
                        resent += self
                            .transport
                            .retransmit(&mut self.video.out, &nack, now, out);
                    }
                }
                LinkFeedback::Twcc(twcc, at) => self.transport.handle_twcc(&twcc, at),
            }
        }
        resent
    }

    /// Where the peer connection last sent DTLS or RTCP: the direct path sends there too.
    pub(crate) fn set_route(&mut self, route: (usize, std::net::SocketAddr)) {
        self.transport.set_route(route);
    }

    /// The cap change and the NACKs since the last selection, once per selection.
    pub(crate) fn take_events(&mut self) -> Option<SubscriberEvents> {
        if !std::mem::take(&mut self.events_ready) {
            return None;
        }
        Some(SubscriberEvents {
            cap_change: self.cap_change.take(),
            nacks: self.take_uncounted_nacks(),
            probe_passed: self.probe_passed.take(),
        })
    }

    /// The NACKs received since this was last asked (for the node's total: at each selection,
    /// and once more when the viewer leaves, so none go uncounted).
    pub(crate) fn take_uncounted_nacks(&mut self) -> u64 {
        let nacked = self.feedback.snapshot().nacked;
        let nacks = nacked.saturating_sub(self.nacks_counted);
        self.nacks_counted = nacked;
        nacks
    }

    /// The estimate the layer selector works from, and where it comes from: the congestion
    /// controller's (or the viewer's REMB), lowered to the loss-based ceiling while there is
    /// one.
    fn estimate(
        loss_bound: &LossBound,
        controller: Option<u64>,
        source: Option<&'static str>,
    ) -> Option<(u64, Option<&'static str>)> {
        match (controller, loss_bound.bound_bps()) {
            (Some(estimate), Some(ceiling)) if ceiling < estimate => Some((ceiling, Some("nack"))),
            (None, Some(ceiling)) => Some((ceiling, Some("nack"))),
            (Some(estimate), _) => Some((estimate, source)),
            (None, None) => None,
        }
    }

    pub(crate) fn stats(&self, session: &SessionId) -> ViewerStats {
        let feedback = self.feedback.snapshot();
        let estimate = Self::estimate(&self.loss_bound, feedback.estimate_bps, feedback.source);
        ViewerStats {
            session: session.clone(),
            layer: self.video.forwarder.current_layer().map(Layer::rid),
            max_layer: self.max_layer.rid(),
            bandwidth_layer: self.selector.cap().rid(),
            packets_sent: self.packets_sent,
            bytes_sent: self.bytes_sent,
            estimate_bps: estimate.map(|(bps, _)| bps),
            estimate_source: estimate.and_then(|(_, source)| source),
            loss: feedback.loss,
            rtt_ms: feedback.rtt_ms,
            nacks_received: feedback.nacked,
        }
    }
}
