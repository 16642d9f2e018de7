//! The direct media path: a viewer's RTP leaves without passing through webrtc-rs.
//!
//! webrtc-rs negotiates the viewer's connection (ICE, DTLS, SDP) and handles its RTCP, but
//! each RTP packet written through it crosses every handler and interceptor of its pipeline,
//! rebuilds the sender's parameters and is queued and re-queued on the way: most of the CPU a
//! forwarded packet cost. Here greenroom does for its viewers what those interceptors did:
//! - encrypts with an SRTP context of its own, keyed from the connection's DTLS handshake
//!   ([`keys::KeyCapture`]), and sends to the candidate pair webrtc-rs last sent on;
//! - numbers packets with the transport-wide sequence extension (when negotiated), remembers
//!   their departures and turns the viewer's TWCC feedback into a GCC estimate;
//! - keeps the last [`CACHE_PACKETS`] video packets and answers NACKs from them (a packet at
//!   most once per round trip), as RTX (RFC 4588) when negotiated;
//! - counts what it sends for the sender reports it seals and sends with the same keys (the
//!   viewer's receiver reports give round-trip times against them);
//! - once the viewer's side of the handshake is done, opens the viewer's RTCP itself, so the
//!   worker can drop the viewer's `RTCPeerConnection` altogether ([`ice`]).

pub(crate) mod ice;
pub(crate) mod keys;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use rtc::interceptor::{BandwidthEstimator, GCC_MIN_BITRATE, Gcc, History, convert_twcc};
use rtc::rtcp::Packet as RtcpPacket;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp::header::{EXTENSION_PROFILE_ONE_BYTE, Header};
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::srtp::context::Context;

use crate::feedback::PeerFeedback;
use greenroom_sfu::Vp8Rewrite;
use keys::KeyCapture;

/// A datagram ready to leave: the worker socket's index, the destination, the bytes.
pub(crate) type Datagram = (usize, SocketAddr, BytesMut);

/// Video packets kept for retransmission per viewer (a power of two): about 1.8 s of a
/// 1.5 Mbit/s layer, more than the round trips NACKs are answered within.
pub(crate) const CACHE_PACKETS: usize = 256;
/// Departures kept for feedback that is late or never comes (viewers report every 50–100 ms).
const HISTORY_HORIZON: Duration = Duration::from_secs(1);
/// A viewer's estimate before any feedback: enough for the top layer of a typical simulcast,
/// so a good link is not held low while the estimate climbs; a bad one brings it down.
const INITIAL_ESTIMATE_BPS: f64 = 2_500_000.0;
/// The estimate is never taken above this.
const MAX_ESTIMATE_BPS: f64 = 50_000_000.0;
/// How often each stream sends a sender report.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Seconds from the NTP epoch (1900) to the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// One outbound stream (the viewer's audio or video) as the direct path sends it.
pub(crate) struct Outbound {
    pub ssrc: u32,
    clock_rate: u32,
    /// The negotiated id of the transport-wide sequence number extension.
    twcc_ext: Option<u8>,
    /// RTX: its SSRC, its next sequence number, and the RTX payload type of each media one.
    rtx: Option<Rtx>,
    cache: Option<Box<[Option<Sent>]>>,
    /// The newest packet sent (probes copy from there back).
    newest: Option<u16>,
    packets: u32,
    octets: u32,
    /// RTP timestamp and instant of the last packet, for the sender report's clock mapping.
    last: Option<(u32, Instant)>,
    last_report: Option<Instant>,
}

struct Rtx {
    ssrc: u32,
    sequence_number: u16,
    payload_types: Vec<(u8, u8)>,
}

/// A packet kept for retransmission: the publisher's payload (shared by every viewer) and the
/// VP8 descriptor rewrite this viewer's copy had, so the cache holds no copies of its own.
struct Sent {
    sequence_number: u16,
    timestamp: u32,
    marker: bool,
    payload_type: u8,
    payload: Bytes,
    vp8: Option<Vp8Rewrite>,
    /// When a NACK last had it sent again (ms on the transport's clock; 0: never).
    nacked_at_ms: u32,
}

/// What a viewer's transport needs to send on its own: keys, destination, congestion control.
pub(crate) struct Transport {
    /// Until the connection is detached from webrtc-rs (the keys are taken then).
    keys: Option<Arc<KeyCapture>>,
    is_client: bool,
    srtp: Option<Context>,
    /// The viewer's RTCP, once read without webrtc-rs.
    inbound: Option<Context>,
    /// Set when the handshake gave no usable keys: media then goes through webrtc-rs.
    keys_missing: bool,
    route: Option<(usize, SocketAddr)>,
    twcc_sequence: u16,
    history: History,
    gcc: Gcc,
    last_target: f64,
    feedback: Arc<PeerFeedback>,
    /// Reused for each packet's plaintext.
    scratch: BytesMut,
    probe: Option<Probe>,
    /// The last probe's rate and what the viewer received of it, until taken.
    probe_outcome: Option<(u64, Option<u64>)>,
    /// The origin of the cache's retransmission times.
    epoch: Instant,
}

/// Bounds of the time before a NACKed packet is sent again (the round trip, when known).
const RESEND_INTERVAL_MS: (u32, u32) = (20, 250);
/// Packets sent on top of the media per media packet while probing, at most.
const PROBE_BURST: usize = 8;
/// How long to wait for feedback on a probe after it ended.
const PROBE_FEEDBACK_WAIT: Duration = Duration::from_secs(1);
/// Arrivals spread over less than this tell no rate.
const PROBE_MIN_SPAN: Duration = Duration::from_millis(100);

/// A probe of the viewer's link (see `greenroom_sfu::LossBound::probe_rate`): RTX copies of
/// recent video packets go out on top of the media until everything sent since the start
/// reaches the probed rate; the viewer's transport-wide feedback on what left during the probe
/// tells how much of it arrived, and over how long.
struct Probe {
    rate_bps: u64,
    start: Instant,
    end: Instant,
    /// Bytes sent since the start, media and copies.
    sent: u64,
    /// Copies made so far (each takes the next older cached packet).
    copies: u16,
    /// Bytes of packets sent during the probe that the viewer reported received.
    received: u64,
    /// Earliest and latest of their arrivals, on the viewer's clock.
    arrivals: Option<(Duration, Duration)>,
}

/// One packet to send.
pub(crate) struct Rtp<'a> {
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    /// The publisher's payload, as received.
    pub payload: &'a Bytes,
    /// VP8 descriptor fields this viewer's stream needs rewritten (applied while sealing).
    pub vp8: Option<Vp8Rewrite>,
}

impl Outbound {
    pub(crate) fn new(ssrc: u32, clock_rate: u32, video: bool) -> Outbound {
        Outbound {
            ssrc,
            clock_rate,
            twcc_ext: None,
            rtx: None,
            cache: video.then(|| (0..CACHE_PACKETS).map(|_| None).collect()),
            newest: None,
            packets: 0,
            octets: 0,
            last: None,
            last_report: None,
        }
    }

    /// What the answer negotiated: the transport-wide CC extension id, and RTX (its SSRC and
    /// the RTX payload type of each media payload type) when the viewer takes it.
    pub(crate) fn bind(&mut self, twcc_ext: Option<u8>, rtx: Option<(u32, Vec<(u8, u8)>)>) {
        self.twcc_ext = twcc_ext;
        self.rtx = rtx
            .filter(|(_, types)| !types.is_empty())
            .map(|(ssrc, payload_types)| Rtx {
                ssrc,
                sequence_number: rand::random(),
                payload_types,
            });
    }

    /// A sender report when one is due: every [`REPORT_INTERVAL`] once something was sent.
    pub(crate) fn due_report(&mut self, now: Instant) -> Option<SenderReport> {
        let (timestamp, at) = self.last?;
        if self
            .last_report
            .is_some_and(|t| now.saturating_duration_since(t) < REPORT_INTERVAL)
        {
            return None;
        }
        self.last_report = Some(now);
        let elapsed = now.saturating_duration_since(at);
        let ticks = (elapsed.as_secs_f64() * f64::from(self.clock_rate)) as u32;
        Some(SenderReport {
            ssrc: self.ssrc,
            ntp_time: ntp_now(),
            rtp_time: timestamp.wrapping_add(ticks),
            packet_count: self.packets,
            octet_count: self.octets,
            ..Default::default()
        })
    }
}

/// The wall clock as a 64-bit NTP timestamp.
fn ntp_now() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since.as_secs() + NTP_UNIX_OFFSET;
    let fraction = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

impl Transport {
    pub(crate) fn new(
        keys: Arc<KeyCapture>,
        is_client: bool,
        feedback: Arc<PeerFeedback>,
    ) -> Transport {
        Transport {
            keys: Some(keys),
            is_client,
            srtp: None,
            inbound: None,
            keys_missing: false,
            route: None,
            twcc_sequence: rand::random(),
            history: History::new(),
            gcc: Gcc::new(INITIAL_ESTIMATE_BPS, GCC_MIN_BITRATE, MAX_ESTIMATE_BPS),
            last_target: 0.0,
            feedback,
            scratch: BytesMut::with_capacity(1500),
            probe: None,
            probe_outcome: None,
            epoch: Instant::now(),
        }
    }

    /// Whether probes can be sent and judged for this viewer: RTX copies to send, transport-wide
    /// feedback to judge them by.
    pub(crate) fn can_probe(&self, video: &Outbound) -> bool {
        video.rtx.is_some() && video.twcc_ext.is_some() && self.srtp.is_some()
    }

    /// Starts probing at `rate_bps` for `duration`.
    pub(crate) fn start_probe(&mut self, now: Instant, rate_bps: u64, duration: Duration) {
        tracing::debug!(rate_bps, "probing the viewer's link");
        self.probe = Some(Probe {
            rate_bps,
            start: now,
            end: now + duration,
            sent: 0,
            copies: 0,
            received: 0,
            arrivals: None,
        });
    }

    /// While probing, sends copies of cached video packets until what left since the probe
    /// started reaches its rate. Returns the copies sent.
    pub(crate) fn pad(
        &mut self,
        video: &mut Outbound,
        now: Instant,
        out: &mut Vec<Datagram>,
    ) -> usize {
        let mut copies = 0;
        let mut tries = 0;
        while copies < PROBE_BURST && tries < 64 {
            let Some(probe) = self.probe.as_mut().filter(|p| now < p.end) else {
                break;
            };
            let elapsed = now.saturating_duration_since(probe.start).as_secs_f64();
            if probe.sent as f64 * 8.0 >= probe.rate_bps as f64 * elapsed {
                break;
            }
            let Some(newest) = video.newest else {
                break;
            };
            // The newest 64 packets, newest first, round and round.
            let sequence_number = newest.wrapping_sub(probe.copies % 64);
            probe.copies = probe.copies.wrapping_add(1);
            tries += 1;
            if self
                .resend(video, sequence_number, true, now, out)
                .is_some()
            {
                copies += 1;
            }
        }
        copies
    }

    /// The outcome of the last probe once its feedback is in (or overdue): the probed rate and
    /// the rate the viewer received, if the feedback tells.
    pub(crate) fn take_probe_outcome(&mut self, now: Instant) -> Option<(u64, Option<u64>)> {
        if let Some(probe) = &self.probe
            && now >= probe.end + PROBE_FEEDBACK_WAIT
        {
            self.finish_probe();
        }
        self.probe_outcome.take()
    }

    fn finish_probe(&mut self) {
        let Some(probe) = self.probe.take() else {
            return;
        };
        let received = probe.arrivals.and_then(|(first, last)| {
            let span = last.checked_sub(first).filter(|s| *s >= PROBE_MIN_SPAN)?;
            Some((probe.received as f64 * 8.0 / span.as_secs_f64()) as u64)
        });
        tracing::debug!(rate_bps = probe.rate_bps, ?received, "probe done");
        self.probe_outcome = Some((probe.rate_bps, received));
    }

    /// Where webrtc-rs last sent this connection's DTLS or RTCP: the selected candidate pair.
    pub(crate) fn set_route(&mut self, route: (usize, SocketAddr)) {
        self.route = Some(route);
    }

    /// Whether media can go the direct way (connected, keys and destination known). The
    /// context is built on first use, after the handshake.
    pub(crate) fn ready(&mut self) -> bool {
        if self.srtp.is_none() && !self.keys_missing {
            self.srtp = self
                .keys
                .as_ref()
                .and_then(|keys| keys.outbound_context(self.is_client));
            if self.srtp.is_some() {
                tracing::debug!(route = ?self.route, "direct media path keyed");
            } else {
                self.keys_missing = true;
                tracing::warn!("no SRTP keys from the handshake: media goes through webrtc-rs");
            }
        }
        self.srtp.is_some() && self.route.is_some()
    }

    /// Whether the handshake gave no usable keys (media then goes through webrtc-rs).
    pub(crate) fn keys_missing(&self) -> bool {
        self.keys_missing
    }

    /// Whether the connection can do without webrtc-rs from now on: media and reports go the
    /// direct way, and the viewer has sent RTCP (its side of the handshake is done).
    pub(crate) fn can_detach(&self) -> bool {
        self.srtp.is_some() && self.route.is_some() && self.feedback.heard_rtcp()
    }

    /// Keys the viewer's RTCP for reading here, and lets the handshake's keys go. False (and
    /// nothing changed) when they give no context.
    pub(crate) fn detach(&mut self) -> bool {
        let Some(inbound) = self
            .keys
            .as_ref()
            .and_then(|keys| keys.inbound_context(self.is_client))
        else {
            return false;
        };
        self.inbound = Some(inbound);
        self.keys = None;
        true
    }

    /// Opens one SRTCP datagram from the viewer (after [`Transport::detach`]).
    pub(crate) fn open_rtcp(&mut self, datagram: &[u8]) -> Option<Vec<Box<dyn RtcpPacket>>> {
        let plain = match self.inbound.as_mut()?.decrypt_rtcp(datagram) {
            Ok(plain) => plain,
            Err(error) => {
                tracing::trace!(%error, "viewer's RTCP refused");
                return None;
            }
        };
        rtc::rtcp::packet::unmarshal(&mut &plain[..]).ok()
    }

    /// Seals and queues RTCP for the viewer; false when there are no keys or route yet.
    pub(crate) fn send_rtcp(
        &mut self,
        packets: &[Box<dyn RtcpPacket>],
        out: &mut Vec<Datagram>,
    ) -> bool {
        let (Some(route), Some(srtp)) = (self.route, self.srtp.as_mut()) else {
            return false;
        };
        let sealed = rtc::rtcp::packet::marshal(packets)
            .ok()
            .and_then(|plain| srtp.encrypt_rtcp(&plain).ok());
        match sealed {
            Some(sealed) => {
                out.push((route.0, route.1, sealed));
                true
            }
            None => false,
        }
    }

    /// Sends a sender report on the direct path (remembered for the RTT).
    pub(crate) fn send_report(
        &mut self,
        report: SenderReport,
        now: Instant,
        out: &mut Vec<Datagram>,
    ) -> bool {
        self.feedback.note_sender_report(&report, now);
        self.send_rtcp(&[Box::new(report)], out)
    }

    /// Sends one packet of `track`; returns its size on the wire, before encryption.
    pub(crate) fn send(
        &mut self,
        track: &mut Outbound,
        packet: Rtp<'_>,
        now: Instant,
        out: &mut Vec<Datagram>,
    ) -> Option<usize> {
        let size = self.seal(track.ssrc, track.twcc_ext, &packet, None, now, out)?;
        track.packets = track.packets.wrapping_add(1);
        track.octets = track.octets.wrapping_add(packet.payload.len() as u32);
        track.last = Some((packet.timestamp, now));
        track.newest = Some(packet.sequence_number);
        if let Some(cache) = track.cache.as_mut() {
            cache[usize::from(packet.sequence_number) % CACHE_PACKETS] = Some(Sent {
                sequence_number: packet.sequence_number,
                timestamp: packet.timestamp,
                marker: packet.marker,
                payload_type: packet.payload_type,
                payload: packet.payload.clone(),
                vp8: packet.vp8,
                nacked_at_ms: 0,
            });
        }
        Some(size)
    }

    /// Answers a NACK for `track` from its cache; returns the packets resent.
    pub(crate) fn retransmit(
        &mut self,
        track: &mut Outbound,
        nack: &TransportLayerNack,
        now: Instant,
        out: &mut Vec<Datagram>,
    ) -> usize {
        // A packet is sent again at most once per round trip: a viewer that repeats its NACK
        // before the retransmission could have arrived would otherwise double the traffic of
        // a link that is already losing packets.
        let interval_ms = self
            .feedback
            .snapshot()
            .rtt_ms
            .map_or(RESEND_INTERVAL_MS.0, |rtt| rtt as u32)
            .clamp(RESEND_INTERVAL_MS.0, RESEND_INTERVAL_MS.1);
        let now_ms = (now.saturating_duration_since(self.epoch).as_millis() as u32).max(1);
        let mut resent = 0;
        for pair in &nack.nacks {
            for sequence_number in pair.into_iter() {
                let Some(cache) = track.cache.as_mut() else {
                    return resent;
                };
                match cache[usize::from(sequence_number) % CACHE_PACKETS].as_mut() {
                    Some(sent)
                        if sent.sequence_number == sequence_number
                            && (sent.nacked_at_ms == 0
                                || now_ms.wrapping_sub(sent.nacked_at_ms) >= interval_ms) =>
                    {
                        sent.nacked_at_ms = now_ms;
                    }
                    _ => continue,
                }
                if self
                    .resend(track, sequence_number, false, now, out)
                    .is_some()
                {
                    resent += 1;
                }
            }
        }
        resent
    }

    /// Sends a cached packet again: as RTX (RFC 4588: the original sequence number, then the
    /// original payload) when negotiated, else as it was (`rtx_only`: not at all).
    fn resend(
        &mut self,
        track: &mut Outbound,
        sequence_number: u16,
        rtx_only: bool,
        now: Instant,
        out: &mut Vec<Datagram>,
    ) -> Option<usize> {
        let sent = track.cache.as_ref()?[usize::from(sequence_number) % CACHE_PACKETS]
            .as_ref()
            .filter(|s| s.sequence_number == sequence_number)?;
        let rtx = track.rtx.as_mut().and_then(|rtx| {
            let pt = rtx
                .payload_types
                .iter()
                .find(|(media, _)| *media == sent.payload_type)?
                .1;
            let seq = rtx.sequence_number;
            rtx.sequence_number = seq.wrapping_add(1);
            Some((rtx.ssrc, pt, seq, Some(sent.sequence_number)))
        });
        let (ssrc, payload_type, sequence_number, original) = match rtx {
            Some(rtx) => rtx,
            None if rtx_only => return None,
            None => (track.ssrc, sent.payload_type, sent.sequence_number, None),
        };
        let packet = Rtp {
            payload_type,
            sequence_number,
            timestamp: sent.timestamp,
            marker: sent.marker,
            payload: &sent.payload,
            vp8: sent.vp8,
        };
        self.seal(ssrc, track.twcc_ext, &packet, original, now, out)
    }

    /// The viewer's transport-wide CC feedback: departures joined with arrivals, into GCC.
    pub(crate) fn handle_twcc(&mut self, feedback: &TransportLayerCc, now: Instant) {
        for acknowledgement in convert_twcc(feedback) {
            self.history.on_twcc_feedback(now, acknowledgement);
        }
        let reports = self.history.take_reports();
        if let Some(probe) = self.probe.as_mut() {
            let mut past_the_end = false;
            for report in &reports {
                if report.departure >= probe.end {
                    past_the_end = true;
                } else if report.departure >= probe.start
                    && report.arrived
                    && let Some(arrival) = report.arrival
                {
                    probe.received += report.size as u64;
                    probe.arrivals = Some(match probe.arrivals {
                        Some((first, last)) => (first.min(arrival), last.max(arrival)),
                        None => (arrival, arrival),
                    });
                }
            }
            if past_the_end {
                self.finish_probe();
            }
        }
        self.gcc.on_reports(now, &reports);
        let target = self.gcc.target_bitrate();
        if target != self.last_target {
            self.last_target = target;
            self.feedback.set_twcc_estimate(target);
        }
    }

    /// A passed probe showed the link carries `bits_per_second`: the congestion controller,
    /// held back by what it was given to send, starts again from there (as libwebrtc resets
    /// its delay-based estimate to a probe's result).
    pub(crate) fn raise_estimate(&mut self, bits_per_second: u64) {
        let rate = bits_per_second as f64;
        if self.gcc.target_bitrate() < rate {
            self.gcc = Gcc::new(rate, GCC_MIN_BITRATE, MAX_ESTIMATE_BPS);
            self.last_target = rate;
            self.feedback.set_twcc_estimate(rate);
        }
    }

    /// Forgets departures no feedback will come for.
    pub(crate) fn prune(&mut self, now: Instant) {
        self.history
            .prune_before(now.checked_sub(HISTORY_HORIZON).unwrap_or(now));
    }

    /// Builds, numbers, records and encrypts one packet into `out`.
    fn seal(
        &mut self,
        ssrc: u32,
        twcc_ext: Option<u8>,
        packet: &Rtp<'_>,
        original_sequence: Option<u16>,
        now: Instant,
        out: &mut Vec<Datagram>,
    ) -> Option<usize> {
        let route = self.route?;
        let srtp = self.srtp.as_mut()?;
        let mut header = Header {
            version: 2,
            marker: packet.marker,
            payload_type: packet.payload_type,
            sequence_number: packet.sequence_number,
            timestamp: packet.timestamp,
            ssrc,
            ..Default::default()
        };
        let twcc = twcc_ext.map(|id| {
            let sequence = self.twcc_sequence;
            self.twcc_sequence = sequence.wrapping_add(1);
            (id, sequence)
        });
        if let Some((id, sequence)) = twcc {
            header.extension = true;
            header.extension_profile = EXTENSION_PROFILE_ONE_BYTE;
            header
                .set_extension(id, Bytes::copy_from_slice(&sequence.to_be_bytes()))
                .ok()?;
        }
        let header_len = header.marshal_size();
        let plain = &mut self.scratch;
        plain.clear();
        plain.resize(header_len, 0);
        header.marshal_to(&mut plain[..]).ok()?;
        if let Some(original) = original_sequence {
            plain.put_u16(original);
        }
        let payload_at = plain.len();
        plain.extend_from_slice(packet.payload);
        if let Some(rewrite) = packet.vp8
            && greenroom_media::vp8::rewrite_descriptor(
                &mut plain[payload_at..],
                rewrite.picture_id,
                rewrite.tl0picidx,
            )
            .is_err()
        {
            return None;
        }
        let size = plain.len();
        let sealed = match srtp.encrypt_rtp_with_header(plain, &header) {
            Ok(sealed) => sealed,
            Err(error) => {
                tracing::trace!(%error, "SRTP encryption failed");
                return None;
            }
        };
        self.history.add_outgoing(
            ssrc,
            packet.sequence_number,
            twcc.is_some(),
            twcc.map_or(0, |(_, sequence)| sequence),
            size,
            now,
        );
        out.push((route.0, route.1, sealed));
        if let Some(probe) = self.probe.as_mut()
            && now < probe.end
        {
            probe.sent += size as u64;
        }
        Some(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;

    #[test]
    fn ntp_time_counts_from_1900() {
        let ntp = ntp_now();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs();
        assert!(((ntp >> 32) - NTP_UNIX_OFFSET).abs_diff(unix) <= 1);
    }

    #[test]
    fn a_report_is_due_once_a_second_after_something_was_sent() {
        let mut track = Outbound::new(7, 90_000, true);
        let start = Instant::now();
        assert!(track.due_report(start).is_none(), "nothing sent yet");
        track.last = Some((1000, start));
        track.packets = 3;
        track.octets = 300;
        let report = track
            .due_report(start + Duration::from_millis(500))
            .expect("a report is due");
        assert_eq!(report.ssrc, 7);
        assert_eq!(report.packet_count, 3);
        assert_eq!(report.octet_count, 300);
        // Half a second after the last packet at 90 kHz.
        assert_eq!(report.rtp_time, 1000 + 45_000);
        assert!(
            track
                .due_report(start + Duration::from_millis(900))
                .is_none()
        );
        assert!(
            track
                .due_report(start + Duration::from_millis(1500))
                .is_some()
        );
    }

    /// A viewer's VP8 descriptor rewrite is applied while sealing, and again to what a NACK
    /// gets back from the cache, which keeps the publisher's payload itself; a NACK repeated
    /// within a round trip is not answered twice.
    #[test]
    fn vp8_rewrites_are_sealed_in_and_kept_out_of_the_cache() {
        let keys = keys::keyed_for_tests();
        let mut viewer_side = keys::keyed_for_tests()
            .inbound_context(true)
            .expect("viewer keys");
        let feedback = Arc::new(PeerFeedback::default());
        let mut transport = Transport::new(keys, false, feedback);
        transport.set_route((0, "127.0.0.1:40000".parse().expect("an address")));
        assert!(transport.ready());
        let mut video = Outbound::new(0x1234, 90_000, true);
        // VP8 descriptor: X=1, S=1; I=1; 15-bit picture id 0x0102; then a payload byte.
        let original = Bytes::from_static(&[0x90, 0x80, 0x81, 0x02, 0xaa]);
        let rewrite = Vp8Rewrite {
            picture_id: Some(0x0305),
            tl0picidx: None,
        };
        let now = Instant::now();
        let mut out = Vec::new();
        let packet = Rtp {
            payload_type: 96,
            sequence_number: 500,
            timestamp: 9000,
            marker: true,
            payload: &original,
            vp8: Some(rewrite),
        };
        transport
            .send(&mut video, packet, now, &mut out)
            .expect("sent");
        let nack = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 0x1234,
            nacks: vec![NackPair {
                packet_id: 500,
                lost_packets: 0,
            }],
        };
        assert_eq!(transport.retransmit(&mut video, &nack, now, &mut out), 1);
        assert_eq!(out.len(), 2);
        // The same NACK again before a round trip could have passed: not sent a third time;
        // once the interval is over, it is.
        let soon = now + Duration::from_millis(5);
        assert_eq!(transport.retransmit(&mut video, &nack, soon, &mut out), 0);
        let later = now + Duration::from_millis(300);
        assert_eq!(transport.retransmit(&mut video, &nack, later, &mut out), 1);
        out.truncate(2);
        for (_, _, sealed) in &out {
            let plain = viewer_side
                .decrypt_rtp(sealed)
                .expect("the viewer opens it");
            assert_eq!(
                &plain[plain.len() - 5..],
                &[0x90, 0x80, 0x83, 0x05, 0xaa],
                "the viewer's picture id"
            );
        }
        assert_eq!(&original[..], &[0x90, 0x80, 0x81, 0x02, 0xaa]);
    }
}
