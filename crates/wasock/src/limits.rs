//! The accounting point: per-instance limits and counters. Every socket holds a [`SocketSlot`]
//! from creation to drop; every byte and datagram moved is counted here.

use crate::bindings::network::ErrorCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per-instance limits: what a guest may hold, and for how long it may wait. Exhaustion is the
/// guest's error code, never the host's problem. `None` means unlimited.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open sockets (TCP and UDP, counted from creation); more is `new-socket-limit`.
    /// Default 1024.
    pub max_sockets: Option<usize>,
    /// Name lookups under way at once; more fail with `temporary-resolver-failure`. Default 16.
    pub max_lookups: usize,
    /// How long a lookup may take before `temporary-resolver-failure`. Default 10 s.
    pub lookup_timeout: Duration,
    /// How long a TCP connect may take before `timeout`. Default 60 s.
    pub connect_timeout: Option<Duration>,
    /// Bytes one TCP `check-write` grants, and so the most buffered host-side per stream.
    /// Default 64 KiB.
    pub write_buffer: usize,
    /// Connections a listener may hold pending (the backlog is clamped to this). Default 1024.
    pub max_backlog: u32,
    /// Bytes per second the instance may receive (TCP bytes and UDP payloads); a token bucket
    /// holding one second's worth. Default unlimited.
    pub bandwidth_in: Option<u64>,
    /// Bytes per second the instance may send, likewise. Default unlimited.
    pub bandwidth_out: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sockets: Some(1024),
            max_lookups: 16,
            lookup_timeout: Duration::from_secs(10),
            connect_timeout: Some(Duration::from_secs(60)),
            write_buffer: 64 * 1024,
            max_backlog: 1024,
            bandwidth_in: None,
            bandwidth_out: None,
        }
    }
}

/// A snapshot of an instance's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sockets open now.
    pub sockets_open: usize,
    /// Most sockets open at once.
    pub sockets_peak: usize,
    /// Sockets created in all.
    pub sockets_created: u64,
    /// TCP bytes read by the guest.
    pub bytes_in: u64,
    /// TCP bytes written by the guest.
    pub bytes_out: u64,
    /// UDP datagrams delivered to the guest.
    pub datagrams_in: u64,
    /// UDP datagrams sent by the guest.
    pub datagrams_out: u64,
    /// Operations the policy refused.
    pub denials: u64,
}

/// Live counters shared by an instance's sockets.
#[derive(Debug, Default)]
pub(crate) struct Accounting {
    pub(crate) limits: Limits,
    /// `bandwidth_in`, when set.
    inbound: Option<Bucket>,
    /// `bandwidth_out`, when set.
    outbound: Option<Bucket>,
    open: AtomicUsize,
    lookups: AtomicUsize,
    peak: AtomicUsize,
    created: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    datagrams_in: AtomicU64,
    datagrams_out: AtomicU64,
    denials: AtomicU64,
}

impl Accounting {
    pub(crate) fn new(limits: Limits) -> Self {
        Accounting {
            inbound: limits.bandwidth_in.map(Bucket::new),
            outbound: limits.bandwidth_out.map(Bucket::new),
            limits,
            ..Default::default()
        }
    }

    /// Takes a lookup slot, or `None` when `max_lookups` are under way.
    pub(crate) fn start_lookup(self: &Arc<Self>) -> Option<LookupSlot> {
        let max = self.limits.max_lookups;
        self.lookups
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .ok()?;
        Some(LookupSlot(self.clone()))
    }

    /// Takes a socket slot, or `new-socket-limit` when the instance is at its limit.
    pub(crate) fn open_socket(self: &Arc<Self>) -> Result<SocketSlot, ErrorCode> {
        let max = self.limits.max_sockets.unwrap_or(usize::MAX);
        let now = self
            .open
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .map_err(|_| ErrorCode::NewSocketLimit)?
            + 1;
        self.peak.fetch_max(now, Relaxed);
        self.created.fetch_add(1, Relaxed);
        Ok(SocketSlot(self.clone()))
    }

    /// Whether a new socket would exceed the limit (checked before taking a connection off a
    /// listener's queue, so that a refused accept leaves it queued).
    pub(crate) fn at_socket_limit(&self) -> bool {
        self.limits
            .max_sockets
            .is_some_and(|max| self.open.load(Relaxed) >= max)
    }

    fn bucket(&self, way: Way) -> Option<&Bucket> {
        match way {
            Way::In => self.inbound.as_ref(),
            Way::Out => self.outbound.as_ref(),
        }
    }

    /// Bytes the bandwidth cap of `way` allows now, at most `want` (all of them with no cap).
    pub(crate) fn allowance(&self, way: Way, want: usize) -> usize {
        self.bucket(way).map_or(want, |b| b.available(want))
    }

    /// Charges `n` bytes moved to the bandwidth cap of `way`, if any.
    pub(crate) fn spend(&self, way: Way, n: usize) {
        if let Some(b) = self.bucket(way) {
            b.spend(n);
        }
    }

    /// Sleeps until the bandwidth cap of `way` allows a byte again (at once with no cap).
    pub(crate) async fn refill(&self, way: Way) {
        let wait = self.bucket(way).map_or(Duration::ZERO, Bucket::wait);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    pub(crate) fn bytes_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn bytes_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn datagrams_in(&self, n: usize) {
        self.datagrams_in.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn datagrams_out(&self, n: usize) {
        self.datagrams_out.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn denied(&self) {
        self.denials.fetch_add(1, Relaxed);
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            sockets_open: self.open.load(Relaxed),
            sockets_peak: self.peak.load(Relaxed),
            sockets_created: self.created.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            datagrams_in: self.datagrams_in.load(Relaxed),
            datagrams_out: self.datagrams_out.load(Relaxed),
            denials: self.denials.load(Relaxed),
        }
    }
}

/// A handle on an instance's counters that outlives its store (for reports after the guest
/// has exited, like `wasock run --stats`).
#[derive(Clone, Debug)]
pub struct Counters(pub(crate) Arc<Accounting>);

impl Counters {
    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.0.stats()
    }
}

/// The direction of a bandwidth cap, as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Way {
    /// Received by the guest.
    In,
    /// Sent by the guest.
    Out,
}

/// A token bucket of bytes: refills at `rate` per second up to one second's worth.
#[derive(Debug)]
pub(crate) struct Bucket {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        let rate = rate.max(1) as f64;
        Bucket {
            rate,
            state: Mutex::new((rate, Instant::now())),
        }
    }

    fn refilled(&self) -> std::sync::MutexGuard<'_, (f64, Instant)> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.rate).min(self.rate);
        s.1 = now;
        s
    }

    /// Whole bytes available now, at most `want`.
    pub(crate) fn available(&self, want: usize) -> usize {
        (self.refilled().0.max(0.0) as usize).min(want)
    }

    /// Spends `n` bytes (the balance may go negative: a datagram is never split).
    pub(crate) fn spend(&self, n: usize) {
        self.refilled().0 -= n as f64;
    }

    /// How long until at least one byte is available.
    pub(crate) fn wait(&self) -> Duration {
        let tokens = self.refilled().0;
        if tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - tokens) / self.rate)
        }
    }
}

/// One lookup under way; the count drops with it.
#[derive(Debug)]
pub(crate) struct LookupSlot(Arc<Accounting>);

impl Drop for LookupSlot {
    fn drop(&mut self) {
        self.0.lookups.fetch_sub(1, Relaxed);
    }
}

/// One counted socket; the count drops with it.
#[derive(Debug)]
pub(crate) struct SocketSlot(Arc<Accounting>);

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_limit_is_enforced_and_released() {
        let acct = Arc::new(Accounting::new(Limits {
            max_sockets: Some(2),
            ..Limits::default()
        }));
        let a = acct.open_socket().unwrap();
        let _b = acct.open_socket().unwrap();
        assert_eq!(acct.open_socket().unwrap_err(), ErrorCode::NewSocketLimit);
        drop(a);
        let _c = acct.open_socket().unwrap();
        let s = acct.stats();
        assert_eq!(
            (s.sockets_open, s.sockets_peak, s.sockets_created),
            (2, 2, 3)
        );
    }

    #[test]
    fn buckets_refill_at_their_rate() {
        let b = Bucket::new(1000);
        assert_eq!(b.available(5000), 1000);
        b.spend(1000);
        assert_eq!(b.available(5000), 0);
        assert!(b.wait() > Duration::ZERO && b.wait() <= Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(20));
        let refilled = b.available(5000);
        assert!((15..=1000).contains(&refilled), "{refilled}");
        assert_eq!(Accounting::default().allowance(Way::In, 7), 7);
    }

    #[test]
    fn lookup_slots_are_bounded_and_released() {
        let acct = Arc::new(Accounting::new(Limits {
            max_lookups: 1,
            ..Limits::default()
        }));
        let slot = acct.start_lookup().unwrap();
        assert!(acct.start_lookup().is_none());
        drop(slot);
        assert!(acct.start_lookup().is_some());
    }
}
