//! Per-publisher limit on key frame requests (PLI/FIR).

use std::time::{Duration, Instant};

use crate::Layer;

/// Limits key frame requests to one per layer per interval, however many subscribers ask.
#[derive(Debug, Clone)]
pub struct KeyframeThrottle {
    min_interval: Duration,
    last_request: [Option<Instant>; 3],
}

impl KeyframeThrottle {
    /// The default interval between requests of one layer.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);

    /// A throttle allowing one request per layer every `min_interval`.
    pub fn new(min_interval: Duration) -> Self {
        KeyframeThrottle {
            min_interval,
            last_request: [None; 3],
        }
    }

    /// Whether a request for a key frame of `layer` should be sent to the publisher now.
    pub fn request(&mut self, now: Instant, layer: Layer) -> bool {
        let last = &mut self.last_request[layer.index()];
        let allowed = last.is_none_or(|at| now.saturating_duration_since(at) >= self.min_interval);
        if allowed {
            *last = Some(now);
        }
        allowed
    }

    /// Forgets past requests (the publisher restarted and needs asking afresh).
    pub fn reset(&mut self) {
        self.last_request = [None; 3];
    }
}

impl Default for KeyframeThrottle {
    fn default() -> Self {
        KeyframeThrottle::new(KeyframeThrottle::DEFAULT_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_layer_per_interval() {
        let t0 = Instant::now();
        let mut throttle = KeyframeThrottle::default();
        assert!(throttle.request(t0, Layer::High));
        assert!(!throttle.request(t0, Layer::High));
        assert!(throttle.request(t0, Layer::Low), "layers are independent");
        assert!(!throttle.request(t0 + Duration::from_millis(499), Layer::High));
        assert!(throttle.request(t0 + Duration::from_millis(500), Layer::High));
        assert!(!throttle.request(t0 + Duration::from_millis(900), Layer::High));
        assert!(throttle.request(t0 + Duration::from_millis(1000), Layer::High));
    }

    #[test]
    fn reset_and_custom_interval() {
        let t0 = Instant::now();
        let mut throttle = KeyframeThrottle::new(Duration::from_secs(2));
        assert!(throttle.request(t0, Layer::Mid));
        assert!(!throttle.request(t0 + Duration::from_secs(1), Layer::Mid));
        throttle.reset();
        assert!(throttle.request(t0 + Duration::from_secs(1), Layer::Mid));
        // A clock argument that goes backwards does not open the gate.
        assert!(!throttle.request(t0, Layer::Mid));
    }
}
