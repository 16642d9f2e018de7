//! Packaging checked by a real decoder: H.264 + AAC made by the ffmpeg CLI goes through the
//! segmenter and the live window, and ffprobe / ffmpeg read the playlist, init segment and
//! segments back (frame counts, size, codecs, duration, no decode errors).
//!
//! Skipped (with a note) when `ffmpeg`/`ffprobe` are not installed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use greenroom_hls::{
    AudioSample, AudioTrack, LiveVariant, Segmenter, SegmenterConfig, SegmenterEvent, VideoSample,
    VideoTrack,
};
use greenroom_media::h264::{annexb_to_nals, sps_resolution};

/// Unix ms of media time 0, for the program date-time.
const WALL_START_MS: i64 = 1_795_341_600_000;

fn tools_present() -> bool {
    ["ffmpeg", "ffprobe"].iter().all(|tool| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|out| out.status.success())
    })
}

/// Runs a command that must succeed; returns (stdout, stderr).
fn run(command: &mut Command) -> (String, String) {
    let out = command.output().expect("spawn");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{command:?} failed: {stderr}");
    (stdout, stderr)
}

/// `key=value|key=value` lines of ffprobe's compact writer.
fn compact_records(text: &str) -> Vec<HashMap<String, String>> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.split('|')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn field<T: std::str::FromStr>(record: &HashMap<String, String>, key: &str) -> T {
    record
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {record:?}"))
}

struct Source {
    video: VideoTrack,
    audio: AudioTrack,
    video_samples: Vec<VideoSample>,
    audio_samples: Vec<AudioSample>,
}

/// Makes 6 s of 640x360 30 fps H.264 (a keyframe every 2 s, `bframes` B-frames) and 48 kHz
/// mono AAC in an MP4, and reads its samples back with their timestamps (shifted by 1 s so
/// none is negative).
fn make_source(dir: &Path, bframes: u32) -> Source {
    let mp4 = dir.join("source.mp4");
    let bframes = bframes.to_string();
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "6", "-c:v", "libx264", "-preset", "veryfast"])
        .args(["-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60"])
        .args(["-sc_threshold", "0", "-bf", &bframes])
        .args([
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-video_track_timescale",
            "90000",
        ])
        .args(["-f", "mp4"])
        .arg(&mp4));

    // Parameter sets: the first access unit in Annex B carries them.
    let first = dir.join("first.h264");
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&mp4)
        .args(["-map", "0:v", "-c", "copy", "-bsf:v", "h264_mp4toannexb"])
        .args(["-frames:v", "1", "-f", "h264"])
        .arg(&first));
    let annexb = std::fs::read(&first).expect("read first AU");
    let nals: Vec<&[u8]> = annexb_to_nals(&annexb).collect();
    let sps = *nals.iter().find(|n| n[0] & 0x1f == 7).expect("SPS");
    let pps = *nals.iter().find(|n| n[0] & 0x1f == 8).expect("PPS");
    let (width, height) = sps_resolution(sps).expect("SPS resolution");
    let mut avc_config = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    avc_config.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    avc_config.extend_from_slice(sps);
    avc_config.push(1);
    avc_config.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    avc_config.extend_from_slice(pps);
    if matches!(sps[1], 100 | 110 | 122 | 144) {
        // High profile extension: 4:2:0, 8-bit, no SPS extensions.
        avc_config.extend_from_slice(&[0xfd, 0xf8, 0xf8, 0]);
    }

    let (packets, _) = run(Command::new("ffprobe")
        .args(["-v", "error", "-show_entries"])
        .arg("packet=stream_index,pts,dts,size,pos,flags")
        .args(["-of", "compact=p=0"])
        .arg(&mp4));
    let file = std::fs::read(&mp4).expect("read mp4");
    let mut source = Source {
        video: VideoTrack {
            avc_config: Bytes::from(avc_config),
            width,
            height,
        },
        audio: AudioTrack {
            // AAC-LC, 48 kHz (index 3), mono.
            asc: Bytes::from_static(&[0x11, 0x88]),
            sample_rate: 48_000,
            channels: 1,
        },
        video_samples: Vec::new(),
        audio_samples: Vec::new(),
    };
    for record in compact_records(&packets) {
        let pos: usize = field(&record, "pos");
        let size: usize = field(&record, "size");
        let data = Bytes::copy_from_slice(&file[pos..pos + size]);
        let pts: i64 = field(&record, "pts");
        if field::<u32>(&record, "stream_index") == 0 {
            source.video_samples.push(VideoSample {
                data,
                dts: field::<i64>(&record, "dts") + 90_000,
                pts: pts + 90_000,
                keyframe: record["flags"].starts_with('K'),
            });
        } else {
            source.audio_samples.push(AudioSample {
                data,
                pts: pts + 48_000,
                duration: 1024,
            });
        }
    }
    assert_eq!((width, height), (640, 360));
    assert_eq!(source.video_samples.len(), 180);
    source
}

/// Feeds the source in capture order (video by dts, audio by pts), cutting at every keyframe;
/// returns the live window (ended) and the parts' durations.
fn package(source: &Source) -> (LiveVariant, Vec<f64>) {
    let mut segmenter = Segmenter::new(
        SegmenterConfig::default(),
        Some(source.video.clone()),
        Some(source.audio.clone()),
    );
    let mut live = LiveVariant::new(10);
    let mut part_durations = Vec::new();
    let mut drain = |segmenter: &mut Segmenter, live: &mut LiveVariant| {
        while let Some(event) = segmenter.poll_event() {
            if let SegmenterEvent::Part { duration, .. } = &event {
                part_durations.push(duration.as_secs_f64());
            }
            live.apply(event);
        }
    };
    let mut audio = source.audio_samples.iter().peekable();
    for sample in &source.video_samples {
        while let Some(frame) = audio.next_if(|a| a.pts * 90_000 / 48_000 <= sample.dts) {
            segmenter.push_audio(frame.clone(), WALL_START_MS + frame.pts / 48);
            drain(&mut segmenter, &mut live);
        }
        let wall = WALL_START_MS + sample.dts / 90;
        segmenter.push_video(sample.clone(), sample.keyframe, wall);
        drain(&mut segmenter, &mut live);
    }
    for frame in audio {
        segmenter.push_audio(frame.clone(), WALL_START_MS + frame.pts / 48);
    }
    segmenter.finish();
    drain(&mut segmenter, &mut live);
    live.mark_ended();
    (live, part_durations)
}

/// Writes the playlist and every file it names; returns the playlist path and the path of
/// the init segment + segments concatenated into one fragmented MP4.
fn write_out(dir: &Path, live: &LiveVariant) -> (PathBuf, PathBuf) {
    let playlist = live.render();
    let mut names = vec!["init.mp4".to_owned()];
    names.extend(
        playlist
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(str::to_owned),
    );
    let mut whole = Vec::new();
    for name in &names {
        let data = live
            .resolve(name)
            .unwrap_or_else(|| panic!("{name} resolves"));
        std::fs::write(dir.join(name), &data).expect("write");
        whole.extend_from_slice(&data);
    }
    let m3u8 = dir.join("index.m3u8");
    std::fs::write(&m3u8, &playlist).expect("write playlist");
    let joined = dir.join("joined.mp4");
    std::fs::write(&joined, whole).expect("write joined");
    (m3u8, joined)
}

/// ffprobe's view: streams by codec type, the format's start time and duration.
fn probe(path: &Path) -> (HashMap<String, HashMap<String, String>>, f64, f64) {
    let entries = "stream=codec_type,codec_name,width,height,sample_rate,channels,\
                   nb_read_frames:format=start_time,duration";
    let (out, err) = run(Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", entries])
        .args(["-of", "compact=p=0"])
        .arg(path));
    assert!(err.trim().is_empty(), "ffprobe {path:?}: {err}");
    let mut streams = HashMap::new();
    let mut start = 0.0;
    let mut duration = 0.0;
    for record in compact_records(&out) {
        match record.get("codec_type") {
            Some(kind) => {
                streams.insert(kind.clone(), record);
            }
            None => {
                start = field(&record, "start_time");
                duration = field(&record, "duration");
            }
        }
    }
    (streams, start, duration)
}

/// `duration_from_zero`: the demuxer reports the end time (MP4) rather than the length
/// (HLS: the sum of `EXTINF`).
fn check_decodes(path: &Path, expected_audio_frames: usize, duration_from_zero: bool) {
    let (streams, start, mut duration) = probe(path);
    if duration_from_zero {
        duration -= start;
    }
    let video = &streams["video"];
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(field::<u32>(video, "width"), 640);
    assert_eq!(field::<u32>(video, "height"), 360);
    assert_eq!(field::<u32>(video, "nb_read_frames"), 180, "{path:?}");
    let audio = &streams["audio"];
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(field::<u32>(audio, "sample_rate"), 48_000);
    assert_eq!(field::<u32>(audio, "channels"), 1);
    let audio_frames: usize = field(audio, "nb_read_frames");
    assert!(
        audio_frames.abs_diff(expected_audio_frames) <= 1,
        "{path:?}: {audio_frames} audio frames decoded, {expected_audio_frames} packaged"
    );
    assert!(
        (duration - 6.0).abs() < 0.1,
        "{path:?}: duration {duration}"
    );

    let (_, err) = run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"]));
    assert!(err.trim().is_empty(), "ffmpeg decode of {path:?}: {err}");
}

fn package_and_check(bframes: u32) {
    if !tools_present() {
        eprintln!("ffmpeg/ffprobe not installed: skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let source = make_source(dir.path(), bframes);
    if bframes > 0 {
        assert!(source.video_samples.iter().any(|s| s.pts != s.dts));
    }
    let (live, part_durations) = package(&source);

    assert_eq!(live.segments_completed(), 3);
    assert_eq!(part_durations.len(), 12);
    assert!(
        part_durations.iter().all(|d| *d <= 0.5 + 1e-9),
        "{part_durations:?}"
    );
    let rate = live.frame_rate().expect("frame rate");
    assert!((rate - 30.0).abs() < 0.01, "frame rate {rate}");
    assert!(live.peak_bandwidth_bps() >= live.average_bandwidth_bps());
    assert!(live.average_bandwidth_bps() > 100_000);

    let playlist = live.render();
    assert!(playlist.contains("#EXT-X-TARGETDURATION:2\n"), "{playlist}");
    assert!(playlist.ends_with("#EXT-X-ENDLIST\n"));
    let first_dts_ms = source.video_samples[0].dts / 90;
    let date = greenroom_hls::playlist::format_program_date_time(WALL_START_MS + first_dts_ms)
        .expect("date");
    assert!(
        playlist.contains(&format!("#EXT-X-PROGRAM-DATE-TIME:{date}\n")),
        "{playlist}"
    );

    // The audio the segmenter kept: what came after the first keyframe.
    let start = source.video_samples[0].dts;
    let audio_frames = source
        .audio_samples
        .iter()
        .filter(|a| a.pts * 90_000 / 48_000 > start)
        .count();
    let (m3u8, joined) = write_out(dir.path(), &live);
    check_decodes(&m3u8, audio_frames, false);
    check_decodes(&joined, audio_frames, true);
}

#[test]
fn h264_aac_without_b_frames_decodes_from_the_playlist() {
    package_and_check(0);
}

#[test]
fn h264_with_b_frames_decodes_without_errors() {
    package_and_check(2);
}
