//! An ffmpeg FLV capture (what an RTMP publisher sends) taken through the whole RTMP ingest
//! path of this crate: FLV tags, the AVC decoder configuration, AVCC splitting, RTP
//! packetization and back, and AAC raw frames framed as ADTS.

use bytes::Bytes;
use greenroom_media::aac::AudioSpecificConfig;
use greenroom_media::flv::{FlvAudio, FlvVideo, parse_audio_tag, parse_video_tag};
use greenroom_media::h264::{self, AvcDecoderConfig};
use greenroom_media::rtp::{H264Depacketizer, H264Packetizer};

const CAPTURE: &[u8] = include_bytes!("data/x264_bf2_aac_320x180.flv");
const MTU: usize = 1200;

/// (tag type, body) of every tag in an FLV file.
fn tags(file: &[u8]) -> Vec<(u8, &[u8])> {
    assert_eq!(&file[..3], b"FLV");
    let header_len = u32::from_be_bytes([file[5], file[6], file[7], file[8]]) as usize;
    let mut at = header_len + 4;
    let mut out = Vec::new();
    while at + 11 <= file.len() {
        let kind = file[at];
        let size = u32::from_be_bytes([0, file[at + 1], file[at + 2], file[at + 3]]) as usize;
        out.push((kind, &file[at + 11..at + 11 + size]));
        at += 11 + size + 4;
    }
    out
}

#[test]
fn video_tags_repacketize_losslessly() {
    let mut config = None;
    let mut packetizer = H264Packetizer::new(MTU);
    let mut depacketizer = H264Depacketizer::new();
    let (mut frames, mut keyframes, mut fragmented, mut ends) = (0, 0, 0, 0);
    let mut composition_times = Vec::new();
    for (_, body) in tags(CAPTURE).into_iter().filter(|(kind, _)| *kind == 9) {
        match parse_video_tag(body).expect("video tag") {
            FlvVideo::AvcSequenceHeader { record } => {
                let parsed = AvcDecoderConfig::parse(record).expect("record");
                assert_eq!(parsed.profile_indication, 100);
                assert_eq!(parsed.length_size, 4);
                assert_eq!((parsed.sps.len(), parsed.pps.len()), (1, 1));
                assert_eq!(parsed.resolution(), Some((320, 180)));
                config = Some(parsed);
            }
            FlvVideo::AvcNalus {
                keyframe,
                composition_time_ms,
                avcc,
            } => {
                let config = config.as_ref().expect("sequence header first");
                let nals: Vec<&[u8]> = h264::avcc_nals(avcc, config.length_size)
                    .collect::<Result<_, _>>()
                    .expect("AVCC");
                let sets = keyframe.then_some((&config.sps[..], &config.pps[..]));
                let mut payloads = Vec::new();
                packetizer.packetize_access_unit(&nals, sets, &mut payloads);

                assert!(payloads.iter().all(|p| p.payload.len() <= MTU));
                assert_eq!(h264::is_keyframe_start(&payloads[0].payload), keyframe);
                let markers: Vec<bool> = payloads.iter().map(|p| p.marker).collect();
                assert_eq!(markers.iter().filter(|m| **m).count(), 1);
                assert_eq!(markers.last(), Some(&true));
                fragmented += payloads
                    .iter()
                    .filter(|p| h264::nal_type(&p.payload) == Some(h264::NAL_FU_A))
                    .count();

                let mut back = Vec::new();
                for payload in &payloads {
                    depacketizer
                        .push(&payload.payload, &mut back)
                        .expect("depacketize");
                }
                let mut expected: Vec<Bytes> = Vec::new();
                if keyframe {
                    expected.extend(config.sps.iter().chain(&config.pps).cloned());
                }
                expected.extend(nals.iter().map(|nal| Bytes::copy_from_slice(nal)));
                assert_eq!(back, expected);

                frames += 1;
                keyframes += usize::from(keyframe);
                composition_times.push(composition_time_ms);
            }
            FlvVideo::AvcEndOfSequence => ends += 1,
            FlvVideo::Unsupported { codec_id } => panic!("unexpected codec {codec_id}"),
        }
    }
    assert_eq!((frames, keyframes, ends), (15, 1, 1));
    assert!(fragmented > 0, "the IDR needs FU-A at {MTU} bytes");
    // B-frames: composition times vary, starting non-zero on the key frame.
    assert_ne!(composition_times[0], 0);
    assert!(composition_times.windows(2).any(|w| w[0] != w[1]));
}

#[test]
fn audio_tags_frame_as_adts() {
    let mut config = None;
    let mut frames = 0;
    for (_, body) in tags(CAPTURE).into_iter().filter(|(kind, _)| *kind == 8) {
        match parse_audio_tag(body).expect("audio tag") {
            FlvAudio::AacSequenceHeader { config: bytes } => {
                let parsed = AudioSpecificConfig::parse(bytes).expect("ASC");
                assert_eq!(parsed.object_type, 2);
                assert_eq!(parsed.sample_rate(), 44_100);
                assert_eq!(parsed.channels(), Some(1));
                assert!(!parsed.sbr);
                config = Some(parsed);
            }
            FlvAudio::AacRaw { data } => {
                let config = config.as_ref().expect("sequence header first");
                let header = config.adts_header(data.len()).expect("ADTS");
                assert_eq!(&header[..2], &[0xff, 0xf1]);
                let frame_len = (usize::from(header[3] & 0x03) << 11)
                    | (usize::from(header[4]) << 3)
                    | usize::from(header[5] >> 5);
                assert_eq!(frame_len, data.len() + 7);
                frames += 1;
            }
            FlvAudio::Unsupported { format } => panic!("unexpected format {format}"),
        }
    }
    assert!(frames >= 40, "about 43 AAC frames a second, got {frames}");
}
