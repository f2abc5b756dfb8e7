//! Virtual UDP: each bound socket has an inbox bounded by its receive buffer; a datagram that
//! finds no room, or no socket, is lost, as on a real network. A connected socket hears of a
//! datagram of its that reached no socket (`connection-refused` on its next receive, as Linux
//! reports the ICMP error).

use super::{Path, PortLease, Role, VirtOptions, VirtualHost, Wakers};
use crate::error::ErrorCode;
use bytes::Bytes;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

/// Largest payload of an IPv4 datagram (65535 − 20-byte IP header − 8-byte UDP header).
const MAX_V4: usize = 65_507;
/// Largest payload of an IPv6 datagram (65535 − 8-byte UDP header).
const MAX_V6: usize = 65_527;

/// Where datagrams to one socket wait.
#[derive(Default)]
pub(crate) struct Inbox {
    state: Mutex<InboxState>,
}

#[derive(Default)]
struct InboxState {
    queue: VecDeque<(SocketAddr, Bytes)>,
    bytes: usize,
    cap: usize,
    /// The peer a connected socket takes datagrams from.
    peer: Option<SocketAddr>,
    /// An error for the next receive (a refused datagram of a connected socket).
    error: Option<ErrorCode>,
    readers: Wakers,
}

impl Inbox {
    fn state(&self) -> MutexGuard<'_, InboxState> {
        crate::sync::lock(&self.state)
    }

    /// Queues a datagram from `from` if the socket takes it and there is room.
    fn deliver(&self, from: SocketAddr, data: &[u8]) {
        let mut st = self.state();
        if st.peer.is_some_and(|p| p != from) || st.bytes + data.len() > st.cap {
            return;
        }
        st.bytes += data.len();
        st.queue.push_back((from, Bytes::copy_from_slice(data)));
        st.readers.wake_all();
    }

    fn fail(&self, code: ErrorCode) {
        let mut st = self.state();
        st.error = Some(code);
        st.readers.wake_all();
    }
}

/// Delivers a datagram after `delay` (at once for none, or with no runtime to wait on).
fn deliver_after(delay: Duration, inbox: &Arc<Inbox>, from: SocketAddr, data: &[u8]) {
    let runtime = tokio::runtime::Handle::try_current();
    match runtime {
        Ok(rt) if !delay.is_zero() => {
            let (inbox, data) = (Arc::downgrade(inbox), Bytes::copy_from_slice(data));
            drop(rt.spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(inbox) = inbox.upgrade() {
                    inbox.deliver(from, &data);
                }
            }));
        }
        _ => inbox.deliver(from, data),
    }
}

/// A bound virtual UDP socket.
pub(crate) struct VDatagram {
    inbox: Arc<Inbox>,
    host: VirtualHost,
    lease: PortLease,
    /// The local address now: the bound one, narrowed to the route's source while connected.
    local: Mutex<SocketAddr>,
    opts: VirtOptions,
}

impl std::fmt::Debug for VDatagram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VDatagram({})", self.lease.addr)
    }
}

impl VDatagram {
    /// Gives the socket bound by `lease` its inbox; from now on datagrams reach it.
    pub(super) fn new(host: &VirtualHost, lease: PortLease, opts: VirtOptions) -> Self {
        let inbox = Arc::new(Inbox::default());
        inbox.state().cap = opts.recv_buffer();
        // The lease is this socket's own: setting a UDP role cannot conflict.
        let _ = lease.set_role(Role::Udp(Arc::downgrade(&inbox)));
        VDatagram {
            inbox,
            host: host.clone(),
            local: Mutex::new(lease.addr),
            lease,
            opts,
        }
    }

    pub(crate) fn options(&self) -> &VirtOptions {
        &self.opts
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        *crate::sync::lock(&self.local)
    }

    /// Receives up to `max` datagrams without waiting; a pending error first; `would-block`
    /// when none is queued.
    pub(crate) fn try_recv_many(
        &self,
        max: usize,
        each: &mut dyn FnMut(SocketAddr, &[u8]),
    ) -> Result<usize, ErrorCode> {
        let taken: Vec<(SocketAddr, Bytes)> = {
            let mut st = self.inbox.state();
            st.cap = self.opts.recv_buffer();
            if let Some(code) = st.error.take() {
                return Err(code);
            }
            if st.queue.is_empty() {
                return Err(ErrorCode::WouldBlock);
            }
            let n = max.max(1).min(st.queue.len());
            let taken: Vec<_> = st.queue.drain(..n).collect();
            st.bytes -= taken.iter().map(|(_, d)| d.len()).sum::<usize>();
            taken
        };
        for (from, data) in &taken {
            each(*from, data);
        }
        Ok(taken.len())
    }

    /// Sends in order: how many went and the error that stopped the next one. Too large is
    /// `datagram-too-large`, no route `remote-unreachable`; a datagram nobody takes is lost.
    pub(crate) fn try_send_many(
        &self,
        datagrams: &[(SocketAddr, &[u8])],
    ) -> (usize, Option<ErrorCode>) {
        let local = self.local_addr();
        let connected = crate::sync::lock(&self.inbox.state).peer;
        for (sent, &(to, data)) in datagrams.iter().enumerate() {
            let max = if to.is_ipv4() { MAX_V4 } else { MAX_V6 };
            if data.len() > max {
                return (sent, Some(ErrorCode::DatagramTooLarge));
            }
            let mut w = self.host.world();
            let Some(target) = w.route(self.host.id, to.ip()) else {
                return (sent, Some(ErrorCode::RemoteUnreachable));
            };
            let from = self.host.narrowed(local, to.ip());
            // The path's faults, each drawn in send order from the network's generator.
            let faults = w.faults(self.host.id, target);
            let path = w.path(self.host.id, target);
            let cut = path.as_deref().is_some_and(Path::is_cut);
            let lost = cut || w.chance(faults.loss);
            let copies = if lost {
                0
            } else if w.chance(faults.duplicate) {
                2
            } else {
                1
            };
            if copies != 1 {
                let fault = match (cut, copies) {
                    (true, _) => super::Fault::Cut,
                    (false, 0) => super::Fault::Lost,
                    _ => super::Fault::Duplicated,
                };
                w.observe(fault, from, to, data.len());
            }
            if lost {
                continue;
            }
            let jitters: Vec<Duration> = (0..copies).map(|_| w.jitter(faults.jitter)).collect();
            let dir = super::World::direction(self.host.id, target);
            let inbox = w.udp_inbox(target, to);
            drop(w);
            let Some(inbox) = inbox else {
                if connected == Some(to) {
                    self.inbox.fail(ErrorCode::ConnectionRefused);
                }
                continue;
            };
            let now = tokio::time::Instant::now();
            for jitter in jitters {
                // Latency and the link's queue (bandwidth), then this datagram's own jitter.
                let arrives = path
                    .as_deref()
                    .map_or(now, |p| p.arrival(dir, data.len(), now));
                deliver_after(arrives - now + jitter, &inbox, from, data);
            }
        }
        (datagrams.len(), None)
    }

    /// Takes datagrams only from `to`, and narrows the local address to the route's source.
    pub(crate) fn connect(&self, to: SocketAddr) -> Result<(), ErrorCode> {
        if self.host.world().route(self.host.id, to.ip()).is_none() {
            return Err(ErrorCode::RemoteUnreachable);
        }
        *crate::sync::lock(&self.local) = self.host.narrowed(self.lease.addr, to.ip());
        self.inbox.state().peer = Some(to);
        Ok(())
    }

    /// Dissolves the association; the socket keeps its port (it is never released here).
    pub(crate) fn disconnect(&self) {
        *crate::sync::lock(&self.local) = self.lease.addr;
        let mut st = self.inbox.state();
        st.peer = None;
        st.error = None;
    }

    /// Waits until a receive would return a datagram or an error.
    pub(crate) async fn readable(&self) {
        poll_fn(|cx| {
            let mut st = self.inbox.state();
            if st.error.is_some() || !st.queue.is_empty() {
                return Poll::Ready(());
            }
            st.readers.register(cx.waker());
            Poll::Pending
        })
        .await
    }
}
