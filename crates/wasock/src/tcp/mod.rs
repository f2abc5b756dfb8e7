//! The TCP state machine of `wasi:sockets/tcp`, written once over the backend seam.
//!
//! States are named as the WIT names them. A call made in the wrong state returns
//! `invalid-state` and changes nothing; `finish-*` with nothing under way is `not-in-progress`.

mod p3_streams;
mod streams;

pub(crate) use p3_streams::{AcceptStream, Ending, ReceiveStream, SendStream};
pub(crate) use streams::{Conn, TcpReader, TcpWriter};

use crate::addr::{self, Family};
use crate::backend::{Listener, Opts, RawSocket};
use crate::error::{ErrorCode, SocketError, SocketResult};
use crate::gate::{Gate, PortMap};
use crate::limits::SocketSlot;
use crate::network::NetworkId;
use crate::options;
use crate::policy::{Action, Protocol};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::task::Poll;
use std::time::Instant;
use wasmtime_wasi_io::poll::Pollable;

/// Default backlog of `start-listen` when the guest set none.
const DEFAULT_BACKLOG: u32 = 128;
/// Accept attempts per `accept` call while refused peers are being reset.
const ACCEPT_ATTEMPTS: usize = 64;

/// The states of a `tcp-socket`, as the WIT names them.
enum State {
    Unbound(RawSocket),
    BindInProgress(RawSocket),
    Bound(RawSocket),
    ListenInProgress(Arc<Listener>),
    Listening(Arc<Listener>),
    /// The connect failed at once; `finish-connect` reports it.
    ConnectFailed(ErrorCode),
    /// Under way until the deadline (the instance's connect timeout), if any.
    ConnectInProgress(Arc<Conn>, Option<Instant>),
    Connected(Arc<Conn>),
    Closed,
}

/// What the socket's pollables wait on in the current state. Weak, so that a pollable never
/// keeps a dropped socket's connection or port open; once the socket is gone it is ready.
#[derive(Clone)]
enum Wait {
    Nothing,
    Connect(Weak<Conn>, Option<Instant>),
    Accept(Weak<Listener>),
}

/// A `tcp-socket` resource.
pub struct TcpSocket {
    family: Family,
    state: State,
    network: Option<NetworkId>,
    /// The guest's bound port where the policy maps it to another host port.
    ports: PortMap,
    backlog: u32,
    /// Shared with the socket's pollables; made by the first `subscribe`, let go when nothing
    /// is waited on and no pollable holds it.
    wait: Option<Arc<Mutex<Wait>>>,
    slot: SocketSlot,
    /// 0.3: which of `receive` and `send` were called (each may be, once).
    taken: u8,
}

/// [`TcpSocket::taken`] bits.
const TAKEN_RECEIVE: u8 = 1;
const TAKEN_SEND: u8 = 2;

/// The connection's two streams, returned by `finish-connect` and `accept`.
pub(crate) type StreamPair = (TcpReader, TcpWriter);

impl TcpSocket {
    /// `create-tcp-socket`: counted from creation; the protocol must be granted at all.
    pub(crate) fn new(gate: &Arc<Gate>, family: Family) -> SocketResult<Self> {
        gate.check(Action::Create {
            proto: Protocol::Tcp,
        })?;
        let slot = gate.open_socket(Protocol::Tcp)?;
        let sock = RawSocket::tcp(gate.net(), family).map_err(|e| gate.host_error(e))?;
        Ok(Self::with_state(family, State::Unbound(sock), slot))
    }

    fn with_state(family: Family, state: State, slot: SocketSlot) -> Self {
        TcpSocket {
            family,
            state,
            network: None,
            ports: PortMap::default(),
            backlog: DEFAULT_BACKLOG,
            wait: None,
            slot,
            taken: 0,
        }
    }

    /// The instance's gate, through the socket's meter.
    fn gate(&self) -> &Arc<Gate> {
        self.slot.meter().gate()
    }

    /// Tells the socket's pollables what to wait on now.
    fn set_wait(&mut self, wait: Wait) {
        let Some(shared) = &self.wait else {
            return;
        };
        if matches!(wait, Wait::Nothing) && Arc::strong_count(shared) == 1 {
            self.wait = None;
        } else {
            *crate::sync::lock(shared) = wait;
        }
    }

    /// What the socket's pollables wait on in its current state.
    fn current_wait(&self) -> Wait {
        match &self.state {
            State::ConnectInProgress(conn, deadline) => {
                Wait::Connect(Arc::downgrade(conn), *deadline)
            }
            State::Listening(l) => Wait::Accept(Arc::downgrade(l)),
            _ => Wait::Nothing,
        }
    }

    /// The socket's options, in any state but `closed` (and a failed connect).
    fn options(&self) -> Result<Opts<'_>, ErrorCode> {
        match &self.state {
            State::Unbound(s) | State::BindInProgress(s) | State::Bound(s) => Ok(s.options()),
            State::ListenInProgress(l) | State::Listening(l) => Ok(l.options()),
            State::ConnectInProgress(c, _) | State::Connected(c) => Ok(c.io().options()),
            State::ConnectFailed(_) | State::Closed => Err(ErrorCode::InvalidState),
        }
    }

    /// The socket's local address as the host bound it, once bound.
    fn host_local_addr(&self) -> Result<SocketAddr, ErrorCode> {
        match &self.state {
            State::Bound(s) => s.local_addr(),
            State::ListenInProgress(l) | State::Listening(l) => l.local_addr(),
            State::ConnectInProgress(c, _) | State::Connected(c) => c.io().local_addr(),
            _ => Err(ErrorCode::InvalidState),
        }
    }

    /// Whether a bind, connect or listen was started and not finished: another `start-*` is
    /// then `concurrency-conflict` ("incompatible with another asynchronous operation that is
    /// already in progress").
    fn in_progress(&self) -> bool {
        matches!(
            self.state,
            State::BindInProgress(_)
                | State::ListenInProgress(_)
                | State::ConnectInProgress(..)
                | State::ConnectFailed(_)
        )
    }

    /// `start-bind`: valid in `unbound`; argument rules, then policy, then `bind(2)`.
    pub(crate) fn start_bind(&mut self, net: NetworkId, local: SocketAddr) -> SocketResult<()> {
        if self.in_progress() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        let State::Unbound(sock) = &self.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        let local = addr::check_local(addr::Kind::Tcp, self.family, local)?;
        self.gate().check(Action::Bind {
            proto: Protocol::Tcp,
            local,
        })?;
        let ports = self.gate().port_map(Protocol::Tcp, local);
        sock.bind(ports.to_host(local))?;
        self.ports = ports;
        if let Ok(bound) = sock.local_addr() {
            self.slot.meter().set_local(ports.to_guest(bound));
        }
        let State::Unbound(sock) = std::mem::replace(&mut self.state, State::Closed) else {
            unreachable!("state checked above");
        };
        self.state = State::BindInProgress(sock);
        self.network = Some(net);
        Ok(())
    }

    /// `finish-bind`: completes a started bind.
    pub(crate) fn finish_bind(&mut self) -> SocketResult<()> {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::BindInProgress(sock) => {
                self.state = State::Bound(sock);
                Ok(())
            }
            other => {
                self.state = other;
                Err(ErrorCode::NotInProgress.into())
            }
        }
    }

    /// `start-connect`: valid in `unbound` and `bound`; same network as the bind.
    pub(crate) fn start_connect(&mut self, net: NetworkId, remote: SocketAddr) -> SocketResult<()> {
        if self.in_progress() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        match &self.state {
            State::Unbound(_) | State::Bound(_) => {}
            _ => return Err(ErrorCode::InvalidState.into()),
        }
        let remote = addr::check_remote(addr::Kind::Tcp, self.family, remote)?;
        if self.network.is_some_and(|n| n != net) {
            return Err(ErrorCode::InvalidArgument.into());
        }
        self.gate().check(Action::Connect {
            proto: Protocol::Tcp,
            remote,
        })?;
        let (State::Unbound(sock) | State::Bound(sock)) =
            std::mem::replace(&mut self.state, State::Closed)
        else {
            unreachable!("state checked above");
        };
        self.network = Some(net);
        match sock.connect(remote) {
            Ok(stream) => {
                self.slot.meter().set_remote(Some(remote));
                let conn = Conn::new(stream, self.slot.meter());
                let deadline = self.gate().connect_deadline();
                self.set_wait(Wait::Connect(Arc::downgrade(&conn), deadline));
                self.state = State::ConnectInProgress(conn, deadline);
            }
            Err(code) => self.state = State::ConnectFailed(code),
        }
        Ok(())
    }

    /// `finish-connect`: `would-block` while under way; `timeout` past the instance's connect
    /// timeout; any failure leaves the socket `closed`.
    pub(crate) fn finish_connect(&mut self) -> SocketResult<StreamPair> {
        let conn = self.complete_connect()?;
        Ok(Conn::streams(&conn))
    }

    /// `finish-connect`'s rules, handing over the connection itself (0.3 makes no 0.2 streams).
    fn complete_connect(&mut self) -> SocketResult<Arc<Conn>> {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::ConnectInProgress(conn, deadline) => match conn.io().try_connected() {
                Poll::Pending if self.gate().connect_timed_out(deadline) => {
                    self.set_wait(Wait::Nothing);
                    Err(ErrorCode::Timeout.into())
                }
                Poll::Pending => {
                    self.state = State::ConnectInProgress(conn, deadline);
                    Err(ErrorCode::WouldBlock.into())
                }
                Poll::Ready(Ok(())) => {
                    self.set_wait(Wait::Nothing);
                    let _ = conn.io().set_nodelay(self.gate().tcp_nodelay());
                    if let Ok(local) = conn.io().local_addr() {
                        self.slot.meter().set_local(self.ports.to_guest(local));
                    }
                    self.state = State::Connected(conn.clone());
                    Ok(conn)
                }
                Poll::Ready(Err(code)) => {
                    self.set_wait(Wait::Nothing);
                    Err(code.into())
                }
            },
            State::ConnectFailed(code) => Err(code.into()),
            other => {
                self.state = other;
                Err(ErrorCode::NotInProgress.into())
            }
        }
    }

    /// `start-listen`: valid in `bound` only (no implicit bind).
    pub(crate) fn start_listen(&mut self) -> SocketResult<()> {
        if self.in_progress() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        let State::Bound(sock) = &self.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        let local = self.ports.to_guest(sock.local_addr()?);
        self.gate().check(Action::Listen { local })?;
        let State::Bound(sock) = std::mem::replace(&mut self.state, State::Closed) else {
            unreachable!("state checked above");
        };
        match sock.listen(self.gate().backlog(self.backlog)) {
            Ok(listener) => {
                self.state = State::ListenInProgress(Arc::new(listener));
                Ok(())
            }
            // listen(2) failed: the socket is spent.
            Err(e) => Err(e.into()),
        }
    }

    /// `finish-listen`: completes a started listen.
    pub(crate) fn finish_listen(&mut self) -> SocketResult<()> {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::ListenInProgress(l) => {
                self.set_wait(Wait::Accept(Arc::downgrade(&l)));
                self.state = State::Listening(l);
                Ok(())
            }
            other => {
                self.state = other;
                Err(ErrorCode::NotInProgress.into())
            }
        }
    }

    /// `accept`: valid in `listening`; a peer the policy refuses is reset and skipped. At the
    /// socket limit it is `new-socket-limit` and the pending connection stays queued.
    pub(crate) fn accept(&mut self) -> SocketResult<(TcpSocket, StreamPair)> {
        let sock = self
            .acceptor()?
            .try_accept()?
            .ok_or(ErrorCode::WouldBlock)?;
        let State::Connected(conn) = &sock.state else {
            unreachable!("accepted sockets are connected");
        };
        let pair = Conn::streams(conn);
        Ok((sock, pair))
    }

    /// What accepts on the socket's listener, apart from the socket (0.3's `listen` stream
    /// outlives the `tcp-socket` handle, as its WIT says); `invalid-state` unless `listening`.
    pub(crate) fn acceptor(&self) -> SocketResult<Acceptor> {
        let State::Listening(listener) = &self.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        Ok(Acceptor {
            listener: listener.clone(),
            meter: self.slot.meter().clone(),
            family: self.family,
            network: self.network,
            ports: self.ports,
        })
    }

    /// `local-address`: bound or later; `invalid-state` before.
    pub(crate) fn local_address(&self) -> SocketResult<SocketAddr> {
        match &self.state {
            State::Unbound(_)
            | State::BindInProgress(_)
            | State::ConnectFailed(_)
            | State::Closed => Err(ErrorCode::InvalidState.into()),
            _ => Ok(self.ports.to_guest(self.host_local_addr()?)),
        }
    }

    /// `remote-address`: `connected` only.
    pub(crate) fn remote_address(&self) -> SocketResult<SocketAddr> {
        match &self.state {
            State::Connected(c) => Ok(c.io().peer_addr()?),
            _ => Err(ErrorCode::InvalidState.into()),
        }
    }

    /// `is-listening`.
    pub(crate) fn is_listening(&self) -> bool {
        matches!(self.state, State::Listening(_))
    }

    /// `address-family`.
    pub(crate) fn family(&self) -> Family {
        self.family
    }

    /// `set-listen-backlog-size`: 0 is `invalid-argument`; not while connecting or connected.
    pub(crate) fn set_listen_backlog_size(&mut self, value: u64) -> SocketResult<()> {
        if value == 0 {
            return Err(ErrorCode::InvalidArgument.into());
        }
        let value = u32::try_from(value).unwrap_or(u32::MAX);
        match &self.state {
            State::Unbound(_) | State::BindInProgress(_) | State::Bound(_) => {
                self.backlog = value;
                Ok(())
            }
            State::ListenInProgress(l) | State::Listening(l) => {
                l.set_backlog(self.gate().backlog(value))?;
                self.backlog = value;
                Ok(())
            }
            _ => Err(ErrorCode::InvalidState.into()),
        }
    }

    /// `keep-alive-enabled`.
    pub(crate) fn keep_alive_enabled(&self) -> SocketResult<bool> {
        Ok(self.options()?.keepalive()?)
    }

    /// `set-keep-alive-enabled`.
    pub(crate) fn set_keep_alive_enabled(&self, on: bool) -> SocketResult<()> {
        Ok(self.options()?.set_keepalive(on)?)
    }

    /// `keep-alive-idle-time` (nanoseconds).
    pub(crate) fn keep_alive_idle_time(&self) -> SocketResult<u64> {
        Ok(options::nanos(self.options()?.keepalive_idle()?))
    }

    /// `set-keep-alive-idle-time`: 0 is `invalid-argument`; clamped.
    pub(crate) fn set_keep_alive_idle_time(&self, ns: u64) -> SocketResult<()> {
        let opts = self.options()?;
        Ok(opts.set_keepalive_idle(options::keepalive_secs(ns)?)?)
    }

    /// `keep-alive-interval` (nanoseconds).
    pub(crate) fn keep_alive_interval(&self) -> SocketResult<u64> {
        Ok(options::nanos(self.options()?.keepalive_interval()?))
    }

    /// `set-keep-alive-interval`: 0 is `invalid-argument`; clamped.
    pub(crate) fn set_keep_alive_interval(&self, ns: u64) -> SocketResult<()> {
        let opts = self.options()?;
        Ok(opts.set_keepalive_interval(options::keepalive_secs(ns)?)?)
    }

    /// `keep-alive-count`.
    pub(crate) fn keep_alive_count(&self) -> SocketResult<u32> {
        Ok(self.options()?.keepalive_count()?)
    }

    /// `set-keep-alive-count`: 0 is `invalid-argument`; clamped.
    pub(crate) fn set_keep_alive_count(&self, n: u32) -> SocketResult<()> {
        let opts = self.options()?;
        Ok(opts.set_keepalive_count(options::keepalive_count(n)?)?)
    }

    /// `hop-limit`.
    pub(crate) fn hop_limit(&self) -> SocketResult<u8> {
        options::hop_limit(&self.options()?)
    }

    /// `set-hop-limit`: 0 is `invalid-argument`.
    pub(crate) fn set_hop_limit(&self, v: u8) -> SocketResult<()> {
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

    /// `shutdown`: `connected` only; idempotent; closes the matching stream(s).
    pub(crate) fn shutdown(&self, how: Shutdown) -> SocketResult<()> {
        let State::Connected(conn) = &self.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        Ok(Conn::shutdown(conn, how)?)
    }

    /// `subscribe`: a pollable for the socket's whole life, not tied to it in the table.
    pub(crate) fn readiness(&mut self) -> TcpReadiness {
        let wait = self.current_wait();
        let shared = self
            .wait
            .get_or_insert_with(|| Arc::new(Mutex::new(wait)))
            .clone();
        TcpReadiness(shared)
    }
}

/// The accepting side of a listening socket: its listener, and what accepted sockets inherit.
pub(crate) struct Acceptor {
    listener: Arc<Listener>,
    /// The listening socket's meter (and the gate, through it): the listener counts as an open
    /// socket while this lives.
    meter: crate::limits::SocketMeter,
    family: Family,
    network: Option<NetworkId>,
    ports: PortMap,
}

impl Acceptor {
    /// One pending connection as a `connected` socket, `None` when none is pending; a peer the
    /// policy refuses is reset and skipped. At the socket limit, `new-socket-limit` and the
    /// connection stays queued.
    pub(crate) fn try_accept(&self) -> SocketResult<Option<TcpSocket>> {
        let local = self.ports.to_guest(self.listener.local_addr()?);
        for _ in 0..ACCEPT_ATTEMPTS {
            self.gate().may_accept()?;
            let next = self
                .listener
                .try_accept()
                .map_err(|e| self.gate().host_error(e));
            let Some((stream, peer)) = next? else {
                return Ok(None);
            };
            if self.gate().check(Action::Accept { local, peer }).is_err() {
                stream.reset();
                continue;
            }
            let slot = self.gate().open_socket(Protocol::Tcp)?;
            slot.meter().set_local(local);
            slot.meter().set_remote(Some(peer));
            let _ = stream.set_nodelay(self.gate().tcp_nodelay());
            let conn = Conn::new(stream, slot.meter());
            let mut sock = TcpSocket::with_state(self.family, State::Connected(conn), slot);
            sock.network = self.network;
            sock.ports = self.ports;
            return Ok(Some(sock));
        }
        Ok(None)
    }

    /// Waits until a connection is pending.
    pub(crate) async fn ready(&self) {
        self.listener.ready().await
    }

    /// The instance's gate (its clock, for waiting at the socket limit).
    pub(crate) fn gate(&self) -> &Arc<Gate> {
        self.meter.gate()
    }
}

/// `wasi:sockets@0.3`: the same machine, each call made of the 0.2 steps it stands for, on the
/// instance's one network.
impl TcpSocket {
    /// 0.3 `bind`: `start-bind` and `finish-bind` in one step.
    pub(crate) fn bind(&mut self, local: SocketAddr) -> SocketResult<()> {
        self.start_bind(NetworkId::DEFAULT, local)?;
        self.finish_bind()
    }

    /// 0.3 `connect`, first half: the argument, state and policy rules, and the connect
    /// started (implicitly bound by the OS, as 0.3 requires).
    pub(crate) fn connect_start(&mut self, remote: SocketAddr) -> SocketResult<()> {
        self.start_connect(NetworkId::DEFAULT, remote)
    }

    /// 0.3 `connect`, second half: `Ok(None)` while under way (wait on [`Self::readiness`]),
    /// else the outcome; a failure leaves the socket `closed`.
    pub(crate) fn connect_poll(&mut self) -> SocketResult<Option<()>> {
        match self.complete_connect() {
            Ok(_) => Ok(Some(())),
            Err(SocketError::Code(ErrorCode::WouldBlock)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// 0.3 `listen`: binds implicitly when unbound, then `start-listen` and `finish-listen`.
    pub(crate) fn listen(&mut self) -> SocketResult<Acceptor> {
        if matches!(self.state, State::Unbound(_)) {
            let any = SocketAddr::new(self.family.unspecified(), 0);
            self.bind(any)?;
        }
        self.start_listen()?;
        self.finish_listen()?;
        self.acceptor()
    }

    /// 0.3 `receive`: once per socket, `connected` only; the connection to read from.
    pub(crate) fn take_receive(&mut self) -> SocketResult<Arc<Conn>> {
        self.take_half(TAKEN_RECEIVE)
    }

    /// 0.3 `send`: once per socket, `connected` only; the connection to write to.
    pub(crate) fn take_send(&mut self) -> SocketResult<Arc<Conn>> {
        self.take_half(TAKEN_SEND)
    }

    fn take_half(&mut self, half: u8) -> SocketResult<Arc<Conn>> {
        let State::Connected(conn) = &self.state else {
            return Err(ErrorCode::InvalidState.into());
        };
        if self.taken & half != 0 {
            return Err(ErrorCode::InvalidState.into());
        }
        self.taken |= half;
        Ok(conn.clone())
    }
}

/// Pollable of a `tcp-socket`: ready at once in every state (bind and listen resolve at once)
/// but `connect-in-progress` until the connect resolves, and `listening` until one is pending.
pub(crate) struct TcpReadiness(Arc<Mutex<Wait>>);

#[wasmtime_wasi_io::async_trait]
impl Pollable for TcpReadiness {
    async fn ready(&mut self) {
        let wait = crate::sync::lock(&self.0).clone();
        match wait {
            Wait::Nothing => {}
            Wait::Connect(conn, deadline) => {
                if let Some(conn) = conn.upgrade() {
                    let _ = conn.gate().within(deadline, conn.io().connected()).await;
                }
            }
            Wait::Accept(listener) => {
                if let Some(listener) = listener.upgrade() {
                    listener.ready().await
                }
            }
        }
    }
}

/// What an idle connection keeps host-side besides wasmtime's tables: the socket, its
/// connection and meter, the output stream (the input stream is one pointer).
#[cfg(all(test, target_pointer_width = "64"))]
#[test]
fn idle_connection_stays_small() {
    use std::mem::size_of;
    assert!(size_of::<TcpSocket>() <= 56, "{}", size_of::<TcpSocket>());
    assert!(size_of::<Conn>() <= 48, "{}", size_of::<Conn>());
    assert!(size_of::<TcpWriter>() <= 16, "{}", size_of::<TcpWriter>());
    assert!(size_of::<crate::limits::Meter>() <= 112);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::gate::test_gate_on;
    use crate::limits::{Denial, Limits};
    use std::time::Duration;

    /// A listener whose queue holds one connection, so that later SYNs are dropped.
    fn full_listener() -> (socket2::Socket, SocketAddr) {
        let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        l.bind(&any.into()).unwrap();
        l.listen(1).unwrap();
        let addr = l.local_addr().unwrap().as_socket().unwrap();
        (l, addr)
    }

    /// The connect timeout runs on the gate's clock: a connect that cannot complete times out
    /// when that clock passes the deadline, and its pollable wakes then, with no real wait.
    #[tokio::test]
    async fn a_connect_times_out_on_the_gate_clock() {
        let (clock, hand) = ManualClock::new();
        let limits = Limits {
            connect_timeout: Some(Duration::from_secs(60)),
            ..Limits::default()
        };
        let gate = test_gate_on(limits, clock);
        let (_listener, remote) = full_listener();
        let mut held = Vec::new();
        let stuck = loop {
            assert!(held.len() < 16, "every connect to a full queue completed");
            let mut sock = TcpSocket::new(&gate, Family::Ipv4).unwrap();
            sock.start_connect(NetworkId::DEFAULT, remote).unwrap();
            let mut ready = sock.readiness();
            let _ = tokio::time::timeout(Duration::from_millis(100), ready.ready()).await;
            match sock.finish_connect() {
                Err(crate::error::SocketError::Code(ErrorCode::WouldBlock)) => break sock,
                done => held.push((done.unwrap(), sock)),
            }
        };
        let mut sock = stuck;
        let mut readiness = sock.readiness();
        let waiting = tokio::spawn(async move { readiness.ready().await });
        tokio::task::yield_now().await;
        hand.advance(Duration::from_secs(60));
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the pollable wakes at the deadline")
            .unwrap();
        assert!(matches!(
            sock.finish_connect(),
            Err(crate::error::SocketError::Code(ErrorCode::Timeout))
        ));
        assert_eq!(gate.stats().denied_by[&Denial::ConnectTimeout], 1);
    }
}

/// 0.3's entry points over both backends: implicit binds, once-only halves, the state rules.
#[cfg(test)]
mod v03_tests {
    use super::*;
    use crate::backend::VirtualNetwork;
    use crate::gate::{test_gate, test_gate_virtual};
    use crate::limits::Limits;
    use std::time::Duration;

    /// (backend, server gate, client gate, the server's loopback or virtual IPv4 address).
    fn backends() -> Vec<(&'static str, Arc<Gate>, Arc<Gate>, std::net::IpAddr)> {
        let os = test_gate(Limits::default());
        let net = VirtualNetwork::new();
        let server = net.attach("server").unwrap();
        let ip = server.addresses()[0];
        let client = net.attach("client").unwrap();
        vec![
            ("os", os.clone(), os, "127.0.0.1".parse().unwrap()),
            (
                "virtual",
                test_gate_virtual(&server),
                test_gate_virtual(&client),
                ip,
            ),
        ]
    }

    fn code<T>(r: SocketResult<T>) -> ErrorCode {
        match r {
            Err(SocketError::Code(c)) => c,
            Err(SocketError::Trap(e)) => panic!("trap: {e}"),
            Ok(_) => panic!("expected an error code"),
        }
    }

    async fn connect(gate: &Arc<Gate>, to: SocketAddr) -> TcpSocket {
        let mut s = TcpSocket::new(gate, Family::Ipv4).unwrap();
        s.connect_start(to).unwrap();
        let mut ready = s.readiness();
        for _ in 0..100 {
            if s.connect_poll().unwrap().is_some() {
                return s;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), ready.ready()).await;
        }
        panic!("connect to {to} did not complete");
    }

    async fn accept(acceptor: &Acceptor) -> TcpSocket {
        for _ in 0..100 {
            if let Some(s) = acceptor.try_accept().unwrap() {
                return s;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), acceptor.ready()).await;
        }
        panic!("nothing to accept");
    }

    #[tokio::test]
    async fn listen_binds_implicitly_and_the_halves_are_taken_once() {
        for (backend, server, client, ip) in backends() {
            let mut l = TcpSocket::new(&server, Family::Ipv4).unwrap();
            let acceptor = l.listen().unwrap();
            assert!(l.is_listening(), "{backend}");
            let port = l.local_address().unwrap().port();
            assert_ne!(port, 0, "{backend}: listen bound a port");
            assert_eq!(code(l.listen()), ErrorCode::InvalidState, "{backend}");
            assert_eq!(
                code(l.bind("127.0.0.1:0".parse().unwrap())),
                ErrorCode::InvalidState
            );
            assert_eq!(
                code(l.connect_start(SocketAddr::new(ip, port))),
                ErrorCode::InvalidState
            );
            assert_eq!(code(l.take_receive()), ErrorCode::InvalidState, "{backend}");

            let mut c = connect(&client, SocketAddr::new(ip, port)).await;
            let mut a = accept(&acceptor).await;
            assert_eq!(c.remote_address().unwrap().port(), port, "{backend}");
            assert_eq!(
                code(c.connect_start(SocketAddr::new(ip, port))),
                ErrorCode::InvalidState
            );
            assert_eq!(code(c.listen()), ErrorCode::InvalidState, "{backend}");

            let (out, inp) = (c.take_send().unwrap(), a.take_receive().unwrap());
            assert_eq!(
                code(c.take_send()),
                ErrorCode::InvalidState,
                "{backend}: send twice"
            );
            assert_eq!(code(a.take_receive()), ErrorCode::InvalidState, "{backend}");
            assert_eq!(out.io().try_write(b"hello").unwrap(), 5, "{backend}");
            let mut buf = [0u8; 16];
            let mut got = 0;
            for _ in 0..100 {
                match inp.io().try_read(&mut buf[got..]) {
                    Ok(n) => got += n,
                    Err(ErrorCode::WouldBlock) => {}
                    Err(e) => panic!("{backend}: {e:?}"),
                }
                if got == 5 {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(100), inp.readable()).await;
            }
            assert_eq!(&buf[..got], b"hello", "{backend}");
        }
    }

    /// A socket counts against `max_sockets` while anything holds its host socket: dropping
    /// the handle of a connection whose stream lives on, or of a listener whose `listen`
    /// stream lives on, frees no slot.
    #[tokio::test]
    async fn what_outlives_a_handle_still_counts() {
        let limits = Limits {
            max_sockets: Some(3),
            ..Limits::default()
        };
        let gate = test_gate(limits);
        let mut l = TcpSocket::new(&gate, Family::Ipv4).unwrap();
        l.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let acceptor = l.listen().unwrap();
        let to = l.local_address().unwrap();
        drop(l);
        let mut c = connect(&gate, to).await;
        let a = accept(&acceptor).await;
        let out = c.take_send().unwrap();
        drop(c);
        assert_eq!(gate.stats().sockets_open, 3, "listener, client, accepted");
        let full = TcpSocket::new(&gate, Family::Ipv4);
        assert_eq!(code(full), ErrorCode::NewSocketLimit);
        drop(out);
        TcpSocket::new(&gate, Family::Ipv4).expect("the client's slot is free");
        drop(acceptor);
        drop(a);
        assert_eq!(gate.stats().sockets_open, 0);
    }

    #[tokio::test]
    async fn a_refused_connect_leaves_the_socket_closed() {
        for (backend, _, client, ip) in backends() {
            // A port nobody listens on: bind one and let it go.
            let port = {
                let mut s = TcpSocket::new(&client, Family::Ipv4).unwrap();
                s.bind(SocketAddr::new(client_ip(backend, ip), 0)).unwrap();
                s.local_address().unwrap().port()
            };
            let mut s = TcpSocket::new(&client, Family::Ipv4).unwrap();
            let refused = match s.connect_start(SocketAddr::new(ip, port)) {
                Err(e) => Err(e),
                Ok(()) => {
                    let mut ready = s.readiness();
                    let mut outcome = s.connect_poll();
                    for _ in 0..100 {
                        if !matches!(outcome, Ok(None)) {
                            break;
                        }
                        let _ =
                            tokio::time::timeout(Duration::from_millis(100), ready.ready()).await;
                        outcome = s.connect_poll();
                    }
                    outcome
                }
            };
            assert_eq!(code(refused), ErrorCode::ConnectionRefused, "{backend}");
            assert_eq!(
                code(s.local_address()),
                ErrorCode::InvalidState,
                "{backend}: closed"
            );
            assert_eq!(code(s.take_send()), ErrorCode::InvalidState, "{backend}");
            assert_eq!(
                code(s.connect_start(SocketAddr::new(ip, port))),
                ErrorCode::InvalidState
            );
        }
    }

    /// The address a client-side socket may bind on each backend.
    fn client_ip(backend: &str, server_ip: std::net::IpAddr) -> std::net::IpAddr {
        match backend {
            "os" => server_ip,
            _ => std::net::Ipv4Addr::UNSPECIFIED.into(),
        }
    }
}
