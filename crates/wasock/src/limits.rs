//! The accounting point: per-instance limits and counters. Every socket holds a [`SocketSlot`]
//! from creation to drop, and counts what it moves on its [`SocketMeter`], which its streams
//! share; every refusal is counted here by reason.

use crate::bindings::network::ErrorCode;
use crate::policy::Protocol;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How many sockets [`Counters::busiest`] keeps.
const BUSIEST: usize = 10;

/// The longest wait the host arms (about 100 years): a longer timeout, `Duration::MAX`
/// included, waits this long, which is to say forever.
pub const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The largest `check-write` grant, 16 MiB: four times Linux's largest default TCP send
/// buffer, and a `write` any guest can hold (a guest may write a whole grant at once); a larger
/// [`Limits::write_buffer`] grants this much.
pub const MAX_WRITE_BUFFER: usize = 16 * 1024 * 1024;

/// Rule: no operator duration overflows a deadline; anything past [`FOREVER`] is [`FOREVER`].
pub(crate) fn bounded(d: Duration) -> Duration {
    d.min(FOREVER)
}

/// Rule: a deadline `d` after `now` saturates at [`FOREVER`]; `None` (no deadline) only if
/// even that overflows the clock.
pub(crate) fn deadline_after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(bounded(d))
}

/// Rule: seconds as a host wait never panic: NaN and negatives are no wait, overflow and
/// infinity are [`FOREVER`].
fn secs_to_wait(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).map_or(FOREVER, bounded)
}

/// Per-instance limits: what a guest may hold, and for how long it may wait. Exhaustion is the
/// guest's error code, never the host's problem. `None` means unlimited.
///
/// Every value of every field is accepted and none makes the host panic: durations past
/// [`FOREVER`] wait that long, `0` and the largest values behave as each field says.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open sockets (TCP and UDP, counted from creation); more is `new-socket-limit`.
    /// `Some(0)`: the guest may open none. Default 1024.
    pub max_sockets: Option<usize>,
    /// Name lookups under way at once; more fail with `temporary-resolver-failure`. 0: every
    /// lookup that needs the resolver fails (IP literals, mapped names and the hosts file still
    /// answer). Default 16.
    pub max_lookups: usize,
    /// How long a lookup may take before `temporary-resolver-failure`; zero fails every lookup
    /// not answered at once. Default 10 s.
    pub lookup_timeout: Duration,
    /// How long a TCP connect may take before `timeout`; `None`: the OS's own. Default 60 s.
    pub connect_timeout: Option<Duration>,
    /// Bytes one TCP `check-write` grants, and so the most buffered host-side per stream;
    /// 0 counts as 1, more than [`MAX_WRITE_BUFFER`] as that. Default 64 KiB.
    pub write_buffer: usize,
    /// Connections a listener may hold pending (the backlog is clamped to this, and by the OS
    /// to its own maximum). Default 1024.
    pub max_backlog: u32,
    /// Bytes per second the instance may receive (TCP bytes and UDP payloads); a token bucket
    /// holding one second's worth. `Some(0)` counts as 1. Default unlimited.
    pub bandwidth_in: Option<u64>,
    /// Bytes per second the instance may send, likewise. Default unlimited.
    pub bandwidth_out: Option<u64>,
}

impl Limits {
    /// Rule: the limits as the host applies them, every value in the range its use takes
    /// (durations at most [`FOREVER`], a write grant of 1 to [`MAX_WRITE_BUFFER`] bytes).
    pub(crate) fn saturated(self) -> Self {
        Limits {
            lookup_timeout: bounded(self.lookup_timeout),
            connect_timeout: self.connect_timeout.map(bounded),
            write_buffer: self.write_buffer.clamp(1, MAX_WRITE_BUFFER),
            ..self
        }
    }

    /// Rule: a connect started at `now` times out at `now + connect_timeout`, saturated; `None`
    /// with no connect timeout.
    pub(crate) fn connect_deadline(&self, now: Instant) -> Option<Instant> {
        self.connect_timeout.and_then(|t| deadline_after(now, t))
    }
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
    /// Sockets created in all (accepted ones included).
    pub sockets_created: u64,
    /// Bytes delivered to the guest: TCP stream bytes and UDP payloads.
    pub bytes_in: u64,
    /// Bytes sent by the guest: TCP stream bytes and UDP payloads.
    pub bytes_out: u64,
    /// UDP datagrams delivered to the guest.
    pub datagrams_in: u64,
    /// UDP datagrams sent by the guest.
    pub datagrams_out: u64,
    /// Operations refused, by the policy or by a limit (the sum of `denied_by`).
    pub denials: u64,
    /// Refusals by reason.
    pub denied_by: BTreeMap<Denial, u64>,
}

/// Why an operation was refused, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Denial {
    /// The policy refused the operation named as in the audit trail (`connect`, `send`, …).
    Policy(&'static str),
    /// Audit mode: the policy would have refused this operation, which went ahead.
    WouldDeny(&'static str),
    /// The instance's socket limit: `new-socket-limit`.
    SocketLimit,
    /// The host's file descriptors ran out (`EMFILE`/`ENFILE`): `new-socket-limit`.
    HostFdLimit,
    /// Too many lookups under way: `temporary-resolver-failure`.
    LookupLimit,
    /// A lookup ran past the lookup timeout: `temporary-resolver-failure`.
    LookupTimeout,
    /// A connect ran past the connect timeout: `timeout`.
    ConnectTimeout,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::Policy(op) => write!(f, "policy:{op}"),
            Denial::WouldDeny(op) => write!(f, "would-deny:{op}"),
            Denial::SocketLimit => f.write_str("socket-limit"),
            Denial::HostFdLimit => f.write_str("host-fd-limit"),
            Denial::LookupLimit => f.write_str("lookup-limit"),
            Denial::LookupTimeout => f.write_str("lookup-timeout"),
            Denial::ConnectTimeout => f.write_str("connect-timeout"),
        }
    }
}

/// What one socket moved, from its creation until the last of it and its streams was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketStats {
    /// The socket's number in its instance, from 1 in creation order.
    pub id: u64,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The local address as the guest sees it, once bound.
    pub local: Option<SocketAddr>,
    /// The peer, once connected (TCP) or associated (UDP).
    pub remote: Option<SocketAddr>,
    /// Bytes delivered to the guest (TCP bytes, UDP payloads).
    pub bytes_in: u64,
    /// Bytes sent by the guest.
    pub bytes_out: u64,
    /// UDP datagrams delivered to the guest.
    pub datagrams_in: u64,
    /// UDP datagrams sent by the guest.
    pub datagrams_out: u64,
    /// Whether the socket or one of its streams is still alive.
    pub open: bool,
}

impl SocketStats {
    /// Bytes both ways, then datagrams both ways: how [`Counters::busiest`] ranks sockets.
    fn traffic(&self) -> (u64, u64) {
        (
            self.bytes_in.saturating_add(self.bytes_out),
            self.datagrams_in.saturating_add(self.datagrams_out),
        )
    }
}

/// One socket's live counters, shared by the socket and its streams; what it counted joins
/// the instance's totals when the last of them is dropped.
#[derive(Debug)]
pub(crate) struct Meter {
    acct: Arc<Accounting>,
    id: u64,
    /// Its place in the instance's live meters.
    slot: u32,
    protocol: Protocol,
    /// Local, then remote.
    addrs: Mutex<[Packed; 2]>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    datagrams_in: AtomicU64,
    datagrams_out: AtomicU64,
}

impl Meter {
    fn addrs(&self) -> MutexGuard<'_, [Packed; 2]> {
        self.addrs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The instance's accounting.
    pub(crate) fn acct(&self) -> &Arc<Accounting> {
        &self.acct
    }

    /// Records the socket's local address (as the guest sees it).
    pub(crate) fn set_local(&self, local: SocketAddr) {
        self.addrs()[0] = Packed::new(Some(local));
    }

    /// Records the socket's peer, or that it has none.
    pub(crate) fn set_remote(&self, remote: Option<SocketAddr>) {
        self.addrs()[1] = Packed::new(remote);
    }

    pub(crate) fn bytes_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn bytes_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Relaxed);
    }

    /// `n` datagrams of `bytes` payload bytes in all, delivered to the guest.
    pub(crate) fn datagrams_in(&self, n: usize, bytes: usize) {
        self.datagrams_in.fetch_add(n as u64, Relaxed);
        self.bytes_in(bytes);
    }

    /// `n` datagrams of `bytes` payload bytes in all, sent by the guest.
    pub(crate) fn datagrams_out(&self, n: usize, bytes: usize) {
        self.datagrams_out.fetch_add(n as u64, Relaxed);
        self.bytes_out(bytes);
    }

    fn snapshot(&self, open: bool) -> SocketStats {
        let [local, remote] = *self.addrs();
        SocketStats {
            id: self.id,
            protocol: self.protocol,
            local: local.get(),
            remote: remote.get(),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            datagrams_in: self.datagrams_in.load(Relaxed),
            datagrams_out: self.datagrams_out.load(Relaxed),
            open,
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.acct.retire(self);
    }
}

/// An address as a meter keeps it, in 24 bytes rather than 32: IPv4 as IPv4-mapped IPv6, no
/// flow label (what `SocketStats` reports never has one).
#[derive(Clone, Copy, Debug, Default)]
struct Packed {
    ip: [u8; 16],
    scope: u32,
    port: u16,
    /// 0: none, 4: IPv4, 6: IPv6.
    kind: u8,
}

impl Packed {
    fn new(addr: Option<SocketAddr>) -> Self {
        match addr {
            None => Packed::default(),
            Some(SocketAddr::V4(a)) => Packed {
                ip: a.ip().to_ipv6_mapped().octets(),
                scope: 0,
                port: a.port(),
                kind: 4,
            },
            Some(SocketAddr::V6(a)) => Packed {
                ip: a.ip().octets(),
                scope: a.scope_id(),
                port: a.port(),
                kind: 6,
            },
        }
    }

    fn get(self) -> Option<SocketAddr> {
        let ip = Ipv6Addr::from(self.ip);
        match self.kind {
            4 => Some(SocketAddr::new(ip.to_ipv4_mapped()?.into(), self.port)),
            6 => Some(SocketAddrV6::new(ip, self.port, 0, self.scope).into()),
            _ => None,
        }
    }
}

/// A socket's meter, shared by the socket and its streams.
pub(crate) type SocketMeter = Arc<Meter>;

/// The instance's meters: the live ones, the totals of the retired ones, the busiest.
#[derive(Debug, Default)]
struct Meters {
    next_id: u64,
    /// Live meters by slot; a dropped meter's slot is empty until reused.
    live: Vec<Weak<Meter>>,
    /// Empty slots of `live`.
    free: Vec<u32>,
    /// Sums over retired sockets.
    retired: Totals,
    /// The busiest retired sockets, busiest first, at most [`BUSIEST`].
    busiest: Vec<SocketStats>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    bytes_in: u64,
    bytes_out: u64,
    datagrams_in: u64,
    datagrams_out: u64,
}

impl Totals {
    fn add(&mut self, s: &SocketStats) {
        self.bytes_in = self.bytes_in.saturating_add(s.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(s.bytes_out);
        self.datagrams_in = self.datagrams_in.saturating_add(s.datagrams_in);
        self.datagrams_out = self.datagrams_out.saturating_add(s.datagrams_out);
    }
}

/// Inserts `s` into `list` (busiest first) and keeps the [`BUSIEST`] busiest.
fn rank(list: &mut Vec<SocketStats>, s: SocketStats) {
    if s.traffic() == (0, 0) {
        return;
    }
    let at = list.partition_point(|o| o.traffic() >= s.traffic());
    if at < BUSIEST {
        list.insert(at, s);
        list.truncate(BUSIEST);
    }
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
    meters: Mutex<Meters>,
    denied: Mutex<BTreeMap<Denial, u64>>,
}

impl Accounting {
    pub(crate) fn new(limits: Limits) -> Self {
        let limits = limits.saturated();
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

    /// Takes a socket slot with a fresh meter, or `new-socket-limit` when the instance is at
    /// its limit.
    pub(crate) fn open_socket(
        self: &Arc<Self>,
        protocol: Protocol,
    ) -> Result<SocketSlot, ErrorCode> {
        let max = self.limits.max_sockets.unwrap_or(usize::MAX);
        let Ok(before) = self
            .open
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
        else {
            self.refused(Denial::SocketLimit);
            return Err(ErrorCode::NewSocketLimit);
        };
        self.peak.fetch_max(before + 1, Relaxed);
        self.created.fetch_add(1, Relaxed);
        let mut meters = self.meters();
        meters.next_id += 1;
        let slot = match meters.free.pop() {
            Some(slot) => slot,
            None => {
                meters.live.push(Weak::new());
                u32::try_from(meters.live.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let meter = Arc::new(Meter {
            acct: self.clone(),
            id: meters.next_id,
            slot,
            protocol,
            addrs: Mutex::default(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            datagrams_in: AtomicU64::new(0),
            datagrams_out: AtomicU64::new(0),
        });
        if let Some(place) = meters.live.get_mut(slot as usize) {
            *place = Arc::downgrade(&meter);
        }
        Ok(SocketSlot { meter })
    }

    /// The live meters, held for a moment: a meter whose last other handle goes meanwhile
    /// retires when these are dropped, after the caller has read it (and outside the lock).
    fn live(&self) -> (Totals, Vec<SocketStats>, Vec<Arc<Meter>>) {
        let meters = self.meters();
        let live: Vec<Arc<Meter>> = meters.live.iter().filter_map(Weak::upgrade).collect();
        (meters.retired, meters.busiest.clone(), live)
    }

    fn meters(&self) -> MutexGuard<'_, Meters> {
        self.meters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves a socket whose last handle is gone from the live meters into the totals.
    fn retire(&self, meter: &Meter) {
        let last = meter.snapshot(false);
        tracing::debug!(target: "wasock::socket", ?last, "socket closed");
        let mut meters = self.meters();
        if let Some(place) = meters.live.get_mut(meter.slot as usize) {
            *place = Weak::new();
            meters.free.push(meter.slot);
        }
        meters.retired.add(&last);
        rank(&mut meters.busiest, last);
    }

    /// Counts an OS error that is the host's fd exhaustion as a refusal; returns it unchanged.
    pub(crate) fn host_error(&self, e: std::io::Error) -> std::io::Error {
        if crate::error::is_fd_exhaustion(&e) {
            self.refused(Denial::HostFdLimit);
        }
        e
    }

    /// Counts a refusal.
    pub(crate) fn refused(&self, why: Denial) {
        *self
            .denied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(why)
            .or_default() += 1;
    }

    /// Whether a new socket would exceed the limit (checked before taking a connection off a
    /// listener's queue, so that a refused accept leaves it queued); counted as a refusal.
    pub(crate) fn at_socket_limit(&self) -> bool {
        let full = self
            .limits
            .max_sockets
            .is_some_and(|max| self.open.load(Relaxed) >= max);
        if full {
            self.refused(Denial::SocketLimit);
        }
        full
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
            tokio::time::sleep(bounded(wait)).await;
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let (mut totals, _, live) = self.live();
        for m in &live {
            totals.add(&m.snapshot(true));
        }
        drop(live);
        let denied_by = self
            .denied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Stats {
            sockets_open: self.open.load(Relaxed),
            sockets_peak: self.peak.load(Relaxed),
            sockets_created: self.created.load(Relaxed),
            bytes_in: totals.bytes_in,
            bytes_out: totals.bytes_out,
            datagrams_in: totals.datagrams_in,
            datagrams_out: totals.datagrams_out,
            denials: denied_by.values().sum(),
            denied_by,
        }
    }

    /// Every socket alive now (it or one of its streams), in creation order.
    pub(crate) fn sockets(&self) -> Vec<SocketStats> {
        let (_, _, live) = self.live();
        let mut all: Vec<_> = live.iter().map(|m| m.snapshot(true)).collect();
        drop(live);
        all.sort_by_key(|s| s.id);
        all
    }

    /// The busiest sockets of the instance's life, open or closed, busiest first.
    pub(crate) fn busiest(&self) -> Vec<SocketStats> {
        let (_, mut list, live) = self.live();
        for m in &live {
            rank(&mut list, m.snapshot(true));
        }
        drop(live);
        list
    }
}

/// A handle on an instance's counters that outlives its store (for reports after the guest
/// has exited, like `wasock run --stats`).
#[derive(Clone, Debug)]
pub struct Counters(pub(crate) Arc<Accounting>);

impl Counters {
    /// The instance's counters now.
    pub fn stats(&self) -> Stats {
        self.0.stats()
    }

    /// Per-socket counters of every socket alive now (it or one of its streams), by id.
    pub fn sockets(&self) -> Vec<SocketStats> {
        self.0.sockets()
    }

    /// Per-socket counters of the instance's busiest sockets (at most ten, open or closed), by
    /// bytes moved and then datagrams, busiest first.
    pub fn busiest(&self) -> Vec<SocketStats> {
        self.0.busiest()
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
            secs_to_wait((1.0 - tokens) / self.rate)
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

/// One counted socket; the count of open sockets drops with it. Its meter lives on in the
/// socket's streams.
#[derive(Debug)]
pub(crate) struct SocketSlot {
    meter: SocketMeter,
}

impl SocketSlot {
    /// The socket's meter, for its streams to share.
    pub(crate) fn meter(&self) -> &SocketMeter {
        &self.meter
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.meter.acct.open.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_addresses_round_trip() {
        for addr in [
            None,
            Some("127.0.0.1:80".parse().unwrap()),
            Some("0.0.0.0:0".parse().unwrap()),
            Some("[::1]:443".parse().unwrap()),
            Some("[::ffff:10.0.0.1]:8080".parse().unwrap()),
            Some(SocketAddr::V6(SocketAddrV6::new(
                "fe80::1".parse().unwrap(),
                53,
                0,
                7,
            ))),
        ] {
            assert_eq!(Packed::new(addr).get(), addr);
        }
    }

    #[test]
    fn socket_limit_is_enforced_and_released() {
        let acct = Arc::new(Accounting::new(Limits {
            max_sockets: Some(2),
            ..Limits::default()
        }));
        let a = acct.open_socket(Protocol::Tcp).unwrap();
        let _b = acct.open_socket(Protocol::Udp).unwrap();
        assert_eq!(
            acct.open_socket(Protocol::Tcp).unwrap_err(),
            ErrorCode::NewSocketLimit
        );
        drop(a);
        let _c = acct.open_socket(Protocol::Tcp).unwrap();
        let s = acct.stats();
        assert_eq!(
            (s.sockets_open, s.sockets_peak, s.sockets_created),
            (2, 2, 3)
        );
        assert_eq!(s.denied_by, BTreeMap::from([(Denial::SocketLimit, 1)]));
        assert_eq!(s.denials, 1);
    }

    #[test]
    fn socket_meters_outlive_the_socket_and_sum_into_the_totals() {
        let acct = Arc::new(Accounting::new(Limits::default()));
        let slot = acct.open_socket(Protocol::Tcp).unwrap();
        let stream_meter = slot.meter().clone();
        slot.meter().set_local("127.0.0.1:80".parse().unwrap());
        slot.meter().bytes_in(100);
        drop(slot);
        // The socket is gone but its stream still counts, and the socket is still listed.
        stream_meter.bytes_out(50);
        assert_eq!(acct.stats().sockets_open, 0);
        let live = acct.sockets();
        assert_eq!(live.len(), 1);
        assert_eq!(
            (live[0].id, live[0].bytes_in, live[0].bytes_out),
            (1, 100, 50)
        );
        assert_eq!(live[0].local, Some("127.0.0.1:80".parse().unwrap()));
        drop(stream_meter);
        assert!(acct.sockets().is_empty());

        let udp = acct.open_socket(Protocol::Udp).unwrap();
        udp.meter().datagrams_out(3, 30);
        udp.meter().datagrams_in(1, 7);
        let s = acct.stats();
        assert_eq!(
            (s.bytes_in, s.bytes_out, s.datagrams_in, s.datagrams_out),
            (107, 80, 1, 3)
        );
        drop(udp);
        assert_eq!(
            acct.stats().bytes_out,
            80,
            "retired sockets stay in the totals"
        );
        let busiest = acct.busiest();
        assert_eq!(busiest.iter().map(|s| s.id).collect::<Vec<_>>(), [1, 2]);
        assert!(busiest.iter().all(|s| !s.open));
    }

    #[test]
    fn busiest_keeps_the_ten_busiest() {
        let acct = Arc::new(Accounting::new(Limits::default()));
        for n in 0..30 {
            let slot = acct.open_socket(Protocol::Tcp).unwrap();
            slot.meter().bytes_in((n * 7919) % 101);
        }
        let busiest = acct.busiest();
        assert_eq!(busiest.len(), BUSIEST);
        assert!(busiest.windows(2).all(|w| w[0].bytes_in >= w[1].bytes_in));
        let mut all: Vec<u64> = (0..30).map(|n| (n * 7919) % 101).collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(busiest[BUSIEST - 1].bytes_in, all[BUSIEST - 1]);
    }

    #[test]
    fn denials_are_counted_by_reason() {
        let acct = Accounting::default();
        acct.refused(Denial::Policy("connect"));
        acct.refused(Denial::Policy("connect"));
        acct.refused(Denial::LookupTimeout);
        let s = acct.stats();
        assert_eq!(s.denials, 3);
        assert_eq!(s.denied_by[&Denial::Policy("connect")], 2);
        assert_eq!(Denial::Policy("connect").to_string(), "policy:connect");
        assert_eq!(Denial::HostFdLimit.to_string(), "host-fd-limit");
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

    /// Every field at its largest value.
    fn largest() -> Limits {
        Limits {
            max_sockets: Some(usize::MAX),
            max_lookups: usize::MAX,
            lookup_timeout: Duration::MAX,
            connect_timeout: Some(Duration::MAX),
            write_buffer: usize::MAX,
            max_backlog: u32::MAX,
            bandwidth_in: Some(u64::MAX),
            bandwidth_out: Some(u64::MAX),
        }
    }

    #[test]
    fn deadlines_saturate_at_forever() {
        let now = Instant::now();
        assert_eq!(deadline_after(now, Duration::ZERO), Some(now));
        let second = Duration::from_secs(1);
        assert_eq!(deadline_after(now, second), Some(now + second));
        for huge in [
            FOREVER,
            FOREVER + Duration::from_nanos(1),
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ] {
            assert_eq!(deadline_after(now, huge), Some(now + FOREVER), "{huge:?}");
            assert_eq!(bounded(huge), FOREVER);
        }
        assert_eq!(bounded(second), second);
        let never = Limits {
            connect_timeout: None,
            ..Limits::default()
        };
        assert_eq!(never.connect_deadline(now), None);
        assert_eq!(largest().connect_deadline(now), Some(now + FOREVER));
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
    fn the_largest_limits_saturate() {
        let acct = Arc::new(Accounting::new(largest()));
        let l = &acct.limits;
        assert_eq!(l.lookup_timeout, FOREVER);
        assert_eq!(l.connect_timeout, Some(FOREVER));
        assert_eq!(l.write_buffer, MAX_WRITE_BUFFER);
        assert_eq!(
            (l.max_sockets, l.max_lookups),
            (Some(usize::MAX), usize::MAX)
        );
        assert_eq!(l.max_backlog, u32::MAX);
        let _socket = acct.open_socket(Protocol::Tcp).unwrap();
        assert!(!acct.at_socket_limit());
        let _lookup = acct.start_lookup().unwrap();
        // A u64::MAX rate grants anything and never waits long.
        for way in [Way::In, Way::Out] {
            assert_eq!(acct.allowance(way, usize::MAX), usize::MAX);
            acct.spend(way, usize::MAX);
            acct.spend(way, usize::MAX);
            let wait = acct.bucket(way).unwrap().wait();
            assert!(wait <= Duration::from_secs(2), "{wait:?}");
        }
    }

    #[test]
    fn zero_limits_refuse_without_panicking() {
        let acct = Arc::new(Accounting::new(Limits {
            max_sockets: Some(0),
            max_lookups: 0,
            lookup_timeout: Duration::ZERO,
            connect_timeout: Some(Duration::ZERO),
            write_buffer: 0,
            max_backlog: 0,
            bandwidth_in: Some(0),
            bandwidth_out: Some(0),
        }));
        assert_eq!(
            acct.open_socket(Protocol::Udp).unwrap_err(),
            ErrorCode::NewSocketLimit
        );
        assert!(acct.at_socket_limit());
        assert!(acct.start_lookup().is_none());
        let l = &acct.limits;
        assert_eq!((l.write_buffer, l.max_backlog), (1, 0));
        let now = Instant::now();
        assert_eq!(l.connect_deadline(now), Some(now));
        // A rate of 0 counts as 1 byte per second.
        assert_eq!(acct.allowance(Way::In, 10), 1);
        assert_eq!(acct.allowance(Way::Out, usize::MAX), 1);
    }

    #[test]
    fn a_bucket_far_in_debt_waits_forever_at_most() {
        let b = Bucket::new(1);
        b.spend(usize::MAX);
        b.spend(usize::MAX);
        assert_eq!(b.available(usize::MAX), 0);
        assert_eq!(b.wait(), FOREVER);
    }

    #[test]
    fn counters_saturate() {
        let mut totals = Totals::default();
        let mut big = SocketStats {
            id: 1,
            protocol: Protocol::Tcp,
            local: None,
            remote: None,
            bytes_in: u64::MAX,
            bytes_out: u64::MAX,
            datagrams_in: u64::MAX,
            datagrams_out: 1,
            open: false,
        };
        totals.add(&big);
        totals.add(&big);
        assert_eq!(totals.bytes_in, u64::MAX);
        assert_eq!(big.traffic(), (u64::MAX, u64::MAX));
        big.open = true;
        let mut list = Vec::new();
        rank(&mut list, big);
        assert_eq!(list.len(), 1);
    }

    /// The saturated waits arm tokio's timers (whose own `Instant + Duration` would panic near
    /// the clock's end).
    #[tokio::test]
    async fn saturated_waits_arm_tokio_timers() {
        let short = Duration::from_millis(20);
        let far = deadline_after(Instant::now(), Duration::MAX).unwrap();
        let inner = tokio::time::timeout_at(far.into(), std::future::pending::<()>());
        assert!(tokio::time::timeout(short, inner).await.is_err());
        let inner = tokio::time::timeout(bounded(Duration::MAX), std::future::pending::<()>());
        assert!(tokio::time::timeout(short, inner).await.is_err());
        let sleep = tokio::time::sleep(bounded(Duration::MAX));
        assert!(tokio::time::timeout(short, sleep).await.is_err());
        let acct = Accounting::new(Limits {
            bandwidth_out: Some(1),
            ..Limits::default()
        });
        acct.spend(Way::Out, usize::MAX);
        assert!(
            tokio::time::timeout(short, acct.refill(Way::Out))
                .await
                .is_err()
        );
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
