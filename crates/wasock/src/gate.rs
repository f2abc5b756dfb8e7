//! The one decision point and one accounting point every guest operation passes, shared by an
//! instance's sockets: the policy, what the instance's lookups returned (for name-bound grants),
//! the audit trail, the limits and counters, and the clock.
//!
//! The state machines (`tcp`, `udp`, `lookup`) and a socket's streams ask the gate and never
//! reach into `limits`: a stream finds the gate through its socket's meter ([`Meter::gate`]).

use crate::audit::{AuditEvent, AuditSink, AuditVerdict, PolicyMode};
use crate::backend::{Backend, Net, Resolver};
use crate::clock::Clock;
use crate::error::ErrorCode;
use crate::limits::{
    Accounting, Bandwidth, Counters, Denial, Limits, LookupSlot, Meter, SocketSlot, Stats, Way,
    deadline_after,
};
use crate::policy::{Action, NameBook, Policy, Protocol, Verdict};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most (address, name) pairs an instance's name book keeps; past it, new lookups still answer
/// but grant nothing by name (fail closed).
const NAME_BOOK_CAPACITY: usize = 65_536;

/// Host-side socket behaviour that is not policy.
#[derive(Clone, Debug)]
pub(crate) struct Tuning {
    /// `TCP_NODELAY` on every connected socket (WASI 0.2 gives guests no way to set it).
    pub(crate) tcp_nodelay: bool,
    /// Datagrams granted by one UDP `check-send`.
    pub(crate) udp_send_permits: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            tcp_nodelay: true,
            udp_send_permits: 64,
        }
    }
}

/// Which names this instance's lookups returned for each address.
#[derive(Default)]
struct Names {
    by_addr: HashMap<IpAddr, Vec<String>>,
    pairs: usize,
}

impl NameBook for Names {
    fn names_of(&self, ip: IpAddr) -> &[String] {
        self.by_addr.get(&ip).map(Vec::as_slice).unwrap_or_default()
    }
}

/// See the module doc.
pub(crate) struct Gate {
    policy: Arc<dyn Policy>,
    mode: PolicyMode,
    names: Mutex<Names>,
    audit: Option<Arc<dyn AuditSink>>,
    instance: Arc<str>,
    /// Saturated (see [`Limits`]).
    limits: Limits,
    acct: Arc<Accounting>,
    bandwidth: Bandwidth,
    clock: Clock,
    tuning: Tuning,
    /// Where the instance's sockets live and how its allowed lookups are answered.
    backend: Backend,
}

impl Gate {
    pub(crate) fn new(
        policy: Arc<dyn Policy>,
        mode: PolicyMode,
        audit: Option<Arc<dyn AuditSink>>,
        instance: Arc<str>,
        limits: Limits,
        tuning: Tuning,
        backend: Backend,
    ) -> Self {
        let limits = limits.saturated();
        let clock = Clock::default();
        Gate {
            policy,
            mode,
            names: Mutex::default(),
            audit,
            instance,
            acct: Arc::new(Accounting::new(&limits)),
            bandwidth: Bandwidth::new(&limits, clock.now()),
            limits,
            clock,
            tuning,
            backend,
        }
    }

    /// Where the instance's sockets are made: the OS, or a virtual network's host.
    pub(crate) fn net(&self) -> &Net {
        &self.backend.net
    }

    /// How the lookups the policy allowed are answered.
    pub(crate) fn resolver(&self) -> &dyn Resolver {
        &*self.backend.resolver
    }

    /// The same gate on `clock` (the bandwidth caps start full at its time).
    #[cfg(test)]
    pub(crate) fn with_clock(self, clock: Clock) -> Self {
        Gate {
            bandwidth: Bandwidth::new(&self.limits, clock.now()),
            clock,
            ..self
        }
    }

    fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        crate::sync::lock(&self.names)
    }

    /// Puts `action` to the policy, records the decision, and counts a refusal; a refusal in
    /// enforce mode is `access-denied`.
    pub(crate) fn check(&self, action: Action<'_>) -> Result<(), ErrorCode> {
        let decision = self.policy.decide(&action, &*self.names());
        let verdict = match (decision.verdict, self.mode) {
            (Verdict::Allow, _) => AuditVerdict::Allow,
            (Verdict::Deny, PolicyMode::Enforce) => AuditVerdict::Deny,
            (Verdict::Deny, PolicyMode::Audit) => AuditVerdict::WouldDeny,
        };
        let rule = decision.rule.as_deref();
        tracing::debug!(
            target: "wasock::policy",
            instance = &*self.instance,
            op = action.op(),
            ?action,
            ?verdict,
            rule,
        );
        if let Some(sink) = &self.audit {
            sink.record(&AuditEvent::new(&self.instance, &action, verdict, rule));
        }
        if verdict == AuditVerdict::Allow {
            return Ok(());
        }
        if verdict == AuditVerdict::Deny {
            self.acct.refused(Denial::Policy(action.op()));
            Err(ErrorCode::AccessDenied)
        } else {
            self.acct.refused(Denial::WouldDeny(action.op()));
            Ok(())
        }
    }

    /// Records that a lookup of `name` returned `addrs` to this instance (name-bound grants).
    pub(crate) fn remember(&self, name: &str, addrs: &[IpAddr]) {
        let mut names = self.names();
        for ip in addrs {
            if names.pairs >= NAME_BOOK_CAPACITY {
                return;
            }
            let entry = names.by_addr.entry(*ip).or_default();
            if !entry.iter().any(|n| n == name) {
                entry.push(name.to_string());
                names.pairs += 1;
            }
        }
    }

    /// Fixed answers the policy gives for `name`, if any.
    pub(crate) fn mapped_name(&self, name: &str) -> Option<Vec<IpAddr>> {
        self.policy.mapped_name(name)
    }

    /// The host port a guest's bind to `local` really uses (`:80->8080`).
    pub(crate) fn port_map(&self, proto: Protocol, local: SocketAddr) -> PortMap {
        match self.policy.mapped_port(proto, local) {
            Some(host) if host != local.port() => PortMap(Some((local.port(), host))),
            _ => PortMap(None),
        }
    }
}

/// Limits: the decisions that are not the policy's, each refusal counted by reason.
impl Gate {
    /// Rule: a socket counts from creation; past `max_sockets` it is `new-socket-limit`.
    pub(crate) fn open_socket(self: &Arc<Self>, proto: Protocol) -> Result<SocketSlot, ErrorCode> {
        self.acct.open_socket(self, proto)
    }

    /// Rule: `accept` at the socket limit is `new-socket-limit`, the connection left queued.
    pub(crate) fn may_accept(&self) -> Result<(), ErrorCode> {
        match self.acct.at_socket_limit() {
            true => Err(ErrorCode::NewSocketLimit),
            false => Ok(()),
        }
    }

    /// Whether the instance holds as many sockets as the limit allows, without counting a
    /// refusal (for a wait that was refused once already).
    pub(crate) fn socket_limit_reached(&self) -> bool {
        self.acct.socket_limit_reached()
    }

    /// Rule: past `max_lookups` under way a lookup is `temporary-resolver-failure`.
    pub(crate) fn start_lookup(&self) -> Result<LookupSlot, ErrorCode> {
        self.acct.start_lookup().ok_or_else(|| {
            self.acct.refused(Denial::LookupLimit);
            ErrorCode::TemporaryResolverFailure
        })
    }

    /// Rule: a lookup not answered within `lookup_timeout` is `temporary-resolver-failure`.
    pub(crate) async fn lookup_within<F: Future>(&self, lookup: F) -> Result<F::Output, ErrorCode> {
        let deadline = self.deadline_in(self.limits.lookup_timeout);
        self.clock.within(deadline, lookup).await.ok_or_else(|| {
            self.acct.refused(Denial::LookupTimeout);
            ErrorCode::TemporaryResolverFailure
        })
    }

    /// Rule: the backlog a listener gets is the guest's, at most `max_backlog`.
    pub(crate) fn backlog(&self, requested: u32) -> u32 {
        requested.min(self.limits.max_backlog)
    }

    /// Rule: a connect started now times out `connect_timeout` later (`None`: never).
    pub(crate) fn connect_deadline(&self) -> Option<Instant> {
        self.limits.connect_deadline(self.clock.now())
    }

    /// Rule: an unfinished connect past its deadline is `timeout`; counted when it is.
    pub(crate) fn connect_timed_out(&self, deadline: Option<Instant>) -> bool {
        let late = deadline.is_some_and(|d| self.clock.now() >= d);
        if late {
            self.acct.refused(Denial::ConnectTimeout);
        }
        late
    }

    /// Rule: one `check-write` grants at most `write_buffer`, and what the outbound cap allows.
    pub(crate) fn write_grant(&self) -> usize {
        self.allowance(Way::Out, self.limits.write_buffer.max(1))
    }
}

/// Accounting: what the instance's sockets moved and what the host ran out of.
impl Gate {
    /// Counts a backend error that is the host running out of sockets as a refusal; returns it
    /// unchanged.
    pub(crate) fn host_error(&self, e: ErrorCode) -> ErrorCode {
        self.acct.host_error(e)
    }

    /// Rule: bytes the bandwidth cap of `way` allows now, at most `want` (all with no cap).
    pub(crate) fn allowance(&self, way: Way, want: usize) -> usize {
        match self.bandwidth.bucket(way) {
            Some(b) => b.available(want, self.clock.now()),
            None => want,
        }
    }

    /// Whether `way` has a bandwidth cap (waits for it need a timer).
    pub(crate) fn capped(&self, way: Way) -> bool {
        self.bandwidth.bucket(way).is_some()
    }

    /// Rule: `n` bytes moved are charged to the bandwidth cap of `way`, if any.
    pub(crate) fn spend(&self, way: Way, n: usize) {
        if let Some(b) = self.bandwidth.bucket(way) {
            b.spend(n, self.clock.now());
        }
    }

    /// Rule: waits until the bandwidth cap of `way` grants a quantum again (at once with no cap).
    pub(crate) async fn refill(&self, way: Way) {
        let Some(b) = self.bandwidth.bucket(way) else {
            return;
        };
        let now = self.clock.now();
        let wait = b.wait(now);
        if !wait.is_zero() {
            self.clock.sleep_from(now, wait).await;
        }
    }

    /// Waits `d` on the gate's clock (a retry's pause).
    pub(crate) async fn sleep(&self, d: Duration) {
        self.clock.sleep_from(self.clock.now(), d).await
    }

    /// Rule: a UDP receive queue may hold `n` more bytes only within the instance's total
    /// (`limits::MAX_UDP_QUEUED`); whether they were counted.
    pub(crate) fn hold_queued(&self, n: usize) -> bool {
        self.acct.hold_queued(n)
    }

    /// Rule: bytes a UDP receive queue no longer holds stop counting.
    pub(crate) fn release_queued(&self, n: usize) {
        self.acct.release_queued(n);
    }

    /// Counts datagrams a full UDP receive queue dropped.
    pub(crate) fn queue_dropped(&self, n: usize) {
        self.acct.queue_dropped(n);
    }

    /// The instance's counters now.
    pub(crate) fn stats(&self) -> Stats {
        self.acct.stats()
    }

    /// A handle on the instance's counters that outlives the gate.
    pub(crate) fn counters(&self) -> Counters {
        Counters(self.acct.clone())
    }

    /// Rule: a socket's counts join the totals when its meter's last handle goes.
    pub(crate) fn retire(&self, meter: &Meter) {
        self.acct.retire(meter);
    }

    /// Rule: a socket stops counting against `max_sockets` when the last holder of its meter
    /// (handle, streams, `listen` stream) is dropped.
    pub(crate) fn socket_closed(&self) {
        self.acct.socket_closed();
    }
}

/// Host-side tuning, time and tasks.
impl Gate {
    /// Rule: `TCP_NODELAY` on every connected socket unless the embedder turned it off.
    pub(crate) fn tcp_nodelay(&self) -> bool {
        self.tuning.tcp_nodelay
    }

    /// Rule: one UDP `check-send` permits this many datagrams.
    pub(crate) fn udp_send_permits(&self) -> u64 {
        self.tuning.udp_send_permits
    }

    /// Rule: a wait of `d` from now ends at a deadline saturated at `FOREVER`.
    pub(crate) fn deadline_in(&self, d: Duration) -> Option<Instant> {
        deadline_after(self.clock.now(), d)
    }

    /// Rule: `fut`'s output if it comes by `deadline` (on the gate's clock), else `None`.
    pub(crate) async fn within<F: Future>(
        &self,
        deadline: Option<Instant>,
        fut: F,
    ) -> Option<F::Output> {
        self.clock.within(deadline, fut).await
    }

    /// Rule: background work runs on the gate's executor; `false` when there is none.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> bool {
        self.clock.spawn(task)
    }
}

/// A bound socket's port as the guest sees it and as the host really bound it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PortMap(Option<(u16, u16)>);

impl PortMap {
    /// The address the host binds for the guest's `local`.
    pub(crate) fn to_host(self, local: SocketAddr) -> SocketAddr {
        match self.0 {
            Some((guest, host)) if local.port() == guest => SocketAddr::new(local.ip(), host),
            _ => local,
        }
    }

    /// The address the guest sees for the host's `local` (`local-address`, policy checks).
    pub(crate) fn to_guest(self, local: SocketAddr) -> SocketAddr {
        match self.0 {
            Some((guest, host)) if local.port() == host => SocketAddr::new(local.ip(), guest),
            _ => local,
        }
    }
}

/// A gate that allows everything, under `limits`, on the real clock.
#[cfg(test)]
pub(crate) fn test_gate(limits: Limits) -> Arc<Gate> {
    test_gate_on(limits, Clock::default())
}

/// A gate that allows everything, with its sockets on `host` of a virtual network.
#[cfg(test)]
pub(crate) fn test_gate_virtual(host: &crate::backend::VirtualHost) -> Arc<Gate> {
    let everything = crate::policy::Switches {
        network: true,
        lookup: true,
    };
    Arc::new(Gate::new(
        Arc::new(everything),
        PolicyMode::Enforce,
        None,
        host.name().into(),
        Limits::default(),
        Tuning::default(),
        Backend {
            net: Net::Virtual(host.clone()),
            resolver: Arc::new(host.resolver()),
        },
    ))
}

/// A gate that allows everything, under `limits`, on `clock`.
#[cfg(test)]
pub(crate) fn test_gate_on(limits: Limits, clock: Clock) -> Arc<Gate> {
    let everything = crate::policy::Switches {
        network: true,
        lookup: true,
    };
    let gate = Gate::new(
        Arc::new(everything),
        PolicyMode::Enforce,
        None,
        "test".into(),
        limits,
        Tuning::default(),
        Backend {
            net: Net::Os,
            resolver: Arc::new(crate::backend::SystemResolver),
        },
    );
    Arc::new(gate.with_clock(clock))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::future::pending;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    const SEC: Duration = Duration::from_secs(1);

    fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        fut.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn bandwidth_refills_on_the_gate_clock() {
        let (clock, hand) = ManualClock::new();
        let gate = test_gate_on(
            Limits {
                bandwidth_out: Some(1000),
                write_buffer: 4096,
                ..Limits::default()
            },
            clock,
        );
        assert_eq!(gate.write_grant(), 1000);
        gate.spend(Way::Out, 1000);
        assert_eq!(gate.write_grant(), 0);
        assert_eq!(gate.allowance(Way::In, 7), 7, "no inbound cap");
        let mut refill = pin!(gate.refill(Way::Out));
        assert!(poll_once(refill.as_mut()).is_pending());
        hand.advance(SEC / 100);
        assert!(
            poll_once(refill.as_mut()).is_pending(),
            "less than a quantum (20 bytes)"
        );
        hand.advance(SEC / 100);
        assert!(poll_once(refill.as_mut()).is_ready());
        assert_eq!(gate.allowance(Way::Out, usize::MAX), 20);
        hand.advance(10 * SEC);
        assert_eq!(gate.write_grant(), 1000, "one second's worth at most");
        assert!(poll_once(pin!(gate.refill(Way::In))).is_ready());
    }

    #[test]
    fn a_connect_deadline_passes_on_the_gate_clock() {
        let (clock, hand) = ManualClock::new();
        let limits = Limits {
            connect_timeout: Some(60 * SEC),
            ..Limits::default()
        };
        let gate = test_gate_on(limits, clock);
        let deadline = gate.connect_deadline();
        let mut wait = pin!(gate.within(deadline, pending::<()>()));
        assert!(poll_once(wait.as_mut()).is_pending());
        hand.advance(59 * SEC);
        assert!(!gate.connect_timed_out(deadline));
        assert!(poll_once(wait.as_mut()).is_pending());
        hand.advance(SEC);
        assert_eq!(poll_once(wait.as_mut()), Poll::Ready(None));
        assert!(gate.connect_timed_out(deadline));
        assert!(!gate.connect_timed_out(None));
        assert_eq!(gate.stats().denied_by[&Denial::ConnectTimeout], 1);
    }

    #[test]
    fn a_lookup_times_out_on_the_gate_clock() {
        let (clock, hand) = ManualClock::new();
        let limits = Limits {
            lookup_timeout: 10 * SEC,
            ..Limits::default()
        };
        let gate = test_gate_on(limits, clock);
        let mut lookup = pin!(gate.lookup_within(pending::<()>()));
        assert!(poll_once(lookup.as_mut()).is_pending());
        hand.advance(10 * SEC);
        assert_eq!(
            poll_once(lookup.as_mut()),
            Poll::Ready(Err(ErrorCode::TemporaryResolverFailure))
        );
        assert_eq!(
            poll_once(pin!(gate.lookup_within(async { 1 }))),
            Poll::Ready(Ok(1))
        );
        assert_eq!(gate.stats().denied_by[&Denial::LookupTimeout], 1);
    }

    #[test]
    fn the_backlog_is_capped() {
        let gate = test_gate(Limits {
            max_backlog: 5,
            ..Limits::default()
        });
        assert_eq!((gate.backlog(3), gate.backlog(u32::MAX)), (3, 5));
    }
}
