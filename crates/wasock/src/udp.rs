//! The UDP state machine of `wasi:sockets/udp`, written once over the backend seam.
//!
//! `stream` may be called again to change the association; only the newest pair of datagram
//! streams works, older ones report `invalid-state` (wasock never traps for a live old pair).
//!
//! `stream(some(peer))` is a real `connect(2)`, as the WIT's POSIX equivalent says: the local
//! address narrows to the route's source, and the kernel reports the peer's ICMP errors as
//! `connection-refused`. Linux's `connect(AF_UNSPEC)` releases a port the socket was given as
//! port 0; the socket takes it back at once, so it keeps its port for life (see
//! [`Datagram::disconnect`]).
//!
//! A receive may take more datagrams off the kernel than `max-results` (a GRO buffer holds a
//! sender's whole GSO run): the rest wait in the socket's bounded, counted [`RecvQueue`] and are
//! handed out first by the next receives. A new `stream` call and the incoming stream's drop
//! discard what it holds, as datagrams the stream never returned.

mod queue;

use crate::addr::{self, Family};
use crate::backend::{Datagram, Opts, RawSocket};
use crate::error::ErrorCode;
use crate::error::{SocketError, SocketResult};
use crate::gate::{Gate, PortMap};
use crate::limits::{SocketMeter, SocketSlot, Way};
use crate::network::NetworkId;
use crate::options;
use crate::policy::{Action, Protocol};
use crate::sync::lock;
use queue::RecvQueue;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime_wasi_io::poll::Pollable;

/// Largest UDP payload over IPv6 (65535 − 8-byte header); larger is `datagram-too-large`.
const MAX_DATAGRAM: usize = 65_527;
/// Datagrams a 0.3 `receive` (one per call) takes off the kernel beyond its own, in the same
/// batch, into the socket's queue: at most 16 × 64 KiB, so an empty queue always has room.
const P3_READ_AHEAD: usize = 15;
/// Most datagrams one `receive` returns, whatever `max-results` says.
const MAX_RECEIVE_BATCH: u64 = 1024;

enum State {
    Unbound(RawSocket),
    BindInProgress(RawSocket),
    Bound(Arc<Shared>),
    /// Only while a transition is under way, or after a failed registration.
    Closed,
}

/// What a socket and its datagram streams share.
struct Shared {
    sock: Datagram,
    /// Bumped by every `stream` call; a stream pair works only while it holds the newest value.
    generation: AtomicU64,
    /// The bound address as the guest sees it (what inbound rules match; fixed for life).
    local: SocketAddr,
    /// An error a receive met after it had datagrams to return: the next receive reports it.
    deferred: Mutex<Option<ErrorCode>>,
    /// Datagrams taken off the kernel and not yet returned; only the newest stream reads it.
    queue: Mutex<RecvQueue>,
    gate: Arc<Gate>,
    meter: SocketMeter,
}

impl Shared {
    fn is_current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::Acquire) == generation
    }
}

/// A `udp-socket` resource.
pub struct UdpSocket {
    family: Family,
    state: State,
    remote: Option<SocketAddr>,
    ports: PortMap,
    /// The host address as bound, port included.
    bound: Option<SocketAddr>,
    /// The kernel holds the port even across a disconnect (it was bound explicitly).
    port_pinned: bool,
    gate: Arc<Gate>,
    slot: SocketSlot,
    /// 0.3: the stream pair its `send` and `receive` use (boxed: a 0.2 socket never has one).
    streams: Option<Box<(IncomingDatagramStream, OutgoingDatagramStream)>>,
}

impl UdpSocket {
    /// `create-udp-socket`: counted from creation; the protocol must be granted at all.
    pub(crate) fn new(gate: &Arc<Gate>, family: Family) -> SocketResult<Self> {
        gate.check(Action::Create {
            proto: Protocol::Udp,
        })?;
        let slot = gate.open_socket(Protocol::Udp)?;
        let sock = RawSocket::udp(gate.net(), family).map_err(|e| gate.host_error(e))?;
        Ok(UdpSocket {
            family,
            state: State::Unbound(sock),
            remote: None,
            ports: PortMap::default(),
            bound: None,
            port_pinned: false,
            gate: gate.clone(),
            slot,
            streams: None,
        })
    }

    fn options(&self) -> Result<Opts<'_>, ErrorCode> {
        match &self.state {
            State::Unbound(s) | State::BindInProgress(s) => Ok(s.options()),
            State::Bound(b) => Ok(b.sock.options()),
            State::Closed => Err(ErrorCode::InvalidState),
        }
    }

    /// `start-bind`: valid in `unbound` (`concurrency-conflict` while a bind is under way);
    /// argument rules, then policy, then `bind(2)`. The network is not recorded: UDP has no
    /// call that must match it.
    pub(crate) fn start_bind(&mut self, _net: NetworkId, local: SocketAddr) -> SocketResult<()> {
        if matches!(self.state, State::BindInProgress(_)) {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        let State::Unbound(sock) = &self.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        let local = addr::check_local(addr::Kind::Udp, self.family, local)?;
        self.gate.check(Action::Bind {
            proto: Protocol::Udp,
            local,
        })?;
        let ports = self.gate.port_map(Protocol::Udp, local);
        let host = ports.to_host(local);
        sock.bind(host)?;
        self.ports = ports;
        self.port_pinned = host.port() != 0;
        if let Ok(bound) = sock.local_addr() {
            self.bound = Some(bound);
            self.slot.meter().set_local(ports.to_guest(bound));
        }
        let State::Unbound(sock) = std::mem::replace(&mut self.state, State::Closed) else {
            unreachable!("state checked above");
        };
        self.state = State::BindInProgress(sock);
        Ok(())
    }

    /// `finish-bind`: completes a started bind.
    pub(crate) fn finish_bind(&mut self) -> SocketResult<()> {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::BindInProgress(sock) => {
                let sock = sock.into_datagram()?;
                let local = self.ports.to_guest(sock.local_addr()?);
                let shared = Shared {
                    sock,
                    generation: AtomicU64::new(0),
                    local,
                    deferred: Mutex::new(None),
                    queue: Mutex::new(RecvQueue::new(self.gate.clone())),
                    gate: self.gate.clone(),
                    meter: self.slot.meter().clone(),
                };
                self.state = State::Bound(Arc::new(shared));
                Ok(())
            }
            other => {
                self.state = other;
                Err(ErrorCode::NotInProgress.into())
            }
        }
    }

    /// `stream`: bound only; disconnects if connected, connects to the peer if one is given
    /// (the WIT's POSIX equivalent), and returns the only working stream pair.
    pub(crate) fn stream(
        &mut self,
        remote: Option<SocketAddr>,
    ) -> SocketResult<(IncomingDatagramStream, OutgoingDatagramStream)> {
        let State::Bound(shared) = &self.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        let shared = shared.clone();
        let remote = match remote {
            Some(r) => {
                let r = addr::check_remote(addr::Kind::Udp, self.family, r)?;
                self.gate.check(Action::Connect {
                    proto: Protocol::Udp,
                    remote: r,
                })?;
                Some(r)
            }
            None => None,
        };
        // From here on the older stream pair is stale, whatever the outcome, and what its
        // incoming stream had taken off the kernel and not returned is gone.
        shared.generation.fetch_add(1, Ordering::AcqRel);
        lock(&shared.queue).clear();
        if self.remote.take().is_some() {
            self.slot.meter().set_remote(None);
            let rebind = self.bound.filter(|_| !self.port_pinned);
            self.port_pinned = shared.sock.disconnect(rebind)?;
            if !self.port_pinned {
                self.bound = shared.sock.local_addr().ok();
            }
        }
        if let Some(r) = remote {
            shared.sock.connect(r)?;
            self.remote = remote;
            self.slot.meter().set_remote(remote);
        }
        if let Ok(local) = shared.sock.local_addr() {
            self.slot.meter().set_local(self.ports.to_guest(local));
        }
        let generation = shared.generation.load(Ordering::Acquire);
        let incoming = IncomingDatagramStream {
            shared: shared.clone(),
            generation,
            remote,
        };
        let outgoing = OutgoingDatagramStream {
            shared: shared.clone(),
            family: self.family,
            generation,
            remote,
            permit: 0,
            blocked: false,
        };
        Ok((incoming, outgoing))
    }

    /// `local-address`: `bound` only; narrowed to the route's source while streaming to a peer.
    pub(crate) fn local_address(&self) -> SocketResult<SocketAddr> {
        match &self.state {
            State::Bound(b) => Ok(self.ports.to_guest(b.sock.local_addr()?)),
            _ => Err(ErrorCode::InvalidState.into()),
        }
    }

    /// `remote-address`: only while streaming to a peer.
    pub(crate) fn remote_address(&self) -> SocketResult<SocketAddr> {
        match (&self.state, self.remote) {
            (State::Bound(_), Some(r)) => Ok(r),
            _ => Err(ErrorCode::InvalidState.into()),
        }
    }

    /// `address-family`.
    pub(crate) fn family(&self) -> Family {
        self.family
    }

    /// `unicast-hop-limit`.
    pub(crate) fn unicast_hop_limit(&self) -> SocketResult<u8> {
        options::hop_limit(&self.options()?)
    }

    /// `set-unicast-hop-limit`: 0 is `invalid-argument`.
    pub(crate) fn set_unicast_hop_limit(&self, v: u8) -> SocketResult<()> {
        options::set_hop_limit(&self.options()?, v)
    }

    /// `receive-buffer-size`.
    pub(crate) fn receive_buffer_size(&self) -> SocketResult<u64> {
        options::recv_buffer(&self.options()?)
    }

    /// `set-receive-buffer-size`: 0 is `invalid-argument`; clamped.
    pub(crate) fn set_receive_buffer_size(&self, n: u64) -> SocketResult<()> {
        options::set_recv_buffer(&self.options()?, n)
    }

    /// `send-buffer-size`.
    pub(crate) fn send_buffer_size(&self) -> SocketResult<u64> {
        options::send_buffer(&self.options()?)
    }

    /// `set-send-buffer-size`: 0 is `invalid-argument`; clamped.
    pub(crate) fn set_send_buffer_size(&self, n: u64) -> SocketResult<()> {
        options::set_send_buffer(&self.options()?, n)
    }
}

/// What a 0.3 UDP `send` or `receive` got: its outcome, or what to wait on before trying again.
pub(crate) enum Attempt<T> {
    Done(T),
    Wait(DatagramReadiness),
}

/// `wasi:sockets@0.3`: the same machine; the socket keeps the one stream pair its calls use.
impl UdpSocket {
    /// 0.3 `bind`: `start-bind` and `finish-bind` in one step.
    pub(crate) fn bind(&mut self, local: SocketAddr) -> SocketResult<()> {
        self.start_bind(NetworkId::DEFAULT, local)?;
        self.finish_bind()
    }

    /// 0.3's implicit bind (`connect`, `send`): to the unspecified address, port 0.
    fn bind_implicitly(&mut self) -> SocketResult<()> {
        if matches!(self.state, State::Unbound(_)) {
            self.bind(SocketAddr::new(self.family.unspecified(), 0))?;
        }
        Ok(())
    }

    /// 0.3 `connect`: argument rules first, then an implicit bind, then 0.2's `stream(some)`.
    pub(crate) fn connect(&mut self, remote: SocketAddr) -> SocketResult<()> {
        addr::check_remote(addr::Kind::Udp, self.family, remote)?;
        self.bind_implicitly()?;
        let pair = self.stream(Some(remote))?;
        self.streams = Some(Box::new(pair));
        Ok(())
    }

    /// 0.3 `disconnect`: `invalid-state` unless connected.
    pub(crate) fn disconnect(&mut self) -> SocketResult<()> {
        if self.remote.is_none() {
            return Err(ErrorCode::InvalidState.into());
        }
        let pair = self.stream(None)?;
        self.streams = Some(Box::new(pair));
        Ok(())
    }

    /// The stream pair 0.3's calls use, made unconnected on first use.
    fn p3_streams(
        &mut self,
    ) -> SocketResult<&mut (IncomingDatagramStream, OutgoingDatagramStream)> {
        if self.streams.is_none() {
            let pair = self.stream(None)?;
            self.streams = Some(Box::new(pair));
        }
        Ok(self.streams.as_mut().expect("made above"))
    }

    /// 0.3 `send`, one attempt: binds implicitly; the rules of 0.2's `send` for one datagram.
    pub(crate) fn try_send(
        &mut self,
        data: &mut Vec<u8>,
        to: Option<SocketAddr>,
    ) -> SocketResult<Attempt<()>> {
        if let Some(to) = to {
            addr::check_remote(addr::Kind::Udp, self.family, to)?;
        }
        self.bind_implicitly()?;
        let (_, outgoing) = self.p3_streams()?;
        if outgoing.check_send()? == 0 {
            return Ok(Attempt::Wait(outgoing.readiness()));
        }
        let datagram = [OutgoingDatagram {
            data: std::mem::take(data),
            to,
        }];
        let sent = outgoing.send(&datagram);
        match sent {
            Ok(0) => {
                let [OutgoingDatagram { data: back, .. }] = datagram;
                *data = back;
                Ok(Attempt::Wait(outgoing.readiness()))
            }
            Ok(_) => Ok(Attempt::Done(())),
            Err(e) => Err(e),
        }
    }

    /// 0.3 `receive`, one attempt: `invalid-state` until bound.
    pub(crate) fn try_receive(&mut self) -> SocketResult<Attempt<IncomingDatagram>> {
        if !matches!(self.state, State::Bound(_)) {
            return Err(ErrorCode::InvalidState.into());
        }
        let (incoming, _) = self.p3_streams()?;
        match incoming.receive_ahead(1, P3_READ_AHEAD)?.pop() {
            Some(datagram) => Ok(Attempt::Done(datagram)),
            None => Ok(Attempt::Wait(incoming.readiness())),
        }
    }
}

/// Pollable of a `udp-socket`: nothing to wait for, ready at once.
pub(crate) struct UdpReadiness;

#[wasmtime_wasi_io::async_trait]
impl Pollable for UdpReadiness {
    async fn ready(&mut self) {}
}

/// A received datagram: its bytes and its sender.
pub(crate) struct IncomingDatagram {
    pub(crate) data: Vec<u8>,
    pub(crate) from: SocketAddr,
}

/// A datagram to send: its bytes and, where the stream has no peer, its destination.
pub(crate) struct OutgoingDatagram {
    pub(crate) data: Vec<u8>,
    pub(crate) to: Option<SocketAddr>,
}

/// An `incoming-datagram-stream`.
pub struct IncomingDatagramStream {
    shared: Arc<Shared>,
    generation: u64,
    remote: Option<SocketAddr>,
}

impl IncomingDatagramStream {
    /// `receive`: up to `max` datagrams, never `would-block` (`receive(0)` is an empty list);
    /// the host queue's first, then the kernel's, in arrival order; only the peer's when one is
    /// set; senders the policy refuses are dropped.
    pub(crate) fn receive(&mut self, max: u64) -> SocketResult<Vec<IncomingDatagram>> {
        self.receive_ahead(max, 0)
    }

    /// [`Self::receive`], taking up to `ahead` more datagrams off the kernel in the same
    /// batch into the socket's bounded, counted queue (0.3 receives one datagram per call).
    pub(crate) fn receive_ahead(
        &mut self,
        max: u64,
        ahead: usize,
    ) -> SocketResult<Vec<IncomingDatagram>> {
        if !self.shared.is_current(self.generation) {
            return Err(ErrorCode::InvalidState.into());
        }
        let want = max.min(MAX_RECEIVE_BATCH) as usize;
        if want == 0 {
            return Ok(Vec::new());
        }
        let shared = &*self.shared;
        let gate = &shared.gate;
        let mut taker = Taker {
            shared,
            remote: self.remote,
            want,
            ahead,
            out: Vec::new(),
            bytes: 0,
            decided: None,
        };
        let mut queue = lock(&shared.queue);
        // What the queue holds arrived before anything still in the kernel.
        if gate.allowance(Way::In, 1) > 0 {
            while !taker.full() {
                let Some((from, data)) = queue.pop() else {
                    break;
                };
                taker.offer(from, data);
            }
        }
        if !taker.full() && queue.is_empty() {
            let deferred = lock(&shared.deferred).take();
            match deferred {
                Some(code) if taker.out.is_empty() => return Err(code.into()),
                Some(code) => *lock(&shared.deferred) = Some(code),
                None => taker.take_kernel(&mut queue)?,
            }
        }
        drop(queue);
        shared.meter.datagrams_in(taker.out.len(), taker.bytes);
        Ok(taker.out)
    }

    /// `subscribe`: ready when a datagram may be there (at once for a stale stream).
    pub(crate) fn readiness(&self) -> DatagramReadiness {
        DatagramReadiness {
            shared: self.shared.clone(),
            generation: self.generation,
            send: false,
        }
    }
}

/// Rule: an incoming stream's queue goes with it, unless a newer stream owns the queue now.
impl Drop for IncomingDatagramStream {
    fn drop(&mut self) {
        if self.shared.is_current(self.generation) {
            lock(&self.shared.queue).clear();
        }
    }
}

/// One `receive` call's datagrams, each admitted by the WIT's peer filter and the policy.
struct Taker<'a> {
    shared: &'a Shared,
    remote: Option<SocketAddr>,
    want: usize,
    /// How many more to take off the kernel, in the same batch, into the queue.
    ahead: usize,
    out: Vec<IncomingDatagram>,
    bytes: usize,
    /// One policy decision per sender and call.
    decided: Option<(SocketAddr, bool)>,
}

impl Taker<'_> {
    fn full(&self) -> bool {
        self.out.len() >= self.want
    }

    /// Rule: a datagram reaches the guest only from the stream's peer (when it has one) and
    /// from a sender the policy allows; what reaches it is charged to the bandwidth cap.
    fn offer(&mut self, from: SocketAddr, data: Vec<u8>) {
        if self.remote.is_some_and(|r| r != from) {
            return;
        }
        let gate = &self.shared.gate;
        let allowed = match self.decided {
            Some((peer, allowed)) if peer == from => allowed,
            _ => {
                let local = self.shared.local;
                let allowed = gate.check(Action::Receive { local, peer: from }).is_ok();
                self.decided = Some((from, allowed));
                allowed
            }
        };
        if !allowed {
            return;
        }
        gate.spend(Way::In, data.len());
        self.bytes += data.len();
        self.out.push(IncomingDatagram { data, from });
    }

    /// Rule: takes from the kernel, the queue being empty, until the call has what it wants,
    /// the kernel has nothing more, or the bandwidth cap is spent; datagrams past what the
    /// call wants (the rest of a GRO buffer) join `queue`. An error after some datagrams is
    /// deferred to the next call.
    fn take_kernel(&mut self, queue: &mut RecvQueue) -> SocketResult<()> {
        let shared = self.shared;
        let gate = &shared.gate;
        // Dropped datagrams count too, so a flood of refused senders cannot hold the call.
        let mut budget = (self.want + self.ahead) * 4;
        while !self.full() && queue.is_empty() && budget > 0 && gate.allowance(Way::In, 1) > 0 {
            let ask = (self.want - self.out.len() + self.ahead).min(budget);
            let got = shared.sock.try_recv_many(ask, &mut |from, data| {
                if self.full() {
                    queue.push(from, data);
                } else {
                    self.offer(from, data.to_vec());
                }
            });
            match got {
                // Fewer than asked: the kernel's queue is empty.
                Ok(n) if n < ask => break,
                Ok(n) => budget = budget.saturating_sub(n),
                Err(ErrorCode::WouldBlock) => break,
                Err(e) if self.out.is_empty() => return Err(e.into()),
                Err(e) => {
                    *lock(&shared.deferred) = Some(e);
                    break;
                }
            }
        }
        Ok(())
    }
}

/// An `outgoing-datagram-stream`.
pub struct OutgoingDatagramStream {
    shared: Arc<Shared>,
    family: Family,
    generation: u64,
    remote: Option<SocketAddr>,
    /// Datagrams the last `check-send` permitted and `send` has not used.
    permit: u64,
    /// The last send would have blocked.
    blocked: bool,
}

impl OutgoingDatagramStream {
    /// `check-send`: a number of datagrams `send` may take now; 0 while the last send found the
    /// socket's buffer full and it has not drained yet.
    pub(crate) fn check_send(&mut self) -> SocketResult<u64> {
        if !self.shared.is_current(self.generation) {
            return Err(ErrorCode::InvalidState.into());
        }
        if self.blocked {
            self.blocked = !self.shared.sock.send_ready();
        }
        let out_of_bandwidth = self.shared.gate.allowance(Way::Out, 1) == 0;
        self.permit = if self.blocked || out_of_bandwidth {
            0
        } else {
            self.shared.gate.udp_send_permits()
        };
        Ok(self.permit)
    }

    /// `send`: more datagrams than permitted traps; sends in order until the first failure and
    /// reports how many went, an error only when the first one failed.
    pub(crate) fn send(&mut self, datagrams: &[OutgoingDatagram]) -> SocketResult<u64> {
        let count = datagrams.len() as u64;
        if count > self.permit {
            return Err(SocketError::trap(format!(
                "send of {count} datagrams exceeds the {} permitted by check-send",
                self.permit
            )));
        }
        self.permit -= count;
        if !self.shared.is_current(self.generation) {
            return Err(ErrorCode::InvalidState.into());
        }
        // Every datagram is checked before any is sent; a bad one ends the batch before it.
        let gate = &self.shared.gate;
        let budget = gate.allowance(Way::Out, usize::MAX);
        let (mut batch, mut planned, mut refused) = (Vec::with_capacity(datagrams.len()), 0, None);
        let mut granted = None;
        for d in datagrams {
            if planned >= budget {
                break;
            }
            match self.destination(d, &mut granted) {
                Ok(to) => {
                    batch.push((to, &d.data[..]));
                    planned += d.data.len();
                }
                Err(code) => {
                    refused = Some(code);
                    break;
                }
            }
        }
        let (sent, failed) = match batch.is_empty() {
            true => (0, None),
            false => self.shared.sock.try_send_many(&batch),
        };
        let bytes = batch[..sent].iter().map(|(_, d)| d.len()).sum();
        gate.spend(Way::Out, bytes);
        self.shared.meter.datagrams_out(sent, bytes);
        let failed = match failed {
            Some(ErrorCode::WouldBlock) => {
                self.blocked = true;
                None
            }
            Some(code) => Some(code),
            None => refused,
        };
        match failed {
            Some(code) if sent == 0 => Err(code.into()),
            _ => Ok(sent as u64),
        }
    }

    /// Where one datagram goes, checked against the WIT's rules and the policy; `granted` is
    /// the destination the policy last allowed in this call (one decision per run to a peer).
    fn destination(
        &self,
        d: &OutgoingDatagram,
        granted: &mut Option<SocketAddr>,
    ) -> Result<SocketAddr, ErrorCode> {
        let to = match (self.remote, d.to) {
            (Some(r), None) => r,
            (Some(r), Some(a)) if a == r => r,
            (Some(_), Some(_)) | (None, None) => return Err(ErrorCode::InvalidArgument),
            (None, Some(a)) => addr::check_remote(addr::Kind::Udp, self.family, a)?,
        };
        if d.data.len() > MAX_DATAGRAM {
            return Err(ErrorCode::DatagramTooLarge);
        }
        if *granted != Some(to) {
            self.shared.gate.check(Action::Send { remote: to })?;
            *granted = Some(to);
        }
        Ok(to)
    }

    /// `subscribe`: ready when `check-send` would permit at least one datagram.
    pub(crate) fn readiness(&self) -> DatagramReadiness {
        DatagramReadiness {
            shared: self.shared.clone(),
            generation: self.generation,
            send: true,
        }
    }
}

/// Pollable of a datagram stream; a stale stream is ready at once (its calls fail at once).
pub(crate) struct DatagramReadiness {
    shared: Arc<Shared>,
    generation: u64,
    send: bool,
}

#[wasmtime_wasi_io::async_trait]
impl Pollable for DatagramReadiness {
    async fn ready(&mut self) {
        if !self.shared.is_current(self.generation) {
            return;
        }
        let gate = &self.shared.gate;
        if self.send {
            gate.refill(Way::Out).await;
            self.shared.sock.writable().await
        } else if lock(&self.shared.deferred).is_none() {
            gate.refill(Way::In).await;
            self.shared.sock.readable().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::test_gate;
    use crate::limits::{Limits, QUEUED_DATAGRAM_COST};
    use crate::network::NetworkId;
    use std::time::{Duration, Instant};

    fn bound(gate: &Arc<Gate>) -> UdpSocket {
        let mut s = UdpSocket::new(gate, Family::Ipv4).unwrap();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        s.start_bind(NetworkId::DEFAULT, any).unwrap();
        s.finish_bind().unwrap();
        s
    }

    fn local(s: &UdpSocket) -> SocketAddr {
        s.local_address().unwrap()
    }

    /// 64 datagrams of 100 bytes, `tag` then their index: one `send`, so one GSO run.
    fn send_run(out: &mut OutgoingDatagramStream, to: SocketAddr, tag: u8) {
        assert_eq!(out.check_send().unwrap(), 64);
        let batch = (0..64u8)
            .map(|i| OutgoingDatagram {
                data: [vec![tag, i], vec![0; 98]].concat(),
                to: Some(to),
            })
            .collect::<Vec<_>>();
        assert_eq!(out.send(&batch).unwrap(), 64);
    }

    /// The first non-empty `receive(max)`, waiting a bounded time for one.
    fn first(rx: &mut IncomingDatagramStream, max: u64) -> Vec<IncomingDatagram> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = rx.receive(max).unwrap();
            if !got.is_empty() || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn queued(gate: &Gate) -> u64 {
        gate.stats().udp_queued_bytes
    }

    #[tokio::test]
    async fn a_gro_buffer_larger_than_max_results_comes_over_several_receives_in_order() {
        let gate = test_gate(Limits::default());
        let (mut rx, mut a, mut b) = (bound(&gate), bound(&gate), bound(&gate));
        let to = local(&rx);
        let (mut rx_in, _rx_out) = rx.stream(None).unwrap();
        let (_a_in, mut a_out) = a.stream(None).unwrap();
        let (_b_in, mut b_out) = b.stream(None).unwrap();
        send_run(&mut a_out, to, b'a');
        send_run(&mut b_out, to, b'b');
        let mut got = first(&mut rx_in, 10);
        assert_eq!(got.len(), 10, "never more than max-results");
        let cost = 100 + QUEUED_DATAGRAM_COST as u64;
        // Both runs were there for one `recvmmsg`: two GRO buffers, 118 datagrams past the 10.
        assert_eq!(queued(&gate), 118 * cost, "the rest waits, counted");
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 128 && Instant::now() < deadline {
            let more = rx_in.receive(10).unwrap();
            assert!(more.len() <= 10, "never more than max-results");
            got.extend(more);
        }
        let expect: Vec<(SocketAddr, [u8; 2])> = [(local(&a), b'a'), (local(&b), b'b')]
            .iter()
            .flat_map(|&(from, tag)| (0..64u8).map(move |i| (from, [tag, i])))
            .collect();
        let seen: Vec<(SocketAddr, [u8; 2])> = got
            .iter()
            .map(|d| (d.from, [d.data[0], d.data[1]]))
            .collect();
        assert_eq!(
            seen, expect,
            "each sender's datagrams, in order, with its address"
        );
        assert!(got.iter().all(|d| d.data.len() == 100));
        assert_eq!(queued(&gate), 0, "back to the baseline");
        assert_eq!(gate.stats().datagrams_in, 128);
        assert_eq!(gate.stats().udp_queue_drops, 0);
    }

    #[tokio::test]
    async fn receive_0_is_empty_and_leaves_the_queue_alone() {
        let gate = test_gate(Limits::default());
        let (mut rx, mut a) = (bound(&gate), bound(&gate));
        let (mut rx_in, _rx_out) = rx.stream(None).unwrap();
        let (_a_in, mut a_out) = a.stream(None).unwrap();
        send_run(&mut a_out, local(&rx), b'a');
        assert_eq!(first(&mut rx_in, 1).len(), 1);
        let held = queued(&gate);
        assert_eq!(held, 63 * (100 + QUEUED_DATAGRAM_COST as u64));
        assert!(rx_in.receive(0).unwrap().is_empty());
        assert_eq!(queued(&gate), held);
        let next = rx_in.receive(1).unwrap();
        assert_eq!(next[0].data[..2], [b'a', 1]);
    }

    #[tokio::test]
    async fn a_new_stream_or_a_dropped_one_discards_the_queue() {
        let gate = test_gate(Limits::default());
        let (mut rx, mut a) = (bound(&gate), bound(&gate));
        let to = local(&rx);
        let (mut rx_in, _rx_out) = rx.stream(None).unwrap();
        let (_a_in, mut a_out) = a.stream(None).unwrap();
        send_run(&mut a_out, to, b'a');
        assert_eq!(first(&mut rx_in, 4).len(), 4);
        assert_ne!(queued(&gate), 0);
        // A new `stream`: the old stream is stale and its datagrams are gone.
        let (mut rx_in2, _rx_out2) = rx.stream(None).unwrap();
        assert_eq!(queued(&gate), 0);
        assert!(matches!(
            rx_in.receive(4),
            Err(SocketError::Code(ErrorCode::InvalidState))
        ));
        drop(rx_in);
        assert!(rx_in2.receive(64).unwrap().is_empty(), "nothing left over");
        // The newest stream's queue goes with it.
        send_run(&mut a_out, to, b'b');
        assert_eq!(first(&mut rx_in2, 4).len(), 4);
        assert_ne!(queued(&gate), 0);
        drop(rx_in2);
        assert_eq!(queued(&gate), 0);
        // And with the socket, whichever of them goes last.
        let (mut rx_in3, _rx_out3) = rx.stream(None).unwrap();
        send_run(&mut a_out, to, b'c');
        assert_eq!(first(&mut rx_in3, 4).len(), 4);
        drop(rx);
        assert_ne!(
            queued(&gate),
            0,
            "the stream still works without its socket"
        );
        assert_eq!(rx_in3.receive(1).unwrap()[0].data[..2], [b'c', 4]);
        drop(rx_in3);
        assert_eq!(queued(&gate), 0);
    }
}

/// 0.3's entry points: implicit binds, the argument and state rules, one datagram per call.
#[cfg(test)]
mod v03_tests {
    use super::*;
    use crate::gate::test_gate;
    use crate::limits::Limits;
    use std::time::Duration;

    fn code<T>(r: SocketResult<T>) -> ErrorCode {
        match r {
            Err(SocketError::Code(c)) => c,
            Err(SocketError::Trap(e)) => panic!("trap: {e}"),
            Ok(_) => panic!("expected an error code"),
        }
    }

    async fn receive(s: &mut UdpSocket) -> IncomingDatagram {
        for _ in 0..100 {
            match s.try_receive().unwrap() {
                Attempt::Done(d) => return d,
                Attempt::Wait(mut ready) => {
                    let _ = tokio::time::timeout(Duration::from_millis(100), ready.ready()).await;
                }
            }
        }
        panic!("no datagram arrived");
    }

    fn send(s: &mut UdpSocket, data: &[u8], to: Option<SocketAddr>) -> SocketResult<()> {
        let mut data = data.to_vec();
        match s.try_send(&mut data, to)? {
            Attempt::Done(()) => Ok(()),
            Attempt::Wait(_) => panic!("an empty socket buffer made send wait"),
        }
    }

    #[tokio::test]
    async fn send_binds_implicitly_and_connect_narrows_both_ways() {
        let gate = test_gate(Limits::default());
        let mut a = UdpSocket::new(&gate, Family::Ipv4).unwrap();
        let mut b = UdpSocket::new(&gate, Family::Ipv4).unwrap();
        assert_eq!(
            code(a.try_receive()),
            ErrorCode::InvalidState,
            "receive before a bind"
        );
        assert_eq!(
            code(a.disconnect()),
            ErrorCode::InvalidState,
            "not connected"
        );
        b.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let to_b = b.local_address().unwrap();
        assert_eq!(
            code(send(&mut a, b"x", None)),
            ErrorCode::InvalidArgument,
            "no peer"
        );
        let zero_port = SocketAddr::from(([127, 0, 0, 1], 0));
        assert_eq!(
            code(send(&mut a, b"x", Some(zero_port))),
            ErrorCode::InvalidArgument
        );
        send(&mut a, b"one", Some(to_b)).unwrap();
        assert_ne!(
            a.local_address().unwrap().port(),
            0,
            "send bound implicitly"
        );
        let got = receive(&mut b).await;
        assert_eq!(
            (&got.data[..], got.from.port()),
            (&b"one"[..], a.local_address().unwrap().port())
        );

        b.connect(got.from).unwrap();
        assert_eq!(b.remote_address().unwrap(), got.from);
        let elsewhere = SocketAddr::from(([127, 0, 0, 1], 9));
        assert_eq!(
            code(send(&mut b, b"x", Some(elsewhere))),
            ErrorCode::InvalidArgument
        );
        send(&mut b, b"two", None).unwrap();
        assert_eq!(receive(&mut a).await.data, b"two");
        b.disconnect().unwrap();
        assert_eq!(code(b.remote_address()), ErrorCode::InvalidState);
        assert_eq!(
            code(b.disconnect()),
            ErrorCode::InvalidState,
            "disconnect twice"
        );
        assert_eq!(
            code(b.bind(zero_port)),
            ErrorCode::InvalidState,
            "bound already"
        );
    }

    /// One datagram per 0.3 call, but the kernel is read in batches: one receive takes what
    /// is waiting into the socket's counted queue, and the next ones are served from it.
    #[tokio::test]
    async fn receive_reads_ahead_into_the_counted_queue() {
        let gate = test_gate(Limits::default());
        let mut a = UdpSocket::new(&gate, Family::Ipv4).unwrap();
        let mut b = UdpSocket::new(&gate, Family::Ipv4).unwrap();
        b.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let to_b = b.local_address().unwrap();
        for i in 0..10u8 {
            send(&mut a, &[i; 100], Some(to_b)).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(receive(&mut b).await.data, [0; 100]);
        let queued = gate.stats().udp_queued_bytes;
        assert!(
            queued >= 9 * 100,
            "the rest waits host-side: {queued} bytes"
        );
        for i in 1..10u8 {
            assert_eq!(receive(&mut b).await.data, [i; 100], "in order");
        }
        assert_eq!(gate.stats().udp_queued_bytes, 0, "released as handed out");
    }

    #[test]
    fn connect_checks_its_argument_before_binding() {
        let gate = test_gate(Limits::default());
        let mut a = UdpSocket::new(&gate, Family::Ipv4).unwrap();
        let any = SocketAddr::from(([0, 0, 0, 0], 53));
        assert_eq!(code(a.connect(any)), ErrorCode::InvalidArgument);
        assert_eq!(
            code(a.local_address()),
            ErrorCode::InvalidState,
            "still unbound"
        );
        let v6: SocketAddr = "[::1]:53".parse().unwrap();
        assert_eq!(
            code(a.connect(v6)),
            ErrorCode::InvalidArgument,
            "wrong family"
        );
    }
}
