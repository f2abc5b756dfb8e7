//! Per-instance limits and what an instance's counters report: the configuration
//! ([`Limits`] and its saturating rules) and the public counter types. The gate applies them:
//! the live counts and per-socket meters are in `meter`, the bandwidth buckets in `bandwidth`.

mod bandwidth;
mod meter;
mod text;

pub(crate) use bandwidth::{Bandwidth, Way};
pub(crate) use meter::{Accounting, LookupSlot, Meter, SocketMeter, SocketSlot};
pub use text::{LIMIT_NAMES, LimitError};

use crate::policy::Protocol;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest wait the host arms (about 100 years): a longer timeout, `Duration::MAX`
/// included, waits this long, which is to say forever.
pub const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The largest `check-write` grant, 16 MiB: four times Linux's largest default TCP send
/// buffer, and a `write` any guest can hold (a guest may write a whole grant at once); a larger
/// [`Limits::write_buffer`] grants this much.
pub const MAX_WRITE_BUFFER: usize = 16 * 1024 * 1024;

/// The most bytes one UDP socket's host-side receive queue holds, 2 MiB: what a receive took
/// off the kernel beyond the guest's `max-results` (a GRO buffer can hold more datagrams than
/// that). A datagram's cost is its payload plus [`QUEUED_DATAGRAM_COST`].
pub const MAX_UDP_QUEUE: usize = 2 * 1024 * 1024;

/// The most bytes all of an instance's UDP receive queues hold together, 16 MiB; a datagram
/// that finds no room, in its socket's queue or the instance's, is dropped (counted in
/// [`Stats::udp_queue_drops`]), as the kernel drops one that finds the receive buffer full.
pub const MAX_UDP_QUEUED: usize = 16 * 1024 * 1024;

/// What a queued datagram costs beyond its payload: its sender's address, its place in the
/// queue and its allocation.
pub const QUEUED_DATAGRAM_COST: usize = 64;

/// Rule: no operator duration overflows a deadline; anything past [`FOREVER`] is [`FOREVER`].
pub(crate) fn bounded(d: Duration) -> Duration {
    d.min(FOREVER)
}

/// Rule: a deadline `d` after `now` saturates at [`FOREVER`]; `None` (no deadline) only if
/// even that overflows the clock.
pub(crate) fn deadline_after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(bounded(d))
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
    /// Bytes the instance's UDP receive queues hold now (received, not yet returned to the
    /// guest), counted as [`MAX_UDP_QUEUED`] says.
    pub udp_queued_bytes: u64,
    /// Datagrams dropped because a UDP receive queue was full.
    pub udp_queue_drops: u64,
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

    /// The exit-time report that `wasock run --stats` and the containerd shim print, one line a
    /// counter group and then one a busiest socket (rule: the same words wherever it is shown).
    pub fn report(&self) -> Vec<String> {
        let s = self.stats();
        let mut lines = vec![
            format!(
                "sockets created {} (peak {} open at once, {} still open)",
                s.sockets_created, s.sockets_peak, s.sockets_open
            ),
            format!(
                "bytes in {} out {} (tcp and udp payloads)",
                s.bytes_in, s.bytes_out
            ),
            format!(
                "udp datagrams in {} out {}",
                s.datagrams_in, s.datagrams_out
            ),
        ];
        let reasons: Vec<String> = (s.denied_by.iter())
            .map(|(why, n)| format!("{why} {n}"))
            .collect();
        lines.push(match reasons.is_empty() {
            true => "operations denied 0".to_string(),
            false => format!("operations denied {} ({})", s.denials, reasons.join(", ")),
        });
        let addr = |a: Option<SocketAddr>| a.map_or("-".to_string(), |a| a.to_string());
        for sock in self.busiest() {
            lines.push(format!(
                "socket #{} {} {} -> {}: bytes in {} out {}, datagrams in {} out {}{}",
                sock.id,
                sock.protocol,
                addr(sock.local),
                addr(sock.remote),
                sock.bytes_in,
                sock.bytes_out,
                sock.datagrams_in,
                sock.datagrams_out,
                if sock.open { " (open)" } else { "" }
            ));
        }
        lines
    }
}

/// Every field at its largest value.
#[cfg(test)]
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

/// Every field at its smallest value.
#[cfg(test)]
fn smallest() -> Limits {
    Limits {
        max_sockets: Some(0),
        max_lookups: 0,
        lookup_timeout: Duration::ZERO,
        connect_timeout: Some(Duration::ZERO),
        write_buffer: 0,
        max_backlog: 0,
        bandwidth_in: Some(0),
        bandwidth_out: Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_largest_limits_saturate() {
        let l = largest().saturated();
        assert_eq!(l.lookup_timeout, FOREVER);
        assert_eq!(l.connect_timeout, Some(FOREVER));
        assert_eq!(l.write_buffer, MAX_WRITE_BUFFER);
        assert_eq!(
            (l.max_sockets, l.max_lookups),
            (Some(usize::MAX), usize::MAX)
        );
        assert_eq!(l.max_backlog, u32::MAX);
    }

    #[test]
    fn the_smallest_limits_saturate() {
        let l = smallest().saturated();
        assert_eq!((l.write_buffer, l.max_backlog), (1, 0));
        let now = Instant::now();
        assert_eq!(l.connect_deadline(now), Some(now));
    }

    #[test]
    fn denials_are_named_as_in_the_counters() {
        assert_eq!(Denial::Policy("connect").to_string(), "policy:connect");
        assert_eq!(Denial::WouldDeny("send").to_string(), "would-deny:send");
        assert_eq!(Denial::HostFdLimit.to_string(), "host-fd-limit");
    }
}
