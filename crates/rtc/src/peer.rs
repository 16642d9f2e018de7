//! Building webrtc-rs peer connections the way greenroom needs them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::{RTCDtlsRole, RTCIceServer};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use crate::IceServer;

/// Audio level and timing extensions browsers send that are worth negotiating.
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Options for one peer connection.
pub(crate) struct PeerOptions<'a> {
    pub ice_servers: &'a [IceServer],
    /// Fixed ICE credentials (the server routes STUN by ufrag); `None` lets webrtc-rs pick
    /// them, and pick new ones on an ICE restart.
    pub credentials: Option<(String, String)>,
    /// The DTLS role taken when answering: the server is the DTLS server unless the offer is
    /// `a=setup:passive` (ffmpeg's WHIP muxer), then it must be the client. `None` when
    /// offering.
    pub answering_role: Option<RTCDtlsRole>,
}

/// The codecs greenroom forwards: Opus, VP8 and H.264 (with RTX for the video codecs).
pub(crate) fn media_engine() -> Result<MediaEngine, Error> {
    let mut engine = MediaEngine::default();
    let video_feedback = vec![
        RTCPFeedback {
            typ: "goog-remb".to_owned(),
            parameter: String::new(),
        },
        RTCPFeedback {
            typ: "ccm".to_owned(),
            parameter: "fir".to_owned(),
        },
        RTCPFeedback {
            typ: "nack".to_owned(),
            parameter: String::new(),
        },
        RTCPFeedback {
            typ: "nack".to_owned(),
            parameter: "pli".to_owned(),
        },
    ];
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    let video = |mime: &str, fmtp: &str, pt: u8| RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: video_feedback.clone(),
        },
        payload_type: pt,
    };
    let rtx = |pt: u8, apt: u8| RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_RTX.to_owned(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: format!("apt={apt}"),
            rtcp_feedback: vec![],
        },
        payload_type: pt,
    };
    for codec in [
        video(MIME_TYPE_VP8, "", 96),
        rtx(97, 96),
        video(
            MIME_TYPE_H264,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            102,
        ),
        rtx(103, 102),
        video(
            MIME_TYPE_H264,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
            127,
        ),
        rtx(104, 127),
        video(
            MIME_TYPE_H264,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
            108,
        ),
        rtx(109, 108),
        video(
            MIME_TYPE_H264,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032",
            123,
        ),
        rtx(124, 123),
    ] {
        engine.register_codec(codec, RtpCodecKind::Video)?;
    }
    engine.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.to_owned(),
        },
        RtpCodecKind::Audio,
        None,
    )?;
    Ok(engine)
}

/// Builds a peer connection: greenroom's codecs, the default interceptors (NACK, RTCP reports,
/// TWCC), keyframe requests delivered to the application, fixed ICE credentials (so the worker
/// can route STUN by username) and short ICE timeouts (a vanished peer is noticed within seconds).
pub(crate) fn build(options: PeerOptions<'_>, now: Instant) -> Result<RTCPeerConnection, Error> {
    let mut engine = media_engine()?;
    let registry = Registry::new().with(Slot::from(14_000), DeliverKeyframeRequests::default());
    let registry = register_default_interceptors(registry, &mut engine)?;
    let mut settings = SettingEngineBuilder::new().with_include_loopback_candidate(true);
    if let Some((ufrag, pwd)) = options.credentials {
        settings = settings.with_ice_credentials(ufrag, pwd);
    }
    settings = settings.with_ice_timeouts(
        Some(Duration::from_secs(4)),
        Some(Duration::from_secs(10)),
        Some(Duration::from_secs(2)),
    );
    if let Some(role) = options.answering_role {
        settings = settings.with_answering_dtls_role(role);
    }
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(
            options
                .ice_servers
                .iter()
                .map(|s| RTCIceServer {
                    urls: s.urls.clone(),
                    username: s.username.clone().unwrap_or_default(),
                    credential: s.credential.clone().unwrap_or_default(),
                })
                .collect(),
        )
        .build();
    RTCPeerConnectionBuilder::new()
        .with_configuration(config)
        .with_setting_engine(settings.build())
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(now)
}

/// Lets PLI and FIR packets through to the application (the default chain consumes inbound
/// RTCP). An SFU relays those to the publisher; reports and NACKs stay with the interceptors.
#[derive(Default)]
pub(crate) struct DeliverKeyframeRequests {
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for DeliverKeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let wanted = packets.iter().any(|p| {
                let any = p.as_any();
                any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
            });
            if wanted {
                msg.message.add(Attribute::DeliverToApplication);
            }
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
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

impl Interceptor for DeliverKeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// The DTLS role to answer an offer with: client when the offer insists on being the DTLS
/// server (`a=setup:passive`), server otherwise (`actpass`, or `active`).
pub(crate) fn answering_dtls_role(offer_sdp: &str) -> RTCDtlsRole {
    let passive = offer_sdp
        .lines()
        .any(|l| l.trim().eq_ignore_ascii_case("a=setup:passive"));
    if passive {
        RTCDtlsRole::Client
    } else {
        RTCDtlsRole::Server
    }
}

/// Random ICE credentials: a 16-char ufrag (routing key) and a 32-char password.
pub(crate) fn ice_credentials() -> (String, String) {
    (random_token(16), random_token(32))
}

pub(crate) fn random_token(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Whether an RTCP packet list asks for a keyframe.
pub(crate) fn is_keyframe_request(packets: &[Box<dyn rtc::rtcp::Packet>]) -> bool {
    packets.iter().any(|p| {
        let any = p.as_any();
        any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
    })
}
