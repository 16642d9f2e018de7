//! AAC→Opus and the H.264 re-encode against media made by the real ffmpeg CLI, checked by
//! decoding the output again (libopus) and by ffprobe.
//!
//! Also prints the CPU cost per second of media (`cargo test -p greenroom-ingest --test
//! transcode -- --nocapture`).

use std::path::Path;
use std::time::Instant;

use ffmpeg_next::{Packet, codec, decoder, frame};
use greenroom_ingest::transcode::{
    AacToOpus, EncodedFrame, H264Reencoder, OpusFrame, ReencodeOptions, TranscodeError,
};

mod av_fixtures;

use av_fixtures::*;

// ---------------------------------------------------------------------------------------------
// Audio

#[test]
fn aac_to_opus_is_send_and_options_travel_to_a_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<AacToOpus>();
    assert_send::<OpusFrame>();
    assert_send::<ReencodeOptions>();
    assert_send::<EncodedFrame>();
    assert_send::<TranscodeError>();
}

#[test]
fn aac_becomes_continuous_20ms_opus_that_decodes_to_the_same_tone() -> Result<()> {
    let dir = temp_dir("aac")?;
    let (asc, frames, rate) = aac_fixture(&dir, 2.0)?;
    let mut t = AacToOpus::new(&asc)?;
    assert_eq!(t.input_sample_rate(), rate);

    let first_pts_ms = 1_000;
    let mut opus = Vec::new();
    for (i, raw) in frames.iter().enumerate() {
        opus.extend(t.push(raw, first_pts_ms + aac_pts_ms(i, rate))?);
    }
    opus.extend(t.flush()?);

    // ffmpeg's AAC has 1024 samples of priming plus a partial last frame: about 2.05 s.
    assert!(
        (97..=106).contains(&opus.len()),
        "{} Opus frames for 2 s of audio",
        opus.len()
    );
    let base = (first_pts_ms * 48) as u32;
    let first = opus[0].timestamp_48k;
    assert!(
        base.wrapping_sub(first) <= 960,
        "first timestamp {first} vs first pts × 48 = {base}"
    );
    for pair in opus.windows(2) {
        assert_eq!(
            pair[1].timestamp_48k.wrapping_sub(pair[0].timestamp_48k),
            960
        );
    }
    for f in &opus {
        let toc = f.data[0];
        // CELT-only (application=lowdelay), fullband, 20 ms = config 31; stereo; one frame.
        assert_eq!(toc >> 3, 31, "TOC {toc:#04x}");
        assert_eq!((toc >> 2) & 1, 1, "stereo flag in TOC {toc:#04x}");
        assert_eq!(toc & 3, 0, "one frame per packet in TOC {toc:#04x}");
    }
    let bytes: usize = opus.iter().map(|f| f.data.len()).sum();
    let kbps = bytes as f64 * 8.0 / (opus.len() as f64 * 0.02) / 1000.0;
    println!("opus: {} frames, {kbps:.1} kbit/s", opus.len());
    assert!((20.0..=100.0).contains(&kbps), "{kbps} kbit/s");

    let (left, right) = decode_opus(&opus)?;
    // Skip the first 100 ms (encoder and decoder warm-up).
    let steady = &left[4_800..];
    let rms = (steady.iter().map(|s| s * s).sum::<f32>() / steady.len() as f32).sqrt();
    println!("opus decoded: {} samples, left RMS {rms:.3}", left.len());
    // lavfi sine has amplitude 1/8: RMS ≈ 0.088.
    assert!(rms > 0.03, "decoded audio is (nearly) silent: RMS {rms}");
    let right_rms =
        (right[4_800..].iter().map(|s| s * s).sum::<f32>() / (right.len() - 4_800) as f32).sqrt();
    assert!(right_rms > 0.03, "mono must be upmixed to both channels");
    // Right pitch means the 44.1 -> 48 kHz resampling is right: 440 Hz = 880 crossings/s.
    let crossings = steady
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count() as f64;
    let hz = crossings / 2.0 / (steady.len() as f64 / 48_000.0);
    assert!((430.0..=450.0).contains(&hz), "decoded tone is {hz:.1} Hz");
    Ok(())
}

#[test]
fn a_gap_in_aac_jumps_the_opus_timestamp_by_the_gap() -> Result<()> {
    let dir = temp_dir("aac-gap")?;
    let (asc, frames, rate) = aac_fixture(&dir, 2.0)?;
    let mut t = AacToOpus::new(&asc)?;
    let dropped = 40..52; // 12 frames × 23.2 ms = 279 ms
    let mut opus = Vec::new();
    for (i, raw) in frames.iter().enumerate() {
        if dropped.contains(&i) {
            continue;
        }
        opus.extend(t.push(raw, aac_pts_ms(i, rate))?);
    }
    let deltas: Vec<u32> = opus
        .windows(2)
        .map(|p| p[1].timestamp_48k.wrapping_sub(p[0].timestamp_48k))
        .collect();
    let jumps: Vec<u32> = deltas.iter().copied().filter(|&d| d != 960).collect();
    assert_eq!(jumps.len(), 1, "deltas {deltas:?}");
    let gap_48k = (dropped.len() as u64 * 1024 * 48_000 / u64::from(rate)) as u32;
    // The jump is the frame's own 960 plus the gap, give or take the frame padded with silence.
    assert!(
        jumps[0].abs_diff(960 + gap_48k) <= 960,
        "jump {} for a gap of {gap_48k} samples",
        jumps[0]
    );
    // A jump back (publisher restart) keeps the timestamps continuous.
    let before = opus.len();
    for (i, raw) in frames.iter().take(20).enumerate() {
        opus.extend(t.push(raw, aac_pts_ms(i, rate))?);
    }
    for pair in opus[before - 1..].windows(2) {
        assert_eq!(
            pair[1].timestamp_48k.wrapping_sub(pair[0].timestamp_48k),
            960
        );
    }
    Ok(())
}

#[test]
fn unsupported_aac_configs_are_refused_with_context() {
    // Channel configuration 0 needs a program config element, which ADTS cannot carry.
    let err = AacToOpus::new(&[0x12, 0x00]).expect_err("PCE config");
    assert!(
        matches!(err, TranscodeError::UnsupportedAacConfig { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("12 00"), "{err}");
    assert!(AacToOpus::new(&[]).is_err());
    // xHE-AAC (object type 42, escaped).
    assert!(AacToOpus::new(&[0xF9, 0x46, 0x40]).is_err());

    let mut t = AacToOpus::new(&[0x12, 0x10]).expect("LC 44.1 kHz stereo");
    assert!(matches!(
        t.push(&[], 0),
        Err(TranscodeError::BadAacFrame { len: 0, .. })
    ));
    // Garbage is an error for this frame, not a panic, and the transcoder stays usable.
    let _ = t.push(&[0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x11], 0);
}

#[test]
fn aac_to_opus_cost_per_second_of_audio() -> Result<()> {
    let dir = temp_dir("aac-cost")?;
    let seconds = 10.0;
    let (asc, frames, rate) = aac_fixture_stereo_128k(&dir, seconds)?;
    let mut t = AacToOpus::new(&asc)?;
    let cpu = CpuClock::start()?;
    let wall = Instant::now();
    let mut n = 0;
    for (i, raw) in frames.iter().enumerate() {
        n += t.push(raw, aac_pts_ms(i, rate))?.len();
    }
    let (wall, (thread, process)) = (wall.elapsed(), cpu.elapsed()?);
    let expected = (seconds * 50.0) as usize;
    ensure!(
        n.abs_diff(expected) <= 3,
        "20 ms Opus frames for {seconds} s of audio: {n}, expected about {expected}"
    );
    println!(
        "COST aac->opus (44.1 kHz stereo 128k AAC -> 48 kHz stereo 64k Opus), per second of \
         audio: {:.1} ms CPU on the thread, {:.1} ms CPU in the process, {:.1} ms wall; \
         {n} frames",
        per_second(thread, seconds),
        per_second(process, seconds),
        per_second(wall, seconds)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Video

#[test]
fn b_frames_are_reencoded_as_baseline_ip_with_in_band_parameter_sets() -> Result<()> {
    let dir = temp_dir("h264")?;
    let input = h264_fixture(&dir, "testsrc=size=320x240:rate=30", 2.0)?;
    let input_types = ffprobe_frames(&input.annexb_path)?;
    assert!(
        input_types.iter().any(|f| f.pict_type == "B"),
        "the fixture must have B-frames"
    );

    let mut t = H264Reencoder::new(ReencodeOptions {
        bitrate_bps: 500_000,
        ..ReencodeOptions::default()
    })?;
    let mut out = Vec::new();
    for (au, pts) in input.access_units.iter().zip(&input.pts_ms) {
        out.extend(t.push(au, *pts)?);
    }
    let before_flush = out.len();
    out.extend(t.flush()?);
    println!(
        "h264: {} AUs in, {} frames out ({} from flush)",
        input.access_units.len(),
        out.len(),
        out.len() - before_flush
    );

    assert_eq!(out.len(), input.access_units.len());
    // Presentation order, strictly increasing, same timestamps as the input's presentation.
    let mut sorted_in = input.pts_ms.clone();
    sorted_in.sort_unstable();
    let out_pts: Vec<i64> = out.iter().map(|f| f.pts_ms).collect();
    assert_eq!(out_pts, sorted_in);

    let first = &out[0];
    assert!(first.keyframe);
    let types = nal_types(&first.annexb);
    let idr = types.iter().position(|&t| t == 5).context("no IDR slice")?;
    let sps = types.iter().position(|&t| t == 7).context("no SPS")?;
    let pps = types.iter().position(|&t| t == 8).context("no PPS")?;
    assert!(sps < idr && pps < idr, "NAL order {types:?}");
    for f in &out {
        assert_eq!(f.keyframe, nal_types(&f.annexb).contains(&5));
    }
    // Constrained baseline: profile_idc 66 with constraint_set1.
    let sps_nal = nal_units(&first.annexb)[sps];
    assert_eq!(sps_nal[1], 66, "profile_idc");
    assert_ne!(sps_nal[2] & 0x40, 0, "constraint_set1_flag");

    let out_path = dir.join("out.h264");
    write_annexb(&out_path, &out)?;
    let frames = ffprobe_frames(&out_path)?;
    assert_eq!(frames.len(), out.len());
    assert!(frames.iter().all(|f| f.pict_type != "B"), "{frames:?}");
    assert!(frames[0].key_frame);
    assert!(frames.iter().all(|f| (f.width, f.height) == (320, 240)));
    Ok(())
}

#[test]
fn target_size_scales_the_output() -> Result<()> {
    let dir = temp_dir("h264-scale")?;
    let input = h264_fixture(&dir, "testsrc=size=320x240:rate=30", 1.0)?;
    let mut t = H264Reencoder::new(ReencodeOptions {
        bitrate_bps: 150_000,
        target: Some((160, 120)),
        ..ReencodeOptions::default()
    })?;
    let mut out = Vec::new();
    for (au, pts) in input.access_units.iter().zip(&input.pts_ms) {
        out.extend(t.push(au, *pts)?);
    }
    out.extend(t.flush()?);
    let path = dir.join("scaled.h264");
    write_annexb(&path, &out)?;
    let frames = ffprobe_frames(&path)?;
    assert_eq!(frames.len(), input.access_units.len());
    assert!(
        frames.iter().all(|f| (f.width, f.height) == (160, 120)),
        "{frames:?}"
    );
    assert!(frames.iter().all(|f| f.pict_type != "B"));
    Ok(())
}

#[test]
fn after_flush_a_restarted_publisher_is_reencoded_from_an_idr() -> Result<()> {
    let dir = temp_dir("h264-restart")?;
    let input = h264_fixture(&dir, "testsrc=size=320x240:rate=30", 1.0)?;
    let mut t = H264Reencoder::new(ReencodeOptions::default())?;
    let mut first = Vec::new();
    for (au, pts) in input.access_units.iter().zip(&input.pts_ms) {
        first.extend(t.push(au, *pts)?);
    }
    first.extend(t.flush()?);
    assert_eq!(first.len(), input.access_units.len());
    // The new session starts again at pts 0 with a new IDR.
    let mut second = Vec::new();
    for (au, pts) in input.access_units.iter().zip(&input.pts_ms).take(10) {
        second.extend(t.push(au, *pts)?);
    }
    second.extend(t.flush()?);
    assert_eq!(second.len(), 10);
    assert!(second[0].keyframe);
    assert!(nal_types(&second[0].annexb).contains(&7));
    assert_eq!(second[0].pts_ms, *input.pts_ms.iter().min().context("pts")?);
    Ok(())
}

#[test]
fn request_keyframe_yields_an_idr_within_two_frames() -> Result<()> {
    let dir = temp_dir("h264-pli")?;
    let input = h264_fixture(&dir, "testsrc=size=320x240:rate=30", 2.0)?;
    let mut t = H264Reencoder::new(ReencodeOptions {
        bitrate_bps: 500_000,
        max_keyframe_interval_frames: 300,
        ..ReencodeOptions::default()
    })?;
    let mut out: Vec<EncodedFrame> = Vec::new();
    let mut requested_at = Vec::new();
    for (i, (au, pts)) in input.access_units.iter().zip(&input.pts_ms).enumerate() {
        if i == 20 || i == 41 {
            t.request_keyframe();
            requested_at.push(out.len());
        }
        out.extend(t.push(au, *pts)?);
    }
    out.extend(t.flush()?);
    let keyframes: Vec<usize> = (0..out.len()).filter(|&i| out[i].keyframe).collect();
    println!("keyframes at outputs {keyframes:?}, requested before output {requested_at:?}");
    for &r in &requested_at {
        let idr = keyframes
            .iter()
            .find(|&&k| k >= r)
            .with_context(|| format!("no keyframe after request at {r}"))?;
        assert!(idr - r < 2, "IDR at {idr} for a request before output {r}");
        let types = nal_types(&out[*idr].annexb);
        assert!(types.contains(&7) && types.contains(&8) && types.contains(&5));
    }
    // Without requests there would be just one (interval 300 > 60 frames).
    assert_eq!(keyframes.len(), 1 + requested_at.len());
    Ok(())
}

#[test]
fn h264_reencode_cost_per_second_of_720p30() -> Result<()> {
    let dir = temp_dir("h264-cost")?;
    let seconds = 4.0;
    let input = h264_fixture(&dir, "testsrc2=size=1280x720:rate=30", seconds)?;
    for (label, options) in [
        (
            "720p30 -> 720p veryfast 2.5 Mbit/s",
            ReencodeOptions::default(),
        ),
        (
            "720p30 -> 360p veryfast 800 kbit/s",
            ReencodeOptions {
                bitrate_bps: 800_000,
                target: Some((640, 360)),
                ..ReencodeOptions::default()
            },
        ),
        (
            "720p30 -> 720p superfast 2.5 Mbit/s",
            ReencodeOptions {
                preset: "superfast".into(),
                ..ReencodeOptions::default()
            },
        ),
        (
            "720p30 -> 720p veryfast 2.5 Mbit/s, x264 auto threads",
            ReencodeOptions {
                encoder_threads: 0,
                ..ReencodeOptions::default()
            },
        ),
    ] {
        let mut t = H264Reencoder::new(options)?;
        let cpu = CpuClock::start()?;
        let wall = Instant::now();
        let mut bytes = 0;
        let mut n = 0;
        for (au, pts) in input.access_units.iter().zip(&input.pts_ms) {
            for f in t.push(au, *pts)? {
                bytes += f.annexb.len();
                n += 1;
            }
        }
        for f in t.flush()? {
            bytes += f.annexb.len();
            n += 1;
        }
        let (wall, (thread, process)) = (wall.elapsed(), cpu.elapsed()?);
        ensure!(
            n == input.access_units.len(),
            "{label}: one frame out per frame in ({n} of {})",
            input.access_units.len()
        );
        println!(
            "COST h264 decode+x264 {label}, per second of input: {:.0} ms CPU on the thread, \
             {:.0} ms CPU in the process, {:.0} ms wall; {n} frames, {:.2} Mbit/s out",
            per_second(thread, seconds),
            per_second(process, seconds),
            per_second(wall, seconds),
            bytes as f64 * 8.0 / seconds / 1e6
        );
    }
    Ok(())
}

#[test]
fn reencoder_rejects_bad_options_and_survives_garbage() -> Result<()> {
    for bad in [
        ReencodeOptions {
            preset: "warp".into(),
            ..ReencodeOptions::default()
        },
        ReencodeOptions {
            target: Some((161, 120)),
            ..ReencodeOptions::default()
        },
        ReencodeOptions {
            max_keyframe_interval_frames: 0,
            ..ReencodeOptions::default()
        },
    ] {
        assert!(matches!(
            H264Reencoder::new(bad),
            Err(TranscodeError::InvalidOptions { .. })
        ));
    }
    let mut t = H264Reencoder::new(ReencodeOptions::default())?;
    // Not H.264 at all: an error or nothing, never a panic.
    if let Ok(frames) = t.push(&[0, 0, 0, 1, 0x65, 0xFF, 0x00, 0x12, 0x34], 0) {
        assert!(frames.is_empty());
    }
    assert!(t.flush()?.is_empty());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fixtures and helpers

fn aac_pts_ms(index: usize, rate: u32) -> i64 {
    (index as u64 * 1024 * 1000 / u64::from(rate)) as i64
}

/// A 440 Hz mono sine at 44.1 kHz as AAC: (AudioSpecificConfig, raw frames, sample rate).
fn aac_fixture(dir: &Path, seconds: f64) -> Result<(Vec<u8>, Vec<Vec<u8>>, u32)> {
    let path = dir.join("a.aac");
    let t = seconds.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        &t,
        "-c:a",
        "aac",
        "-f",
        "adts",
        path.to_str().context("path")?,
    ])?;
    split_adts(&std::fs::read(&path)?)
}

fn aac_fixture_stereo_128k(dir: &Path, seconds: f64) -> Result<(Vec<u8>, Vec<Vec<u8>>, u32)> {
    let path = dir.join("stereo.aac");
    let t = seconds.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=660:sample_rate=44100",
        "-filter_complex",
        "[0:a][1:a]amerge=inputs=2",
        "-t",
        &t,
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-f",
        "adts",
        path.to_str().context("path")?,
    ])?;
    split_adts(&std::fs::read(&path)?)
}

/// Splits an ADTS stream into raw frames; the AudioSpecificConfig comes from the first header.
fn split_adts(data: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>, u32)> {
    const RATES: [u32; 13] = [
        96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
        8_000, 7_350,
    ];
    let mut frames = Vec::new();
    let mut asc = None;
    let mut rate = 0;
    let mut pos = 0;
    while pos + 7 <= data.len() {
        let h = &data[pos..];
        ensure!(
            h[0] == 0xFF && h[1] & 0xF0 == 0xF0,
            "lost ADTS sync at {pos}"
        );
        let header_len = if h[1] & 1 == 1 { 7 } else { 9 };
        let len =
            ((usize::from(h[3]) & 3) << 11) | (usize::from(h[4]) << 3) | (usize::from(h[5]) >> 5);
        ensure!(
            len > header_len && pos + len <= data.len(),
            "bad ADTS length"
        );
        let aot = (h[2] >> 6) + 1;
        let sf = (h[2] >> 2) & 0xF;
        let ch = ((h[2] & 1) << 2) | (h[3] >> 6);
        if asc.is_none() {
            asc = Some(vec![(aot << 3) | (sf >> 1), ((sf & 1) << 7) | (ch << 3)]);
            rate = RATES[usize::from(sf)];
        }
        frames.push(h[header_len..len].to_vec());
        pos += len;
    }
    Ok((asc.context("no ADTS frame")?, frames, rate))
}

/// Decodes Opus packets with libopus; returns left and right samples as f32.
fn decode_opus(packets: &[OpusFrame]) -> Result<(Vec<f32>, Vec<f32>)> {
    let codec = decoder::find_by_name("libopus").context("libopus decoder")?;
    let mut dec = codec::context::Context::new_with_codec(codec)
        .decoder()
        .audio()?;
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let mut pcm = frame::Audio::empty();
    for (i, p) in packets.iter().enumerate() {
        let mut pkt = Packet::copy(&p.data);
        pkt.set_pts(Some(i as i64 * 960));
        dec.send_packet(&pkt)
            .with_context(|| format!("Opus packet {i} does not decode"))?;
        while dec.receive_frame(&mut pcm).is_ok() {
            ensure!(pcm.channels() == 2, "decoded {} channels", pcm.channels());
            let n = pcm.samples() * 2;
            let samples: Vec<f32> = match pcm.format() {
                ffmpeg_next::util::format::Sample::F32(_) => pcm.data(0)[..n * 4]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                ffmpeg_next::util::format::Sample::I16(_) => pcm.data(0)[..n * 2]
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                    .collect(),
                other => bail!("unexpected decoded format {other:?}"),
            };
            for lr in samples.chunks_exact(2) {
                left.push(lr[0]);
                right.push(lr[1]);
            }
        }
    }
    Ok((left, right))
}
