//! Bitrate and frame rate of one published layer, for live stats.

use std::time::{Duration, Instant};

/// Width of one bucket.
const BUCKET: Duration = Duration::from_millis(100);
/// Number of buckets: the window spans 2 s (19 full buckets and the current one).
const BUCKETS: usize = 20;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket-width slice of time since `origin` this bucket holds.
    index: u64,
    bytes: u64,
    frames: u32,
}

/// Measures bitrate and frames per second over a sliding window of about two seconds, in fixed
/// buckets: constant memory, no allocation per packet.
///
/// Frames are counted by distinct, advancing RTP timestamps, so a lost marker packet does not
/// lose a frame and a reordered packet of an older frame does not add one.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    origin: Option<Instant>,
    buckets: [Bucket; BUCKETS],
    last_frame_timestamp: Option<u32>,
}

impl RateMeter {
    /// An empty meter.
    pub fn new() -> Self {
        RateMeter::default()
    }

    /// Accounts one packet of `bytes` (payload or whole packet, as the caller prefers).
    /// `marker` is accepted for drivers that have it; frames are counted by timestamp.
    pub fn handle_packet(&mut self, now: Instant, bytes: usize, timestamp: u32, _marker: bool) {
        let origin = *self.origin.get_or_insert(now);
        let index = bucket_index(origin, now);
        let bucket = &mut self.buckets[(index % BUCKETS as u64) as usize];
        if bucket.index != index {
            *bucket = Bucket {
                index,
                ..Bucket::default()
            };
        }
        bucket.bytes += bytes as u64;
        let new_frame = self
            .last_frame_timestamp
            .is_none_or(|last| (timestamp.wrapping_sub(last) as i32) > 0);
        if new_frame {
            bucket.frames += 1;
            self.last_frame_timestamp = Some(timestamp);
        }
    }

    /// Bits per second over the window ending at `now`.
    pub fn bitrate_bps(&self, now: Instant) -> u64 {
        let Some((bytes, _, span)) = self.window(now) else {
            return 0;
        };
        (u128::from(bytes) * 8 * 1_000_000_000 / span.as_nanos().max(1)) as u64
    }

    /// Distinct frames per second over the window ending at `now`.
    pub fn fps(&self, now: Instant) -> f64 {
        let Some((_, frames, span)) = self.window(now) else {
            return 0.0;
        };
        f64::from(frames) / span.as_secs_f64()
    }

    /// Bytes and frames in the window ending at `now`, and the time the window covers (at
    /// least one bucket, at most the time since the first packet).
    fn window(&self, now: Instant) -> Option<(u64, u32, Duration)> {
        let origin = self.origin?;
        let current = bucket_index(origin, now);
        let oldest = current.saturating_sub(BUCKETS as u64 - 1);
        let (bytes, frames) = self
            .buckets
            .iter()
            .filter(|bucket| (oldest..=current).contains(&bucket.index))
            .fold((0, 0), |(bytes, frames), bucket| {
                (bytes + bucket.bytes, frames + bucket.frames)
            });
        let since_origin = now.saturating_duration_since(origin);
        let into_bucket = since_origin.as_nanos() % BUCKET.as_nanos();
        let full_window = BUCKET * (BUCKETS as u32 - 1) + Duration::from_nanos(into_bucket as u64);
        let span = since_origin.min(full_window).max(BUCKET);
        Some((bytes, frames, span))
    }
}

fn bucket_index(origin: Instant, now: Instant) -> u64 {
    (now.saturating_duration_since(origin).as_nanos() / BUCKET.as_nanos()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `fps` frames per second of `packets` packets of `bytes` for `secs` seconds.
    fn feed(
        meter: &mut RateMeter,
        t0: Instant,
        fps: u32,
        packets: u32,
        bytes: usize,
        secs: u32,
    ) -> Instant {
        let mut now = t0;
        for frame in 0..fps * secs {
            now = t0 + Duration::from_secs(1) * frame / fps;
            for packet in 0..packets {
                meter.handle_packet(now, bytes, frame.wrapping_mul(3000), packet + 1 == packets);
            }
        }
        now
    }

    #[test]
    fn steady_stream() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new();
        let end = feed(&mut meter, t0, 30, 4, 1000, 5);
        let bps = meter.bitrate_bps(end);
        // 30 fps * 4 * 1000 bytes * 8 = 960 kbps.
        assert!((900_000..=1_020_000).contains(&bps), "{bps}");
        let fps = meter.fps(end);
        assert!((28.0..=32.0).contains(&fps), "{fps}");
    }

    #[test]
    fn empty_and_stale_meters_read_zero() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new();
        assert_eq!(meter.bitrate_bps(t0), 0);
        assert_eq!(meter.fps(t0), 0.0);
        let end = feed(&mut meter, t0, 30, 1, 500, 2);
        let later = end + Duration::from_secs(3);
        assert_eq!(meter.bitrate_bps(later), 0);
        assert_eq!(meter.fps(later), 0.0);
    }

    #[test]
    fn young_meter_is_not_diluted() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new();
        let end = feed(&mut meter, t0, 25, 1, 1000, 1);
        let fps = meter.fps(end);
        assert!((23.0..=27.0).contains(&fps), "{fps}");
    }

    #[test]
    fn duplicate_and_old_timestamps_are_not_frames() {
        let t0 = Instant::now();
        let mut meter = RateMeter::new();
        meter.handle_packet(t0, 100, u32::MAX - 10, false);
        meter.handle_packet(t0, 100, u32::MAX - 10, true);
        meter.handle_packet(t0, 100, 5, true);
        meter.handle_packet(t0, 100, u32::MAX - 20, true);
        assert_eq!(meter.buckets[0].frames, 2);
        assert_eq!(meter.buckets[0].bytes, 400);
    }
}
