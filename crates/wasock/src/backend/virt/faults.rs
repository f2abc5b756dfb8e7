//! Faults of the virtual network: per path between two hosts (or for every path), latency and
//! jitter, loss and duplication of datagrams, partitions that start and heal, resets of the
//! connections on a path. Every random choice is drawn from the network's one seeded generator,
//! in the order the calls come.

use super::Wakers;
use super::tcp::Link;
use std::sync::{Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// How a path between two hosts behaves; the default is a perfect link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// One-way delay of a datagram and of each leg of the TCP handshake.
    pub latency: Duration,
    /// A random extra delay, up to this much, drawn per datagram (so datagrams can reorder).
    pub jitter: Duration,
    /// The chance, 0 to 1, that a datagram is lost (values outside saturate).
    pub loss: f64,
    /// The chance, 0 to 1, that a datagram arrives twice (values outside saturate).
    pub duplicate: f64,
    /// Bytes per second each way, shared by everything on the path: TCP data and datagrams
    /// queue behind each other (`None`: no limit; 0 counts as 1).
    pub bandwidth: Option<u64>,
}

impl LinkFaults {
    /// The chances clamped to 0..=1 (NaN is 0).
    pub(super) fn saturated(self) -> Self {
        let chance = |p: f64| if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        LinkFaults {
            loss: chance(self.loss),
            duplicate: chance(self.duplicate),
            bandwidth: self.bandwidth.map(|b| b.max(1)),
            ..self
        }
    }
}

/// The shared state of one path between two hosts: whether it is cut, the connections on it.
#[derive(Default)]
pub(crate) struct Path {
    state: Mutex<PathState>,
}

#[derive(Default)]
struct PathState {
    faults: LinkFaults,
    /// When each direction's link is free again (bandwidth), from the lower host to the higher
    /// first.
    free_at: [Option<Instant>; 2],
    partitioned: bool,
    /// How many times the path's connections were reset (a connect under way sees a change).
    resets: u64,
    /// Waiters for the partition to heal.
    healed: Wakers,
    /// Connections across the path, for a reset.
    conns: Vec<Weak<Link>>,
}

impl Path {
    /// A path that behaves as `faults` says.
    pub(super) fn new(faults: LinkFaults) -> Self {
        let path = Path::default();
        path.state().faults = faults;
        path
    }

    fn state(&self) -> MutexGuard<'_, PathState> {
        crate::sync::lock(&self.state)
    }

    pub(super) fn set_faults(&self, faults: LinkFaults) {
        self.state().faults = faults;
    }

    /// Whether data on the path takes time to cross (latency or a bandwidth limit).
    pub(crate) fn delays(&self) -> bool {
        let st = self.state();
        !st.faults.latency.is_zero() || st.faults.bandwidth.is_some()
    }

    /// When `bytes` sent now in direction `dir` arrive: after the ones already queued on the
    /// link have gone (bandwidth), their own time on the wire, and the latency.
    pub(crate) fn arrival(&self, dir: usize, bytes: usize, now: Instant) -> Instant {
        let mut st = self.state();
        let latency = st.faults.latency;
        let Some(rate) = st.faults.bandwidth else {
            return now + latency;
        };
        let departs = st.free_at[dir & 1].map_or(now, |free| free.max(now));
        let wire = Duration::from_nanos(
            u64::try_from(bytes as u128 * 1_000_000_000 / u128::from(rate)).unwrap_or(u64::MAX),
        );
        let sent = departs + wire;
        st.free_at[dir & 1] = Some(sent);
        sent + latency
    }

    /// Whether nothing crosses the path now.
    pub(crate) fn is_cut(&self) -> bool {
        self.state().partitioned
    }

    /// Cuts the path, or heals it (waking what waits to cross).
    pub(super) fn set_partitioned(&self, cut: bool) {
        let mut st = self.state();
        st.partitioned = cut;
        if !cut {
            st.healed.wake_all();
        }
    }

    /// Waits with `waker` for the path to heal; `false` when it is not cut.
    pub(crate) fn wait_healed(&self, waker: &std::task::Waker) -> bool {
        let mut st = self.state();
        if st.partitioned {
            st.healed.register(waker);
        }
        st.partitioned
    }

    /// Remembers a connection across the path.
    pub(super) fn add_conn(&self, link: Weak<Link>) {
        let mut st = self.state();
        st.conns.retain(|l| l.strong_count() > 0);
        st.conns.push(link);
    }

    /// Resets every connection across the path, and every connect under way on it.
    pub(super) fn reset_all(&self) {
        let conns: Vec<Weak<Link>> = {
            let mut st = self.state();
            st.resets += 1;
            st.conns.retain(|l| l.strong_count() > 0);
            std::mem::take(&mut st.conns)
        };
        for link in conns.iter().filter_map(Weak::upgrade) {
            super::tcp::reset(&link);
        }
    }

    /// How many resets the path has seen.
    pub(crate) fn resets(&self) -> u64 {
        self.state().resets
    }
}
