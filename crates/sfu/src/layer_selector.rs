//! Picks the highest simulcast layer a viewer's link can carry, from its bandwidth estimate.
//!
//! The selector turns a bandwidth estimate (from the viewer's transport-wide congestion control
//! feedback, or its REMB) and the measured bitrate of each layer the publisher sends into a
//! *cap*: the highest layer the forwarder may target. The viewer's own maximum (`?layer=`) caps
//! it further; the forwarder still switches only on key frames.
//!
//! Rules, with `need(layer) = layer bitrate + audio bitrate`:
//! - **Down** when the current cap has needed more than the estimate for [`DOWN_CONFIRM`]
//!   (one bad report does not move it), or at once when it needs more than
//!   [`DOWN_AT_ONCE_FACTOR`] times the estimate (the link has clearly collapsed, and every
//!   moment on the layer only deepens its queue): straight to the highest layer that fits, or
//!   the lowest.
//! - **Up** one layer at a time, only when the next layer's need times [`UP_HEADROOM`] fits the
//!   estimate, and no earlier than [`HOLD`] after the previous switch (so it never flaps
//!   faster than that).
//! - A layer whose bitrate is not measured yet (it just started) counts as fitting only once
//!   it has been measured: the cap does not jump blind.
//! - With no estimate yet, the cap is the highest layer (a fresh viewer starts at the best
//!   layer it asked for; the estimate pulls it down within [`DOWN_CONFIRM`] of reports).

use std::time::{Duration, Instant};

use crate::{Layer, LayerSet};

/// How long the current layer must overshoot the estimate before the cap goes down.
pub const DOWN_CONFIRM: Duration = Duration::from_millis(300);
/// An overshoot of this factor moves the cap down without waiting for [`DOWN_CONFIRM`].
pub const DOWN_AT_ONCE_FACTOR: u64 = 2;
/// Least time between a switch and the next upward one.
pub const HOLD: Duration = Duration::from_secs(4);
/// An upward switch needs the estimate to exceed the next layer's need by this factor.
pub const UP_HEADROOM: f64 = 1.2;

/// Why the cap moved, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapChange {
    Down { from: Layer, to: Layer },
    Up { from: Layer, to: Layer },
}

/// One viewer's bandwidth-driven layer cap.
#[derive(Debug, Clone)]
pub struct LayerSelector {
    cap: Layer,
    last_switch: Option<Instant>,
    /// Since when the current cap has needed more than the estimate.
    over_since: Option<Instant>,
    estimate_bps: Option<u64>,
}

impl Default for LayerSelector {
    fn default() -> Self {
        LayerSelector::new()
    }
}

impl LayerSelector {
    /// A selector with no estimate yet: the cap is [`Layer::High`].
    pub fn new() -> LayerSelector {
        LayerSelector {
            cap: Layer::High,
            last_switch: None,
            over_since: None,
            estimate_bps: None,
        }
    }

    /// The current cap.
    pub fn cap(&self) -> Layer {
        self.cap
    }

    /// The last estimate seen, bits per second.
    pub fn estimate_bps(&self) -> Option<u64> {
        self.estimate_bps
    }

    /// Takes a new estimate at `now`. `layer_bps[i]` is the measured bitrate of
    /// `Layer::from_index(i)` (0: not measured), `available` the layers the publisher sends,
    /// `audio_bps` what the audio needs. Returns the change of cap, if any.
    pub fn update(
        &mut self,
        now: Instant,
        estimate_bps: u64,
        layer_bps: [u64; 3],
        available: LayerSet,
        audio_bps: u64,
    ) -> Option<CapChange> {
        self.estimate_bps = Some(estimate_bps);
        let need = |layer: Layer| layer_bps[layer.index()].saturating_add(audio_bps);
        let measured = |layer: Layer| layer_bps[layer.index()] > 0;
        let offered: Vec<Layer> = Layer::ALL
            .into_iter()
            .filter(|l| available.is_empty() || available.contains(*l))
            .collect();
        let &lowest = offered.first()?;
        // The layer the cap stands for: the best offered layer at most the cap.
        let current = offered
            .iter()
            .rev()
            .copied()
            .find(|l| *l <= self.cap)
            .unwrap_or(lowest);

        // Down: the current layer has not fit for DOWN_CONFIRM.
        if measured(current) && need(current) > estimate_bps {
            let since = *self.over_since.get_or_insert(now);
            let collapsed = need(current) > estimate_bps.saturating_mul(DOWN_AT_ONCE_FACTOR);
            let confirmed = collapsed || now.saturating_duration_since(since) >= DOWN_CONFIRM;
            if confirmed && current > lowest {
                let to = offered
                    .iter()
                    .rev()
                    .copied()
                    .filter(|l| *l < current)
                    .find(|l| measured(*l) && need(*l) <= estimate_bps)
                    .unwrap_or(lowest);
                return Some(self.switch(now, to, CapChange::Down { from: current, to }));
            }
            return None;
        }
        self.over_since = None;

        // Up: one offered layer above the current one, when it fits with headroom.
        let held = self
            .last_switch
            .is_none_or(|at| now.saturating_duration_since(at) >= HOLD);
        if let Some(&next) = offered.iter().find(|l| **l > current)
            && held
            && measured(next)
            && (need(next) as f64) * UP_HEADROOM <= estimate_bps as f64
        {
            return Some(self.switch(
                now,
                next,
                CapChange::Up {
                    from: current,
                    to: next,
                },
            ));
        }
        // The cap may sit above what is offered (a layer stopped); keep it pointing at the
        // layer actually forwarded so a later up-switch is measured from there.
        if self.cap > current && !offered.contains(&self.cap) {
            self.cap = current;
        }
        None
    }

    /// What the estimate must reach for the cap to go up one offered layer, up to `max` (the
    /// next layer and the audio, with [`UP_HEADROOM`]); `None` at the top, at `max` or while
    /// that layer is not measured. A probe of the link aims here.
    pub fn up_need(
        &self,
        layer_bps: [u64; 3],
        available: LayerSet,
        audio_bps: u64,
        max: Layer,
    ) -> Option<u64> {
        let offered = Layer::ALL
            .into_iter()
            .filter(|l| available.is_empty() || available.contains(*l));
        let next = offered
            .clone()
            .find(|l| *l > self.cap)
            .filter(|l| *l <= max)?;
        // A cap below every offered layer has no current layer to climb from.
        offered.clone().find(|l| *l <= self.cap)?;
        let rate = layer_bps[next.index()];
        (rate > 0).then(|| (rate.saturating_add(audio_bps) as f64 * UP_HEADROOM).ceil() as u64)
    }

    fn switch(&mut self, now: Instant, to: Layer, change: CapChange) -> CapChange {
        self.cap = to;
        self.last_switch = Some(now);
        self.over_since = None;
        change
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const RATES: [u64; 3] = [150_000, 500_000, 1_500_000];
    const AUDIO: u64 = 40_000;

    fn all() -> LayerSet {
        let mut set = LayerSet::new();
        for layer in Layer::ALL {
            set.insert(layer);
        }
        set
    }

    fn ms(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn a_narrow_link_settles_low_and_a_wide_one_climbs_back_one_layer_at_a_time() {
        let t0 = Instant::now();
        let mut selector = LayerSelector::new();
        // 1 Mbit/s: f does not fit; after the confirm window the cap drops to h (540k fits).
        assert_eq!(selector.update(t0, 1_000_000, RATES, all(), AUDIO), None);
        assert_eq!(
            selector.update(ms(t0, 700), 1_000_000, RATES, all(), AUDIO),
            Some(CapChange::Down {
                from: Layer::High,
                to: Layer::Mid
            })
        );
        // The link widens: nothing before the hold time, then one step.
        assert_eq!(
            selector.update(ms(t0, 2_000), 5_000_000, RATES, all(), AUDIO),
            None
        );
        assert_eq!(
            selector.update(ms(t0, 4_800), 5_000_000, RATES, all(), AUDIO),
            Some(CapChange::Up {
                from: Layer::Mid,
                to: Layer::High
            })
        );
        assert_eq!(selector.cap(), Layer::High);
    }

    #[test]
    fn the_up_need_is_the_next_layer_with_headroom() {
        let t0 = Instant::now();
        let mut selector = LayerSelector::new();
        assert_eq!(
            selector.up_need(RATES, all(), AUDIO, Layer::High),
            None,
            "at the top"
        );
        // Collapse to the lowest layer.
        selector.update(t0, 100_000, RATES, all(), AUDIO);
        assert_eq!(selector.cap(), Layer::Low);
        let need = ((RATES[1] + AUDIO) as f64 * UP_HEADROOM).ceil() as u64;
        assert_eq!(
            selector.up_need(RATES, all(), AUDIO, Layer::High),
            Some(need)
        );
        assert_eq!(
            selector.up_need(RATES, all(), AUDIO, Layer::Low),
            None,
            "pinned low"
        );
        // An estimate at that need climbs (once the hold is over): the need is exact.
        assert!(
            selector
                .update(ms(t0, 5_000), need, RATES, all(), AUDIO)
                .is_some()
        );
        assert_eq!(selector.cap(), Layer::Mid);
        // An unmeasured next layer has no need yet.
        assert_eq!(
            selector.up_need([150_000, 500_000, 0], all(), AUDIO, Layer::High),
            None
        );
    }

    #[test]
    fn one_bad_report_does_not_move_the_cap() {
        let t0 = Instant::now();
        let mut selector = LayerSelector::new();
        assert_eq!(selector.update(t0, 1_000_000, RATES, all(), AUDIO), None);
        assert_eq!(
            selector.update(ms(t0, 200), 3_000_000, RATES, all(), AUDIO),
            None
        );
        assert_eq!(
            selector.update(ms(t0, 900), 1_000_000, RATES, all(), AUDIO),
            None
        );
        assert_eq!(selector.cap(), Layer::High);
    }

    #[test]
    fn a_collapsed_link_moves_down_at_once() {
        let t0 = Instant::now();
        let mut selector = LayerSelector::new();
        // f needs 1.54 Mbit/s, more than twice a 600 kbit/s estimate.
        assert_eq!(
            selector.update(t0, 600_000, RATES, all(), AUDIO),
            Some(CapChange::Down {
                from: Layer::High,
                to: Layer::Mid
            })
        );
    }

    #[test]
    fn a_layer_the_publisher_stops_is_not_the_target() {
        let t0 = Instant::now();
        let mut selector = LayerSelector::new();
        let mut two = LayerSet::new();
        two.insert(Layer::Low);
        two.insert(Layer::Mid);
        selector.update(t0, 5_000_000, RATES, two, AUDIO);
        assert_eq!(selector.cap(), Layer::Mid);
    }

    #[test]
    fn unmeasured_layers_are_not_climbed_to() {
        let t0 = Instant::now();
        let mut selector = LayerSelector::new();
        selector.update(t0, 100_000, RATES, all(), AUDIO);
        selector.update(ms(t0, 700), 100_000, RATES, all(), AUDIO);
        assert_eq!(selector.cap(), Layer::Low);
        let rates = [150_000, 0, 0];
        assert_eq!(
            selector.update(ms(t0, 9_000), 9_000_000, rates, all(), AUDIO),
            None
        );
    }

    proptest! {
        /// Across any estimate trajectory: the cap never needs more than the estimate for
        /// longer than the confirm window, nor more than twice the estimate even once (unless
        /// it is the lowest layer), upward switches are
        /// at least HOLD after the previous switch and one layer at a time, and only an
        /// estimate with headroom moves it up.
        #[test]
        fn the_cap_follows_the_estimate_without_flapping(
            steps in proptest::collection::vec((10u64..400, 50_000u64..4_000_000), 1..200)
        ) {
            let t0 = Instant::now();
            let mut selector = LayerSelector::new();
            let mut now = t0;
            let mut last_switch: Option<Instant> = None;
            let mut over_since: Option<Instant> = None;
            for (gap, estimate) in steps {
                now += Duration::from_millis(gap);
                let before = selector.cap();
                let change = selector.update(now, estimate, RATES, all(), AUDIO);
                let after = selector.cap();
                match change {
                    Some(CapChange::Up { from, to }) => {
                        prop_assert_eq!(from, before);
                        prop_assert_eq!(to.index(), from.index() + 1);
                        prop_assert!(last_switch.is_none_or(|at| now - at >= HOLD));
                        prop_assert!((RATES[to.index()] + AUDIO) as f64 * UP_HEADROOM <= estimate as f64);
                        last_switch = Some(now);
                    }
                    Some(CapChange::Down { from, to }) => {
                        prop_assert!(to < from);
                        prop_assert!(
                            RATES[to.index()] + AUDIO <= estimate || to == Layer::Low
                        );
                        last_switch = Some(now);
                    }
                    None => prop_assert_eq!(before, after),
                }
                // How long the cap has overshot the estimate.
                if after != Layer::Low {
                    prop_assert!(RATES[after.index()] + AUDIO <= estimate * DOWN_AT_ONCE_FACTOR);
                }
                if RATES[after.index()] + AUDIO > estimate && after != Layer::Low {
                    let since = *over_since.get_or_insert(now);
                    prop_assert!(now - since <= DOWN_CONFIRM + Duration::from_millis(400));
                } else {
                    over_since = None;
                }
            }
        }
    }
}
