//! The seam's socket types. Each is the OS's or the virtual network's, as the instance's [`Net`]
//! chose at creation; each method answers in the WIT's `error-code`, whichever backend ran it.
//! The OS's errors are mapped here, by the table in `crate::error`.

use super::os;
use super::virt::{VDatagram, VListener, VSocket, VStream, VirtOptions, VirtualHost};
use crate::addr::Family;
use crate::error::ErrorCode;
use crate::error::{bind_error, connect_error, create_error, from_io};
use os::SockOptions;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::task::{Context, Poll};
use std::time::Duration;

/// A backend call's outcome: the spec's error code on failure (`would-block` when it would wait).
pub(crate) type NetResult<T> = Result<T, ErrorCode>;

/// An OS call's outcome in the spec's terms.
fn os<T>(r: io::Result<T>) -> NetResult<T> {
    r.map_err(|e| from_io(&e))
}

/// Where an instance's sockets live, chosen once per instance.
#[derive(Clone, Debug, Default)]
pub(crate) enum Net {
    /// The OS's sockets.
    #[default]
    Os,
    /// A host of a virtual network.
    Virtual(VirtualHost),
}

/// A socket's options, on either backend.
pub(crate) enum Opts<'a> {
    Os(&'a dyn SockOptions),
    Virt(&'a VirtOptions),
}

impl Opts<'_> {
    pub(crate) fn keepalive(&self) -> NetResult<bool> {
        match self {
            Opts::Os(s) => os(s.keepalive()),
            Opts::Virt(v) => Ok(v.keepalive()),
        }
    }
    pub(crate) fn set_keepalive(&self, on: bool) -> NetResult<()> {
        match self {
            Opts::Os(s) => os(s.set_keepalive(on)),
            Opts::Virt(v) => {
                v.set_keepalive(on);
                Ok(())
            }
        }
    }
    pub(crate) fn keepalive_idle(&self) -> NetResult<Duration> {
        match self {
            Opts::Os(s) => os(s.keepalive_idle()),
            Opts::Virt(v) => Ok(v.keepalive_idle()),
        }
    }
    /// Sets the idle time alone: keep-alive stays as enabled or disabled as it was.
    pub(crate) fn set_keepalive_idle(&self, d: Duration) -> NetResult<()> {
        match self {
            Opts::Os(s) => os(s.set_keepalive_idle(d)),
            Opts::Virt(v) => {
                v.set_keepalive_idle(d);
                Ok(())
            }
        }
    }
    pub(crate) fn keepalive_interval(&self) -> NetResult<Duration> {
        match self {
            Opts::Os(s) => os(s.keepalive_interval()),
            Opts::Virt(v) => Ok(v.keepalive_interval()),
        }
    }
    /// Sets the interval alone: keep-alive stays as enabled or disabled as it was.
    pub(crate) fn set_keepalive_interval(&self, d: Duration) -> NetResult<()> {
        match self {
            Opts::Os(s) => os(s.set_keepalive_interval(d)),
            Opts::Virt(v) => {
                v.set_keepalive_interval(d);
                Ok(())
            }
        }
    }
    pub(crate) fn keepalive_count(&self) -> NetResult<u32> {
        match self {
            Opts::Os(s) => os(s.keepalive_count()),
            Opts::Virt(v) => Ok(v.keepalive_count()),
        }
    }
    /// Sets the probe count alone: keep-alive stays as enabled or disabled as it was.
    pub(crate) fn set_keepalive_count(&self, n: u32) -> NetResult<()> {
        match self {
            Opts::Os(s) => os(s.set_keepalive_count(n)),
            Opts::Virt(v) => {
                v.set_keepalive_count(n);
                Ok(())
            }
        }
    }
    pub(crate) fn hop_limit(&self) -> NetResult<u8> {
        match self {
            Opts::Os(s) => os(s.hop_limit()),
            Opts::Virt(v) => Ok(v.hop_limit()),
        }
    }
    pub(crate) fn set_hop_limit(&self, n: u8) -> NetResult<()> {
        match self {
            Opts::Os(s) => os(s.set_hop_limit(n)),
            Opts::Virt(v) => {
                v.set_hop_limit(n);
                Ok(())
            }
        }
    }
    /// The receive buffer's size as the guest set it (or the clamp applied).
    pub(crate) fn recv_buffer(&self) -> NetResult<usize> {
        match self {
            Opts::Os(s) => os(s.recv_buffer()),
            Opts::Virt(v) => Ok(v.recv_buffer()),
        }
    }
    pub(crate) fn set_recv_buffer(&self, n: usize) -> NetResult<()> {
        match self {
            Opts::Os(s) => os(s.set_recv_buffer(n)),
            Opts::Virt(v) => {
                v.set_recv_buffer(n);
                Ok(())
            }
        }
    }
    /// The send buffer's size as the guest set it (or the clamp applied).
    pub(crate) fn send_buffer(&self) -> NetResult<usize> {
        match self {
            Opts::Os(s) => os(s.send_buffer()),
            Opts::Virt(v) => Ok(v.send_buffer()),
        }
    }
    pub(crate) fn set_send_buffer(&self, n: usize) -> NetResult<()> {
        match self {
            Opts::Os(s) => os(s.set_send_buffer(n)),
            Opts::Virt(v) => {
                v.set_send_buffer(n);
                Ok(())
            }
        }
    }
}

/// A socket that is neither listening nor connected: the `unbound` and `bound` states.
#[derive(Debug)]
pub(crate) enum RawSocket {
    Os(os::RawSocket),
    Virt(Box<VSocket>),
}

impl RawSocket {
    /// A new TCP socket; `not-supported` for a family the host lacks, `new-socket-limit` when
    /// the host is out of sockets.
    pub(crate) fn tcp(net: &Net, family: Family) -> NetResult<Self> {
        match net {
            Net::Os => os::RawSocket::tcp(family)
                .map(RawSocket::Os)
                .map_err(|e| create_error(&e)),
            Net::Virtual(host) => Ok(RawSocket::Virt(Box::new(VSocket::tcp(host, family)))),
        }
    }

    /// A new UDP socket (errors as [`RawSocket::tcp`]).
    pub(crate) fn udp(net: &Net, family: Family) -> NetResult<Self> {
        match net {
            Net::Os => os::RawSocket::udp(family)
                .map(RawSocket::Os)
                .map_err(|e| create_error(&e)),
            Net::Virtual(host) => Ok(RawSocket::Virt(Box::new(VSocket::udp(host, family)))),
        }
    }

    pub(crate) fn options(&self) -> Opts<'_> {
        match self {
            RawSocket::Os(s) => Opts::Os(s),
            RawSocket::Virt(v) => Opts::Virt(v.options()),
        }
    }

    /// `bind(2)`, errors as `start-bind` lists them.
    pub(crate) fn bind(&self, addr: SocketAddr) -> NetResult<()> {
        match self {
            RawSocket::Os(s) => s.bind(addr).map_err(|e| bind_error(&e)),
            RawSocket::Virt(v) => v.bind(addr),
        }
    }

    pub(crate) fn local_addr(&self) -> NetResult<SocketAddr> {
        match self {
            RawSocket::Os(s) => os(s.local_addr()),
            RawSocket::Virt(v) => v.local_addr(),
        }
    }

    /// `listen(2)`; the socket is spent if it fails.
    pub(crate) fn listen(self, backlog: u32) -> NetResult<Listener> {
        match self {
            RawSocket::Os(s) => os(s.listen(backlog)).map(Listener::Os),
            RawSocket::Virt(v) => v.listen(backlog).map(|l| Listener::Virt(Box::new(l))),
        }
    }

    /// Starts a connect: the stream is usable once [`Stream::try_connected`] is `Ok`. A failure
    /// known at once is returned here, as `finish-connect` reports it.
    pub(crate) fn connect(self, addr: SocketAddr) -> NetResult<Stream> {
        match self {
            RawSocket::Os(s) => s
                .connect(addr)
                .map(Stream::Os)
                .map_err(|e| connect_error(&e)),
            RawSocket::Virt(v) => v.connect(addr).map(|s| Stream::Virt(Box::new(s))),
        }
    }

    /// A bound UDP socket, ready to send and receive.
    pub(crate) fn into_datagram(self) -> NetResult<Datagram> {
        match self {
            RawSocket::Os(s) => os(s.into_datagram()).map(Datagram::Os),
            RawSocket::Virt(v) => v.into_datagram().map(|d| Datagram::Virt(Box::new(d))),
        }
    }
}

/// A listening TCP socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Os(os::Listener),
    Virt(Box<VListener>),
}

impl Listener {
    pub(crate) fn options(&self) -> Opts<'_> {
        match self {
            Listener::Os(l) => Opts::Os(l),
            Listener::Virt(v) => Opts::Virt(v.options()),
        }
    }

    pub(crate) fn local_addr(&self) -> NetResult<SocketAddr> {
        match self {
            Listener::Os(l) => os(l.local_addr()),
            Listener::Virt(v) => Ok(v.local_addr()),
        }
    }

    /// Accepts one pending connection without waiting; `Ok(None)` when none is pending.
    pub(crate) fn try_accept(&self) -> NetResult<Option<(Stream, SocketAddr)>> {
        match self {
            Listener::Os(l) => Ok(os(l.try_accept())?.map(|(s, a)| (Stream::Os(s), a))),
            Listener::Virt(v) => Ok(v.try_accept()?.map(|(s, a)| (Stream::Virt(Box::new(s)), a))),
        }
    }

    /// Waits until a connection is pending (or accepting would fail).
    pub(crate) async fn ready(&self) {
        match self {
            Listener::Os(l) => l.ready().await,
            Listener::Virt(v) => v.ready().await,
        }
    }

    /// Changes the backlog of a listening socket.
    pub(crate) fn set_backlog(&self, backlog: u32) -> NetResult<()> {
        match self {
            Listener::Os(l) => os(l.set_backlog(backlog)),
            Listener::Virt(v) => {
                v.set_backlog(backlog);
                Ok(())
            }
        }
    }
}

/// A TCP stream: connected, or with its connect under way.
#[derive(Debug)]
pub(crate) enum Stream {
    Os(os::Stream),
    Virt(Box<VStream>),
}

impl Stream {
    pub(crate) fn options(&self) -> Opts<'_> {
        match self {
            Stream::Os(s) => Opts::Os(s),
            Stream::Virt(v) => Opts::Virt(v.options()),
        }
    }

    /// Whether the input stream is closed: `shutdown(receive)`, the end of stream, a failed read.
    pub(crate) fn read_closed(&self) -> bool {
        match self {
            Stream::Os(s) => s.read_closed(),
            Stream::Virt(v) => v.read_closed(),
        }
    }

    /// Whether `shutdown` closed the sending half.
    pub(crate) fn write_shut(&self) -> bool {
        match self {
            Stream::Os(s) => s.write_shut(),
            Stream::Virt(v) => v.write_shut(),
        }
    }

    /// `finish-connect`'s check: `Pending` while under way, else whether the connect succeeded.
    pub(crate) fn try_connected(&self) -> Poll<NetResult<()>> {
        match self {
            Stream::Os(s) => s.try_connected().map_err(|e| connect_error(&e)),
            Stream::Virt(v) => v.try_connected(),
        }
    }

    /// Waits until the connect under way has resolved; leaves its outcome to `finish-connect`.
    pub(crate) async fn connected(&self) {
        match self {
            Stream::Os(s) => s.connected().await,
            Stream::Virt(v) => v.connected().await,
        }
    }

    pub(crate) fn local_addr(&self) -> NetResult<SocketAddr> {
        match self {
            Stream::Os(s) => os(s.local_addr()),
            Stream::Virt(v) => Ok(v.local_addr()),
        }
    }

    pub(crate) fn peer_addr(&self) -> NetResult<SocketAddr> {
        match self {
            Stream::Os(s) => os(s.peer_addr()),
            Stream::Virt(v) => Ok(v.peer_addr()),
        }
    }

    /// `TCP_NODELAY` (the virtual network never delays a write).
    pub(crate) fn set_nodelay(&self, on: bool) -> NetResult<()> {
        match self {
            Stream::Os(s) => os(s.set_nodelay(on)),
            Stream::Virt(_) => Ok(()),
        }
    }

    /// Reads up to the buffer's spare capacity: `would-block` when nothing is there, 0 at the
    /// end of stream.
    pub(crate) fn try_read_buf(&self, buf: &mut bytes::BytesMut) -> NetResult<usize> {
        match self {
            Stream::Os(s) => os(s.try_read_buf(buf)),
            Stream::Virt(v) => v.try_read_buf(buf),
        }
    }

    /// Reads into `buf` (0.3's receive: straight into guest memory): `would-block` when
    /// nothing is there, 0 at the end of stream.
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> NetResult<usize> {
        match self {
            Stream::Os(s) => os(s.try_read(buf)),
            Stream::Virt(v) => v.try_read(buf),
        }
    }

    /// Writes what fits without waiting (`would-block` when nothing does).
    pub(crate) fn try_write(&self, buf: &[u8]) -> NetResult<usize> {
        match self {
            Stream::Os(s) => os(s.try_write(buf)),
            Stream::Virt(v) => v.try_write(buf),
        }
    }

    /// `readable` as one poll (`None`: only the async wait can tell; the virtual network's
    /// streams always wait so). `fresh`: this wait saw the stream not ready before.
    pub(crate) fn poll_readable(&self, cx: &mut Context<'_>, fresh: bool) -> Option<Poll<()>> {
        match self {
            Stream::Os(s) => s.poll_readable(cx, fresh),
            Stream::Virt(_) => None,
        }
    }

    /// `writable` as one poll (`None`: only the async wait can tell).
    pub(crate) fn poll_writable(&self, cx: &mut Context<'_>) -> Option<Poll<()>> {
        match self {
            Stream::Os(s) => s.poll_writable(cx),
            Stream::Virt(_) => None,
        }
    }

    /// Waits until a read would return data, the end of stream or an error.
    pub(crate) async fn readable(&self) {
        match self {
            Stream::Os(s) => s.readable().await,
            Stream::Virt(v) => v.readable().await,
        }
    }

    /// Waits until a write would take bytes (or fail).
    pub(crate) async fn writable(&self) {
        match self {
            Stream::Os(s) => s.writable().await,
            Stream::Virt(v) => v.writable().await,
        }
    }

    /// Shuts the given half (or both) down; the halves count as closed even on an error.
    pub(crate) fn shutdown(&self, how: Shutdown) -> NetResult<()> {
        match self {
            Stream::Os(s) => os(s.shutdown(how)),
            Stream::Virt(v) => {
                v.shutdown(how);
                Ok(())
            }
        }
    }

    /// Closes the output stream before its FIN (bytes still wait host-side).
    pub(crate) fn close_output(&self) {
        match self {
            Stream::Os(s) => s.close_output(),
            Stream::Virt(v) => v.close_output(),
        }
    }

    /// Makes the close send a reset instead of a FIN (a refused peer).
    pub(crate) fn reset(&self) {
        match self {
            Stream::Os(s) => s.reset(),
            Stream::Virt(v) => v.reset(),
        }
    }
}

/// A bound UDP socket.
#[derive(Debug)]
pub(crate) enum Datagram {
    Os(os::Datagram),
    Virt(Box<VDatagram>),
}

impl Datagram {
    pub(crate) fn options(&self) -> Opts<'_> {
        match self {
            Datagram::Os(d) => Opts::Os(d),
            Datagram::Virt(v) => Opts::Virt(v.options()),
        }
    }

    pub(crate) fn local_addr(&self) -> NetResult<SocketAddr> {
        match self {
            Datagram::Os(d) => os(d.local_addr()),
            Datagram::Virt(v) => Ok(v.local_addr()),
        }
    }

    /// Receives up to `max` datagrams without waiting, handing each to `each(sender, payload)`
    /// in arrival order; how many, or `would-block` when none is queued.
    pub(crate) fn try_recv_many(
        &self,
        max: usize,
        each: &mut dyn FnMut(SocketAddr, &[u8]),
    ) -> NetResult<usize> {
        match self {
            Datagram::Os(d) => os(d.try_recv_many(max, each)),
            Datagram::Virt(v) => v.try_recv_many(max, each),
        }
    }

    /// Sends `datagrams` in order without waiting: how many went and, if not all, the error
    /// that stopped the next one (`would-block` when the send buffer is full).
    pub(crate) fn try_send_many(
        &self,
        datagrams: &[(SocketAddr, &[u8])],
    ) -> (usize, Option<ErrorCode>) {
        match self {
            Datagram::Os(d) => {
                let (n, e) = d.try_send_many(datagrams);
                (n, e.map(|e| from_io(&e)))
            }
            Datagram::Virt(v) => v.try_send_many(datagrams),
        }
    }

    /// Associates the socket with `to` (errors as `start-connect` lists them).
    pub(crate) fn connect(&self, to: SocketAddr) -> NetResult<()> {
        match self {
            Datagram::Os(d) => d.connect(to).map_err(|e| connect_error(&e)),
            Datagram::Virt(v) => v.connect(to),
        }
    }

    /// Dissolves the association, keeping the socket's port (see the OS's `disconnect` for
    /// `rebind`); whether the port is now held explicitly.
    pub(crate) fn disconnect(&self, rebind: Option<SocketAddr>) -> NetResult<bool> {
        match self {
            Datagram::Os(d) => os(d.disconnect(rebind)),
            Datagram::Virt(v) => {
                v.disconnect();
                Ok(true)
            }
        }
    }

    /// Whether a send would not find the buffer full.
    pub(crate) fn send_ready(&self) -> bool {
        match self {
            Datagram::Os(d) => d.send_ready(),
            Datagram::Virt(_) => true,
        }
    }

    /// Waits until a receive would return a datagram or an error.
    pub(crate) async fn readable(&self) {
        match self {
            Datagram::Os(d) => d.readable().await,
            Datagram::Virt(v) => v.readable().await,
        }
    }

    /// Waits until a send would not find the buffer full.
    pub(crate) async fn writable(&self) {
        match self {
            Datagram::Os(d) => d.writable().await,
            Datagram::Virt(_) => {}
        }
    }
}
