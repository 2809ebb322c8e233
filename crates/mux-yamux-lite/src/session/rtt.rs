//! The round-trip time, measured by pings and smoothed as TCP smooths it
//! (RFC 6298): a smoothed RTT and its mean deviation, each moving by a
//! fraction of every new sample (a quarter for both, where TCP moves the
//! RTT by an eighth: TCP samples every round trip, a ping here samples
//! once a second, so the same gain would take eight seconds or more to
//! follow a change), plus the least sample of the last one to two
//! periods of [`MIN_RTT_PERIOD`], which approximates the path's delay
//! without queueing and is what window auto-tuning multiplies rates by.

use std::time::{Duration, Instant};

/// How long the least sample stands before a larger one may replace it,
/// so that a path whose delay grows is followed within this time (the
/// period BBR keeps its minimum RTT for).
pub(crate) const MIN_RTT_PERIOD: Duration = Duration::from_secs(10);

/// The smoothed round-trip time of a connection.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RttEstimator {
    /// The smoothed RTT (SRTT), `None` before the first sample.
    smoothed: Option<Duration>,
    /// The mean deviation of the samples (RTTVAR).
    variation: Duration,
    /// The least sample of the previous period.
    previous_min: Option<Duration>,
    /// The least sample of the current period, and when the period began.
    current_min: Option<(Duration, Instant)>,
    /// Samples taken.
    samples: u64,
}

impl RttEstimator {
    /// Takes one sample measured at `now`: the first sets the smoothed
    /// RTT and half of it as the deviation; each later one moves both by
    /// 1/4 of the difference.
    pub(crate) fn on_sample(&mut self, sample: Duration, now: Instant) {
        self.samples = self.samples.saturating_add(1);
        match self.smoothed {
            None => {
                self.smoothed = Some(sample);
                self.variation = part(sample, 2);
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(sample);
                self.variation = moved_a_quarter(self.variation, diff);
                self.smoothed = Some(moved_a_quarter(srtt, sample));
            }
        }
        match self.current_min {
            Some((_, began)) if now.saturating_duration_since(began) >= MIN_RTT_PERIOD => {
                self.previous_min = self.current_min.map(|(m, _)| m);
                self.current_min = Some((sample, now));
            }
            Some((min, began)) => self.current_min = Some((min.min(sample), began)),
            None => self.current_min = Some((sample, now)),
        }
    }

    /// The smoothed RTT.
    pub(crate) fn smoothed(&self) -> Option<Duration> {
        self.smoothed
    }

    /// The mean deviation of the samples (`None` before the first).
    pub(crate) fn variation(&self) -> Option<Duration> {
        self.smoothed.map(|_| self.variation)
    }

    /// The least sample of the current and the previous
    /// [`MIN_RTT_PERIOD`].
    pub(crate) fn min(&self) -> Option<Duration> {
        let current = self.current_min.map(|(m, _)| m);
        match (current, self.previous_min) {
            (Some(c), Some(p)) => Some(c.min(p)),
            (c, p) => c.or(p),
        }
    }

    /// Samples taken.
    pub(crate) fn samples(&self) -> u64 {
        self.samples
    }
}

/// `d / n`.
fn part(d: Duration, n: u32) -> Duration {
    d.checked_div(n).unwrap_or_default()
}

/// `old` moved a quarter of the way to `new`.
fn moved_a_quarter(old: Duration, new: Duration) -> Duration {
    part(old.saturating_mul(3), 4).saturating_add(part(new, 4))
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_smoothed_rtt_moves_a_quarter_of_the_way_per_sample() {
        let t0 = Instant::now();
        let mut r = RttEstimator::default();
        assert_eq!(r.smoothed(), None);
        r.on_sample(ms(80), t0);
        assert_eq!((r.smoothed(), r.variation()), (Some(ms(80)), Some(ms(40))));
        r.on_sample(ms(160), t0);
        assert_eq!(r.smoothed(), Some(ms(100)));
        assert_eq!(r.variation(), Some(ms(50)));
        assert_eq!(r.min(), Some(ms(80)));
        assert_eq!(r.samples(), 2);
    }

    #[test]
    fn the_least_sample_gives_way_after_two_periods() {
        let t0 = Instant::now();
        let mut r = RttEstimator::default();
        r.on_sample(ms(50), t0);
        r.on_sample(ms(200), t0 + ms(1000));
        assert_eq!(r.min(), Some(ms(50)));
        r.on_sample(ms(250), t0 + MIN_RTT_PERIOD);
        r.on_sample(ms(210), t0 + MIN_RTT_PERIOD + ms(1000));
        assert_eq!(r.min(), Some(ms(50)), "the previous period's least");
        r.on_sample(ms(220), t0 + MIN_RTT_PERIOD * 2);
        assert_eq!(r.min(), Some(ms(210)));
    }
}
