//! The engine answers the SDP offers real Chromium sends (captured into `media/sdp/` by
//! `scripts/capture-sdp.mjs`): the studio's simulcast and single-layer WHIP offers and the watch
//! page's recvonly WHEP offer.

use std::net::{IpAddr, Ipv4Addr};

use greenroom_rtc::{RtcConfig, RtcEngine, RtcError, SubscribeOptions};

const WHIP_SIMULCAST: &str = include_str!("../../../media/sdp/chromium-whip-simulcast.sdp");
const WHIP_SINGLE: &str = include_str!("../../../media/sdp/chromium-whip-single.sdp");
const WHEP_RECVONLY: &str = include_str!("../../../media/sdp/chromium-whep-recvonly.sdp");

async fn engine() -> RtcEngine {
    RtcEngine::start(RtcConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        udp_port: 0,
        workers: 1,
        detach_viewers: true,
        advertise_ips: vec![],
        ice_servers: vec![],
    })
    .await
    .expect("engine starts on loopback")
}

/// One media section of an SDP: its `m=` line and the attribute lines under it.
#[derive(Debug)]
struct Section<'a> {
    kind: &'a str,
    port: &'a str,
    payload_types: Vec<&'a str>,
    lines: Vec<&'a str>,
}

impl<'a> Section<'a> {
    fn attrs(&self, name: &str) -> Vec<&'a str> {
        let prefix = format!("a={name}");
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter(|rest| rest.is_empty() || rest.starts_with(':'))
            .map(|rest| rest.trim_start_matches(':'))
            .collect()
    }

    fn has(&self, line: &str) -> bool {
        self.lines.contains(&line)
    }

    /// Encoding name (upper case) of each payload type on the m-line, in order.
    fn codecs(&self) -> Vec<(String, String)> {
        let rtpmaps = self.attrs("rtpmap");
        self.payload_types
            .iter()
            .map(|pt| {
                let name = rtpmaps
                    .iter()
                    .find_map(|m| m.strip_prefix(&format!("{pt} ")))
                    .and_then(|enc| enc.split('/').next())
                    .unwrap_or("<no rtpmap>")
                    .to_ascii_uppercase();
                (pt.to_string(), name)
            })
            .collect()
    }

    fn dump(&self) -> String {
        self.lines.join("\n")
    }
}

/// Session-level lines and media sections of an SDP.
fn parse(sdp: &str) -> (Vec<&str>, Vec<Section<'_>>) {
    let mut session = Vec::new();
    let mut sections: Vec<Section<'_>> = Vec::new();
    for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            continue;
        }
        if let Some(m) = line.strip_prefix("m=") {
            let mut fields = m.split(' ');
            let kind = fields.next().unwrap_or_default();
            let port = fields.next().unwrap_or_default();
            let _proto = fields.next();
            sections.push(Section {
                kind,
                port,
                payload_types: fields.collect(),
                lines: vec![line],
            });
        } else if let Some(section) = sections.last_mut() {
            section.lines.push(line);
        } else {
            session.push(line);
        }
    }
    (session, sections)
}

fn section<'s, 'a>(sections: &'s [Section<'a>], kind: &str, sdp: &str) -> &'s Section<'a> {
    let found: Vec<_> = sections.iter().filter(|s| s.kind == kind).collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one {kind} section in the answer:\n{sdp}"
    );
    found[0]
}

/// `a=simulcast:recv q;h;f` lists the rids of the (only) recv stream list, in order. Alternatives
/// (`,`) and paused (`~`) markers are legal; keep the rid names.
fn simulcast_recv_rids(video: &Section<'_>) -> Option<Vec<String>> {
    let attr = video.attrs("simulcast");
    let value = attr.first()?;
    let mut parts = value.split_whitespace();
    while let Some(direction) = parts.next() {
        let list = parts.next()?;
        if direction == "recv" {
            return Some(
                list.split([';', ','])
                    .map(|rid| rid.trim_start_matches('~').to_owned())
                    .collect(),
            );
        }
    }
    None
}

/// Checks shared by every answer: DTLS role, ICE candidates on loopback, BUNDLE, and the audio
/// answered with Opus.
fn assert_transport_and_audio(sdp: &str, sections: &[Section<'_>], session: &[&str]) {
    assert!(
        session.iter().any(|l| l.starts_with("a=group:BUNDLE")) || sections.len() == 1,
        "answer bundles its sections:\n{sdp}"
    );
    for s in sections {
        let setup = s.attrs("setup");
        let setup = if setup.is_empty() {
            session
                .iter()
                .filter_map(|l| l.strip_prefix("a=setup:"))
                .collect()
        } else {
            setup
        };
        assert_eq!(
            setup,
            vec!["passive"],
            "the server is the DTLS server in the {} section:\n{}",
            s.kind,
            s.dump()
        );
    }
    let candidates: Vec<&str> = sections
        .iter()
        .flat_map(|s| s.attrs("candidate"))
        .chain(
            session
                .iter()
                .filter_map(|l| l.strip_prefix("a=candidate:")),
        )
        .collect();
    assert!(
        !candidates.is_empty(),
        "the answer carries ICE candidates:\n{sdp}"
    );
    for c in &candidates {
        let fields: Vec<&str> = c.split(' ').collect();
        assert!(
            fields.len() >= 8 && fields[2].eq_ignore_ascii_case("udp") && fields[4] == "127.0.0.1",
            "every candidate is UDP on 127.0.0.1 (bind_ip): {c}"
        );
    }

    let audio = section(sections, "audio", sdp);
    assert_ne!(audio.port, "0", "audio is accepted:\n{}", audio.dump());
    let audio_codecs = audio.codecs();
    assert!(
        !audio_codecs.is_empty() && audio_codecs.iter().all(|(_, name)| name == "OPUS"),
        "audio is answered with Opus only, got {audio_codecs:?}:\n{}",
        audio.dump()
    );
}

/// Video is answered with VP8 or H.264 (plus their RTX), never VP9 or AV1; returns the codecs.
fn assert_video_codecs(video: &Section<'_>) -> Vec<(String, String)> {
    let codecs = video.codecs();
    let media: Vec<&str> = codecs
        .iter()
        .map(|(_, name)| name.as_str())
        .filter(|name| !matches!(*name, "RTX" | "RED" | "ULPFEC" | "FLEXFEC-03"))
        .collect();
    assert!(
        !media.is_empty() && media.iter().all(|n| matches!(*n, "VP8" | "H264")),
        "video is answered with VP8 or H.264 only, got {codecs:?}:\n{}",
        video.dump()
    );
    codecs
}

#[tokio::test(flavor = "current_thread")]
async fn simulcast_publisher_offer_is_answered_with_three_recv_layers() {
    let engine = engine().await;
    let answer = engine
        .publish("studio", WHIP_SIMULCAST)
        .await
        .expect("Chromium's simulcast WHIP offer is accepted");
    let sdp = answer.sdp.as_str();
    let (session, sections) = parse(sdp);
    assert_transport_and_audio(sdp, &sections, &session);

    let video = section(&sections, "video", sdp);
    assert_ne!(video.port, "0", "video is accepted:\n{}", video.dump());
    assert!(
        video.has("a=recvonly"),
        "video is recvonly:\n{}",
        video.dump()
    );
    assert_video_codecs(video);
    assert_eq!(
        simulcast_recv_rids(video),
        Some(vec!["q".to_owned(), "h".to_owned(), "f".to_owned()]),
        "answer receives simulcast q, h and f:\n{}",
        video.dump()
    );
    for rid in ["q", "h", "f"] {
        let line = format!("a=rid:{rid} recv");
        assert!(
            video
                .lines
                .iter()
                .any(|l| *l == line || l.starts_with(&format!("{line} "))),
            "answer has `{line}`:\n{}",
            video.dump()
        );
    }
    assert!(
        video
            .attrs("extmap")
            .iter()
            .any(|e| e.contains("urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id")),
        "rtp-stream-id header extension is negotiated (the rids travel in it):\n{}",
        video.dump()
    );

    let audio = section(&sections, "audio", sdp);
    assert!(
        audio.has("a=recvonly"),
        "audio is recvonly:\n{}",
        audio.dump()
    );

    // One publisher per stream: a second Chromium offer for the same stream is refused.
    let err = engine
        .publish("studio", WHIP_SINGLE)
        .await
        .expect_err("a second publisher on the same stream is refused");
    assert!(
        matches!(err, RtcError::StreamBusy { ref stream } if stream == "studio"),
        "second publish fails with StreamBusy, got {err:?}"
    );

    engine.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn single_layer_publisher_offer_is_answered_without_simulcast() {
    let engine = engine().await;
    let answer = engine
        .publish("single", WHIP_SINGLE)
        .await
        .expect("Chromium's single-layer WHIP offer is accepted");
    let sdp = answer.sdp.as_str();
    let (session, sections) = parse(sdp);
    assert_transport_and_audio(sdp, &sections, &session);

    let video = section(&sections, "video", sdp);
    assert_ne!(video.port, "0", "video is accepted:\n{}", video.dump());
    assert!(
        video.has("a=recvonly"),
        "video is recvonly:\n{}",
        video.dump()
    );
    assert_video_codecs(video);
    assert!(
        video.attrs("simulcast").is_empty() && video.attrs("rid").is_empty(),
        "no simulcast or rid lines for a single-layer offer:\n{}",
        video.dump()
    );

    engine.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn recvonly_viewer_offer_is_answered_sendonly_with_vp8() {
    let engine = engine().await;
    // The stream need not be live for a viewer to join.
    let answer = engine
        .subscribe("watch", WHEP_RECVONLY, SubscribeOptions::default())
        .await
        .expect("Chromium's recvonly WHEP offer is accepted");
    let sdp = answer.sdp.as_str();
    let (session, sections) = parse(sdp);
    assert_transport_and_audio(sdp, &sections, &session);

    for kind in ["audio", "video"] {
        let s = section(&sections, kind, sdp);
        assert_ne!(s.port, "0", "{kind} is accepted:\n{}", s.dump());
        assert!(
            s.has("a=sendonly"),
            "{kind} is sendonly towards the viewer:\n{}",
            s.dump()
        );
        assert!(
            !s.attrs("ssrc").is_empty() || !s.attrs("msid").is_empty(),
            "{kind} announces its sender (a=ssrc or a=msid):\n{}",
            s.dump()
        );
    }

    let video = section(&sections, "video", sdp);
    let codecs = assert_video_codecs(video);
    assert!(
        codecs.iter().any(|(_, name)| name == "VP8"),
        "VP8 is among the viewer's codecs, got {codecs:?}:\n{}",
        video.dump()
    );

    engine.shutdown().await;
}
