//! Virtual TCP: listeners with a bounded accept queue, and connections made of two bounded,
//! ordered byte pipes.
//!
//! A pipe holds at most the sender's send buffer plus the receiver's receive buffer, so a slow
//! reader backs a fast writer up and `check-write` shows it. Closing with unread data, or after
//! `reset`, resets the connection (as Linux sends RST); closing otherwise ends the stream (FIN)
//! and a later write of the peer's is `connection-reset` (as Linux answers data to a closed
//! socket with RST).

use super::{Path, PortLease, Proto, Role, VirtOptions, VirtualHost, Wakers, World};
use crate::error::ErrorCode;
use bytes::BytesMut;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;

/// How long a connect keeps sending SYNs across a cut path before it gives up with `timeout`
/// (about Linux's: six retries from one second, doubling).
const SYN_GIVE_UP: Duration = Duration::from_secs(127);
/// How often a connect waiting on a cut path looks again (virtual time in a simulation).
const SYN_RETRY: Duration = Duration::from_millis(100);

/// `shutdown` closed the receiving half.
const READ_SHUT: u8 = 1;
/// `shutdown` (or the output stream's close) closed the sending half.
const WRITE_SHUT: u8 = 2;
/// A read saw the end of stream or failed.
const READ_DONE: u8 = 4;
/// Closing resets the connection.
const RESET_ON_CLOSE: u8 = 8;

/// One direction of a connection.
#[derive(Default)]
struct Pipe {
    /// What the reader can read.
    buf: VecDeque<u8>,
    /// Written while the path was cut: it crosses once the path heals (TCP retransmits).
    held: VecDeque<u8>,
    /// On the wire: each segment and when it arrives (in order: a path is FIFO).
    in_flight: VecDeque<(Instant, Vec<u8>)>,
    in_flight_bytes: usize,
    /// Most bytes `buf`, `held` and `in_flight` hold together.
    cap: usize,
    /// The writer sent its FIN.
    fin: bool,
    /// The reader is gone: more data is answered with a reset.
    reader_gone: bool,
    readers: Wakers,
    writers: Wakers,
}

impl Pipe {
    fn stored(&self) -> usize {
        self.buf.len() + self.held.len() + self.in_flight_bytes
    }

    /// Whether nothing is on its way: the reader has all there will be until more is written.
    fn drained(&self) -> bool {
        self.held.is_empty() && self.in_flight.is_empty()
    }

    /// Moves what arrived by now, and what waited for a path that healed, into the readable
    /// bytes.
    fn release(&mut self, path: Option<&Path>) {
        let now = Instant::now();
        while self.in_flight.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, seg)) = self.in_flight.pop_front() {
                self.in_flight_bytes -= seg.len();
                self.buf.extend(seg);
            }
        }
        if !self.held.is_empty() && !path.is_some_and(Path::is_cut) {
            self.buf.append(&mut self.held);
        }
    }

    /// When the next segment on the wire arrives.
    fn next_arrival(&self) -> Option<Instant> {
        self.in_flight.front().map(|(at, _)| *at)
    }
}

/// A connection's two pipes; side 0 (the connecting end) writes `pipes[0]`.
#[derive(Default)]
pub(crate) struct LinkState {
    pipes: [Pipe; 2],
    reset: bool,
}

/// A connection's shared state.
pub(crate) type Link = Mutex<LinkState>;

/// Resets a connection: both ends' reads and writes fail with `connection-reset`.
pub(super) fn reset(link: &Link) {
    let mut link = crate::sync::lock(link);
    link.reset = true;
    for pipe in &mut link.pipes {
        pipe.buf.clear();
        pipe.held.clear();
        pipe.in_flight.clear();
        pipe.in_flight_bytes = 0;
        pipe.readers.wake_all();
        pipe.writers.wake_all();
    }
}

/// Where a connect stands.
enum Connect {
    /// The SYN crosses to `target`, arriving at `arrives`; while the path is cut it is
    /// resent until `gives_up`.
    InFlight {
        target: super::HostId,
        remote: SocketAddr,
        arrives: Instant,
        gives_up: Instant,
        /// The path's reset count when the connect began: a reset since answers the SYN.
        resets: u64,
    },
    /// Waiting for room in the listener's queue.
    Pending(Weak<ListenShared>),
    Done(Result<(), ErrorCode>),
}

/// What a connect under way waits for.
enum ConnectWait {
    Resolved,
    Until(Instant),
    Room,
}

/// One end of a virtual TCP connection.
pub(crate) struct VStream {
    link: OnceLock<Arc<Link>>,
    side: usize,
    local: SocketAddr,
    peer: SocketAddr,
    opts: VirtOptions,
    flags: AtomicU8,
    connect: Mutex<Connect>,
    /// The path to the other host (`None` on the host's own addresses).
    path: Option<Arc<Path>>,
    /// This end's direction of sending on the path.
    dir: usize,
    /// The host, for the connect's lookup of the listener.
    host: Option<VirtualHost>,
    /// The connecting end's port (an accepted end shares its listener's).
    _lease: Option<PortLease>,
}

impl std::fmt::Debug for VStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VStream({} -> {})", self.local, self.peer)
    }
}

impl VStream {
    /// Starts a connect from `host` to `remote`: from `bound` if the socket was bound (its
    /// unspecified address narrowed to the route's source), else from an ephemeral port. No
    /// route is `remote-unreachable`; nobody listening is `connection-refused` (reported by
    /// `finish-connect`, as a refused connect is on the OS).
    pub(super) fn connect(
        host: &VirtualHost,
        bound: Option<PortLease>,
        opts: VirtOptions,
        remote: SocketAddr,
    ) -> Result<VStream, ErrorCode> {
        let (target, path, faults) = {
            let mut w = host.world();
            let Some(target) = w.route(host.id, remote.ip()) else {
                return Err(ErrorCode::RemoteUnreachable);
            };
            (target, w.path(host.id, target), w.faults(host.id, target))
        };
        let dir = World::direction(host.id, target);
        let lease = match bound {
            Some(lease) => lease,
            None => {
                let from = SocketAddr::new(host.source_for(remote.ip()), 0);
                World::bind(&host.world, host.id, Proto::Tcp, from, Role::Bound)?
            }
        };
        let local = host.narrowed(lease.addr, remote.ip());
        let now = Instant::now();
        let connect = Connect::InFlight {
            target,
            remote,
            // The SYN's way there; its answer's way back is the other leg.
            arrives: now + faults.latency * 2,
            gives_up: now + SYN_GIVE_UP,
            resets: path.as_deref().map_or(0, Path::resets),
        };
        let stream = VStream {
            link: OnceLock::new(),
            side: 0,
            local,
            peer: remote,
            opts,
            flags: AtomicU8::new(0),
            connect: Mutex::new(connect),
            path,
            dir,
            host: Some(host.clone()),
            _lease: Some(lease),
        };
        let _ = stream.try_connected();
        Ok(stream)
    }

    fn flag(&self, flag: u8) -> bool {
        self.flags.load(Ordering::Acquire) & flag != 0
    }

    fn set_flag(&self, flag: u8) {
        self.flags.fetch_or(flag, Ordering::AcqRel);
    }

    fn link(&self) -> Option<MutexGuard<'_, LinkState>> {
        self.link.get().map(|l| crate::sync::lock(l))
    }

    /// `finish-connect`'s check: `Pending` while the listener's queue is full, else the outcome.
    pub(crate) fn try_connected(&self) -> Poll<Result<(), ErrorCode>> {
        self.poll_connect(None)
    }

    /// Advances the connect: the SYN arrives (when the path is up), then joins the listener's
    /// queue when it has room; nobody listening, or a listener gone, refuses. With `waker`,
    /// waits for room in the queue.
    fn poll_connect(&self, waker: Option<&std::task::Waker>) -> Poll<Result<(), ErrorCode>> {
        let mut connect = crate::sync::lock(&self.connect);
        if let Connect::InFlight {
            target,
            remote,
            arrives,
            gives_up,
            resets,
        } = *connect
        {
            let now = Instant::now();
            let cut = self.path.as_deref().is_some_and(Path::is_cut);
            if self.path.as_deref().is_some_and(|p| p.resets() != resets) {
                *connect = Connect::Done(Err(ErrorCode::ConnectionReset));
            } else if cut && now >= gives_up {
                *connect = Connect::Done(Err(ErrorCode::Timeout));
            } else if cut || now < arrives {
                return Poll::Pending;
            } else {
                let host = self.host.as_ref().expect("a connecting end has its host");
                *connect = match host.world().listener(target, remote) {
                    Some(l) => Connect::Pending(Arc::downgrade(&l)),
                    None => Connect::Done(Err(ErrorCode::ConnectionRefused)),
                };
            }
        }
        let listener = match &*connect {
            Connect::Done(outcome) => return Poll::Ready(*outcome),
            Connect::InFlight { .. } => return Poll::Pending,
            Connect::Pending(l) => l.upgrade(),
        };
        let outcome = match listener {
            None => Err(ErrorCode::ConnectionRefused),
            Some(l) => match l.offer(self, waker) {
                Some(outcome) => outcome,
                None => return Poll::Pending,
            },
        };
        *connect = Connect::Done(outcome);
        Poll::Ready(outcome)
    }

    /// What the connect waits for now.
    fn connect_wait(&self) -> ConnectWait {
        if self.try_connected().is_ready() {
            return ConnectWait::Resolved;
        }
        match *crate::sync::lock(&self.connect) {
            Connect::InFlight {
                arrives, gives_up, ..
            } => {
                let now = Instant::now();
                match self.path.as_deref().is_some_and(Path::is_cut) {
                    true => ConnectWait::Until((now + SYN_RETRY).min(gives_up)),
                    false => ConnectWait::Until(arrives),
                }
            }
            Connect::Pending(_) => ConnectWait::Room,
            Connect::Done(_) => ConnectWait::Resolved,
        }
    }

    /// Waits until the connect has resolved.
    pub(crate) async fn connected(&self) {
        for _ in 0..u32::MAX {
            match self.connect_wait() {
                ConnectWait::Resolved => return,
                ConnectWait::Until(t) => tokio::time::sleep_until(t).await,
                ConnectWait::Room => {
                    poll_fn(|cx| self.poll_connect(Some(cx.waker())).map(|_| ())).await;
                    return;
                }
            }
        }
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub(crate) fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    pub(crate) fn options(&self) -> &VirtOptions {
        &self.opts
    }

    /// Whether the input stream is closed (`shutdown(receive)`, end of stream, a failed read).
    pub(crate) fn read_closed(&self) -> bool {
        self.flag(READ_SHUT | READ_DONE)
    }

    pub(crate) fn write_shut(&self) -> bool {
        self.flag(WRITE_SHUT)
    }

    /// Reads what is there into the buffer's spare capacity: `would-block` when nothing is,
    /// 0 at the end of stream, `connection-reset` after a reset.
    pub(crate) fn try_read_buf(&self, buf: &mut BytesMut) -> Result<usize, ErrorCode> {
        let room = buf.capacity() - buf.len();
        self.take(room, |a, b| {
            buf.extend_from_slice(a);
            buf.extend_from_slice(b);
        })
    }

    /// Reads what is there into `buf` (0.3's receive: the guest's own memory): as
    /// [`VStream::try_read_buf`], without a host buffer.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> Result<usize, ErrorCode> {
        self.take(buf.len(), |a, b| {
            buf[..a.len()].copy_from_slice(a);
            buf[a.len()..a.len() + b.len()].copy_from_slice(b);
        })
    }

    /// Takes up to `room` bytes off the incoming pipe, handing them to `copy` as the pipe's
    /// two slices; the rules of [`VStream::try_read_buf`].
    fn take(&self, room: usize, copy: impl FnOnce(&[u8], &[u8])) -> Result<usize, ErrorCode> {
        let Some(mut link) = self.link() else {
            return Err(ErrorCode::InvalidState);
        };
        if link.reset {
            self.set_flag(READ_DONE);
            return Err(ErrorCode::ConnectionReset);
        }
        let pipe = &mut link.pipes[1 - self.side];
        pipe.release(self.path.as_deref());
        if pipe.buf.is_empty() {
            if pipe.fin && pipe.drained() {
                if room > 0 {
                    self.set_flag(READ_DONE);
                }
                return Ok(0);
            }
            return Err(ErrorCode::WouldBlock);
        }
        let n = room.min(pipe.buf.len());
        let (a, b) = pipe.buf.as_slices();
        let from_a = n.min(a.len());
        copy(&a[..from_a], &b[..n - from_a]);
        pipe.buf.drain(..n);
        pipe.writers.wake_all();
        Ok(n)
    }

    /// Writes what fits: `would-block` when the pipe is full, `connection-reset` after a reset
    /// or once the peer is gone.
    pub(crate) fn try_write(&self, bytes: &[u8]) -> Result<usize, ErrorCode> {
        let Some(mut link) = self.link() else {
            return Err(ErrorCode::InvalidState);
        };
        if link.reset {
            return Err(ErrorCode::ConnectionReset);
        }
        let pipe = &mut link.pipes[self.side];
        if pipe.fin {
            return Err(ErrorCode::InvalidState);
        }
        if pipe.reader_gone {
            drop(link);
            self.reset_link();
            return Err(ErrorCode::ConnectionReset);
        }
        let n = pipe.cap.saturating_sub(pipe.stored()).min(bytes.len());
        if n == 0 && !bytes.is_empty() {
            return Err(ErrorCode::WouldBlock);
        }
        match self.path.as_deref() {
            Some(path) if path.is_cut() => pipe.held.extend(&bytes[..n]),
            Some(path) if path.delays() => {
                let arrives = path.arrival(self.dir, n, Instant::now());
                pipe.in_flight.push_back((arrives, bytes[..n].to_vec()));
                pipe.in_flight_bytes += n;
            }
            _ => {
                pipe.release(None);
                pipe.buf.extend(&bytes[..n]);
            }
        }
        pipe.readers.wake_all();
        Ok(n)
    }

    /// Waits until a read would return data, the end of stream or an error: for new bytes, for
    /// bytes on the wire to arrive, or for a cut path to heal.
    pub(crate) async fn readable(&self) {
        for _ in 0..u32::MAX {
            let arrival = poll_fn(|cx| {
                if self.flag(READ_SHUT) {
                    return Poll::Ready(None);
                }
                let Some(mut link) = self.link() else {
                    return Poll::Ready(None);
                };
                let reset = link.reset;
                let pipe = &mut link.pipes[1 - self.side];
                pipe.release(self.path.as_deref());
                if reset || !pipe.buf.is_empty() || (pipe.fin && pipe.drained()) {
                    return Poll::Ready(None);
                }
                if let Some(at) = pipe.next_arrival() {
                    return Poll::Ready(Some(at));
                }
                pipe.readers.register(cx.waker());
                if let Some(path) = self.path.as_deref().filter(|_| !pipe.held.is_empty()) {
                    path.wait_healed(cx.waker());
                }
                Poll::Pending
            })
            .await;
            match arrival {
                Some(at) => tokio::time::sleep_until(at).await,
                None => return,
            }
        }
    }

    /// Waits until a write would take bytes or fail.
    pub(crate) async fn writable(&self) {
        poll_fn(|cx| {
            let Some(mut link) = self.link() else {
                return Poll::Ready(());
            };
            let reset = link.reset;
            let pipe = &mut link.pipes[self.side];
            if reset || pipe.fin || pipe.reader_gone || pipe.stored() < pipe.cap {
                return Poll::Ready(());
            }
            pipe.writers.register(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Shuts the given half (or both) down: a FIN follows what was written.
    pub(crate) fn shutdown(&self, how: Shutdown) {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.set_flag(READ_SHUT);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.set_flag(WRITE_SHUT);
            if let Some(mut link) = self.link() {
                let pipe = &mut link.pipes[self.side];
                pipe.fin = true;
                pipe.readers.wake_all();
            }
        }
    }

    /// Closes the output stream before its FIN can follow (bytes still wait host-side).
    pub(crate) fn close_output(&self) {
        self.set_flag(WRITE_SHUT);
    }

    /// Makes the close reset the connection.
    pub(crate) fn reset(&self) {
        self.set_flag(RESET_ON_CLOSE);
    }

    fn reset_link(&self) {
        if let Some(link) = self.link.get() {
            reset(link);
        }
    }
}

impl Drop for VStream {
    /// Closes this end: a reset after `reset` or with unread data, else the end of stream.
    fn drop(&mut self) {
        let unread = self
            .link()
            .is_some_and(|l| l.pipes[1 - self.side].stored() > 0);
        if self.flag(RESET_ON_CLOSE) || unread {
            return self.reset_link();
        }
        if let Some(mut link) = self.link() {
            let side = self.side;
            let out = &mut link.pipes[side];
            out.fin = true;
            out.readers.wake_all();
            let inbound = &mut link.pipes[1 - side];
            inbound.reader_gone = true;
            inbound.writers.wake_all();
        }
    }
}

/// What a listener shares with the connects that reach it.
pub(crate) struct ListenShared {
    state: Mutex<ListenState>,
    /// Inherited by accepted ends.
    opts: VirtOptions,
}

struct ListenState {
    queue: VecDeque<VStream>,
    backlog: usize,
    closed: bool,
    acceptors: Wakers,
    /// Connects waiting for room in the queue.
    waiting: Wakers,
}

impl ListenShared {
    /// A connect offers itself: queued (`Some(Ok)`) when there is room, refused when the
    /// listener closed, else `None` (it waits, registered with `waker`).
    fn offer(
        &self,
        client: &VStream,
        waker: Option<&std::task::Waker>,
    ) -> Option<Result<(), ErrorCode>> {
        let mut st = crate::sync::lock(&self.state);
        if st.closed {
            return Some(Err(ErrorCode::ConnectionRefused));
        }
        // Linux queues one more than the backlog.
        if st.queue.len() > st.backlog {
            if let Some(w) = waker {
                st.waiting.register(w);
            }
            return None;
        }
        let opts = self.opts.inherited();
        let mut link = LinkState::default();
        link.pipes[0].cap = client.opts.send_buffer() + opts.recv_buffer();
        link.pipes[1].cap = opts.send_buffer() + client.opts.recv_buffer();
        let link = Arc::new(Mutex::new(link));
        if let Some(path) = &client.path {
            path.add_conn(Arc::downgrade(&link));
        }
        let _ = client.link.set(link.clone());
        let server = VStream {
            link: OnceLock::from(link),
            side: 1,
            local: client.peer,
            peer: client.local,
            opts,
            flags: AtomicU8::new(0),
            connect: Mutex::new(Connect::Done(Ok(()))),
            path: client.path.clone(),
            dir: 1 - client.dir,
            host: None,
            _lease: None,
        };
        st.queue.push_back(server);
        st.acceptors.wake_all();
        Some(Ok(()))
    }
}

/// A virtual TCP listener.
pub(crate) struct VListener {
    shared: Arc<ListenShared>,
    lease: PortLease,
}

impl std::fmt::Debug for VListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VListener({})", self.lease.addr)
    }
}

impl VListener {
    /// Listens on `lease`'s address: `address-in-use` when another listener holds it.
    pub(super) fn listen(
        lease: PortLease,
        opts: VirtOptions,
        backlog: u32,
    ) -> Result<VListener, ErrorCode> {
        let shared = Arc::new(ListenShared {
            state: Mutex::new(ListenState {
                queue: VecDeque::new(),
                backlog: backlog as usize,
                closed: false,
                acceptors: Wakers::default(),
                waiting: Wakers::default(),
            }),
            opts,
        });
        lease.set_role(Role::Listening(Arc::downgrade(&shared)))?;
        Ok(VListener { shared, lease })
    }

    fn state(&self) -> MutexGuard<'_, ListenState> {
        crate::sync::lock(&self.shared.state)
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.lease.addr
    }

    pub(crate) fn options(&self) -> &VirtOptions {
        &self.shared.opts
    }

    /// Takes one queued connection without waiting; one reset before it was accepted is
    /// `connection-aborted` (once; the next call takes the next).
    pub(crate) fn try_accept(&self) -> Result<Option<(VStream, SocketAddr)>, ErrorCode> {
        let mut st = self.state();
        let Some(stream) = st.queue.pop_front() else {
            return Ok(None);
        };
        st.waiting.wake_all();
        if stream.link().is_some_and(|l| l.reset) {
            return Err(ErrorCode::ConnectionAborted);
        }
        let peer = stream.peer;
        Ok(Some((stream, peer)))
    }

    /// Waits until a connection is queued.
    pub(crate) async fn ready(&self) {
        poll_fn(|cx| {
            let mut st = self.state();
            if !st.queue.is_empty() {
                return Poll::Ready(());
            }
            st.acceptors.register(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Changes the backlog; waiting connects get in as room allows.
    pub(crate) fn set_backlog(&self, backlog: u32) {
        let mut st = self.state();
        st.backlog = backlog as usize;
        st.waiting.wake_all();
    }
}

impl Drop for VListener {
    /// Closing a listener resets the connections still queued and refuses waiting connects.
    fn drop(&mut self) {
        let queued: Vec<VStream> = {
            let mut st = self.state();
            st.closed = true;
            st.waiting.wake_all();
            st.queue.drain(..).collect()
        };
        for stream in queued {
            stream.reset();
        }
    }
}
