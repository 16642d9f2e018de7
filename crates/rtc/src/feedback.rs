//! What a viewer's RTCP says about its link.
//!
//! [`PeerFeedback::observe_rtcp`] takes in every RTCP packet the viewer sends: from
//! [`FeedbackTap`] on the interceptor chain while webrtc-rs carries the connection, from the
//! worker once the viewer is detached from it ([`crate::direct::ice`]). It keeps:
//! - the GCC estimate from TWCC (set by the direct media path), or the viewer's REMB when it
//!   only offers that;
//! - the loss fraction and round-trip time from the viewer's receiver reports (RTT from
//!   LSR/DLSR against the sender reports sent, which the direct path records);
//! - the NACKed packets and keyframe requests received.
//!
//! The tap also marks PLI and FIR for delivery to the application, which relays them upstream.
//! NACKs and transport-wide CC feedback are queued ([`LinkFeedback`]) for the direct media path
//! ([`crate::direct`]), which answers the first and turns the second into the GCC estimate:
//! queued here rather than delivered through webrtc-rs, which hands a compound RTCP packet to
//! the application only when its first report names a known SSRC.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Sender reports remembered for RTT (a few seconds' worth per stream).
const SENT_REPORTS: usize = 16;

/// A viewer's link as its feedback describes it. All zero until the first report.
#[derive(Debug, Default)]
pub struct PeerFeedback {
    /// GCC estimate from transport-wide CC feedback, bits per second (0: none yet).
    twcc_bps: AtomicU64,
    /// The viewer's REMB, bits per second (0: none).
    remb_bps: AtomicU64,
    /// Latest fraction lost of the viewer's receiver reports, in 1/256.
    fraction_lost: AtomicU64,
    /// Latest round-trip time, microseconds (0: unknown).
    rtt_us: AtomicU64,
    /// Packets the viewer NACKed.
    nacked: AtomicU64,
    /// Feedback reports that changed the estimate.
    estimates: AtomicU64,
    /// RTCP packets received from the viewer (compound packets, each counted once).
    rtcp_received: AtomicU64,
    /// NACKs and congestion feedback not yet taken by the direct path.
    link: Mutex<Vec<LinkFeedback>>,
    /// `(ssrc, NTP middle 32 bits, sent at)` of recent sender reports, for RTT.
    sent_reports: Mutex<VecDeque<(u32, u32, Instant)>>,
}

/// Feedback the direct media path acts on.
#[derive(Debug)]
pub(crate) enum LinkFeedback {
    Nack(TransportLayerNack),
    Twcc(TransportLayerCc, Instant),
}

/// A snapshot of [`PeerFeedback`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FeedbackSnapshot {
    /// The estimate used for layer selection: TWCC's when there is one, else REMB's.
    pub estimate_bps: Option<u64>,
    /// Where the estimate comes from: `"twcc"`, `"remb"`, or `None`.
    pub source: Option<&'static str>,
    /// Latest fraction of packets lost, 0.0..=1.0.
    pub loss: f64,
    /// Latest round-trip time in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Packets NACKed so far.
    pub nacked: u64,
}

impl PeerFeedback {
    pub fn snapshot(&self) -> FeedbackSnapshot {
        let twcc = self.twcc_bps.load(Ordering::Relaxed);
        let remb = self.remb_bps.load(Ordering::Relaxed);
        let (estimate_bps, source) = if twcc > 0 {
            (Some(twcc), Some("twcc"))
        } else if remb > 0 {
            (Some(remb), Some("remb"))
        } else {
            (None, None)
        };
        let rtt_us = self.rtt_us.load(Ordering::Relaxed);
        FeedbackSnapshot {
            estimate_bps,
            source,
            loss: self.fraction_lost.load(Ordering::Relaxed) as f64 / 256.0,
            rtt_ms: (rtt_us > 0).then(|| rtt_us as f64 / 1000.0),
            nacked: self.nacked.load(Ordering::Relaxed),
        }
    }

    /// The congestion controller's new estimate.
    pub(crate) fn set_twcc_estimate(&self, bits_per_second: f64) {
        self.twcc_bps
            .store(bits_per_second.max(0.0) as u64, Ordering::Relaxed);
        self.estimates.fetch_add(1, Ordering::Relaxed);
    }

    /// The NACKs and congestion feedback received since the last call.
    pub(crate) fn take_link_feedback(&self) -> Vec<LinkFeedback> {
        self.link
            .lock()
            .map(|mut queued| std::mem::take(&mut *queued))
            .unwrap_or_default()
    }

    fn queue_link_feedback(&self, feedback: LinkFeedback) {
        if let Ok(mut queued) = self.link.lock() {
            queued.push(feedback);
        }
    }

    /// How many times the estimate changed (for tests and metrics).
    pub fn estimate_updates(&self) -> u64 {
        self.estimates.load(Ordering::Relaxed)
    }

    /// Whether the viewer has sent RTCP yet: proof that its side of the DTLS handshake is
    /// complete (SRTCP is keyed from it).
    pub(crate) fn heard_rtcp(&self) -> bool {
        self.rtcp_received.load(Ordering::Relaxed) > 0
    }

    /// Takes in one compound RTCP packet from the viewer: REMB, receiver reports (loss, RTT),
    /// and NACKs and transport-wide CC feedback queued for the direct path.
    pub(crate) fn observe_rtcp(&self, packets: &[Box<dyn rtc::rtcp::Packet>], now: Instant) {
        self.rtcp_received.fetch_add(1, Ordering::Relaxed);
        for packet in packets {
            let any = packet.as_any();
            if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                self.remb_bps
                    .store(remb.bitrate.max(0.0) as u64, Ordering::Relaxed);
            } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                let count: usize = nack.nacks.iter().map(|pair| pair.into_iter().count()).sum();
                self.nacked.fetch_add(count as u64, Ordering::Relaxed);
                self.queue_link_feedback(LinkFeedback::Nack(nack.clone()));
            } else if let Some(twcc) = any.downcast_ref::<TransportLayerCc>() {
                self.queue_link_feedback(LinkFeedback::Twcc(twcc.clone(), now));
            } else if let Some(report) = any.downcast_ref::<ReceiverReport>() {
                for block in &report.reports {
                    self.fraction_lost
                        .store(u64::from(block.fraction_lost), Ordering::Relaxed);
                    if let Some(rtt) =
                        self.rtt(block.ssrc, block.last_sender_report, block.delay, now)
                    {
                        self.rtt_us.store(rtt, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Remembers a sender report sent to the viewer, for the RTT its receiver reports give.
    pub(crate) fn note_sender_report(&self, report: &SenderReport, now: Instant) {
        if let Ok(mut sent) = self.sent_reports.lock() {
            if sent.len() == SENT_REPORTS {
                sent.pop_front();
            }
            let middle = ((report.ntp_time >> 16) & 0xffff_ffff) as u32;
            sent.push_back((report.ssrc, middle, now));
        }
    }

    /// RTT in microseconds from a report block's LSR and DLSR (RFC 3550 §6.4.1).
    fn rtt(&self, ssrc: u32, lsr: u32, dlsr: u32, now: Instant) -> Option<u64> {
        if lsr == 0 {
            return None;
        }
        let sent = self.sent_reports.lock().ok()?;
        let (_, _, sent_at) = sent
            .iter()
            .rev()
            .find(|(s, ntp, _)| *s == ssrc && *ntp == lsr)?;
        let elapsed_us = now.saturating_duration_since(*sent_at).as_micros() as u64;
        let held_us = u64::from(dlsr) * 1_000_000 / 65_536;
        elapsed_us.checked_sub(held_us).filter(|rtt| *rtt > 0)
    }
}

/// The interceptor; see the module docs.
pub(crate) struct FeedbackTap {
    feedback: Option<Arc<PeerFeedback>>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl FeedbackTap {
    /// A tap that only delivers keyframe requests (`None`), or also keeps `feedback`.
    pub(crate) fn new(feedback: Option<Arc<PeerFeedback>>) -> FeedbackTap {
        FeedbackTap {
            feedback,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }

    fn observe_write(feedback: &PeerFeedback, msg: &TaggedPacket) {
        let Packet::Rtcp(packets) = &msg.message.packet else {
            return;
        };
        for packet in packets {
            if let Some(report) = packet.as_any().downcast_ref::<SenderReport>() {
                feedback.note_sender_report(report, msg.now);
            }
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let (Some(feedback), Packet::Rtcp(packets)) = (&self.feedback, &msg.message.packet) {
            feedback.observe_rtcp(packets, msg.now);
        }
        if let Packet::Rtcp(packets) = &msg.message.packet
            && crate::peer::is_keyframe_request(packets)
        {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Some(feedback) = &self.feedback {
            Self::observe_write(feedback, &msg);
        }
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        None
    }
}

impl Interceptor for FeedbackTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
