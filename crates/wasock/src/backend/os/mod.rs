//! The OS backend: socket2 for creation and options, tokio's reactor for readiness, quinn-udp
//! for batched datagrams, the hosts file and `getaddrinfo` for names.
//!
//! Every socket is non-blocking and close-on-exec; IPv6 sockets are v6-only; TCP sockets bind as
//! if `SO_REUSEADDR` were set (the WIT's implementors note).

mod datagram;
pub(super) mod hosts;

pub(crate) use datagram::Datagram;

use super::resolve::ResolveError;
use crate::addr::Family;
use socket2::{Domain, SockRef, Socket, Type};
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Fails instead of panicking when called outside a tokio runtime (the reactor is needed).
fn reactor() -> io::Result<()> {
    tokio::runtime::Handle::try_current()
        .map(|_| ())
        .map_err(|_| io::Error::other("wasock needs to run inside a tokio runtime"))
}

/// A context whose waker does nothing: polls readiness without waiting.
pub(super) fn no_wait() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// Runs one non-blocking syscall `op` on a socket registered with the reactor.
///
/// While the reactor believes the socket ready, `op` runs under tokio's `try_io`, whose readiness
/// snapshot is taken before the call: a `WouldBlock` then clears exactly the readiness seen before
/// it, never an event that arrived during it (clearing after the fact could lose a wake-up). While
/// the reactor believes it not ready, `op` runs directly, because readiness can lag a socket
/// registered a moment ago; a `WouldBlock` then clears nothing.
pub(super) fn nonblocking<R>(
    try_io: impl FnOnce(&mut dyn FnMut() -> io::Result<R>) -> io::Result<R>,
    mut op: impl FnMut() -> io::Result<R>,
) -> io::Result<R> {
    let mut ran = false;
    let mut tracked = || {
        ran = true;
        op()
    };
    match try_io(&mut tracked) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && !ran => op(),
        result => result,
    }
}

/// `setsockopt` of one `int` option.
pub(super) fn set_int(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: a pointer to an `int` of the length given; a bad fd is an error, not UB.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whole seconds as a socket option's `int`.
fn secs_int(d: Duration) -> i32 {
    d.as_secs().min(i32::MAX as u64) as i32
}

/// Linux reports `SO_RCVBUF`/`SO_SNDBUF` as twice what was set (the doubling covers its
/// bookkeeping); the guest reads back what it set, or the clamp the kernel applied.
fn buffer_as_set(reported: usize) -> usize {
    if cfg!(target_os = "linux") {
        reported / 2
    } else {
        reported
    }
}

/// Maps a socket2 address of an IP socket to a std one.
fn ip_addr(addr: socket2::SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket()
        .ok_or_else(|| io::Error::other("not an IP address"))
}

/// Socket options shared by every socket kind, each a thin wrapper over one `setsockopt`.
pub(crate) trait SockOptions {
    fn sock(&self) -> SockRef<'_>;
    fn family(&self) -> Family;

    fn keepalive(&self) -> io::Result<bool> {
        self.sock().keepalive()
    }
    fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.sock().set_keepalive(on)
    }
    fn keepalive_idle(&self) -> io::Result<Duration> {
        self.sock().tcp_keepalive_time()
    }
    /// Sets `TCP_KEEPIDLE` alone: keep-alive stays as enabled or disabled as it was.
    fn set_keepalive_idle(&self, d: Duration) -> io::Result<()> {
        self.set_tcp_int(libc::TCP_KEEPIDLE, secs_int(d))
    }
    fn keepalive_interval(&self) -> io::Result<Duration> {
        self.sock().tcp_keepalive_interval()
    }
    /// Sets `TCP_KEEPINTVL` alone: keep-alive stays as enabled or disabled as it was.
    fn set_keepalive_interval(&self, d: Duration) -> io::Result<()> {
        self.set_tcp_int(libc::TCP_KEEPINTVL, secs_int(d))
    }
    fn keepalive_count(&self) -> io::Result<u32> {
        self.sock().tcp_keepalive_retries()
    }
    /// Sets `TCP_KEEPCNT` alone: keep-alive stays as enabled or disabled as it was.
    fn set_keepalive_count(&self, n: u32) -> io::Result<()> {
        self.set_tcp_int(libc::TCP_KEEPCNT, n.min(i32::MAX as u32) as i32)
    }
    fn set_tcp_int(&self, name: i32, value: i32) -> io::Result<()> {
        set_int(self.sock().as_raw_fd(), libc::IPPROTO_TCP, name, value)
    }
    fn hop_limit(&self) -> io::Result<u8> {
        let v = match self.family() {
            Family::Ipv4 => self.sock().ttl_v4()?,
            Family::Ipv6 => self.sock().unicast_hops_v6()?,
        };
        Ok(v.clamp(1, 255) as u8)
    }
    fn set_hop_limit(&self, v: u8) -> io::Result<()> {
        match self.family() {
            Family::Ipv4 => self.sock().set_ttl_v4(v.into()),
            Family::Ipv6 => self.sock().set_unicast_hops_v6(v.into()),
        }
    }
    fn recv_buffer(&self) -> io::Result<usize> {
        self.sock().recv_buffer_size().map(buffer_as_set)
    }
    fn set_recv_buffer(&self, n: usize) -> io::Result<()> {
        self.sock().set_recv_buffer_size(n)
    }
    fn send_buffer(&self) -> io::Result<usize> {
        self.sock().send_buffer_size().map(buffer_as_set)
    }
    fn set_send_buffer(&self, n: usize) -> io::Result<()> {
        self.sock().set_send_buffer_size(n)
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock()
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))
    }
}

/// A socket that is neither listening nor connected: the `unbound` and `bound` states.
#[derive(Debug)]
pub(crate) struct RawSocket {
    sock: Socket,
    family: Family,
}

impl SockOptions for RawSocket {
    fn sock(&self) -> SockRef<'_> {
        SockRef::from(&self.sock)
    }
    fn family(&self) -> Family {
        self.family
    }
}

impl RawSocket {
    fn new(family: Family, ty: Type) -> io::Result<Self> {
        let domain = match family {
            Family::Ipv4 => Domain::IPV4,
            Family::Ipv6 => Domain::IPV6,
        };
        let sock = Socket::new(domain, ty.nonblocking().cloexec(), None)?;
        if family == Family::Ipv6 {
            sock.set_only_v6(true)?;
        }
        Ok(RawSocket { sock, family })
    }

    /// A new TCP socket, `SO_REUSEADDR` set.
    pub(crate) fn tcp(family: Family) -> io::Result<Self> {
        let s = Self::new(family, Type::STREAM)?;
        s.sock.set_reuse_address(true)?;
        Ok(s)
    }

    /// A new UDP socket.
    pub(crate) fn udp(family: Family) -> io::Result<Self> {
        Self::new(family, Type::DGRAM)
    }

    pub(crate) fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.sock.bind(&addr.into())
    }

    /// `listen(2)` and registration with the reactor.
    pub(crate) fn listen(self, backlog: u32) -> io::Result<Listener> {
        reactor()?;
        self.sock.listen(backlog.min(i32::MAX as u32) as i32)?;
        // SAFETY: the `AsyncFd` owns the socket, so its fd stays open and the same for the
        // registration's whole life.
        let inner = unsafe { AsyncFd::register_with_interest(self.sock, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Listener {
            inner,
            family: self.family,
        })
    }

    /// Starts a non-blocking `connect(2)`: the stream is usable once [`Stream::try_connected`] is `Ok`.
    /// A failure the kernel reports at once (not `EINPROGRESS`) is returned here.
    pub(crate) fn connect(self, addr: SocketAddr) -> io::Result<Stream> {
        reactor()?;
        match self.sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        Ok(Stream::new(self.sock, self.family))
    }

    /// Registers a bound UDP socket with the reactor.
    pub(crate) fn into_datagram(self) -> io::Result<Datagram> {
        reactor()?;
        Datagram::new(std::net::UdpSocket::from(self.sock), self.family)
    }
}

/// A listening TCP socket, registered with the reactor for readability (a pending connection).
#[derive(Debug)]
pub(crate) struct Listener {
    inner: AsyncFd<Socket>,
    family: Family,
}

impl SockOptions for Listener {
    fn sock(&self) -> SockRef<'_> {
        SockRef::from(self.inner.get_ref())
    }
    fn family(&self) -> Family {
        self.family
    }
}

impl Listener {
    /// Accepts one pending connection without waiting; `Ok(None)` when none is pending. The
    /// stream is not registered with the reactor until something waits on it.
    pub(crate) fn try_accept(&self) -> io::Result<Option<(Stream, SocketAddr)>> {
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        let accept = || self.inner.get_ref().accept4(flags);
        match nonblocking(|f| self.inner.try_io(Interest::READABLE, |_| f()), accept) {
            Ok((sock, peer)) => Ok(Some((Stream::new(sock, self.family), ip_addr(peer)?))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits until a connection is pending (or accepting would fail). Readiness stays set until
    /// an accept finds the queue empty.
    pub(crate) async fn ready(&self) {
        // Outside tokio's cooperative budget, like the streams' readiness: a listener that
        // spent the budget while the guest's streams do not would starve under load.
        let _ = tokio::task::unconstrained(self.inner.readable()).await;
    }

    /// Changes the backlog of a listening socket (Linux lets `listen(2)` be called again).
    pub(crate) fn set_backlog(&self, backlog: u32) -> io::Result<()> {
        self.sock().listen(backlog.min(i32::MAX as u32) as i32)
    }
}

/// A stream's fd as the reactor sees it; the [`Stream`] that holds the registration owns the
/// socket and outlives it.
#[derive(Debug)]
struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// How long a stream that could not be registered with the reactor waits before the guest asks
/// again (it then polls instead of waiting on readiness).
const UNREGISTERED_POLL: Duration = Duration::from_millis(5);
/// Confirming peeks one poll of a stream's readiness makes before leaving it to the async wait.
const PEEK_ROUNDS: usize = 3;

/// A TCP stream: connected, or with its connect under way.
///
/// It joins the reactor the first time something waits on it, so a connection that the guest
/// only holds, or reads and writes without waiting, costs no registration.
#[derive(Debug)]
pub(crate) struct Stream {
    /// The registration, once something waited (`None` if registering failed). Declared before
    /// `sock`: it is dropped, and deregisters, before the socket closes.
    reactor: OnceLock<Option<Box<AsyncFd<Fd>>>>,
    sock: Socket,
    family: Family,
    /// [`CONFIRMED`], [`READ_SHUT`], [`WRITE_SHUT`], [`READ_DONE`], [`DRAINED`].
    flags: AtomicU8,
}

/// A peek found data (or end of stream) and no read has happened since: readable without
/// another syscall, however often the guest asks.
const CONFIRMED: u8 = 1;
/// `shutdown` closed the receiving half.
const READ_SHUT: u8 = 2;
/// `shutdown` closed the sending half.
const WRITE_SHUT: u8 = 4;
/// A read saw the end of stream or failed: the receiving half has nothing more to give.
const READ_DONE: u8 = 8;
/// The last read returned fewer bytes than asked for, so it drained the socket, and cleared the
/// readiness it ran under: the next read asks the reactor before the kernel.
const DRAINED: u8 = 16;

impl SockOptions for Stream {
    fn sock(&self) -> SockRef<'_> {
        SockRef::from(&self.sock)
    }
    fn family(&self) -> Family {
        self.family
    }
}

impl Stream {
    fn new(sock: Socket, family: Family) -> Self {
        Stream {
            reactor: OnceLock::new(),
            sock,
            family,
            flags: AtomicU8::new(0),
        }
    }

    fn flag(&self, flag: u8) -> bool {
        self.flags.load(Ordering::Acquire) & flag != 0
    }

    fn set_flag(&self, flag: u8, on: bool) {
        if on {
            self.flags.fetch_or(flag, Ordering::AcqRel);
        } else {
            self.flags.fetch_and(!flag, Ordering::AcqRel);
        }
    }

    /// Whether the input stream is closed: `shutdown(receive)`, or a read saw the end of
    /// stream or an error (`read` of any size then reports `closed`).
    pub(crate) fn read_closed(&self) -> bool {
        self.flag(READ_SHUT | READ_DONE)
    }

    /// Whether `shutdown` closed the sending half.
    pub(crate) fn write_shut(&self) -> bool {
        self.flag(WRITE_SHUT)
    }

    /// The registration, made now if there is none yet.
    fn reactor(&self) -> Option<&AsyncFd<Fd>> {
        self.reactor
            .get_or_init(|| {
                reactor().ok()?;
                // SAFETY: the fd is `self.sock`'s, which is open until `self` is dropped, and
                // `self.reactor` (declared first) is dropped before it.
                match unsafe { AsyncFd::register(Fd(self.sock.as_raw_fd())) } {
                    Ok(fd) => Some(Box::new(fd)),
                    Err(e) => {
                        tracing::warn!(error = %e, "a TCP stream could not join the reactor; it is polled");
                        None
                    }
                }
            })
            .as_deref()
    }

    /// Runs one non-blocking syscall under the registration's readiness, if there is one.
    fn io<R>(&self, interest: Interest, mut op: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        match self.reactor.get().and_then(Option::as_deref) {
            Some(fd) => nonblocking(|f| fd.try_io(interest, |_| f()), op),
            None => op(),
        }
    }

    /// Runs one read syscall `op` into `want` bytes, as [`Stream::io`] does, and skips the next
    /// one while nothing new arrived: a short read drained the socket (TCP's `recv` returns less
    /// than asked only when its queue ran dry), so it clears the readiness it ran under, race-free
    /// as a `WouldBlock` does, and the next read answers `WouldBlock` from the reactor without a
    /// syscall. Only once in a row: a guest that reads without ever waiting gives the reactor no
    /// turn to see new data, so every other such read goes to the kernel.
    fn read_io(&self, want: usize, mut op: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
        let drained = self.flags.fetch_and(!DRAINED, Ordering::AcqRel) & DRAINED != 0;
        let Some(fd) = self.reactor.get().and_then(Option::as_deref) else {
            return op();
        };
        let short = |n: &io::Result<usize>| matches!(n, Ok(n) if *n > 0 && *n < want);
        let (mut ran, mut kept) = (false, None);
        let held = fd.try_io(Interest::READABLE, |_| {
            ran = true;
            let n = op();
            if short(&n) {
                kept = Some(n);
                // Makes `try_io` clear the readiness it saw; the bytes are returned below.
                return Err(io::ErrorKind::WouldBlock.into());
            }
            n
        });
        let n = match (kept, held) {
            (Some(n), _) => n,
            // Readiness can lag a socket registered a moment ago: not held is asked of the
            // kernel, but for the read right after one that drained it.
            (None, Err(e)) if e.kind() == io::ErrorKind::WouldBlock && !ran && !drained => op(),
            (None, held) => return held,
        };
        if short(&n) {
            self.set_flag(DRAINED, true);
        }
        n
    }

    /// `finish-connect`'s check: `Pending` while under way, else whether the connect succeeded.
    pub(crate) fn try_connected(&self) -> Poll<io::Result<()>> {
        if let Some(e) = self.sock.take_error()? {
            return Poll::Ready(Err(e));
        }
        match self.sock.peer_addr() {
            Ok(_) => Poll::Ready(Ok(())),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
    /// Whether the connect under way has resolved, without consuming its outcome (`SO_ERROR`
    /// is read once, by `finish-connect`'s [`Stream::try_connected`]).
    fn connect_resolved(&self) -> bool {
        let mut fd = libc::pollfd {
            fd: self.sock.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        let n = unsafe { libc::poll(&mut fd, 1, 0) };
        n != 0
    }
    /// Waits until the connect under way has resolved; leaves its outcome to `finish-connect`.
    /// A connect that already resolved (as on loopback, where the handshake completes inside
    /// `connect(2)`) needs no registration.
    pub(crate) async fn connected(&self) {
        if !self.connect_resolved() {
            self.writable().await;
        }
    }
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        ip_addr(self.sock.peer_addr()?)
    }
    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.sock.set_tcp_nodelay(on)
    }
    /// Reads up to the buffer's spare capacity without zero-filling it (`WouldBlock` when
    /// nothing is there).
    pub(crate) fn try_read_buf(&self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        self.set_flag(CONFIRMED, false);
        let filled = buf.len();
        let want = buf.capacity() - filled;
        let n = self
            .read_io(want, || self.sock.recv(buf.spare_capacity_mut()))
            .inspect_err(|e| {
                if e.kind() != io::ErrorKind::WouldBlock {
                    self.set_flag(READ_DONE, true);
                }
            })?;
        if n == 0 && buf.capacity() > filled {
            self.set_flag(READ_DONE, true);
        }
        // SAFETY: recv(2) initialized the first `n` bytes of the spare capacity.
        unsafe { buf.set_len(filled + n) };
        Ok(n)
    }
    /// Reads into `buf` (0.3's receive: the guest's own memory) without waiting
    /// (`WouldBlock` when nothing is there).
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::Read as _;
        self.set_flag(CONFIRMED, false);
        let n = self
            .read_io(buf.len(), || (&self.sock).read(buf))
            .inspect_err(|e| {
                if e.kind() != io::ErrorKind::WouldBlock {
                    self.set_flag(READ_DONE, true);
                }
            })?;
        if n == 0 && !buf.is_empty() {
            self.set_flag(READ_DONE, true);
        }
        Ok(n)
    }
    /// Writes what fits without waiting (`WouldBlock` when nothing does), without `SIGPIPE`.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io(Interest::WRITABLE, || {
            self.sock.send_with_flags(buf, libc::MSG_NOSIGNAL)
        })
    }
    /// Waits until a read would return data, end of stream or an error. Readiness the reactor
    /// already held may have outlived a read that drained the socket, so it is confirmed with a
    /// one-byte peek under `try_io` (which clears it, race-free, when the peek finds nothing);
    /// readiness that arrived while waiting is fresh and needs none. A confirmation holds until
    /// the next read.
    pub(crate) async fn readable(&self) {
        if self.flag(CONFIRMED) {
            return;
        }
        let Some(fd) = self.reactor() else {
            return tokio::time::sleep(UNREGISTERED_POLL).await;
        };
        loop {
            let held = fd.poll_read_ready(&mut no_wait()).is_ready();
            if fd.readable().await.is_err() {
                return;
            }
            if !held {
                self.set_flag(CONFIRMED, true);
                return;
            }
            let mut byte = [std::mem::MaybeUninit::uninit()];
            let peek = fd.try_io(Interest::READABLE, |_| {
                self.sock.recv_with_flags(&mut byte, libc::MSG_PEEK)
            });
            if !matches!(peek, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                self.set_flag(CONFIRMED, true);
                return;
            }
        }
    }
    /// `readable` as one poll, for `wasi:io/poll`: `None` where only the async wait can tell (no
    /// registration). `fresh`: this wait already saw the socket not ready, so readiness now is
    /// new and needs no confirming peek.
    pub(crate) fn poll_readable(&self, cx: &mut Context<'_>, fresh: bool) -> Option<Poll<()>> {
        if self.flag(CONFIRMED) {
            return Some(Poll::Ready(()));
        }
        let fd = self.reactor()?;
        for _ in 0..PEEK_ROUNDS {
            let mut guard = match fd.poll_read_ready(cx) {
                Poll::Pending => return Some(Poll::Pending),
                Poll::Ready(Err(_)) => return Some(Poll::Ready(())),
                Poll::Ready(Ok(guard)) => guard,
            };
            if fresh {
                self.set_flag(CONFIRMED, true);
                return Some(Poll::Ready(()));
            }
            let mut byte = [std::mem::MaybeUninit::uninit()];
            // `Err`: the peek found nothing, and the readiness it saw is cleared.
            let peek = guard.try_io(|_| self.sock.recv_with_flags(&mut byte, libc::MSG_PEEK));
            if peek.is_ok() {
                self.set_flag(CONFIRMED, true);
                return Some(Poll::Ready(()));
            }
        }
        None
    }
    /// Waits until a write would take bytes (or fail).
    pub(crate) async fn writable(&self) {
        match self.reactor() {
            Some(fd) => drop(fd.writable().await),
            None => tokio::time::sleep(UNREGISTERED_POLL).await,
        }
    }
    /// `writable` as one poll, for `wasi:io/poll`: `None` without a registration.
    pub(crate) fn poll_writable(&self, cx: &mut Context<'_>) -> Option<Poll<()>> {
        Some(self.reactor()?.poll_write_ready(cx).map(drop))
    }
    /// Shuts the given half (or both) down; the halves count as closed even if the kernel
    /// reports an error.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let halves = match how {
            Shutdown::Read => READ_SHUT,
            Shutdown::Write => WRITE_SHUT,
            Shutdown::Both => READ_SHUT | WRITE_SHUT,
        };
        self.set_flag(halves, true);
        match self.sock.shutdown(how) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(()),
            other => other,
        }
    }
    /// Closes the output stream without telling the kernel yet: `shutdown(send)` with bytes
    /// still to deliver, whose FIN follows them ([`Stream::shutdown`] once they are sent).
    pub(crate) fn close_output(&self) {
        self.set_flag(WRITE_SHUT, true);
    }
    /// Makes the close send a reset instead of a FIN (a refused peer).
    pub(crate) fn reset(&self) {
        let _ = self.sock.set_linger(Some(Duration::ZERO));
    }
}

/// Resolves a host name with the system resolver, on tokio's blocking pool.
pub(super) async fn resolve(name: String) -> Result<Vec<IpAddr>, ResolveError> {
    let hints = dns_lookup::AddrInfoHints {
        socktype: libc::SOCK_STREAM,
        ..Default::default()
    };
    let task = tokio::task::spawn_blocking(move || {
        let addrs = dns_lookup::getaddrinfo(Some(&name), None, Some(hints))
            .map_err(|e| crate::error::from_lookup(e.kind()))?;
        Ok(addrs
            .filter_map(Result::ok)
            .map(|a| a.sockaddr.ip())
            .collect())
    });
    task.await.unwrap_or(Err(ResolveError::Permanent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn would_block(r: io::Result<usize>) -> bool {
        matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// A read after a short one is answered by the reactor: bytes that arrived in between are
    /// not read until the reactor sees them, and then they are; only one read in a row skips
    /// the kernel, and a full read never does.
    #[tokio::test]
    async fn a_short_read_lets_the_next_one_skip_the_kernel_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = RawSocket::tcp(Family::Ipv4)
            .unwrap()
            .connect(listener.local_addr().unwrap())
            .unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        assert!(stream.reactor().is_some(), "registered with the reactor");
        peer.write_all(b"hello").unwrap();
        let mut buf = [0u8; 64];
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let n = loop {
            match stream.try_read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < deadline, "no data");
                    stream.readable().await;
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&buf[..n], b"hello");
        peer.write_all(b"world").unwrap();
        // The bytes are in the kernel, but the reactor has not turned since the short read.
        assert!(would_block(stream.try_read(&mut buf)));
        // Once in a row: the next read asks the kernel and finds them.
        assert_eq!(stream.try_read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"world");
        // The reactor wakes a waiter for bytes that arrive after a skipped read.
        peer.write_all(b"again").unwrap();
        assert!(would_block(stream.try_read(&mut buf)));
        tokio::time::timeout(Duration::from_secs(5), stream.readable())
            .await
            .expect("readable after a skipped read");
        assert_eq!(stream.try_read(&mut buf).unwrap(), 5);
        // A read that fills the buffer drained nothing: the next one goes to the kernel.
        peer.write_all(b"0123456789").unwrap();
        tokio::time::timeout(Duration::from_secs(5), stream.readable())
            .await
            .unwrap();
        let mut four = [0u8; 4];
        assert_eq!(stream.try_read(&mut four).unwrap(), 4);
        assert_eq!(stream.try_read(&mut four).unwrap(), 4);
        assert_eq!(stream.try_read(&mut four).unwrap(), 2);
        assert!(would_block(stream.try_read(&mut four)));
    }
}
