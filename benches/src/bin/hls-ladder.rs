//! How fast the HLS packager makes its ladder from a file, as fast as it can: the speed (x real
//! time) and the CPU it used, for comparison with the ffmpeg CLI doing the same ladder
//! (`scripts/transcode-report.sh` runs both).
//!
//! `hls-ladder INPUT.ts [PRESET]`: INPUT is MPEG-TS with H.264 (SPS/PPS in band) and AAC
//! (ADTS), as `ffmpeg ... -f mpegts` writes it. Prints one JSON line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ffmpeg_next::media::Type;
use greenroom_hls::{HlsOptions, LiveHls, SourceKind, start_session};
use greenroom_media::SourceFrame;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let input = args.next().ok_or("usage: hls-ladder INPUT.ts [PRESET]")?;
    let preset = args.next().unwrap_or_else(|| "superfast".to_owned());
    ffmpeg_next::init().map_err(|e| e.to_string())?;
    ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Error);
    let mut context = ffmpeg_next::format::input(&input).map_err(|e| format!("{input}: {e}"))?;
    let video = context
        .streams()
        .best(Type::Video)
        .ok_or("no video stream")?;
    let (video_index, video_tb) = (video.index(), video.time_base());
    let audio = context
        .streams()
        .best(Type::Audio)
        .map(|s| (s.index(), s.time_base()));

    let live = Arc::new(LiveHls::new(Box::new(|| {})));
    let options = HlsOptions {
        encoder: greenroom_hls::transcode::EncoderOptions {
            preset: preset.clone(),
            ..Default::default()
        },
        ..HlsOptions::default()
    };
    let mut sink = start_session(
        "bench",
        options,
        SourceKind { passthrough: true },
        live.clone(),
        None,
    )
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let cpu_before = process_cpu();
    let (mut first, mut last) = (None, 0i64);
    let mut audio_config_sent = false;
    for (stream, packet) in context.packets() {
        let Some(data) = packet.data() else { continue };
        let to_90k = |ts: Option<i64>, tb: ffmpeg_next::Rational| {
            ts.map(|t| t * 90_000 * i64::from(tb.numerator()) / i64::from(tb.denominator().max(1)))
        };
        if stream.index() == video_index {
            let (Some(pts), Some(dts)) = (
                to_90k(packet.pts(), video_tb),
                to_90k(packet.dts(), video_tb),
            ) else {
                continue;
            };
            first.get_or_insert(pts);
            last = last.max(pts);
            sink.push_wait(SourceFrame::H264 {
                data: Bytes::copy_from_slice(data),
                pts_90k: pts,
                dts_90k: dts,
                keyframe: packet.is_key(),
            });
        } else if let Some((index, tb)) = audio
            && stream.index() == index
        {
            let Some(pts) = to_90k(packet.pts(), tb) else {
                continue;
            };
            // ADTS: a 7-byte header (9 with CRC) before each raw frame.
            if data.len() < 7 || data[0] != 0xff || data[1] & 0xf0 != 0xf0 {
                continue;
            }
            let header = if data[1] & 0x01 == 0 { 9 } else { 7 };
            if !audio_config_sent {
                let object = ((data[2] >> 6) & 0x03) + 1;
                let frequency = (data[2] >> 2) & 0x0f;
                let channels = ((data[2] & 0x01) << 2) | (data[3] >> 6);
                let asc = [
                    (object << 3) | (frequency >> 1),
                    ((frequency & 1) << 7) | (channels << 3),
                ];
                sink.push_wait(SourceFrame::AacConfig {
                    asc: Bytes::copy_from_slice(&asc),
                });
                audio_config_sent = true;
            }
            sink.push_wait(SourceFrame::Aac {
                data: Bytes::copy_from_slice(&data[header.min(data.len())..]),
                pts_90k: pts,
            });
        }
    }
    drop(sink);
    while !live.is_ended() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu_before;
    let media = (last - first.unwrap_or(0)) as f64 / 90_000.0;
    println!(
        "{{\"tool\":\"greenroom\",\"preset\":\"{preset}\",\"renditions\":{:?},\"media_s\":{media:.2},\"wall_s\":{wall:.2},\"speed_x\":{:.2},\"cpu_s\":{cpu:.2},\"cores_at_real_time\":{:.3}}}",
        live.variant_names(),
        media / wall,
        cpu / media.max(0.001),
    );
    Ok(())
}

/// This process's user + system CPU seconds (from /proc/self/stat, 100 Hz ticks).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based).
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}
