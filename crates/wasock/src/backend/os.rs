//! OS sockets: socket2 for creation and options, tokio's reactor for readiness.
//!
//! Every socket is non-blocking and close-on-exec; IPv6 sockets are v6-only; TCP sockets bind as
//! if `SO_REUSEADDR` were set (the WIT's implementors note).

use super::datagram::Datagram;
use crate::addr::Family;
use crate::bindings::network::ErrorCode;
use socket2::{Domain, SockRef, Socket, TcpKeepalive, Type};
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::Interest;

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

/// Maps a socket2 address of an IP socket to a std one.
fn ip_addr(addr: socket2::SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket()
        .ok_or_else(|| io::Error::other("not an IP address"))
}

/// Socket options shared by every socket kind, each a thin wrapper over one `setsockopt`.
pub(crate) trait Options {
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
    fn set_keepalive_idle(&self, d: Duration) -> io::Result<()> {
        self.sock()
            .set_tcp_keepalive(&TcpKeepalive::new().with_time(d))
    }
    fn keepalive_interval(&self) -> io::Result<Duration> {
        self.sock().tcp_keepalive_interval()
    }
    fn set_keepalive_interval(&self, d: Duration) -> io::Result<()> {
        self.sock()
            .set_tcp_keepalive(&TcpKeepalive::new().with_interval(d))
    }
    fn keepalive_count(&self) -> io::Result<u32> {
        self.sock().tcp_keepalive_retries()
    }
    fn set_keepalive_count(&self, n: u32) -> io::Result<()> {
        self.sock()
            .set_tcp_keepalive(&TcpKeepalive::new().with_retries(n))
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
        self.sock().recv_buffer_size()
    }
    fn set_recv_buffer(&self, n: usize) -> io::Result<()> {
        self.sock().set_recv_buffer_size(n)
    }
    fn send_buffer(&self) -> io::Result<usize> {
        self.sock().send_buffer_size()
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

impl Options for RawSocket {
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
        let family = self.family;
        let inner = tokio::net::TcpListener::from_std(std::net::TcpListener::from(self.sock))?;
        Ok(Listener {
            inner,
            family,
            stash: Mutex::new(None),
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
        let family = self.family;
        let inner = tokio::net::TcpStream::from_std(std::net::TcpStream::from(self.sock))?;
        Ok(Stream::new(inner, family))
    }

    /// Registers a bound UDP socket with the reactor.
    pub(crate) fn into_datagram(self) -> io::Result<Datagram> {
        reactor()?;
        Datagram::new(std::net::UdpSocket::from(self.sock), self.family)
    }
}

/// What a wait for a pending connection took off the queue.
type Accepted = io::Result<(tokio::net::TcpStream, SocketAddr)>;

/// A listening TCP socket.
#[derive(Debug)]
pub(crate) struct Listener {
    inner: tokio::net::TcpListener,
    family: Family,
    /// A connection taken while waiting for readiness, handed out by the next accept.
    stash: Mutex<Option<Accepted>>,
}

impl Options for Listener {
    fn sock(&self) -> SockRef<'_> {
        SockRef::from(&self.inner)
    }
    fn family(&self) -> Family {
        self.family
    }
}

impl Listener {
    fn stash(&self) -> std::sync::MutexGuard<'_, Option<Accepted>> {
        self.stash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accepts one pending connection without waiting; `Ok(None)` when none is pending.
    pub(crate) fn try_accept(&self) -> io::Result<Option<(Stream, SocketAddr)>> {
        let taken = match self.stash().take() {
            Some(accepted) => accepted,
            None => match self.inner.poll_accept(&mut no_wait()) {
                Poll::Ready(accepted) => accepted,
                // The reactor's readiness can lag a fresh listener: ask the kernel directly.
                Poll::Pending => match self.sock().accept() {
                    Ok((sock, peer)) => {
                        sock.set_nonblocking(true)?;
                        let inner = tokio::net::TcpStream::from_std(sock.into())?;
                        Ok((inner, ip_addr(peer)?))
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                    Err(e) => Err(e),
                },
            },
        };
        let (inner, peer) = taken?;
        let stream = Stream::new(inner, self.family);
        Ok(Some((stream, peer)))
    }

    /// Waits until a connection is pending (or accepting failed).
    pub(crate) async fn ready(&self) {
        if self.stash().is_some() {
            return;
        }
        // Outside tokio's cooperative budget, like the streams' readiness: a listener that
        // spent the budget while the guest's streams do not would starve under load.
        let accepted =
            tokio::task::unconstrained(std::future::poll_fn(|cx| self.inner.poll_accept(cx))).await;
        *self.stash() = Some(accepted);
    }

    /// Changes the backlog of a listening socket (Linux lets `listen(2)` be called again).
    pub(crate) fn set_backlog(&self, backlog: u32) -> io::Result<()> {
        self.sock().listen(backlog.min(i32::MAX as u32) as i32)
    }
}

/// A TCP stream: connected, or with its connect under way.
#[derive(Debug)]
pub(crate) struct Stream {
    inner: tokio::net::TcpStream,
    family: Family,
    /// A peek found data (or end of stream) and no read has happened since: readable without
    /// another syscall, however often the guest asks.
    confirmed: AtomicBool,
}

impl Options for Stream {
    fn sock(&self) -> SockRef<'_> {
        SockRef::from(&self.inner)
    }
    fn family(&self) -> Family {
        self.family
    }
}

impl Stream {
    fn new(inner: tokio::net::TcpStream, family: Family) -> Self {
        Stream {
            inner,
            family,
            confirmed: AtomicBool::new(false),
        }
    }
    /// `finish-connect`'s check: `Pending` while under way, else whether the connect succeeded.
    pub(crate) fn try_connected(&self) -> Poll<io::Result<()>> {
        if let Some(e) = self.inner.take_error()? {
            return Poll::Ready(Err(e));
        }
        match self.inner.peer_addr() {
            Ok(_) => Poll::Ready(Ok(())),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }
    /// Reads up to the buffer's spare capacity without zero-filling it (`WouldBlock` when
    /// nothing is there).
    pub(crate) fn try_read_buf(&self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        self.confirmed.store(false, Ordering::Release);
        let filled = buf.len();
        let n = nonblocking(
            |f| self.inner.try_io(Interest::READABLE, f),
            || SockRef::from(&self.inner).recv(buf.spare_capacity_mut()),
        )?;
        // SAFETY: recv(2) initialized the first `n` bytes of the spare capacity.
        unsafe { buf.set_len(filled + n) };
        Ok(n)
    }
    /// Writes what fits without waiting (`WouldBlock` when nothing does), without `SIGPIPE`.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        nonblocking(
            |f| self.inner.try_io(Interest::WRITABLE, f),
            || SockRef::from(&self.inner).send_with_flags(buf, libc::MSG_NOSIGNAL),
        )
    }
    /// Waits until a read would return data, end of stream or an error. Readiness the reactor
    /// already held may have outlived a read that drained the socket, so it is confirmed with a
    /// one-byte peek under `try_io` (which clears it, race-free, when the peek finds nothing);
    /// readiness that arrived while waiting is fresh and needs none. A confirmation holds until
    /// the next read.
    pub(crate) async fn readable(&self) {
        if self.confirmed.load(Ordering::Acquire) {
            return;
        }
        loop {
            let held = self.inner.poll_read_ready(&mut no_wait()).is_ready();
            if self.inner.readable().await.is_err() {
                return;
            }
            if !held {
                self.confirmed.store(true, Ordering::Release);
                return;
            }
            let mut byte = [std::mem::MaybeUninit::uninit()];
            let peek = self.inner.try_io(Interest::READABLE, || {
                SockRef::from(&self.inner).recv_with_flags(&mut byte, libc::MSG_PEEK)
            });
            if !matches!(peek, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                self.confirmed.store(true, Ordering::Release);
                return;
            }
        }
    }
    pub(crate) async fn writable(&self) {
        let _ = self.inner.writable().await;
    }
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match SockRef::from(&self.inner).shutdown(how) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(()),
            other => other,
        }
    }
    /// Makes the close send a reset instead of a FIN (a refused peer).
    pub(crate) fn reset(&self) {
        let _ = SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
    }
}

/// A bound UDP socket.
/// Resolves a host name with the system resolver, on tokio's blocking pool.
pub(crate) async fn resolve(name: String) -> Result<Vec<IpAddr>, ErrorCode> {
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
    task.await
        .unwrap_or(Err(ErrorCode::PermanentResolverFailure))
}
