//! Building webrtc-rs peer connections the way greenroom needs them.

use std::time::{Duration, Instant};

use std::sync::Arc;

use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::interceptor::{
    NackGeneratorBuilder, NackResponderBuilder, ReceiverReportBuilder, Registry,
    SenderReportBuilder, Slot, TwccReceiverBuilder,
};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::configure_simulcast_extension_headers;
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
use rtc::shared::error::Error;

use crate::IceServer;
use crate::direct::keys::KeyCapture;
use crate::feedback::{FeedbackTap, PeerFeedback};

/// Audio level and timing extensions browsers send that are worth negotiating.
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Where [`FeedbackTap`] sits (senders only): wire-ward of the NACK responder and the report
/// interceptors, so it sees every inbound RTCP packet before anything consumes it, and every
/// sender report leaving.
const FEEDBACK_TAP_POSITION: usize = 1_500;
/// Packets each sender keeps for retransmission: as many as a viewer's direct path keeps.
const NACK_BUFFER_PACKETS: u16 = crate::direct::CACHE_PACKETS as u16;

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
    /// A viewer's session: keep what its feedback says here.
    pub feedback: Option<Arc<PeerFeedback>>,
    /// A viewer's session: its media goes on the direct path (see [`crate::direct`]), keyed
    /// from this provider; the connection gets no sender interceptors.
    pub key_capture: Option<Arc<KeyCapture>>,
    /// This peer sends media (a viewer's session on the server, a publishing client).
    pub sends_media: bool,
    /// This peer receives media (a publisher's session on the server, a viewing client).
    pub receives_media: bool,
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

/// Builds a peer connection: greenroom's codecs, the interceptors of the directions it has
/// (NACK with a bounded send buffer, RTCP reports, TWCC feedback; a viewer's session only the
/// feedback tap, its media going on the direct path), keyframe requests delivered to the
/// application, fixed ICE credentials (so the worker can route STUN by username) and short ICE
/// timeouts (a vanished peer is noticed within seconds).
pub(crate) fn build(options: PeerOptions<'_>, now: Instant) -> Result<RTCPeerConnection, Error> {
    let mut engine = media_engine()?;
    // MID/RID header extensions, and transport-wide CC (header extension and feedback) in
    // both directions.
    configure_simulcast_extension_headers(&mut engine)?;
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        engine.register_feedback(
            RTCPFeedback {
                typ: "transport-cc".to_owned(),
                parameter: String::new(),
            },
            kind,
        );
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
            },
            kind,
            None,
        )?;
    }
    // Every interceptor costs each packet a pass, so a peer gets only those of the directions
    // it has: a sender keeps packets for retransmission, sends sender reports and hears
    // keyframe requests and feedback (the tap); a receiver asks for lost packets again, reports
    // what it received (transport-wide CC feedback, receiver reports). A viewer's session
    // sends its media on the direct path, which does the sender's part itself: only the tap.
    let mut registry = Registry::new();
    if options.sends_media {
        registry = registry.with(
            Slot::from(FEEDBACK_TAP_POSITION),
            FeedbackTap::new(options.feedback.clone()),
        );
    }
    if options.sends_media && options.key_capture.is_none() {
        registry = registry
            .with(
                Slot::NackResponder,
                NackResponderBuilder::new()
                    .with_size(NACK_BUFFER_PACKETS)
                    .build(),
            )
            .with(Slot::SenderReport, SenderReportBuilder::new().build());
    }
    if options.receives_media {
        registry = registry
            .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
            .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build())
            .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build());
    }
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
    if let Some(keys) = options.key_capture {
        // The profiles the direct path can tell apart by the cipher they build (AES-CM with a
        // 32-bit tag would look like the 80-bit one).
        settings = settings
            .with_crypto_provider(keys)
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            ]);
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
