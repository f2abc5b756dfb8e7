//! The bandwidth caps: a token bucket of bytes per direction, read at the times the gate's
//! clock gives it.

use super::{FOREVER, Limits, bounded};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Rule: seconds as a host wait never panic: NaN and negatives are no wait, overflow and
/// infinity are [`FOREVER`].
fn secs_to_wait(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).map_or(FOREVER, bounded)
}

/// The direction of a bandwidth cap, as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Way {
    /// Received by the guest.
    In,
    /// Sent by the guest.
    Out,
}

/// An instance's bandwidth caps, each way.
#[derive(Debug, Default)]
pub(crate) struct Bandwidth {
    /// `bandwidth_in`, when set.
    inbound: Option<Bucket>,
    /// `bandwidth_out`, when set.
    outbound: Option<Bucket>,
}

impl Bandwidth {
    /// Rule: each cap starts full (one second's worth) at `now`.
    pub(crate) fn new(limits: &Limits, now: Instant) -> Self {
        Bandwidth {
            inbound: limits.bandwidth_in.map(|rate| Bucket::new(rate, now)),
            outbound: limits.bandwidth_out.map(|rate| Bucket::new(rate, now)),
        }
    }

    /// The cap of `way`, if any.
    pub(crate) fn bucket(&self, way: Way) -> Option<&Bucket> {
        match way {
            Way::In => self.inbound.as_ref(),
            Way::Out => self.outbound.as_ref(),
        }
    }
}

/// A token bucket of bytes: refills at `rate` per second up to one second's worth, handed out
/// in chunks of at least a quantum (a fiftieth of a second's worth, at most 64 KiB): a capped
/// guest is woken some fifty times a second, not once per byte.
#[derive(Debug)]
pub(crate) struct Bucket {
    rate: f64,
    /// The least that is granted (or less, when less is asked for) and waited for.
    quantum: f64,
    /// Tokens, as of the instant.
    state: Mutex<(f64, Instant)>,
}

/// Most bytes a bucket waits for before waking its waiter.
const MAX_QUANTUM: f64 = 64.0 * 1024.0;

impl Bucket {
    fn new(rate: u64, now: Instant) -> Self {
        let rate = rate.max(1) as f64;
        Bucket {
            rate,
            quantum: (rate / 50.0).clamp(1.0, MAX_QUANTUM),
            state: Mutex::new((rate, now)),
        }
    }

    /// Rule: tokens accrue at `rate` per second since the last look, up to `rate`; a clock
    /// that reads earlier than the last look adds none.
    fn refilled(&self, now: Instant) -> MutexGuard<'_, (f64, Instant)> {
        let mut s = crate::sync::lock(&self.state);
        s.0 = (s.0 + now.saturating_duration_since(s.1).as_secs_f64() * self.rate).min(self.rate);
        s.1 = s.1.max(now);
        s
    }

    /// Whole bytes available at `now`, at most `want`; none while fewer than a quantum (or
    /// than `want`, if smaller) have accrued.
    pub(crate) fn available(&self, want: usize, now: Instant) -> usize {
        let tokens = self.refilled(now).0;
        if tokens < self.quantum.min(want as f64) {
            return 0;
        }
        (tokens as usize).min(want)
    }

    /// Spends `n` bytes at `now` (the balance may go negative: a datagram is never split).
    pub(crate) fn spend(&self, n: usize, now: Instant) {
        self.refilled(now).0 -= n as f64;
    }

    /// How long after `now` until a quantum is available.
    pub(crate) fn wait(&self, now: Instant) -> Duration {
        let tokens = self.refilled(now).0;
        if tokens >= self.quantum {
            Duration::ZERO
        } else {
            secs_to_wait((self.quantum - tokens) / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{largest, smallest};
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn buckets_refill_at_their_rate() {
        let t0 = Instant::now();
        let b = Bucket::new(1000, t0);
        assert_eq!(b.available(5000, t0), 1000);
        b.spend(1000, t0);
        assert_eq!(b.available(5000, t0), 0);
        assert!(
            b.wait(t0).abs_diff(20 * MS) < Duration::from_micros(1),
            "a quantum: 20 bytes"
        );
        assert_eq!(b.available(5000, t0 + 10 * MS), 0, "less than a quantum");
        assert_eq!(b.available(5, t0 + 10 * MS), 5, "unless less is asked for");
        assert_eq!(b.available(5000, t0 + 20 * MS), 20);
        assert_eq!(b.wait(t0 + 40 * MS), Duration::ZERO);
        assert_eq!(
            b.available(5000, t0 + 5000 * MS),
            1000,
            "one second's worth"
        );
    }

    #[test]
    fn a_clock_reading_earlier_adds_nothing() {
        let t0 = Instant::now();
        let b = Bucket::new(1000, t0 + 10 * MS);
        b.spend(1000, t0 + 10 * MS);
        assert_eq!(b.available(5000, t0), 0);
        assert_eq!(b.available(2, t0 + 12 * MS), 2);
    }

    #[test]
    fn a_bucket_far_in_debt_waits_forever_at_most() {
        let t0 = Instant::now();
        let b = Bucket::new(1, t0);
        b.spend(usize::MAX, t0);
        b.spend(usize::MAX, t0);
        assert_eq!(b.available(usize::MAX, t0), 0);
        assert_eq!(b.wait(t0), FOREVER);
    }

    #[test]
    fn waits_from_seconds_never_panic() {
        assert_eq!(secs_to_wait(0.5), Duration::from_millis(500));
        for none in [f64::NAN, -f64::NAN, -1.0, f64::NEG_INFINITY, 0.0, -0.0] {
            assert_eq!(secs_to_wait(none), Duration::ZERO, "{none}");
        }
        for huge in [
            f64::INFINITY,
            1e19,
            1e300,
            f64::MAX,
            FOREVER.as_secs_f64() * 2.0,
        ] {
            assert_eq!(secs_to_wait(huge), FOREVER, "{huge}");
        }
    }

    #[test]
    fn extreme_rates_never_panic() {
        let t0 = Instant::now();
        // A u64::MAX rate grants anything and never waits long.
        let caps = Bandwidth::new(&largest(), t0);
        for way in [Way::In, Way::Out] {
            let b = caps.bucket(way).unwrap();
            assert_eq!(b.available(usize::MAX, t0), usize::MAX);
            b.spend(usize::MAX, t0);
            b.spend(usize::MAX, t0);
            assert!(b.wait(t0) <= Duration::from_secs(2), "{:?}", b.wait(t0));
        }
        // A rate of 0 counts as 1 byte per second.
        let caps = Bandwidth::new(&smallest(), t0);
        assert_eq!(caps.bucket(Way::In).unwrap().available(10, t0), 1);
        assert_eq!(caps.bucket(Way::Out).unwrap().available(usize::MAX, t0), 1);
        assert!(
            Bandwidth::new(&Limits::default(), t0)
                .bucket(Way::In)
                .is_none()
        );
    }
}
