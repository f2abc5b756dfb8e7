//! UDP sockets, batched through quinn-udp: runs of equal-size datagrams to one peer leave in one
//! `sendmsg` with GSO where the kernel has it, and receives take up to a batch per `recvmmsg`,
//! with GRO: a slot can bring a sender's whole GSO run, split here into its datagrams.

use super::{SockOptions, no_wait, nonblocking, set_int};
use crate::addr::Family;
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use socket2::SockRef;
use std::cell::RefCell;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::Poll;
use tokio::io::Interest;
use tokio::io::Ready;

/// One receive slot: room for the largest UDP payload, so nothing is ever truncated.
const SLOT: usize = 1 << 16;
/// Datagrams one `recvmmsg` takes at most.
const RECV_BATCH: usize = quinn_udp::BATCH_SIZE;
/// Most payload bytes one GSO `sendmsg` carries (under the 64 KiB an IP packet can hold).
const MAX_GSO_BYTES: usize = 60 * 1024;
/// Most datagrams the kernel coalesces into one GRO buffer (its `UDP_GRO_CNT_MAX`).
const MAX_GRO_SEGMENTS: usize = 64;

/// What a receive waits for and, finding nothing, clears: a datagram or a pending error.
const RECV_INTEREST: Interest = Interest::READABLE.add(Interest::ERROR);

thread_local! {
    /// Receive slots, shared by every socket this thread serves (calls are synchronous).
    static RECV_SLOTS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// A GSO run's payloads laid end to end.
    static SEND_RUN: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A bound UDP socket registered with the reactor.
#[derive(Debug)]
pub(crate) struct Datagram {
    sock: tokio::net::UdpSocket,
    state: UdpSocketState,
    family: Family,
    /// Datagrams per filled slot in the last receive (1 without GRO): sizes the next one's
    /// slots, so that a receive takes about what it was asked for.
    per_slot: AtomicUsize,
}

impl SockOptions for Datagram {
    fn sock(&self) -> SockRef<'_> {
        SockRef::from(&self.sock)
    }
    fn family(&self) -> Family {
        self.family
    }
}

impl Datagram {
    /// Wraps a bound socket. quinn-udp's set-up asks for QUIC's options; the ones that change
    /// what a plain UDP program sees are put back: fragmentation as the OS does it (no
    /// don't-fragment) and no receive timestamps. GRO stays on where the kernel has it: a
    /// coalesced buffer is split back into the sender's datagrams by [`Self::try_recv_many`].
    pub(super) fn new(sock: std::net::UdpSocket, family: Family) -> io::Result<Self> {
        let state = UdpSocketState::new(UdpSockRef::from(&sock))?;
        let fd = sock.as_raw_fd();
        match family {
            Family::Ipv4 => set_int(
                fd,
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_WANT,
            )?,
            Family::Ipv6 => {
                set_int(
                    fd,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MTU_DISCOVER,
                    libc::IPV6_PMTUDISC_WANT,
                )?;
                set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 0)?;
            }
        }
        // Control messages WASI has no field for would cost kernel work on every datagram.
        let _ = set_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 0);
        let _ = match family {
            Family::Ipv4 => set_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 0).and(set_int(
                fd,
                libc::IPPROTO_IP,
                libc::IP_RECVTOS,
                0,
            )),
            Family::Ipv6 => set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 0)
                .and(set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, 0)),
        };
        let sock = tokio::net::UdpSocket::from_std(sock)?;
        Ok(Datagram {
            sock,
            state,
            family,
            per_slot: AtomicUsize::new(1),
        })
    }

    /// Receives about `max` datagrams without waiting, handing each to `each(sender, payload)`
    /// in arrival order; how many, or `WouldBlock` when none is queued. A GRO buffer is handed
    /// whole, split into its datagrams, so more than `max` may come: the caller keeps the rest.
    pub(crate) fn try_recv_many(
        &self,
        max: usize,
        each: &mut dyn FnMut(SocketAddr, &[u8]),
    ) -> io::Result<usize> {
        let per_slot = self.per_slot.load(Relaxed).max(1);
        let slots = max.div_ceil(per_slot).clamp(1, RECV_BATCH);
        RECV_SLOTS.with_borrow_mut(|buf| {
            if buf.len() < slots * SLOT {
                buf.resize(slots * SLOT, 0);
            }
            let mut chunks = buf.chunks_mut(SLOT);
            let mut iovs: [IoSliceMut<'_>; RECV_BATCH] =
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
            let mut meta = [RecvMeta::default(); RECV_BATCH];
            let n = nonblocking(
                |f| self.sock.try_io(RECV_INTEREST, f),
                || {
                    let sock = UdpSockRef::from(&self.sock);
                    self.state
                        .recv(sock, &mut iovs[..slots], &mut meta[..slots])
                },
            )?;
            let mut count = 0;
            for (m, iov) in meta.iter().zip(&iovs).take(n) {
                let payload = &iov[..m.len.min(SLOT)];
                count += split_gro(payload, m.stride, &mut |d| each(m.addr, d));
            }
            let seen = (count / n.max(1)).clamp(1, MAX_GRO_SEGMENTS);
            self.per_slot.store(seen, Relaxed);
            Ok(count)
        })
    }

    /// Sends `datagrams` in order without waiting: how many went and, if not all, the error
    /// that stopped the next one (`WouldBlock` when the send buffer is full).
    pub(crate) fn try_send_many(
        &self,
        datagrams: &[(SocketAddr, &[u8])],
    ) -> (usize, Option<io::Error>) {
        let max_run = self.state.max_gso_segments().max(1);
        let mut sent = 0;
        while let Some(&(to, first)) = datagrams.get(sent) {
            let by_size = match first.len() {
                0 => 1,
                len => (MAX_GSO_BYTES / len).max(1),
            };
            let run = datagrams[sent..]
                .iter()
                .take(max_run.min(by_size))
                .take_while(|(t, d)| *t == to && d.len() == first.len())
                .count()
                .max(1);
            let result = match run {
                1 => self.try_transmit(to, first, None),
                _ => SEND_RUN.with_borrow_mut(|contents| {
                    contents.clear();
                    for (_, d) in &datagrams[sent..sent + run] {
                        contents.extend_from_slice(d);
                    }
                    self.try_transmit(to, contents, Some(first.len()))
                }),
            };
            match result {
                Ok(()) => sent += run,
                // One at a time from here, so that exactly the datagrams before a failure go.
                Err(e) if run > 1 && e.kind() != io::ErrorKind::WouldBlock => {
                    for &(to, d) in &datagrams[sent..sent + run] {
                        if let Err(e) = self.try_transmit(to, d, None) {
                            return (sent, Some(e));
                        }
                        sent += 1;
                    }
                }
                Err(e) => return (sent, Some(e)),
            }
        }
        (sent, None)
    }

    /// One datagram with `sendto`, or a run of `segment`-byte datagrams in one GSO `sendmsg`.
    fn try_transmit(
        &self,
        to: SocketAddr,
        contents: &[u8],
        segment: Option<usize>,
    ) -> io::Result<()> {
        if segment.is_none() {
            let to = to.into();
            // A datagram goes whole or not at all.
            return nonblocking(
                |f| self.sock.try_io(Interest::WRITABLE, f),
                || SockRef::from(&self.sock).send_to_with_flags(contents, &to, libc::MSG_NOSIGNAL),
            )
            .map(|_| ());
        }
        let transmit = Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size: segment,
            src_ip: None,
        };
        nonblocking(
            |f| self.sock.try_io(Interest::WRITABLE, f),
            || self.state.try_send(UdpSockRef::from(&self.sock), &transmit),
        )
    }

    /// `connect(2)`: the kernel then takes datagrams only from `to`, reports its ICMP errors
    /// (`connection-refused`) on the next call, and narrows the local address to the route's.
    pub(crate) fn connect(&self, to: SocketAddr) -> io::Result<()> {
        SockRef::from(&self.sock).connect(&to.into())
    }

    /// `connect(AF_UNSPEC)`: dissolves the association. Linux then releases a port that was
    /// not bound explicitly; `rebind` (the address as bound, with its port) takes it straight
    /// back, explicitly this time, so that it survives every later disconnect. Whether the
    /// port is now held explicitly.
    ///
    /// Between the two calls another socket could take the port (microseconds, once per
    /// socket): the socket then binds a fresh port rather than stay unbound.
    pub(crate) fn disconnect(&self, rebind: Option<SocketAddr>) -> io::Result<bool> {
        // SAFETY: all-zero is a valid `sockaddr`.
        let mut unspec: libc::sockaddr = unsafe { std::mem::zeroed() };
        unspec.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
        // SAFETY: a valid fd and a `sockaddr` of the length given.
        let rc = unsafe {
            libc::connect(
                self.sock.as_raw_fd(),
                &unspec,
                size_of::<libc::sockaddr>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let Some(addr) = rebind else {
            return Ok(true);
        };
        let sock = SockRef::from(&self.sock);
        match sock.bind(&addr.into()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                tracing::warn!(
                    port = addr.port(),
                    "a disconnected UDP socket's port was taken; it binds a fresh one"
                );
                sock.bind(&SocketAddr::new(addr.ip(), 0).into())?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the socket is writable now (after a full buffer: whether it drained).
    pub(crate) fn send_ready(&self) -> bool {
        matches!(self.sock.poll_send_ready(&mut no_wait()), Poll::Ready(_))
    }

    /// Waits until a receive would return a datagram or an error (a connected socket's
    /// ICMP error is reported by the next receive). A datagram socket is never closed for
    /// reading, but some kernels (gVisor's, after a `disconnect`) report a hang-up, which the
    /// reactor keeps as a final state: every wait would end at once, and a 0.3 `receive` would
    /// spin without a turn for the store. Such readiness is polled at an interval instead.
    pub(crate) async fn readable(&self) {
        if let Ok(ready) = self.sock.ready(RECV_INTEREST).await {
            let news = ready - Ready::READ_CLOSED - Ready::WRITE_CLOSED;
            if news.is_empty() {
                tokio::time::sleep(super::UNREGISTERED_POLL).await;
            }
        }
    }

    pub(crate) async fn writable(&self) {
        let _ = self.sock.writable().await;
    }
}

/// Rule: a GRO buffer is its sender's datagrams of `stride` bytes laid end to end, the last
/// one possibly shorter; a buffer without GRO (`stride` 0 or at least its length) is one
/// datagram, an empty one included. How many datagrams `each` was handed.
fn split_gro(payload: &[u8], stride: usize, each: &mut dyn FnMut(&[u8])) -> usize {
    if stride == 0 || stride >= payload.len() {
        each(payload);
        return 1;
    }
    let mut n = 0;
    for d in payload.chunks(stride) {
        each(d);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn bound(family: Family) -> (Datagram, SocketAddr) {
        let ip = match family {
            Family::Ipv4 => "127.0.0.1:0",
            Family::Ipv6 => "[::1]:0",
        };
        let sock = std::net::UdpSocket::bind(ip).unwrap();
        let addr = sock.local_addr().unwrap();
        (Datagram::new(sock, family).unwrap(), addr)
    }

    /// Receives until `n` datagrams arrived (bounded by count and time).
    fn drain(rx: &Datagram, n: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < n && Instant::now() < deadline {
            let ask = n - got.len();
            match rx.try_recv_many(ask, &mut |from, d| got.push((from, d.to_vec()))) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        got
    }

    #[tokio::test]
    async fn runs_of_equal_datagrams_arrive_whole_and_in_order() {
        for family in [Family::Ipv4, Family::Ipv6] {
            let (tx, from) = bound(family);
            let (rx, to) = bound(family);
            let other = bound(family).1;
            // 100 equal datagrams (GSO runs), then mixed sizes, an empty one, a second peer.
            let mut payloads: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 64]).collect();
            payloads.extend([
                vec![1; 10],
                vec![2; 1000],
                vec![],
                vec![3; 1000],
                vec![4; 999],
            ]);
            let batch: Vec<(SocketAddr, &[u8])> = payloads
                .iter()
                .enumerate()
                .map(|(i, d)| (if i == 102 { other } else { to }, &d[..]))
                .collect();
            let (sent, err) = tx.try_send_many(&batch);
            assert_eq!((sent, err.map(|e| e.kind())), (batch.len(), None));
            let got = drain(&rx, batch.len() - 1);
            assert_eq!(got.len(), batch.len() - 1);
            let expect: Vec<&Vec<u8>> = payloads
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 102)
                .map(|(_, d)| d)
                .collect();
            for ((sender, data), want) in got.iter().zip(expect) {
                assert_eq!(*sender, from);
                assert_eq!(data, want);
            }
        }
    }

    #[tokio::test]
    async fn the_largest_datagram_goes_and_a_larger_one_fails_alone() {
        let (tx, _) = bound(Family::Ipv4);
        let (rx, to) = bound(Family::Ipv4);
        rx.set_recv_buffer(1 << 20).unwrap();
        let max = vec![7u8; 65_507];
        let over = vec![8u8; 65_508];
        let (sent, err) = tx.try_send_many(&[(to, &max), (to, &over), (to, &max)]);
        assert_eq!(sent, 1);
        assert_eq!(err.and_then(|e| e.raw_os_error()), Some(libc::EMSGSIZE));
        let got = drain(&rx, 1);
        assert_eq!(got[0].1.len(), 65_507, "never truncated");
    }

    #[tokio::test]
    async fn a_disconnect_keeps_a_port_given_for_port_0() {
        for (family, any) in [(Family::Ipv4, "0.0.0.0:0"), (Family::Ipv6, "[::]:0")] {
            let sock = std::net::UdpSocket::bind(any).unwrap();
            let was = sock.local_addr().unwrap();
            let a = Datagram::new(sock, family).unwrap();
            let (_peer, to) = bound(family);
            a.connect(to).unwrap();
            let narrowed = a.local_addr().unwrap();
            assert_eq!((narrowed.ip(), narrowed.port()), (to.ip(), was.port()));
            assert!(
                a.disconnect(Some(was)).unwrap(),
                "the port is held explicitly now"
            );
            assert_eq!(a.local_addr().unwrap(), was);
            a.connect(to).unwrap();
            assert!(a.disconnect(None).unwrap());
            assert_eq!(a.local_addr().unwrap(), was, "an explicit port survives");
        }
    }

    #[test]
    fn a_gro_buffer_splits_into_its_datagrams() {
        let payload: Vec<u8> = (0..25).collect();
        let mut got = Vec::new();
        assert_eq!(split_gro(&payload, 10, &mut |d| got.push(d.to_vec())), 3);
        assert_eq!(got, [&payload[..10], &payload[10..20], &payload[20..]]);
        for stride in [0, 25, 30] {
            let mut got = Vec::new();
            assert_eq!(
                split_gro(&payload, stride, &mut |d| got.push(d.to_vec())),
                1
            );
            assert_eq!(got, [&payload[..]], "stride {stride}: one datagram");
        }
        let mut got = Vec::new();
        assert_eq!(split_gro(&[], 0, &mut |d| got.push(d.to_vec())), 1);
        assert_eq!(got, [Vec::<u8>::new()], "an empty datagram is one too");
    }

    #[tokio::test]
    async fn a_gso_run_arrives_as_one_gro_buffer_and_comes_whole() {
        let (tx, from) = bound(Family::Ipv4);
        let (rx, to) = bound(Family::Ipv4);
        let payloads: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 200]).collect();
        let batch: Vec<(SocketAddr, &[u8])> = payloads.iter().map(|d| (to, &d[..])).collect();
        assert_eq!(tx.try_send_many(&batch).0, 64);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let n = loop {
            match rx.try_recv_many(1, &mut |sender, d| got.push((sender, d.to_vec()))) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(n, 64, "one slot, the whole run");
        assert!(got.iter().all(|(sender, _)| *sender == from));
        assert!(got.iter().map(|(_, d)| d).eq(&payloads));
    }

    #[tokio::test]
    async fn nothing_queued_is_would_block() {
        let (rx, _) = bound(Family::Ipv4);
        let err = rx.try_recv_many(64, &mut |_, _| panic!("nothing was sent"));
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }
}
