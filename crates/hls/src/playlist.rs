//! HLS playlists as text: the multivariant (master) playlist, the live LL-HLS media playlist
//! (RFC 8216bis), the VOD media playlist of a recording, and the blocking playlist reload
//! query (`_HLS_msn` / `_HLS_part`).
//!
//! Invariants:
//! - URIs are relative names: `init.mp4`, `seg{msn}.m4s`, `seg{msn}.{part}.m4s` (optionally
//!   behind a prefix); [`crate::LiveVariant::resolve`] accepts exactly these names.
//! - The live playlist uses standard tags only, so players without LL-HLS play it too
//!   (they ignore `EXT-X-PART`, `EXT-X-PRELOAD-HINT`, `EXT-X-SERVER-CONTROL`).
//! - Quoted attribute values never contain `"`, CR or LF (they are removed).

use std::fmt::Write as _;
use std::time::Duration;

use crate::live::LiveVariant;

/// The initialization segment's name.
pub const INIT_NAME: &str = "init.mp4";

/// Protocol version of the live playlist (LL-HLS tags).
const LIVE_VERSION: u32 = 9;
/// Protocol version of the VOD playlist (`EXT-X-MAP` with fMP4).
const VOD_VERSION: u32 = 7;
/// `PART-HOLD-BACK` in part targets (the spec asks at least 2, recommends 3).
const PART_HOLD_BACK_PARTS: u32 = 3;
/// Segments whose start is more than this many target durations from the end of the
/// playlist lose their `EXT-X-PART` lines.
const PART_WINDOW_TARGETS: u32 = 3;

/// The name of segment `msn`.
pub fn segment_name(msn: u64) -> String {
    format!("seg{msn}.m4s")
}

/// The name of part `index` of segment `msn`.
pub fn part_name(msn: u64, index: u32) -> String {
    format!("seg{msn}.{index}.m4s")
}

/// One variant stream of the multivariant playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantInfo {
    /// Its media playlist, relative to the multivariant playlist.
    pub uri: String,
    /// Peak bit rate (`BANDWIDTH`).
    pub bandwidth_bps: u64,
    pub average_bandwidth_bps: Option<u64>,
    /// 0 x 0 (audio only) leaves `RESOLUTION` out.
    pub width: u32,
    pub height: u32,
    /// RFC 6381 codecs, comma-separated (`avc1.64001f,mp4a.40.2`); empty leaves `CODECS` out.
    pub codecs: String,
    pub frame_rate: Option<f64>,
}

/// The multivariant playlist, variants by descending bandwidth.
///
/// It carries no `EXT-X-VERSION`: nothing in it needs more than version 1.
pub fn render_master(variants: &[VariantInfo]) -> String {
    let mut sorted: Vec<&VariantInfo> = variants.iter().collect();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.bandwidth_bps));
    let mut out = String::from("#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for variant in sorted {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", variant.bandwidth_bps);
        if let Some(average) = variant.average_bandwidth_bps {
            let _ = write!(out, ",AVERAGE-BANDWIDTH={average}");
        }
        if variant.width > 0 && variant.height > 0 {
            let _ = write!(out, ",RESOLUTION={}x{}", variant.width, variant.height);
        }
        if !variant.codecs.is_empty() {
            let _ = write!(out, ",CODECS=\"{}\"", quoted(&variant.codecs));
        }
        if let Some(rate) = variant.frame_rate.filter(|r| r.is_finite() && *r > 0.0) {
            let _ = write!(out, ",FRAME-RATE={rate:.3}");
        }
        let _ = writeln!(out, "\n{}", uri_line(&variant.uri));
    }
    out
}

/// How the live playlist is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRenderOptions {
    /// Put before every URI (init, segments, parts): empty for names relative to the
    /// playlist.
    pub uri_prefix: String,
    /// Write the LL-HLS tags (server control, parts, preload hint). Without them the
    /// playlist is a plain live playlist.
    pub low_latency: bool,
}

impl Default for LiveRenderOptions {
    fn default() -> LiveRenderOptions {
        LiveRenderOptions {
            uri_prefix: String::new(),
            low_latency: true,
        }
    }
}

/// The live media playlist of `variant`.
pub fn render_live(variant: &LiveVariant, options: &LiveRenderOptions) -> String {
    let target = variant.target_duration_secs();
    let part_target = variant.part_target();
    let prefix = quoted(&options.uri_prefix);
    let ended = variant.is_ended();
    let low_latency = options.low_latency;
    let segments = variant.listed_segments();
    let pending = if ended {
        &[][..]
    } else {
        variant.pending_parts()
    };

    let mut out = String::with_capacity(256 + 160 * segments.len());
    let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:{LIVE_VERSION}");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    if low_latency {
        let hold_back = part_target * PART_HOLD_BACK_PARTS;
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}",
            seconds(hold_back)
        );
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={}", seconds(part_target));
    }
    let first_msn = segments.first().map_or(variant.pending_msn(), |s| s.msn);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{prefix}{INIT_NAME}\"");

    // Which segments keep their parts: those starting within three target durations of
    // the end of the playlist.
    let part_window = Duration::from_secs(target) * PART_WINDOW_TARGETS;
    let mut from_end: Duration = pending.iter().map(|p| p.duration).sum();
    let mut with_parts = vec![false; segments.len()];
    for (index, segment) in segments.iter().enumerate().rev() {
        from_end += segment.duration;
        with_parts[index] = low_latency && !ended && from_end <= part_window;
    }

    for (segment, with_parts) in segments.iter().zip(with_parts) {
        if let Some(date) = format_program_date_time(segment.program_date_time_ms) {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{date}");
        }
        if with_parts {
            for part in &segment.parts {
                part_line(&mut out, &prefix, segment.msn, part);
            }
        }
        let _ = writeln!(
            out,
            "#EXTINF:{},\n{prefix}{}",
            seconds(segment.duration),
            segment_name(segment.msn)
        );
    }
    if low_latency && !ended {
        let msn = variant.pending_msn();
        for part in pending {
            part_line(&mut out, &prefix, msn, part);
        }
        let next = pending.last().map_or(0, |p| p.index.saturating_add(1));
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{prefix}{}\"",
            part_name(msn, next)
        );
    }
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

fn part_line(out: &mut String, prefix: &str, msn: u64, part: &crate::live::LivePart) {
    let _ = write!(
        out,
        "#EXT-X-PART:DURATION={},URI=\"{prefix}{}\"",
        seconds(part.duration),
        part_name(msn, part.index)
    );
    out.push_str(if part.independent {
        ",INDEPENDENT=YES\n"
    } else {
        "\n"
    });
}

/// One segment of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VodSegment {
    pub uri: String,
    pub duration: Duration,
    /// Unix ms of its first sample.
    pub program_date_time_ms: i64,
}

/// The media playlist of a recording: `VOD` with `EXT-X-ENDLIST` when `complete`, else an
/// `EVENT` playlist that grows while the session is recorded. `target` is the configured
/// segment target; the written `EXT-X-TARGETDURATION` is at least the longest segment,
/// rounded to the nearest second.
pub fn render_vod(
    segments: &[VodSegment],
    target: Duration,
    init_uri: &str,
    complete: bool,
) -> String {
    let longest = segments
        .iter()
        .map(|s| s.duration)
        .max()
        .unwrap_or_default();
    let target = rounded_secs(longest.max(target)).max(1);
    let mut out = String::with_capacity(192 + 96 * segments.len());
    let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:{VOD_VERSION}");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    out.push_str(if complete {
        "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    } else {
        "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:EVENT\n"
    });
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", quoted(init_uri));
    for segment in segments {
        if let Some(date) = format_program_date_time(segment.program_date_time_ms) {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{date}");
        }
        let _ = writeln!(
            out,
            "#EXTINF:{},\n{}",
            seconds(segment.duration),
            uri_line(&segment.uri)
        );
    }
    if complete {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// `2026-11-22T10:00:00.123Z` for unix ms; `None` out of chrono's range.
pub fn format_program_date_time(unix_ms: i64) -> Option<String> {
    let time = chrono::DateTime::from_timestamp_millis(unix_ms)?;
    Some(time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// Seconds with three decimals.
fn seconds(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}

/// Whole seconds, rounded up.
/// Seconds rounded to the nearest whole second (half up): RFC 8216 requires every `EXTINF`
/// rounded this way to be at most `EXT-X-TARGETDURATION`.
pub(crate) fn rounded_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() >= 500_000_000)
}

/// A value for a quoted-string attribute: without `"`, CR and LF.
fn quoted(value: &str) -> String {
    value.replace(['"', '\r', '\n'], "")
}

/// A URI on a line of its own: without CR and LF.
fn uri_line(value: &str) -> String {
    value.replace(['\r', '\n'], "")
}

/// A playlist request's query that cannot be served (answer 400 Bad Request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    #[error("_HLS_part without _HLS_msn")]
    PartWithoutMsn,
    #[error("{name}={value:?} is not a number")]
    InvalidNumber { name: &'static str, value: String },
    #[error("{name} given twice")]
    Duplicate { name: &'static str },
}

/// A blocking playlist reload (RFC 8216bis §6.2.5.2): hold the playlist until it contains
/// segment `msn`, or part `part` of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockingRequest {
    pub msn: u64,
    pub part: Option<u32>,
}

impl BlockingRequest {
    /// Reads `_HLS_msn` and `_HLS_part` from a URL query (with or without its `?`); other
    /// parameters are ignored. `Ok(None)`: not a blocking request.
    pub fn from_query(query: &str) -> Result<Option<BlockingRequest>, PlaylistError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut msn = None;
        let mut part = None;
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "_HLS_msn" => set_once(&mut msn, "_HLS_msn", value)?,
                "_HLS_part" => set_once(&mut part, "_HLS_part", value)?,
                _ => {}
            }
        }
        match (msn, part) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(PlaylistError::PartWithoutMsn),
            (Some(msn), part) => Ok(Some(BlockingRequest { msn, part })),
        }
    }
}

fn set_once<T: std::str::FromStr>(
    slot: &mut Option<T>,
    name: &'static str,
    value: &str,
) -> Result<(), PlaylistError> {
    if slot.is_some() {
        return Err(PlaylistError::Duplicate { name });
    }
    let parsed = parse_decimal(value).ok_or_else(|| PlaylistError::InvalidNumber {
        name,
        value: value.chars().take(32).collect(),
    })?;
    *slot = Some(parsed);
    Ok(())
}

/// A plain decimal number: ASCII digits only (no sign, no spaces), in range.
pub(crate) fn parse_decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// What to do with a blocking playlist reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Answer with the current playlist.
    Ready,
    /// Hold the request until the variant changes (bounded by the caller's timeout).
    Wait,
    /// More than two segments ahead of the last one: answer 400 Bad Request.
    TooFarAhead,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_lists_variants_highest_first() {
        let low = VariantInfo {
            uri: "360p/index.m3u8".into(),
            bandwidth_bps: 900_000,
            average_bandwidth_bps: Some(800_000),
            width: 640,
            height: 360,
            codecs: "avc1.4d401e,mp4a.40.2".into(),
            frame_rate: Some(30_000.0 / 1001.0),
        };
        let high = VariantInfo {
            uri: "720p/index.m3u8".into(),
            bandwidth_bps: 3_000_000,
            average_bandwidth_bps: None,
            width: 1280,
            height: 720,
            codecs: "avc1.64001f".into(),
            frame_rate: None,
        };
        let audio = VariantInfo {
            uri: "audio/index.m3u8".into(),
            bandwidth_bps: 130_000,
            average_bandwidth_bps: None,
            width: 0,
            height: 0,
            codecs: String::new(),
            frame_rate: Some(f64::NAN),
        };
        assert_eq!(
            render_master(&[low, audio, high]),
            "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,CODECS=\"avc1.64001f\"\n\
             720p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=800000,RESOLUTION=640x360,\
             CODECS=\"avc1.4d401e,mp4a.40.2\",FRAME-RATE=29.970\n\
             360p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=130000\n\
             audio/index.m3u8\n"
        );
    }

    #[test]
    fn vod_playlist() {
        let segments = [
            VodSegment {
                uri: "seg0.m4s".into(),
                duration: Duration::from_millis(2002),
                program_date_time_ms: 1_795_000_000_123,
            },
            VodSegment {
                uri: "seg1.m4s".into(),
                duration: Duration::from_millis(1500),
                program_date_time_ms: 1_795_000_002_125,
            },
        ];
        let growing = render_vod(&segments, Duration::from_secs(2), "init.mp4", false);
        assert!(growing.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !growing.contains("ENDLIST"));
        let text = render_vod(&segments, Duration::from_secs(2), "init.mp4", true);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:40.123Z\n#EXTINF:2.002,\nseg0.m4s\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-18T11:06:42.125Z\n#EXTINF:1.500,\nseg1.m4s\n\
             #EXT-X-ENDLIST\n"
        );
        let empty = render_vod(&[], Duration::ZERO, "i\"nit.mp4", true);
        assert!(empty.contains("#EXT-X-TARGETDURATION:1\n"));
        assert!(empty.contains("URI=\"init.mp4\""));
    }

    #[test]
    fn program_date_time_format() {
        assert_eq!(
            format_program_date_time(0).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(
            format_program_date_time(1_795_341_600_123).as_deref(),
            Some("2026-11-22T10:00:00.123Z")
        );
        assert_eq!(format_program_date_time(i64::MAX), None);
    }

    #[test]
    fn ceil_seconds() {
        assert_eq!(rounded_secs(Duration::from_secs(2)), 2);
        assert_eq!(rounded_secs(Duration::from_nanos(2_002_000_000)), 2);
        assert_eq!(rounded_secs(Duration::from_millis(2_500)), 3);
        assert_eq!(rounded_secs(Duration::ZERO), 0);
    }

    #[test]
    fn blocking_queries() {
        let parse = BlockingRequest::from_query;
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("foo=1&bar"), Ok(None));
        assert_eq!(
            parse("_HLS_msn=12"),
            Ok(Some(BlockingRequest {
                msn: 12,
                part: None
            }))
        );
        assert_eq!(
            parse("?_HLS_msn=12&_HLS_part=3&_HLS_skip=YES"),
            Ok(Some(BlockingRequest {
                msn: 12,
                part: Some(3)
            }))
        );
        assert_eq!(
            parse("_HLS_part=3&_HLS_msn=0"),
            Ok(Some(BlockingRequest {
                msn: 0,
                part: Some(3)
            }))
        );
        assert_eq!(parse("_HLS_part=3"), Err(PlaylistError::PartWithoutMsn));
        for bad in [
            "_HLS_msn=",
            "_HLS_msn",
            "_HLS_msn=-1",
            "_HLS_msn=+1",
            "_HLS_msn=1x",
            "_HLS_msn=1&_HLS_part=4294967296",
            "_HLS_msn=99999999999999999999",
            "_HLS_msn= 1",
        ] {
            assert!(
                matches!(parse(bad), Err(PlaylistError::InvalidNumber { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            parse("_HLS_msn=1&_HLS_msn=2"),
            Err(PlaylistError::Duplicate { name: "_HLS_msn" })
        );
    }
}
