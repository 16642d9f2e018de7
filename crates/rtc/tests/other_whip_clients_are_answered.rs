//! Offers of WHIP clients other than browsers: OBS Studio's WHIP output (a real offer) and
//! FFmpeg 8's `whip` muxer (its offer template). Both are answered with H.264 and Opus, and the
//! DTLS role follows the offer.

mod common;

use common::engine;

const OBS: &str = include_str!("../../../media/sdp/obs-30.0.2-whip.sdp");
const FFMPEG: &str = include_str!("../../../media/sdp/ffmpeg-8-whip-template.sdp");

fn section<'a>(sdp: &'a str, kind: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in sdp.lines() {
        if line.starts_with("m=") {
            inside = line.starts_with(&format!("m={kind} "));
        }
        if inside {
            out.push(line.trim_end());
        }
    }
    out
}

fn payload_types(m_line: &str) -> Vec<String> {
    m_line
        .split_whitespace()
        .skip(3)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn obs_offer_gets_h264_and_opus_with_the_server_as_dtls_server() {
    let engine = engine(1).await;
    let answer = engine
        .publish("obs", OBS)
        .await
        .expect("OBS offer answered");
    let audio = section(&answer.sdp, "audio");
    let video = section(&answer.sdp, "video");
    assert_eq!(payload_types(audio[0]), vec!["111"], "{}", answer.sdp);
    assert!(
        audio
            .iter()
            .any(|l| l.eq_ignore_ascii_case("a=rtpmap:111 opus/48000/2"))
    );
    assert!(audio.contains(&"a=recvonly"));
    assert_eq!(payload_types(video[0]), vec!["96"], "{}", answer.sdp);
    assert!(video.contains(&"a=rtpmap:96 H264/90000"), "{}", answer.sdp);
    assert!(
        video
            .iter()
            .any(|l| l.starts_with("a=fmtp:96") && l.contains("packetization-mode=1")),
        "{}",
        answer.sdp
    );
    assert!(video.contains(&"a=recvonly"));
    assert!(
        answer
            .sdp
            .lines()
            .filter(|l| l.starts_with("a=setup:"))
            .all(|l| l.trim() == "a=setup:passive"),
        "the server answers OBS's actpass as the DTLS server"
    );
    assert!(
        answer.sdp.contains(" 127.0.0.1 "),
        "a host candidate: {}",
        answer.sdp
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn ffmpeg_whip_offer_makes_the_server_the_dtls_client() {
    let engine = engine(1).await;
    let answer = engine
        .publish("ffmpeg", FFMPEG)
        .await
        .expect("ffmpeg offer answered");
    assert!(
        answer
            .sdp
            .lines()
            .filter(|l| l.starts_with("a=setup:"))
            .all(|l| l.trim() == "a=setup:active"),
        "a passive offer needs an active answer: {}",
        answer.sdp
    );
    let video = section(&answer.sdp, "video");
    assert_eq!(payload_types(video[0]), vec!["106"], "{}", answer.sdp);
    assert!(video.contains(&"a=rtpmap:106 H264/90000"), "{}", answer.sdp);
    // ffmpeg sends its checks to the first host candidate of the answer.
    let first_candidate = answer
        .sdp
        .lines()
        .find(|l| l.starts_with("a=candidate:"))
        .expect("a candidate");
    assert!(first_candidate.contains(" typ host"), "{first_candidate}");
    engine.shutdown().await;
}
