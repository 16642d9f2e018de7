//! The simulcast ladder against H.264 with B-frames made by the real ffmpeg CLI: every rung
//! checked by ffprobe (size, no B-frames, one output frame per input frame) and keyframes
//! checked to be aligned across rungs.
//!
//! Also prints the CPU cost per second of 720p30 input (`cargo test -p greenroom-ingest
//! --test ladder -- --nocapture --test-threads=1`).

use std::collections::BTreeMap;
use std::time::Instant;

use greenroom_ingest::transcode::{
    EncodedFrame, H264Reencoder, LadderOptions, LadderRung, ReencodeOptions, SimulcastLadder,
    TranscodeError,
};
use greenroom_rtc::Layer;

mod av_fixtures;

use av_fixtures::*;

// ---------------------------------------------------------------------------------------------
// The ladder

#[test]
fn rungs_and_options_travel_to_the_media_thread() {
    fn assert_send<T: Send + Clone>() {}
    assert_send::<LadderRung>();
    assert_send::<LadderOptions>();
    let options = LadderOptions::default();
    assert_eq!(options.preset, "superfast");
    assert_eq!(options.max_keyframe_interval_frames, 60);
    assert_eq!(options.encoder_threads, 1);
}

#[test]
fn default_ladder_quarters_and_halves_the_source_and_never_upscales() {
    let sizes = |w, h| -> Vec<(Layer, u32, u32)> {
        LadderRung::default_ladder(w, h)
            .iter()
            .map(|r| (r.layer, r.width, r.height))
            .collect()
    };
    assert_eq!(
        sizes(1920, 1080),
        [
            (Layer::Low, 480, 270),
            (Layer::Mid, 960, 540),
            (Layer::High, 1920, 1080)
        ]
    );
    assert_eq!(
        sizes(640, 360),
        [
            (Layer::Low, 160, 90),
            (Layer::Mid, 320, 180),
            (Layer::High, 640, 360)
        ]
    );

    let hd = LadderRung::default_ladder(1280, 720);
    let bitrates: Vec<u32> = hd.iter().map(|r| r.bitrate_bps).collect();
    assert_eq!(bitrates, [150_000, 500_000, 2_500_000]);
    let full_hd = LadderRung::default_ladder(1920, 1080);
    assert_eq!(full_hd[2].bitrate_bps, 5_625_000, "2.5 Mbit/s × 2.25");
    assert_eq!(
        LadderRung::default_ladder(3840, 2160)[2].bitrate_bps,
        6_000_000
    );
    assert_eq!(LadderRung::default_ladder(200, 100)[2].bitrate_bps, 300_000);

    for (w, h) in [
        (200, 100),
        (201, 101),
        (6, 4),
        (3, 3),
        (1, 1),
        (0, 0),
        (1281, 721),
        (7680, 4320),
        (100_000, 10),
    ] {
        let ladder = LadderRung::default_ladder(w, h);
        assert_eq!(ladder.len(), 3);
        let mut previous: Option<&LadderRung> = None;
        for r in &ladder {
            assert!(
                r.width % 2 == 0 && r.height % 2 == 0 && r.width >= 2 && r.height >= 2,
                "{w}x{h}: {r:?}"
            );
            assert!(r.width <= 4096 && r.height <= 4096, "{w}x{h}: {r:?}");
            // Never above the source (beyond the 2 px floor).
            assert!(
                r.width <= w.max(2) && r.height <= h.max(2),
                "{w}x{h}: {r:?}"
            );
            if let Some(p) = previous {
                assert!(p.layer < r.layer && p.width <= r.width && p.height <= r.height);
                assert!(p.bitrate_bps < r.bitrate_bps, "{w}x{h}: {ladder:?}");
            }
            previous = Some(r);
        }
        SimulcastLadder::validate(&ladder, &LadderOptions::default())
            .unwrap_or_else(|e| panic!("default_ladder({w}, {h}) is invalid: {e}"));
    }
    let small = sizes(200, 100);
    assert_eq!(
        small,
        [
            (Layer::Low, 50, 24),
            (Layer::Mid, 100, 50),
            (Layer::High, 200, 100)
        ]
    );
    // 8K is fitted into 4096 px wide first.
    assert_eq!(sizes(7680, 4320)[2], (Layer::High, 4096, 2304));
}

#[test]
fn three_rungs_are_baseline_without_b_frames_at_their_sizes_with_aligned_idrs() -> Result<()> {
    let dir = temp_dir("rungs")?;
    let input = h264_fixture(&dir, "testsrc2=size=640x360:rate=30", 3.0)?;
    let input_frames = ffprobe_frames(&input.annexb_path)?;
    ensure!(
        input_frames.iter().any(|f| f.pict_type == "B"),
        "the fixture must have B-frames"
    );

    let mut ladder = SimulcastLadder::new(
        LadderRung::default_ladder(640, 360),
        LadderOptions::default(),
    )?;
    let mut out = Vec::new();
    for (au, pts) in input.access_units.iter().zip(&input.pts_ms) {
        out.extend(ladder.push(au, *pts)?);
    }
    out.extend(ladder.flush()?);
    let rungs = by_layer(out);
    ensure!(rungs.len() == 3, "layers out: {:?}", rungs.keys());

    let mut presentation = input.pts_ms.clone();
    presentation.sort_unstable();
    let expected_sizes = [
        (Layer::Low, (160, 90)),
        (Layer::Mid, (320, 180)),
        (Layer::High, (640, 360)),
    ];
    for (layer, (width, height)) in expected_sizes {
        let frames = &rungs[&layer];
        // One output per input frame, in presentation order with the input's timestamps.
        let pts: Vec<i64> = frames.iter().map(|f| f.pts_ms).collect();
        assert_eq!(pts, presentation, "rung {layer}");
        check_parameter_sets_and_profile(layer, frames)?;

        let path = dir.join(format!("{layer}.h264"));
        write_annexb(&path, frames)?;
        let probed = ffprobe_frames(&path)?;
        let kbps = frames.iter().map(|f| f.annexb.len()).sum::<usize>() as f64 * 8.0
            / (frames.len() as f64 / 30.0)
            / 1000.0;
        println!(
            "rung {layer}: {} frames {}x{}, {kbps:.0} kbit/s, keyframes at {:?}",
            probed.len(),
            probed[0].width,
            probed[0].height,
            keyframe_pts(frames)
        );
        assert_eq!(probed.len(), input.access_units.len(), "rung {layer}");
        assert!(
            probed
                .iter()
                .all(|f| (f.width, f.height) == (width, height)),
            "rung {layer}: {probed:?}"
        );
        assert!(
            probed.iter().all(|f| f.pict_type != "B"),
            "rung {layer}: {probed:?}"
        );
        let probed_keys: Vec<bool> = probed.iter().map(|f| f.key_frame).collect();
        let ours: Vec<bool> = frames.iter().map(|f| f.keyframe).collect();
        assert_eq!(
            probed_keys, ours,
            "rung {layer}: ffprobe disagrees on keyframes"
        );
    }

    // Aligned: the same pts are IDRs on every rung, every 60 frames and nowhere else (no
    // scene cuts, even though testsrc2 moves).
    let expected_idrs: Vec<i64> = presentation.iter().step_by(60).copied().collect();
    for frames in rungs.values() {
        assert_eq!(keyframe_pts(frames), expected_idrs);
    }
    Ok(())
}

#[test]
fn request_keyframe_gives_an_idr_on_every_rung_at_the_same_pts() -> Result<()> {
    let dir = temp_dir("pli")?;
    let input = h264_fixture(&dir, "testsrc2=size=640x360:rate=30", 3.0)?;
    let mut ladder = SimulcastLadder::new(
        LadderRung::default_ladder(640, 360),
        LadderOptions {
            max_keyframe_interval_frames: 300,
            ..LadderOptions::default()
        },
    )?;
    let mut out: Vec<(Layer, EncodedFrame)> = Vec::new();
    // (index of the picture the request came before, counted in frames out of one rung)
    let mut requested_at = Vec::new();
    for (i, (au, pts)) in input.access_units.iter().zip(&input.pts_ms).enumerate() {
        if [20, 41, 42, 70].contains(&i) {
            ladder.request_keyframe();
            requested_at.push(out.iter().filter(|(l, _)| *l == Layer::High).count());
        }
        out.extend(ladder.push(au, *pts)?);
    }
    out.extend(ladder.flush()?);
    let rungs = by_layer(out);

    let reference = keyframe_pts(&rungs[&Layer::High]);
    println!("keyframes at pts {reference:?}, requested before outputs {requested_at:?}");
    for (layer, frames) in &rungs {
        assert_eq!(keyframe_pts(frames), reference, "rung {layer}");
        check_parameter_sets_and_profile(*layer, frames)?;
        let keys: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].keyframe).collect();
        for &r in &requested_at {
            let idr = keys
                .iter()
                .find(|&&k| k >= r)
                .with_context(|| format!("rung {layer}: no keyframe after request at {r}"))?;
            // The next picture out of the decoder, whatever the B-frame reordering.
            assert!(
                idr - r < 2,
                "rung {layer}: IDR at {idr} for a request at {r}"
            );
        }
    }
    // The first picture, then one per request (41 and 42 come before the same picture, or
    // two consecutive ones); never a keyframe of x264's own (interval 300 > 90 frames).
    assert!(
        (4..=5).contains(&reference.len()),
        "keyframes at {reference:?}"
    );
    Ok(())
}

#[test]
fn after_flush_every_rung_restarts_with_an_idr() -> Result<()> {
    let dir = temp_dir("restart")?;
    let input = h264_fixture(&dir, "testsrc2=size=320x180:rate=30", 1.0)?;
    let mut ladder = SimulcastLadder::new(
        LadderRung::default_ladder(320, 180),
        LadderOptions::default(),
    )?;
    let mut first = Vec::new();
    for (au, pts) in input.access_units.iter().zip(&input.pts_ms) {
        first.extend(ladder.push(au, *pts)?);
    }
    first.extend(ladder.flush()?);
    assert_eq!(first.len(), 3 * input.access_units.len());
    // A new session from pts 0 again.
    let mut second = Vec::new();
    for (au, pts) in input.access_units.iter().zip(&input.pts_ms).take(10) {
        second.extend(ladder.push(au, *pts)?);
    }
    second.extend(ladder.flush()?);
    let rungs = by_layer(second);
    let first_pts = *input.pts_ms.iter().min().context("pts")?;
    for (layer, frames) in rungs {
        assert_eq!(frames.len(), 10, "rung {layer}");
        assert!(frames[0].keyframe, "rung {layer}");
        assert_eq!(frames[0].pts_ms, first_pts, "rung {layer}");
        assert!(nal_types(&frames[0].annexb).contains(&7), "rung {layer}");
    }
    Ok(())
}

#[test]
fn tiny_rungs_down_to_two_pixels_encode() -> Result<()> {
    let dir = temp_dir("tiny")?;
    let input = h264_fixture(&dir, "testsrc2=size=64x36:rate=30", 0.5)?;
    let rungs = vec![
        LadderRung {
            layer: Layer::Low,
            width: 2,
            height: 2,
            bitrate_bps: 50_000,
        },
        LadderRung {
            layer: Layer::Mid,
            width: 16,
            height: 8,
            bitrate_bps: 50_000,
        },
        LadderRung {
            layer: Layer::High,
            width: 64,
            height: 36,
            bitrate_bps: 300_000,
        },
    ];
    let mut ladder = SimulcastLadder::new(rungs.clone(), LadderOptions::default())?;
    let mut out = Vec::new();
    for (au, pts) in input.access_units.iter().zip(&input.pts_ms) {
        out.extend(ladder.push(au, *pts)?);
    }
    out.extend(ladder.flush()?);
    let by_layer = by_layer(out);
    for rung in rungs {
        let frames = &by_layer[&rung.layer];
        let path = dir.join(format!("{}.h264", rung.layer));
        write_annexb(&path, frames)?;
        let probed = ffprobe_frames(&path)?;
        assert_eq!(probed.len(), input.access_units.len(), "{rung:?}");
        assert!(
            probed
                .iter()
                .all(|f| (f.width, f.height) == (rung.width, rung.height)),
            "{rung:?}: {probed:?}"
        );
    }
    Ok(())
}

#[test]
fn bad_ladders_are_refused_and_garbage_is_survived() -> Result<()> {
    let good = LadderRung::default_ladder(640, 360);
    let options = LadderOptions::default();
    let with = |f: &dyn Fn(&mut Vec<LadderRung>)| {
        let mut rungs = good.clone();
        f(&mut rungs);
        rungs
    };
    let bad_rungs = [
        Vec::new(),
        with(&|r| r[0].layer = Layer::High),
        with(&|r| r[1].width = 321),
        with(&|r| r[2].height = 0),
        with(&|r| r[2].width = 4098),
        with(&|r| r[0].bitrate_bps = 10_000),
        with(&|r| r.push(r[0])),
    ];
    for rungs in bad_rungs {
        let err = SimulcastLadder::new(rungs.clone(), options.clone())
            .expect_err(&format!("{rungs:?} must be refused"));
        assert!(
            matches!(err, TranscodeError::InvalidOptions { .. }),
            "{err}"
        );
        println!("refused: {err}");
    }
    for bad in [
        LadderOptions {
            preset: "warp".into(),
            ..options.clone()
        },
        LadderOptions {
            max_keyframe_interval_frames: 0,
            ..options.clone()
        },
        LadderOptions {
            encoder_threads: 17,
            ..options.clone()
        },
    ] {
        assert!(matches!(
            SimulcastLadder::new(good.clone(), bad),
            Err(TranscodeError::InvalidOptions { .. })
        ));
    }
    // A single rung is a ladder too, in any order of layers.
    SimulcastLadder::validate(&good[1..2], &options)?;
    let mut reversed = good.clone();
    reversed.reverse();
    let ladder = SimulcastLadder::new(reversed, options.clone())?;
    let layers: Vec<Layer> = ladder.rungs().map(|r| r.layer).collect();
    assert_eq!(layers, Layer::ALL);

    let mut ladder = SimulcastLadder::new(good, options)?;
    // Not H.264 at all: an error or nothing, never a panic.
    if let Ok(frames) = ladder.push(&[0, 0, 0, 1, 0x65, 0xFF, 0x00, 0x12, 0x34], 0) {
        assert!(frames.is_empty());
    }
    assert!(ladder.flush()?.is_empty());
    Ok(())
}

#[test]
fn ladder_cost_per_second_of_720p30() -> Result<()> {
    let dir = temp_dir("cost")?;
    let seconds = 4.0;
    let input = h264_fixture(&dir, "testsrc2=size=1280x720:rate=30", seconds)?;
    let report = |label: &str, cpu: CpuClock, wall: Instant, bytes: &BTreeMap<Layer, usize>| {
        let (wall, (thread, process)) = (wall.elapsed(), cpu.elapsed()?);
        let rates: Vec<String> = bytes
            .iter()
            .map(|(l, b)| format!("{l} {:.2}", *b as f64 * 8.0 / seconds / 1e6))
            .collect();
        println!(
            "COST {label}, per second of 720p30 input: {:.0} ms CPU on the thread, {:.0} ms \
             CPU in the process, {:.0} ms wall; Mbit/s out: {}",
            per_second(thread, seconds),
            per_second(process, seconds),
            per_second(wall, seconds),
            rates.join(", ")
        );
        Ok::<_, Error>(())
    };

    for (label, rungs) in [
        (
            "ladder q+h+f (320x180, 640x360, 1280x720) superfast",
            LadderRung::default_ladder(1280, 720),
        ),
        (
            "ladder f only (1280x720) superfast",
            LadderRung::default_ladder(1280, 720)[2..].to_vec(),
        ),
    ] {
        let layers = rungs.len();
        let mut ladder = SimulcastLadder::new(rungs, LadderOptions::default())?;
        let mut bytes = BTreeMap::new();
        let mut frames = 0;
        let cpu = CpuClock::start()?;
        let wall = Instant::now();
        for (au, pts) in input.access_units.iter().zip(&input.pts_ms) {
            for (layer, f) in ladder.push(au, *pts)? {
                *bytes.entry(layer).or_insert(0) += f.annexb.len();
                frames += 1;
            }
        }
        for (layer, f) in ladder.flush()? {
            *bytes.entry(layer).or_insert(0) += f.annexb.len();
            frames += 1;
        }
        report(label, cpu, wall, &bytes)?;
        ensure!(
            frames == input.access_units.len() * layers,
            "{label}: every picture on every rung ({frames} frames out)"
        );
    }

    // The same three layers as three independent reencoders (three decodes), for comparison.
    let mut reencoders = Vec::new();
    for rung in LadderRung::default_ladder(1280, 720) {
        let reencoder = H264Reencoder::new(ReencodeOptions {
            bitrate_bps: rung.bitrate_bps,
            preset: "superfast".into(),
            target: Some((rung.width, rung.height)),
            ..ReencodeOptions::default()
        })?;
        reencoders.push((rung.layer, reencoder));
    }
    let mut bytes = BTreeMap::new();
    let cpu = CpuClock::start()?;
    let wall = Instant::now();
    for (au, pts) in input.access_units.iter().zip(&input.pts_ms) {
        for (layer, reencoder) in &mut reencoders {
            for f in reencoder.push(au, *pts)? {
                *bytes.entry(*layer).or_insert(0) += f.annexb.len();
            }
        }
    }
    for (layer, reencoder) in &mut reencoders {
        for f in reencoder.flush()? {
            *bytes.entry(*layer).or_insert(0) += f.annexb.len();
        }
    }
    report(
        "3 separate H264Reencoders q+h+f superfast (3 decodes)",
        cpu,
        wall,
        &bytes,
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fixtures and helpers

fn by_layer(out: Vec<(Layer, EncodedFrame)>) -> BTreeMap<Layer, Vec<EncodedFrame>> {
    let mut rungs: BTreeMap<Layer, Vec<EncodedFrame>> = BTreeMap::new();
    for (layer, frame) in out {
        rungs.entry(layer).or_default().push(frame);
    }
    rungs
}

fn keyframe_pts(frames: &[EncodedFrame]) -> Vec<i64> {
    frames
        .iter()
        .filter(|f| f.keyframe)
        .map(|f| f.pts_ms)
        .collect()
}

/// Every IDR carries SPS and PPS before its slice, `keyframe` matches the NAL types, and the
/// SPS says constrained baseline (profile_idc 66 with constraint_set1).
fn check_parameter_sets_and_profile(layer: Layer, frames: &[EncodedFrame]) -> Result<()> {
    ensure!(
        frames[0].keyframe,
        "rung {layer}: the first frame is no IDR"
    );
    for f in frames {
        let types = nal_types(&f.annexb);
        ensure!(
            f.keyframe == types.contains(&5),
            "rung {layer} at {}: keyframe {} with NAL types {types:?}",
            f.pts_ms,
            f.keyframe
        );
        if f.keyframe {
            let idr = types.iter().position(|&t| t == 5).context("IDR")?;
            let sps = types.iter().position(|&t| t == 7);
            let pps = types.iter().position(|&t| t == 8);
            ensure!(
                sps.is_some_and(|s| s < idr) && pps.is_some_and(|p| p < idr),
                "rung {layer} at {}: NAL order {types:?}",
                f.pts_ms
            );
            let sps_nal = nal_units(&f.annexb)[sps.context("SPS")?];
            ensure!(
                sps_nal[1] == 66 && sps_nal[2] & 0x40 != 0,
                "rung {layer}: profile {} constraints {:#04x}",
                sps_nal[1],
                sps_nal[2]
            );
        }
    }
    Ok(())
}
