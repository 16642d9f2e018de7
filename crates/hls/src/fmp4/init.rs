//! The initialization segment (`init.mp4`): `ftyp` + `moov` describing the tracks, with empty
//! sample tables and an `mvex` announcing that the media comes in movie fragments.

use bytes::Bytes;

use super::boxes::BoxWriter;
use super::{AUDIO_TRACK_ID, VIDEO_TRACK_ID};
use crate::{AudioTrack, VIDEO_TIMESCALE, VideoTrack};

/// Movie header timescale (the movie has no duration, so any value works).
const MOVIE_TIMESCALE: u32 = 1000;
/// The unity transformation matrix of `mvhd` and `tkhd`.
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];
/// ISO 639-2/T `und` packed as three 5-bit letters.
const LANGUAGE_UNDETERMINED: u16 = 0x55c4;

/// Writes the initialization segment for the tracks present (video is track 1, audio
/// track 2).
///
/// Brands: major `iso5` (the brand for movie fragments with `default-base-is-moof`),
/// compatible `iso5 iso6 mp41`; `cmfc` is not claimed since a multiplexed fragment is not a
/// CMAF track. hls.js, Safari and FFmpeg accept these.
pub fn init_segment(video: Option<&VideoTrack>, audio: Option<&AudioTrack>) -> Bytes {
    let mut w = BoxWriter::with_capacity(1024);
    w.start(b"ftyp");
    w.bytes(b"iso5");
    w.u32(512);
    for brand in [b"iso5", b"iso6", b"mp41"] {
        w.bytes(brand);
    }
    w.end();

    w.start(b"moov");
    movie_header(&mut w);
    if let Some(video) = video {
        video_track(&mut w, video);
    }
    if let Some(audio) = audio {
        audio_track(&mut w, audio);
    }
    w.start(b"mvex");
    for (present, track_id) in [
        (video.is_some(), VIDEO_TRACK_ID),
        (audio.is_some(), AUDIO_TRACK_ID),
    ] {
        if present {
            w.start_full(b"trex", 0, 0);
            w.u32(track_id);
            w.u32(1); // default_sample_description_index
            w.u32(0); // default_sample_duration
            w.u32(0); // default_sample_size
            w.u32(0); // default_sample_flags
            w.end();
        }
    }
    w.end(); // mvex
    w.end(); // moov
    Bytes::from(w.finish())
}

fn movie_header(w: &mut BoxWriter) {
    w.start_full(b"mvhd", 0, 0);
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(MOVIE_TIMESCALE);
    w.u32(0); // duration
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(2 + 8); // reserved
    for value in MATRIX {
        w.u32(value);
    }
    w.zeros(24); // pre_defined
    w.u32(AUDIO_TRACK_ID + 1); // next_track_ID
    w.end();
}

/// `tkhd`: enabled, in movie; `volume` is 0x0100 for audio, 0 for video; the size is 16.16.
fn track_header(w: &mut BoxWriter, track_id: u32, volume: u16, width: u32, height: u32) {
    w.start_full(b"tkhd", 0, 0x000003);
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(track_id);
    w.u32(0); // reserved
    w.u32(0); // duration
    w.zeros(8); // reserved
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(volume);
    w.u16(0); // reserved
    for value in MATRIX {
        w.u32(value);
    }
    w.u32(width.min(0xffff) << 16);
    w.u32(height.min(0xffff) << 16);
    w.end();
}

fn media_header(w: &mut BoxWriter, timescale: u32) {
    w.start_full(b"mdhd", 0, 0);
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(timescale);
    w.u32(0); // duration
    w.u16(LANGUAGE_UNDETERMINED);
    w.u16(0); // pre_defined
    w.end();
}

fn handler(w: &mut BoxWriter, handler_type: &[u8; 4], name: &str) {
    w.start_full(b"hdlr", 0, 0);
    w.u32(0); // pre_defined
    w.bytes(handler_type);
    w.zeros(12); // reserved
    w.bytes(name.as_bytes());
    w.u8(0);
    w.end();
}

/// `dinf` with one self-contained data reference.
fn data_information(w: &mut BoxWriter) {
    w.start(b"dinf");
    w.start_full(b"dref", 0, 0);
    w.u32(1); // entry_count
    w.start_full(b"url ", 0, 0x000001); // media in the same file
    w.end();
    w.end();
    w.end();
}

/// The empty sample tables after `stsd` (the samples are in fragments).
fn empty_tables(w: &mut BoxWriter) {
    for kind in [b"stts", b"stsc", b"stco"] {
        w.start_full(kind, 0, 0);
        w.u32(0); // entry_count
        w.end();
    }
    w.start_full(b"stsz", 0, 0);
    w.u32(0); // sample_size
    w.u32(0); // sample_count
    w.end();
}

fn video_track(w: &mut BoxWriter, track: &VideoTrack) {
    let width = u16::try_from(track.width).unwrap_or(u16::MAX);
    let height = u16::try_from(track.height).unwrap_or(u16::MAX);
    w.start(b"trak");
    track_header(w, VIDEO_TRACK_ID, 0, track.width, track.height);
    w.start(b"mdia");
    media_header(w, VIDEO_TIMESCALE);
    handler(w, b"vide", "VideoHandler");
    w.start(b"minf");
    w.start_full(b"vmhd", 0, 0x000001);
    w.u16(0); // graphicsmode
    w.zeros(6); // opcolor
    w.end();
    data_information(w);
    w.start(b"stbl");
    w.start_full(b"stsd", 0, 0);
    w.u32(1); // entry_count
    w.start(b"avc1");
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index
    w.u16(0); // pre_defined
    w.u16(0); // reserved
    w.zeros(12); // pre_defined
    w.u16(width);
    w.u16(height);
    w.u32(0x0048_0000); // horizresolution 72 dpi
    w.u32(0x0048_0000); // vertresolution 72 dpi
    w.u32(0); // reserved
    w.u16(1); // frame_count
    w.zeros(32); // compressorname
    w.u16(0x0018); // depth
    w.u16(0xffff); // pre_defined = -1
    w.leaf(b"avcC", &track.avc_config);
    w.end(); // avc1
    w.end(); // stsd
    empty_tables(w);
    w.end(); // stbl
    w.end(); // minf
    w.end(); // mdia
    w.end(); // trak
}

fn audio_track(w: &mut BoxWriter, track: &AudioTrack) {
    w.start(b"trak");
    track_header(w, AUDIO_TRACK_ID, 0x0100, 0, 0);
    w.start(b"mdia");
    media_header(w, track.sample_rate);
    handler(w, b"soun", "SoundHandler");
    w.start(b"minf");
    w.start_full(b"smhd", 0, 0);
    w.u16(0); // balance
    w.u16(0); // reserved
    w.end();
    data_information(w);
    w.start(b"stbl");
    w.start_full(b"stsd", 0, 0);
    w.u32(1); // entry_count
    w.start(b"mp4a");
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index
    w.zeros(8); // reserved
    w.u16(track.channels);
    w.u16(16); // samplesize
    w.u16(0); // pre_defined
    w.u16(0); // reserved
    // samplerate is 16.16: rates above 65535 Hz do not fit and are left to the mdhd/esds.
    let rate = if track.sample_rate <= 0xffff {
        track.sample_rate << 16
    } else {
        0
    };
    w.u32(rate);
    w.start_full(b"esds", 0, 0);
    w.bytes(&es_descriptor(&track.asc));
    w.end();
    w.end(); // mp4a
    w.end(); // stsd
    empty_tables(w);
    w.end(); // stbl
    w.end(); // minf
    w.end(); // mdia
    w.end(); // trak
}

/// The MPEG-4 `ES_Descriptor` (ISO/IEC 14496-1 §7.2.6.5) for AAC: a
/// `DecoderConfigDescriptor` (object type 0x40 = MPEG-4 Audio, stream type 5 = audio) whose
/// `DecoderSpecificInfo` is the `AudioSpecificConfig`, and the MP4 `SLConfigDescriptor`.
fn es_descriptor(asc: &[u8]) -> Vec<u8> {
    let mut decoder_config = vec![
        0x40, // objectTypeIndication: MPEG-4 Audio
        0x15, // streamType 5 << 2 | upStream 0 << 1 | reserved 1
        0, 0, 0, // bufferSizeDB
    ];
    decoder_config.extend_from_slice(&0u32.to_be_bytes()); // maxBitrate (unknown)
    decoder_config.extend_from_slice(&0u32.to_be_bytes()); // avgBitrate (variable)
    descriptor(&mut decoder_config, 0x05, asc);

    let mut es = vec![0, 0, 0]; // ES_ID 0, no stream dependence, URL or OCR stream
    descriptor(&mut es, 0x04, &decoder_config);
    descriptor(&mut es, 0x06, &[0x02]); // SLConfigDescriptor: predefined MP4
    let mut out = Vec::with_capacity(es.len() + 5);
    descriptor(&mut out, 0x03, &es);
    out
}

/// Appends a descriptor: tag, size in 7-bit groups (high bit = more follow), body.
fn descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    let len = body.len();
    let groups = (1..4).take_while(|shift| len >> (7 * shift) != 0).count() + 1;
    for index in (0..groups).rev() {
        let more = if index == 0 { 0 } else { 0x80 };
        out.push(((len >> (7 * index)) & 0x7f) as u8 | more);
    }
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::super::reader::{child, children, find};
    use super::*;

    fn video() -> VideoTrack {
        VideoTrack {
            avc_config: Bytes::from_static(&[
                1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 2, 0x68, 0xee,
            ]),
            width: 1280,
            height: 720,
        }
    }

    fn audio() -> AudioTrack {
        AudioTrack {
            asc: Bytes::from_static(&[0x11, 0x90]),
            sample_rate: 48_000,
            channels: 2,
        }
    }

    #[test]
    fn descriptor_sizes_use_minimal_groups() {
        let mut out = Vec::new();
        descriptor(&mut out, 5, &[9; 3]);
        assert_eq!(out, [5, 3, 9, 9, 9]);
        let mut out = Vec::new();
        descriptor(&mut out, 5, &[0; 200]);
        assert_eq!(&out[..3], &[5, 0x81, 0x48]);
        assert_eq!(out.len(), 203);
    }

    #[test]
    fn ftyp_and_track_layout() {
        let init = init_segment(Some(&video()), Some(&audio()));
        let top: Vec<_> = children(&init).iter().map(|b| b.kind).collect();
        assert_eq!(top, [*b"ftyp", *b"moov"]);
        let ftyp = find(&init, &["ftyp"]).expect("ftyp");
        assert_eq!(&ftyp[..4], b"iso5");
        let moov = find(&init, &["moov"]).expect("moov");
        let kinds: Vec<_> = children(moov).iter().map(|b| b.kind).collect();
        assert_eq!(kinds, [*b"mvhd", *b"trak", *b"trak", *b"mvex"]);
        let trex: Vec<u32> = children(find(&init, &["moov", "mvex"]).expect("mvex"))
            .iter()
            .map(|b| u32::from_be_bytes(b.payload[4..8].try_into().expect("id")))
            .collect();
        assert_eq!(trex, [1, 2]);
    }

    #[test]
    fn video_track_carries_avcc_and_size() {
        let track = video();
        let init = init_segment(Some(&track), None);
        let moov = find(&init, &["moov"]).expect("moov");
        let trak = child(moov, b"trak").expect("trak");
        let tkhd = child(trak, b"tkhd").expect("tkhd");
        assert_eq!(u32::from_be_bytes(tkhd[12..16].try_into().expect("id")), 1);
        assert_eq!(&tkhd[tkhd.len() - 8..], &[5, 0, 0, 0, 2, 0xd0, 0, 0]);
        let mdhd = find(trak, &["mdia", "mdhd"]).expect("mdhd");
        assert_eq!(
            u32::from_be_bytes(mdhd[12..16].try_into().expect("ts")),
            90_000
        );
        let hdlr = find(trak, &["mdia", "hdlr"]).expect("hdlr");
        assert_eq!(&hdlr[8..12], b"vide");
        let avcc = find(trak, &["mdia", "minf", "stbl", "stsd", "avc1", "avcC"]).expect("avcC");
        assert_eq!(avcc, &track.avc_config[..]);
        let avc1 = find(trak, &["mdia", "minf", "stbl", "stsd", "avc1"]).expect("avc1");
        assert_eq!(&avc1[24..28], &[5, 0, 2, 0xd0]);
        for table in ["stts", "stsc", "stsz", "stco"] {
            assert!(
                find(trak, &["mdia", "minf", "stbl", table]).is_some(),
                "{table}"
            );
        }
        assert!(find(trak, &["mdia", "minf", "dinf", "dref", "url "]).is_some());
    }

    #[test]
    fn audio_track_carries_the_audio_specific_config() {
        let track = audio();
        let init = init_segment(None, Some(&track));
        let moov = find(&init, &["moov"]).expect("moov");
        let trak = child(moov, b"trak").expect("trak");
        let tkhd = child(trak, b"tkhd").expect("tkhd");
        assert_eq!(u32::from_be_bytes(tkhd[12..16].try_into().expect("id")), 2);
        let mdhd = find(trak, &["mdia", "mdhd"]).expect("mdhd");
        assert_eq!(
            u32::from_be_bytes(mdhd[12..16].try_into().expect("ts")),
            48_000
        );
        let hdlr = find(trak, &["mdia", "hdlr"]).expect("hdlr");
        assert_eq!(&hdlr[8..12], b"soun");
        let mp4a = find(trak, &["mdia", "minf", "stbl", "stsd", "mp4a"]).expect("mp4a");
        assert_eq!(&mp4a[16..18], &[0, 2]); // channels
        assert_eq!(&mp4a[24..28], &[0xbb, 0x80, 0, 0]); // 48000 in 16.16
        let esds = find(trak, &["mdia", "minf", "stbl", "stsd", "mp4a", "esds"]).expect("esds");
        assert_eq!(
            &esds[4..],
            &[
                0x03, 25, 0, 0, 0, // ES_Descriptor
                0x04, 17, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // DecoderConfig
                0x05, 2, 0x11, 0x90, // DecoderSpecificInfo
                0x06, 1, 0x02, // SLConfig
            ]
        );
        let mvex = find(&init, &["moov", "mvex"]).expect("mvex");
        assert_eq!(children(mvex).len(), 1);
    }
}
