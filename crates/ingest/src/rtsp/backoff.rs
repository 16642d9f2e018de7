//! Reconnect delays: exponential, capped, reset after healthy play. Sans-IO: durations in,
//! durations out.

use std::time::Duration;

/// The delay before each reconnect: `min`, doubling to `max`; a session that played for at
/// least `healthy_after` resets it to `min`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    healthy_after: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, healthy_after: Duration) -> Backoff {
        let max = max.max(min);
        Backoff {
            min,
            max,
            healthy_after,
            next: min,
        }
    }

    /// The delay after a session that ended; `played` is how long it played (`None`: it never
    /// got to play).
    pub fn delay_after(&mut self, played: Option<Duration>) -> Duration {
        if played.is_some_and(|played| played >= self.healthy_after) {
            self.next = self.min;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// The longest delay, for errors that will not clear soon (a refused password).
    pub fn delay_long(&mut self) -> Duration {
        self.next = self.max;
        self.max
    }
}

impl Default for Backoff {
    /// 1 s doubling to 30 s, reset after a minute of play.
    fn default() -> Self {
        Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(30),
            Duration::from_secs(60),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn doubles_to_the_cap() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.delay_after(None).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn short_sessions_do_not_reset_a_healthy_minute_does() {
        let mut backoff = Backoff::default();
        backoff.delay_after(None);
        backoff.delay_after(Some(secs(5)));
        assert_eq!(backoff.delay_after(Some(secs(59))), secs(4));
        assert_eq!(backoff.delay_after(Some(secs(60))), secs(1));
        assert_eq!(backoff.delay_after(None), secs(2));
    }

    #[test]
    fn long_delay_is_the_cap_and_continues_from_it() {
        let mut backoff = Backoff::default();
        assert_eq!(backoff.delay_long(), secs(30));
        assert_eq!(backoff.delay_after(None), secs(30));
        assert_eq!(backoff.delay_after(Some(secs(61))), secs(1));
    }
}
