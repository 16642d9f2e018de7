//! Which renditions a source gets: the configured ladder from the source's size down, never
//! upscaled, with the source itself on top when it can be passed through.

/// One configured rendition (a rung of the ladder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendition {
    pub height: u32,
    pub video_bitrate_bps: u32,
}

impl Rendition {
    /// 1080p at 5 Mbit/s, 720p at 2.8, 480p at 1.4 and 360p at 0.8 Mbit/s.
    pub fn default_ladder() -> Vec<Rendition> {
        [
            (1080, 5_000_000),
            (720, 2_800_000),
            (480, 1_400_000),
            (360, 800_000),
        ]
        .into_iter()
        .map(|(height, video_bitrate_bps)| Rendition {
            height,
            video_bitrate_bps,
        })
        .collect()
    }

    /// Parses `1080:5000k,720:2800k,480,360:800000`: heights with optional bitrates (plain
    /// bits per second, or with a `k`/`M` suffix); a missing bitrate is scaled from 720p's
    /// 2.8 Mbit/s by pixel count.
    pub fn parse_ladder(text: &str) -> Result<Vec<Rendition>, String> {
        let mut out = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (height, rate) = match item.split_once(':') {
                Some((h, r)) => (h, Some(r)),
                None => (item, None),
            };
            let height: u32 = height
                .trim_end_matches('p')
                .parse()
                .map_err(|_| format!("{item:?}: the height must be a number"))?;
            if !(144..=4320).contains(&height) || !height.is_multiple_of(2) {
                return Err(format!("{item:?}: the height must be even, 144..=4320"));
            }
            let bitrate = match rate {
                Some(r) => parse_bitrate(r).ok_or_else(|| format!("{item:?}: bad bitrate"))?,
                None => scaled_bitrate(height),
            };
            if !(50_000..=50_000_000).contains(&bitrate) {
                return Err(format!("{item:?}: the bitrate must be 50k..50M"));
            }
            if out.iter().any(|r: &Rendition| r.height == height) {
                return Err(format!("{item:?}: height listed twice"));
            }
            out.push(Rendition {
                height,
                video_bitrate_bps: bitrate,
            });
        }
        if out.is_empty() {
            return Err("the ladder needs at least one rendition".to_owned());
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.height));
        Ok(out)
    }
}

fn parse_bitrate(text: &str) -> Option<u32> {
    let text = text.trim();
    let (digits, unit) = match text.chars().last()? {
        'k' | 'K' => (&text[..text.len() - 1], 1_000u64),
        'm' | 'M' => (&text[..text.len() - 1], 1_000_000),
        _ => (text, 1),
    };
    u32::try_from(digits.parse::<u64>().ok()?.checked_mul(unit)?).ok()
}

fn scaled_bitrate(height: u32) -> u32 {
    let ratio = f64::from(height) * f64::from(height) / (720.0 * 720.0);
    (2_800_000.0 * ratio).clamp(100_000.0, 20_000_000.0) as u32
}

/// One variant of a live stream's HLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedVariant {
    /// `{height}p`: also its directory in URLs and storage.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// The video bitrate aimed at (for a passed-through source, an estimate until measured).
    pub video_bitrate_bps: u32,
    /// The source's own H.264, not re-encoded.
    pub passthrough: bool,
}

/// The variants for a `width` x `height` source, highest first. With `passthrough` the source
/// itself is the top variant and every configured rendition below its height is encoded;
/// otherwise the top is an encode at the source's size (or at the ladder's top rendition when
/// the source is larger).
pub fn plan(
    width: u32,
    height: u32,
    ladder: &[Rendition],
    passthrough: bool,
) -> Vec<PlannedVariant> {
    let (width, height) = (width.max(2), height.max(2));
    let max = ladder.iter().map(|r| r.height).max().unwrap_or(height);
    let sized = |h: u32, bitrate: u32, passthrough: bool| PlannedVariant {
        name: format!("{h}p"),
        width: if passthrough {
            width
        } else {
            even((u64::from(width) * u64::from(h) / u64::from(height)) as u32)
        },
        height: h,
        video_bitrate_bps: bitrate,
        passthrough,
    };
    let bitrate_for = |h: u32| {
        ladder
            .iter()
            .filter(|r| r.height >= h)
            .min_by_key(|r| r.height)
            .map_or_else(
                || scaled_bitrate(h),
                |r| {
                    let ratio = f64::from(h) * f64::from(h) / f64::from(r.height).powi(2);
                    ((f64::from(r.video_bitrate_bps) * ratio) as u32).max(100_000)
                },
            )
    };
    let mut out = Vec::new();
    let top = if passthrough {
        out.push(sized(height, bitrate_for(height), true));
        height
    } else if height <= max {
        out.push(sized(even(height), bitrate_for(height), false));
        height
    } else {
        u32::MAX
    };
    let mut lower: Vec<&Rendition> = ladder.iter().filter(|r| r.height < top).collect();
    lower.sort_by_key(|r| std::cmp::Reverse(r.height));
    for r in lower {
        out.push(sized(r.height, r.video_bitrate_bps, false));
    }
    out
}

fn even(x: u32) -> u32 {
    (x & !1).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[PlannedVariant]) -> Vec<(String, u32, u32, bool)> {
        v.iter()
            .map(|p| (p.name.clone(), p.width, p.height, p.passthrough))
            .collect()
    }

    #[test]
    fn a_1080p_h264_source_is_passed_through_over_three_encodes() {
        let planned = plan(1920, 1080, &Rendition::default_ladder(), true);
        assert_eq!(
            names(&planned),
            vec![
                ("1080p".into(), 1920, 1080, true),
                ("720p".into(), 1280, 720, false),
                ("480p".into(), 852, 480, false),
                ("360p".into(), 640, 360, false),
            ]
        );
    }

    #[test]
    fn never_upscaled_and_the_top_is_the_source_size() {
        let planned = plan(1280, 720, &Rendition::default_ladder(), false);
        assert_eq!(
            names(&planned),
            vec![
                ("720p".into(), 1280, 720, false),
                ("480p".into(), 852, 480, false),
                ("360p".into(), 640, 360, false),
            ]
        );
        let small = plan(320, 240, &Rendition::default_ladder(), false);
        assert_eq!(names(&small), vec![("240p".into(), 320, 240, false)]);
        assert!(small[0].video_bitrate_bps < 800_000);
        let big = plan(3840, 2160, &Rendition::default_ladder(), false);
        assert_eq!(big[0].height, 1080);
        assert_eq!(big.len(), 4);
    }

    #[test]
    fn ladders_parse() {
        let l = Rendition::parse_ladder("720:2500k, 1080p:5M,360").expect("parse");
        assert_eq!(l[0].height, 1080);
        assert_eq!(l[0].video_bitrate_bps, 5_000_000);
        assert_eq!(l[1].video_bitrate_bps, 2_500_000);
        assert!(l[2].video_bitrate_bps < 2_000_000);
        assert!(Rendition::parse_ladder("").is_err());
        assert!(Rendition::parse_ladder("721").is_err());
        assert!(Rendition::parse_ladder("720,720").is_err());
        assert!(Rendition::parse_ladder("720:abc").is_err());
    }
}
