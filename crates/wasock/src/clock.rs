//! Where the host reads the time, waits, and runs its background tasks: the gate's [`Clock`].
//!
//! Connect timeouts, bandwidth buckets, lookup timeouts and the output stream's linger use
//! nothing else, so that a simulation can put its own time and executor in place of tokio's.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::limits::deadline_after;

/// The host's time and tasks. `Real` (the default) is tokio's clock, timer and current runtime:
/// the OS's monotonic time, or a simulation's virtual time on its paused runtime (`sim`).
#[derive(Clone, Debug, Default)]
pub(crate) enum Clock {
    /// tokio's `Instant::now()`, timer and current runtime.
    #[default]
    Real,
    /// A clock that moves only when told to; tasks still run on tokio's current runtime.
    #[cfg(test)]
    Manual(std::sync::Arc<ManualClock>),
}

impl Clock {
    /// The time now.
    pub(crate) fn now(&self) -> Instant {
        match self {
            // tokio's clock: the OS's, or a simulation's paused one (see `sim`).
            Clock::Real => tokio::time::Instant::now().into_std(),
            #[cfg(test)]
            Clock::Manual(m) => m.now(),
        }
    }

    /// Rule: a wait ends at its deadline, not before.
    pub(crate) async fn sleep_until(&self, deadline: Instant) {
        match self {
            Clock::Real => tokio::time::sleep_until(deadline.into()).await,
            #[cfg(test)]
            Clock::Manual(m) => m.sleep_until(deadline).await,
        }
    }

    /// Rule: a wait of `wait` from `now` saturates at [`crate::limits::FOREVER`].
    pub(crate) async fn sleep_from(&self, now: Instant, wait: Duration) {
        match deadline_after(now, wait) {
            Some(deadline) => self.sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    }

    /// Rule: `fut`'s output if it comes before `deadline` (`None`: no deadline), else `None`.
    pub(crate) async fn within<F: Future>(
        &self,
        deadline: Option<Instant>,
        fut: F,
    ) -> Option<F::Output> {
        let Some(deadline) = deadline else {
            return Some(fut.await);
        };
        let mut fut = pin!(fut);
        let mut sleep = pin!(self.sleep_until(deadline));
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            sleep.as_mut().poll(cx).map(|()| None)
        })
        .await
    }

    /// Rule: a background task runs on the clock's executor; `false` when there is none.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> bool {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                drop(rt.spawn(task));
                true
            }
            Err(_) => false,
        }
    }
}

/// A test clock: starts at the real time of its creation and moves only by [`Self::advance`].
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct ManualClock {
    start: Instant,
    elapsed: tokio::sync::watch::Sender<Duration>,
}

#[cfg(test)]
impl ManualClock {
    /// A stopped clock, as a [`Clock`] and a handle to move it.
    pub(crate) fn new() -> (Clock, std::sync::Arc<ManualClock>) {
        let m = std::sync::Arc::new(ManualClock {
            start: Instant::now(),
            elapsed: tokio::sync::watch::Sender::new(Duration::ZERO),
        });
        (Clock::Manual(m.clone()), m)
    }

    fn now(&self) -> Instant {
        self.start + *self.elapsed.borrow()
    }

    /// Moves the clock on by `d`, waking the sleeps whose deadline has come.
    pub(crate) fn advance(&self, d: Duration) {
        self.elapsed.send_modify(|e| *e += d);
    }

    async fn sleep_until(&self, deadline: Instant) {
        let mut rx = self.elapsed.subscribe();
        let start = self.start;
        // The sender lives as long as `self`, which this future borrows.
        let _ = rx.wait_for(|e| start + *e >= deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{FOREVER, bounded};
    use std::future::pending;

    const SHORT: Duration = Duration::from_millis(20);

    /// Polls `fut` once, with a waker that does nothing.
    fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        fut.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    }

    #[test]
    fn a_manual_clock_wakes_its_sleeps_at_their_deadline() {
        let (clock, hand) = ManualClock::new();
        let t0 = clock.now();
        let mut sleep = pin!(clock.sleep_until(t0 + Duration::from_secs(60)));
        assert!(poll_once(sleep.as_mut()).is_pending());
        hand.advance(Duration::from_secs(59));
        assert!(poll_once(sleep.as_mut()).is_pending());
        hand.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), t0 + Duration::from_secs(60));
        assert!(poll_once(sleep.as_mut()).is_ready());
    }

    #[test]
    fn within_ends_at_the_deadline_or_with_the_future() {
        let (clock, hand) = ManualClock::new();
        let deadline = Some(clock.now() + Duration::from_secs(10));
        let mut late = pin!(clock.within(deadline, pending::<()>()));
        assert!(poll_once(late.as_mut()).is_pending());
        hand.advance(Duration::from_secs(10));
        assert_eq!(poll_once(late.as_mut()), Poll::Ready(None));
        let mut early = pin!(clock.within(deadline, async { 7 }));
        assert_eq!(poll_once(early.as_mut()), Poll::Ready(Some(7)));
        let mut never = pin!(clock.within(None, pending::<()>()));
        hand.advance(FOREVER);
        assert!(poll_once(never.as_mut()).is_pending());
    }

    /// The saturated waits arm tokio's timers (whose own `Instant + Duration` would panic near
    /// the clock's end).
    #[tokio::test]
    async fn saturated_waits_arm_tokio_timers() {
        let clock = Clock::Real;
        let far = deadline_after(clock.now(), Duration::MAX);
        let inner = clock.within(far, pending::<()>());
        assert!(tokio::time::timeout(SHORT, inner).await.is_err());
        let sleep = clock.sleep_from(clock.now(), Duration::MAX);
        assert!(tokio::time::timeout(SHORT, sleep).await.is_err());
        let sleep = tokio::time::sleep(bounded(Duration::MAX));
        assert!(tokio::time::timeout(SHORT, sleep).await.is_err());
    }

    #[tokio::test]
    async fn the_real_clock_times_out_and_spawns() {
        let clock = Clock::Real;
        let soon = Some(clock.now() + Duration::from_millis(1));
        assert_eq!(clock.within(soon, pending::<()>()).await, None);
        let (tx, rx) = tokio::sync::oneshot::channel();
        assert!(clock.spawn(async move { tx.send(1).unwrap() }));
        assert_eq!(rx.await, Ok(1));
    }

    #[test]
    fn spawning_without_a_runtime_is_refused() {
        assert!(!Clock::Real.spawn(async {}));
    }
}
