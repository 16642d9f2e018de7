//! A fast, loss-based ceiling on what a viewer's link carries.
//!
//! The delay-based estimate (GCC on transport-wide CC feedback) needs one to two seconds to
//! see a link that has suddenly narrowed, and once the forwarder has moved to a layer the link
//! carries, nothing tells GCC the link ever narrowed: its estimate can stay far above what the
//! link took. A link that drops a large share of what is sent to it says so much sooner: the
//! viewer NACKs the missing packets within a round trip.
//!
//! Over each [`LOSS_WINDOW`], when at least [`LOSS_BOUND_MIN_FRACTION`] of the video packets
//! sent were NACKed, what got through becomes the ceiling: the send rate (the higher of this
//! window's and the previous one's, since NACKs trail the packets they are about and the
//! forwarder may already have paused) times the share not NACKed (counted as at most
//! [`MAX_COUNTED_FRACTION`]). The ceiling stays put for a back-off time ([`FIRST_BACKOFF`], doubling for each
//! overflow that comes within [`BACKOFF_MEMORY`] of the previous one, up to [`MAX_BACKOFF`]),
//! then rises by [`CEILING_GROWTH_PER_S`] a second while the link stays clean, and is gone once
//! it passes [`CEILING_LIMIT_BPS`]. A layer that overflowed the link is thus tried again ever
//! more rarely, and a link that widened is climbed back up. Random loss of a few percent,
//! which NACK/RTX repairs, never reaches the threshold.
//!
//! Each viewer's back-offs (of the ceiling and of its probes) are lengthened by a share of its
//! own, up to [`MAX_SPREAD`] ([`LossBound::with_spread`]): viewers that lost packets together,
//! say when the server's own link overflowed, do not all try again at the same moment and
//! overflow it again.

use std::time::{Duration, Instant};

/// The window the NACKed share is measured over.
pub const LOSS_WINDOW: Duration = Duration::from_millis(300);
/// The NACKed share of sent video packets from which the link counts as overflowing.
pub const LOSS_BOUND_MIN_FRACTION: f64 = 0.25;
/// A NACKed share above this counts as this much.
pub const MAX_COUNTED_FRACTION: f64 = 0.75;
/// How long a ceiling stays put after the first overflow.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(4);
/// The longest a ceiling stays put.
pub const MAX_BACKOFF: Duration = Duration::from_secs(32);
/// An overflow this soon after the previous one doubles the back-off.
pub const BACKOFF_MEMORY: Duration = Duration::from_secs(30);
/// How fast a ceiling rises once its back-off is over (GCC's fastest increase).
pub const CEILING_GROWTH_PER_S: f64 = 0.08;
/// A ceiling above this is dropped.
pub const CEILING_LIMIT_BPS: u64 = 50_000_000;
/// The lowest ceiling: NACKs trail the packets they are about (a window can NACK more than it
/// sent), and a ceiling must stay able to grow.
pub const CEILING_FLOOR_BPS: f64 = 100_000.0;
/// Fewer packets than this in a window say nothing.
const MIN_PACKETS: u64 = 20;
/// How long a probe of the link runs.
pub const PROBE_DURATION: Duration = Duration::from_millis(500);
/// A probe passes when the viewer received at least this share of the probed rate.
pub const PROBE_PASS: f64 = 0.85;
/// The most a viewer's back-offs are lengthened by (a share of each).
pub const MAX_SPREAD: f64 = 0.5;

/// Counters at the start of the current window.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    sent_packets: u64,
    nacked_packets: u64,
    sent_bytes: u64,
}

/// One viewer's loss-based ceiling.
#[derive(Debug, Clone, Default)]
pub struct LossBound {
    mark: Option<Mark>,
    ceiling_bps: Option<f64>,
    /// The ceiling rises from then on.
    grows_from: Option<Instant>,
    last_overflow: Option<Instant>,
    backoff: Duration,
    /// The send rate of the previous window, bits per second.
    previous_rate_bps: f64,
    /// A probe is running.
    probing: bool,
    /// No probe before then.
    next_probe: Option<Instant>,
    /// The wait after a failed probe (doubling, as after overflows).
    probe_backoff: Duration,
    /// The share every back-off is lengthened by (0 to [`MAX_SPREAD`]).
    spread: f64,
}

impl LossBound {
    /// A bound with nothing measured, whose back-offs are exactly as documented.
    pub fn new() -> LossBound {
        LossBound::default()
    }

    /// A bound whose back-offs are all lengthened by `spread` (clamped to 0..=[`MAX_SPREAD`]):
    /// give each viewer its own, drawn at random, so that viewers do not retry in step.
    pub fn with_spread(spread: f64) -> LossBound {
        LossBound {
            spread: if spread.is_finite() {
                spread.clamp(0.0, MAX_SPREAD)
            } else {
                0.0
            },
            ..LossBound::default()
        }
    }

    /// A back-off as this viewer waits it.
    fn stretched(&self, backoff: Duration) -> Duration {
        backoff.mul_f64(1.0 + self.spread)
    }

    /// Takes the viewer's running totals: video packets sent, packets it NACKed, bytes sent
    /// (all media). Returns the ceiling in force, bits per second.
    pub fn update(
        &mut self,
        now: Instant,
        sent_packets: u64,
        nacked_packets: u64,
        sent_bytes: u64,
    ) -> Option<u64> {
        let here = Mark {
            at: now,
            sent_packets,
            nacked_packets,
            sent_bytes,
        };
        let Some(mark) = self.mark else {
            self.mark = Some(here);
            return self.bound_bps();
        };
        let elapsed = now.saturating_duration_since(mark.at);
        if elapsed < LOSS_WINDOW {
            return self.bound_bps();
        }
        self.mark = Some(here);
        let sent = sent_packets.saturating_sub(mark.sent_packets);
        let nacked = nacked_packets.saturating_sub(mark.nacked_packets).min(sent);
        let fraction = if sent >= MIN_PACKETS {
            nacked as f64 / sent as f64
        } else {
            0.0
        };
        let rate = sent_bytes.saturating_sub(mark.sent_bytes) as f64 * 8.0 / elapsed.as_secs_f64();
        let peak_rate = rate.max(self.previous_rate_bps);
        self.previous_rate_bps = rate;
        if fraction >= LOSS_BOUND_MIN_FRACTION {
            let got_through =
                (peak_rate * (1.0 - fraction.min(MAX_COUNTED_FRACTION))).max(CEILING_FLOOR_BPS);
            self.ceiling_bps = Some(self.ceiling_bps.map_or(got_through, |c| c.min(got_through)));
            self.backoff = match self.last_overflow {
                Some(at) if now.saturating_duration_since(at) < BACKOFF_MEMORY => {
                    (self.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF)
                }
                _ => FIRST_BACKOFF,
            };
            self.last_overflow = Some(now);
            self.grows_from = Some(now + self.stretched(self.backoff));
        } else if let (Some(ceiling), Some(from)) = (self.ceiling_bps, self.grows_from) {
            let growing = now.saturating_duration_since(from.max(mark.at));
            let grown = ceiling * (1.0 + CEILING_GROWTH_PER_S).powf(growing.as_secs_f64());
            self.ceiling_bps = (grown <= CEILING_LIMIT_BPS as f64).then_some(grown);
        }
        self.bound_bps()
    }

    /// The ceiling in force, bits per second.
    pub fn bound_bps(&self) -> Option<u64> {
        self.ceiling_bps.map(|c| c.round() as u64)
    }

    /// Whether to probe the link now, and at what rate: when the estimate the layer is chosen
    /// from (`estimate_bps`: the congestion controller's, lowered to this ceiling) keeps the
    /// viewer below a layer that needs `wanted_bps`, the ceiling's hold is over and no probe
    /// ran (or failed) too recently. Neither the ceiling's growth nor a congestion controller
    /// held back by its own sending rate finds spare capacity quickly (half a minute from a
    /// narrow spell back to the top layer); a probe that shows the link carries the next layer
    /// takes the estimate there at once. The caller sends at the returned rate for
    /// [`PROBE_DURATION`] and reports with [`LossBound::probe_done`].
    pub fn probe_rate(&mut self, now: Instant, estimate_bps: u64, wanted_bps: u64) -> Option<u64> {
        let holding = self.ceiling_bps.is_some() && self.grows_from.is_none_or(|from| now < from);
        let waiting = self.next_probe.is_some_and(|at| now < at);
        if self.probing || holding || waiting || estimate_bps >= wanted_bps {
            return None;
        }
        self.probing = true;
        Some(wanted_bps)
    }

    /// The outcome of a probe at `probed_bps`: what the viewer received over it (`None`: too
    /// little feedback to tell). A pass lifts the ceiling to the probed rate; a failure waits
    /// longer before the next probe. Returns whether it passed.
    pub fn probe_done(&mut self, now: Instant, probed_bps: u64, received_bps: Option<u64>) -> bool {
        self.probing = false;
        let passed =
            received_bps.is_some_and(|received| received as f64 >= probed_bps as f64 * PROBE_PASS);
        if passed {
            self.ceiling_bps = self.ceiling_bps.map(|c| c.max(probed_bps as f64));
            self.probe_backoff = Duration::ZERO;
            self.next_probe = Some(now + self.stretched(FIRST_BACKOFF));
        } else {
            self.probe_backoff = (self.probe_backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
            self.next_probe = Some(now + self.stretched(self.probe_backoff));
        }
        passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    /// Feeds windows of 300 ms at `bps` with `percent` of the packets NACKed, from `start`.
    fn windows(
        bound: &mut LossBound,
        counters: &mut (u64, u64, u64),
        start: Instant,
        count: u64,
        percent: u64,
    ) -> Option<u64> {
        let mut last = None;
        for i in 1..=count {
            counters.0 += 60;
            counters.1 += 60 * percent / 100;
            counters.2 += 60_000;
            last = bound.update(ms(start, i * 300), counters.0, counters.1, counters.2);
        }
        last
    }

    #[test]
    fn heavy_loss_sets_a_ceiling_of_what_got_through() {
        let t0 = Instant::now();
        let mut bound = LossBound::new();
        assert_eq!(bound.update(t0, 0, 0, 0), None);
        // 300 ms: 60 packets of 1000 bytes (1.6 Mbit/s), 36 of them NACKed (60 %).
        assert_eq!(bound.update(ms(t0, 300), 60, 36, 60_000), Some(640_000));
        // It holds within the window and through the back-off.
        assert_eq!(bound.update(ms(t0, 400), 70, 40, 70_000), Some(640_000));
        let mut counters = (70, 40, 70_000);
        assert_eq!(
            windows(&mut bound, &mut counters, ms(t0, 400), 10, 0),
            Some(640_000)
        );
    }

    #[test]
    fn repaired_random_loss_sets_no_ceiling() {
        let t0 = Instant::now();
        let mut bound = LossBound::new();
        bound.update(t0, 0, 0, 0);
        let mut counters = (0, 0, 0);
        assert_eq!(windows(&mut bound, &mut counters, t0, 100, 5), None);
        // Too few packets to say anything, even all NACKed.
        assert_eq!(bound.update(ms(t0, 30_300), 10, 10, 10_000), None);
    }

    #[test]
    fn nacks_trailing_a_pause_count_against_the_rate_before_it() {
        let t0 = Instant::now();
        let mut bound = LossBound::new();
        bound.update(t0, 0, 0, 0);
        // A clean window at 1.6 Mbit/s, then the forwarder pauses: 20 packets of 500 bytes go
        // out and all 20 are NACKed. What got through counts from the 1.6 Mbit/s, lost share
        // taken as 75 %.
        assert_eq!(bound.update(ms(t0, 300), 60, 0, 60_000), None);
        assert_eq!(bound.update(ms(t0, 600), 80, 20, 70_000), Some(400_000));
        // Everything NACKed at a trickle still leaves a ceiling that can grow.
        let mut trickle = LossBound::new();
        trickle.update(t0, 0, 0, 0);
        assert_eq!(
            trickle.update(ms(t0, 300), 20, 20, 2_000),
            Some(CEILING_FLOOR_BPS as u64)
        );
        let mut counters = (20, 20, 2_000);
        let later = windows(&mut trickle, &mut counters, ms(t0, 300), 20, 0).expect("a ceiling");
        assert!(later > CEILING_FLOOR_BPS as u64);
    }

    #[test]
    fn a_clean_link_raises_the_ceiling_until_it_is_gone() {
        let t0 = Instant::now();
        let mut bound = LossBound::new();
        bound.update(t0, 0, 0, 0);
        let mut counters = (0, 0, 0);
        let first = windows(&mut bound, &mut counters, t0, 1, 60).expect("a ceiling");
        // 10 s later (4 s of back-off, 6 s of growth): up by 1.08^6.
        let later = windows(&mut bound, &mut counters, ms(t0, 300), 33, 0).expect("a ceiling");
        let expected = first as f64 * 1.08f64.powf(6.0);
        assert!(
            (later as f64 - expected).abs() < expected * 0.02,
            "{later} vs {expected}"
        );
        // About 62 s more of growth takes 3 Mbit/s past the limit.
        assert_eq!(
            windows(&mut bound, &mut counters, ms(t0, 10_200), 300, 0),
            None
        );
    }

    #[test]
    fn repeated_overflows_back_off_longer() {
        let t0 = Instant::now();
        let mut bound = LossBound::new();
        bound.update(t0, 0, 0, 0);
        let mut counters = (0, 0, 0);
        windows(&mut bound, &mut counters, t0, 1, 60);
        assert_eq!(bound.backoff, FIRST_BACKOFF);
        windows(&mut bound, &mut counters, ms(t0, 300), 20, 0);
        windows(&mut bound, &mut counters, ms(t0, 6_300), 1, 60);
        assert_eq!(bound.backoff, FIRST_BACKOFF * 2);
        let held = bound.bound_bps();
        // Still held 7 s later (8 s back-off).
        assert_eq!(
            windows(&mut bound, &mut counters, ms(t0, 6_600), 23, 0),
            held
        );
        // Overflows a second apart: 16, 32, then no longer.
        for k in 0..3 {
            windows(&mut bound, &mut counters, ms(t0, 13_500 + k * 1_000), 1, 60);
        }
        assert_eq!(bound.backoff, MAX_BACKOFF);
    }

    /// Viewers that overflowed together come out of their holds, and probe again after a
    /// failed probe, at moments of their own: never sooner than the documented back-off,
    /// at most [`MAX_SPREAD`] of it later.
    #[test]
    fn spread_viewers_retry_apart_and_never_early() {
        let t0 = Instant::now();
        let wanted = 2_000_000;
        // When each of them first probes (holding ends), then probes again after a failure.
        let retries = |spread: f64| {
            let mut bound = LossBound::with_spread(spread);
            bound.update(t0, 0, 0, 0);
            bound.update(ms(t0, 300), 100, 50, 37_500);
            let ceiling = bound.bound_bps().expect("a ceiling");
            let first = (0..20_000u64)
                .step_by(10)
                .map(|t| ms(t0, 300 + t))
                .find(|at| bound.probe_rate(*at, ceiling, wanted).is_some())
                .expect("a probe");
            assert!(!bound.probe_done(first, wanted, Some(100_000)));
            let second = (0..20_000u64)
                .step_by(10)
                .map(|t| first + Duration::from_millis(t))
                .find(|at| bound.probe_rate(*at, ceiling, wanted).is_some())
                .expect("a second probe");
            (
                first.duration_since(ms(t0, 300)),
                second.duration_since(first),
            )
        };
        let (hold_a, wait_a) = retries(0.0);
        let (hold_b, wait_b) = retries(0.3);
        let (hold_c, wait_c) = retries(7.0);
        assert_eq!((hold_a, wait_a), (FIRST_BACKOFF, FIRST_BACKOFF));
        let near = |d: Duration, secs: f64| (d.as_secs_f64() - secs).abs() < 0.011;
        assert!(
            near(hold_b, 5.2) && near(wait_b, 5.2),
            "{hold_b:?} {wait_b:?}"
        );
        // Clamped to the most a back-off is lengthened by.
        assert!(
            near(hold_c, 6.0) && near(wait_c, 6.0),
            "{hold_c:?} {wait_c:?}"
        );
        assert_eq!(LossBound::with_spread(f64::NAN).spread, 0.0);
        assert_eq!(LossBound::with_spread(-1.0).spread, 0.0);
    }

    #[test]
    fn a_passed_probe_lifts_the_ceiling_and_a_failed_one_waits_longer() {
        let base = Instant::now();
        let mut bound = LossBound::new();
        // 1 Mbit/s with half of it NACKed: a ceiling near 0.5 Mbit/s, held FIRST_BACKOFF.
        bound.update(base, 0, 0, 0);
        bound.update(ms(base, 300), 100, 50, 37_500);
        let ceiling = bound.bound_bps().expect("a ceiling");
        assert!(ceiling < 600_000, "{ceiling}");
        let wanted = 2_000_000;
        let held = bound.probe_rate(ms(base, 1_000), ceiling, wanted);
        assert_eq!(held, None, "still held");
        let after_hold = ms(base, 300 + FIRST_BACKOFF.as_millis() as u64);
        let fits = bound.probe_rate(after_hold, ceiling, 400_000);
        assert_eq!(fits, None, "no limit");
        assert_eq!(bound.probe_rate(after_hold, ceiling, wanted), Some(wanted));
        let second = bound.probe_rate(after_hold, ceiling, wanted);
        assert_eq!(second, None, "one at a time");
        // Failed: the link carried a third of it. The next probe waits FIRST_BACKOFF, then more.
        assert!(!bound.probe_done(after_hold, wanted, Some(700_000)));
        assert!(bound.bound_bps().expect("a ceiling") < wanted);
        let retry = after_hold + FIRST_BACKOFF;
        let early = bound.probe_rate(retry - Duration::from_millis(1), ceiling, wanted);
        assert_eq!(early, None);
        assert_eq!(bound.probe_rate(retry, ceiling, wanted), Some(wanted));
        assert!(!bound.probe_done(retry, wanted, None));
        let backed_off = bound.probe_rate(retry + FIRST_BACKOFF, ceiling, wanted);
        assert_eq!(backed_off, None, "backed off");
        let again = retry + FIRST_BACKOFF * 2;
        assert_eq!(bound.probe_rate(again, ceiling, wanted), Some(wanted));
        // Passed: the ceiling is the probed rate.
        assert!(bound.probe_done(again, wanted, Some(1_900_000)));
        assert!(bound.bound_bps().expect("a ceiling") >= wanted);
    }

    #[test]
    fn a_controller_held_below_the_next_layer_is_probed_without_a_ceiling() {
        let base = Instant::now();
        let mut bound = LossBound::new();
        assert_eq!(bound.bound_bps(), None);
        assert_eq!(
            bound.probe_rate(base, 3_000_000, 2_000_000),
            None,
            "it fits"
        );
        assert_eq!(bound.probe_rate(base, 600_000, 2_000_000), Some(2_000_000));
        assert!(bound.probe_done(base, 2_000_000, Some(1_800_000)));
        assert_eq!(bound.bound_bps(), None, "a pass sets no ceiling");
        assert_eq!(
            bound.probe_rate(base + FIRST_BACKOFF / 2, 600_000, 2_000_000),
            None
        );
    }
}
