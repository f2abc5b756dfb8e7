//! The meters: the instance's live counts (sockets, lookups, refusals) and one [`Meter`] per
//! socket, from creation until the last of the socket and its streams is dropped; the meters of
//! closed sockets join the instance's totals and its busiest.
//!
//! A meter points at its instance's gate: that is how a socket's streams reach the gate
//! (bandwidth, write grants, the clock), and where the meter retires when dropped.

use super::{Denial, Limits, MAX_UDP_QUEUED, SocketStats, Stats};
use crate::error::ErrorCode;
use crate::gate::Gate;
use crate::policy::Protocol;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// How many sockets [`Counters::busiest`](super::Counters::busiest) keeps.
const BUSIEST: usize = 10;

/// One socket's live counters, shared by the socket and its streams; what it counted joins
/// the instance's totals when the last of them is dropped.
pub(crate) struct Meter {
    /// The instance's gate.
    gate: Arc<Gate>,
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
        crate::sync::lock(&self.addrs)
    }

    /// The instance's gate: the one way from a socket's streams to bandwidth, grants and time.
    pub(crate) fn gate(&self) -> &Arc<Gate> {
        &self.gate
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

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.snapshot(true), f)
    }
}

impl Drop for Meter {
    /// The last holder of the socket's meter is gone (the handle, and every stream or
    /// `listen` stream that outlived it): its host socket is closed, so it stops counting.
    fn drop(&mut self) {
        self.gate.retire(self);
        self.gate.socket_closed();
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
#[derive(Debug)]
pub(crate) struct Accounting {
    /// `max_sockets`, `usize::MAX` for none.
    max_sockets: usize,
    max_lookups: usize,
    open: AtomicUsize,
    lookups: AtomicUsize,
    peak: AtomicUsize,
    created: AtomicU64,
    /// Bytes held in UDP receive queues, as counted by [`Accounting::hold_queued`].
    queued: AtomicUsize,
    queue_drops: AtomicU64,
    meters: Mutex<Meters>,
    denied: Mutex<BTreeMap<Denial, u64>>,
}

impl Accounting {
    /// Rule: counts against `max_sockets` and `max_lookups` of `limits`.
    pub(crate) fn new(limits: &Limits) -> Self {
        Accounting {
            max_sockets: limits.max_sockets.unwrap_or(usize::MAX),
            max_lookups: limits.max_lookups,
            open: AtomicUsize::new(0),
            lookups: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            created: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            queue_drops: AtomicU64::new(0),
            meters: Mutex::default(),
            denied: Mutex::default(),
        }
    }

    /// Takes a lookup slot, or `None` when `max_lookups` are under way.
    pub(crate) fn start_lookup(self: &Arc<Self>) -> Option<LookupSlot> {
        let max = self.max_lookups;
        self.lookups
            .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1))
            .ok()?;
        Some(LookupSlot(self.clone()))
    }

    /// Takes a socket slot with a fresh meter on `gate`, or `new-socket-limit` when the
    /// instance is at its limit.
    pub(crate) fn open_socket(
        &self,
        gate: &Arc<Gate>,
        protocol: Protocol,
    ) -> Result<SocketSlot, ErrorCode> {
        let max = self.max_sockets;
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
            gate: gate.clone(),
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
        crate::sync::lock(&self.meters)
    }

    /// Moves a socket whose last handle is gone from the live meters into the totals.
    pub(crate) fn retire(&self, meter: &Meter) {
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

    /// A counted socket is gone.
    pub(crate) fn socket_closed(&self) {
        self.open.fetch_sub(1, Relaxed);
    }

    /// Rule: `n` more bytes may join the instance's UDP receive queues only while all of them
    /// together stay within [`MAX_UDP_QUEUED`]; whether they were counted.
    pub(crate) fn hold_queued(&self, n: usize) -> bool {
        self.queued
            .fetch_update(Relaxed, Relaxed, |q| {
                q.checked_add(n).filter(|&t| t <= MAX_UDP_QUEUED)
            })
            .is_ok()
    }

    /// Rule: bytes a queue held are released when the queue hands them on or drops them.
    pub(crate) fn release_queued(&self, n: usize) {
        let _ = self
            .queued
            .fetch_update(Relaxed, Relaxed, |q| Some(q.saturating_sub(n)));
    }

    /// Counts datagrams dropped because a UDP receive queue was full.
    pub(crate) fn queue_dropped(&self, n: usize) {
        self.queue_drops.fetch_add(n as u64, Relaxed);
    }

    /// Counts a backend error that is the host's fd exhaustion (`new-socket-limit` from the
    /// backend, never from the limits) as a refusal; returns it unchanged.
    pub(crate) fn host_error(&self, e: ErrorCode) -> ErrorCode {
        if e == ErrorCode::NewSocketLimit {
            self.refused(Denial::HostFdLimit);
        }
        e
    }

    /// Counts a refusal.
    pub(crate) fn refused(&self, why: Denial) {
        *crate::sync::lock(&self.denied).entry(why).or_default() += 1;
    }

    /// Whether a new socket would exceed the limit; not counted.
    pub(crate) fn socket_limit_reached(&self) -> bool {
        self.open.load(Relaxed) >= self.max_sockets
    }

    /// Whether a new socket would exceed the limit (checked before taking a connection off a
    /// listener's queue, so that a refused accept leaves it queued); counted as a refusal.
    pub(crate) fn at_socket_limit(&self) -> bool {
        let full = self.socket_limit_reached();
        if full {
            self.refused(Denial::SocketLimit);
        }
        full
    }

    pub(crate) fn stats(&self) -> Stats {
        let (mut totals, _, live) = self.live();
        for m in &live {
            totals.add(&m.snapshot(true));
        }
        drop(live);
        let denied_by = crate::sync::lock(&self.denied).clone();
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
            udp_queued_bytes: self.queued.load(Relaxed) as u64,
            udp_queue_drops: self.queue_drops.load(Relaxed),
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

/// One lookup under way; the count drops with it.
#[derive(Debug)]
pub(crate) struct LookupSlot(Arc<Accounting>);

impl Drop for LookupSlot {
    fn drop(&mut self) {
        self.0.lookups.fetch_sub(1, Relaxed);
    }
}

/// One counted socket. It counts as open until its meter's last holder is gone: the socket
/// handle, and whatever of it outlives the handle (0.2's streams, 0.3's streams and `listen`
/// stream), so a guest cannot keep host sockets open past `max_sockets` by dropping handles.
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

#[cfg(test)]
mod tests {
    use super::super::{largest, smallest};
    use super::*;
    use crate::gate::test_gate;

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
        let gate = test_gate(Limits {
            max_sockets: Some(2),
            ..Limits::default()
        });
        let a = gate.open_socket(Protocol::Tcp).unwrap();
        let _b = gate.open_socket(Protocol::Udp).unwrap();
        assert_eq!(
            gate.open_socket(Protocol::Tcp).unwrap_err(),
            ErrorCode::NewSocketLimit
        );
        drop(a);
        let _c = gate.open_socket(Protocol::Tcp).unwrap();
        let s = gate.stats();
        assert_eq!(
            (s.sockets_open, s.sockets_peak, s.sockets_created),
            (2, 2, 3)
        );
        assert_eq!(s.denied_by, BTreeMap::from([(Denial::SocketLimit, 1)]));
        assert_eq!(s.denials, 1);
    }

    #[test]
    fn socket_meters_outlive_the_socket_and_sum_into_the_totals() {
        let gate = test_gate(Limits::default());
        let counters = gate.counters();
        let slot = gate.open_socket(Protocol::Tcp).unwrap();
        let stream_meter = slot.meter().clone();
        slot.meter().set_local("127.0.0.1:80".parse().unwrap());
        slot.meter().bytes_in(100);
        drop(slot);
        // The handle is gone but its stream still counts, the socket is still listed, and it
        // is still open (its host socket is): it counts against the limit until the last goes.
        stream_meter.bytes_out(50);
        assert_eq!(gate.stats().sockets_open, 1);
        let live = counters.sockets();
        assert_eq!(live.len(), 1);
        assert_eq!(
            (live[0].id, live[0].bytes_in, live[0].bytes_out),
            (1, 100, 50)
        );
        assert_eq!(live[0].local, Some("127.0.0.1:80".parse().unwrap()));
        drop(stream_meter);
        assert!(counters.sockets().is_empty());
        assert_eq!(gate.stats().sockets_open, 0);

        let udp = gate.open_socket(Protocol::Udp).unwrap();
        udp.meter().datagrams_out(3, 30);
        udp.meter().datagrams_in(1, 7);
        let s = gate.stats();
        assert_eq!(
            (s.bytes_in, s.bytes_out, s.datagrams_in, s.datagrams_out),
            (107, 80, 1, 3)
        );
        drop(udp);
        assert_eq!(
            gate.stats().bytes_out,
            80,
            "retired sockets stay in the totals"
        );
        let busiest = counters.busiest();
        assert_eq!(busiest.iter().map(|s| s.id).collect::<Vec<_>>(), [1, 2]);
        assert!(busiest.iter().all(|s| !s.open));
    }

    #[test]
    fn busiest_keeps_the_ten_busiest() {
        let gate = test_gate(Limits::default());
        for n in 0..30 {
            let slot = gate.open_socket(Protocol::Tcp).unwrap();
            slot.meter().bytes_in((n * 7919) % 101);
        }
        let busiest = gate.counters().busiest();
        assert_eq!(busiest.len(), BUSIEST);
        assert!(busiest.windows(2).all(|w| w[0].bytes_in >= w[1].bytes_in));
        let mut all: Vec<u64> = (0..30).map(|n| (n * 7919) % 101).collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(busiest[BUSIEST - 1].bytes_in, all[BUSIEST - 1]);
    }

    #[test]
    fn denials_are_counted_by_reason() {
        let acct = Accounting::new(&Limits::default());
        acct.refused(Denial::Policy("connect"));
        acct.refused(Denial::Policy("connect"));
        acct.refused(Denial::LookupTimeout);
        let s = acct.stats();
        assert_eq!(s.denials, 3);
        assert_eq!(s.denied_by[&Denial::Policy("connect")], 2);
    }

    #[test]
    fn the_largest_limits_count_without_overflow() {
        let gate = test_gate(largest());
        let _socket = gate.open_socket(Protocol::Tcp).unwrap();
        assert_eq!(gate.may_accept(), Ok(()));
        let _lookup = gate.start_lookup().unwrap();
        assert_eq!(gate.stats().denials, 0);
    }

    #[test]
    fn zero_limits_refuse_without_panicking() {
        let gate = test_gate(smallest());
        assert_eq!(
            gate.open_socket(Protocol::Udp).unwrap_err(),
            ErrorCode::NewSocketLimit
        );
        assert_eq!(gate.may_accept(), Err(ErrorCode::NewSocketLimit));
        assert_eq!(
            gate.start_lookup().unwrap_err(),
            ErrorCode::TemporaryResolverFailure
        );
        let s = gate.stats();
        assert_eq!(s.denied_by[&Denial::SocketLimit], 2);
        assert_eq!(s.denied_by[&Denial::LookupLimit], 1);
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

    #[test]
    fn lookup_slots_are_bounded_and_released() {
        let acct = Arc::new(Accounting::new(&Limits {
            max_lookups: 1,
            ..Limits::default()
        }));
        let slot = acct.start_lookup().unwrap();
        assert!(acct.start_lookup().is_none());
        drop(slot);
        assert!(acct.start_lookup().is_some());
    }
}
