//! `wasi:sockets/types@0.3`, `udp-socket`: each call is the 0.2 state machine's steps for it
//! (`crate::udp`); `send` and `receive` wait on the socket's own stream pair.

use super::p3_types::{from_std, to_std};
use crate::bindings_p3::types::{
    HostUdpSocket, HostUdpSocketWithStore, IpAddressFamily, IpSocketAddress,
};
use crate::ctx::{WasockCtxView, WasockSockets};
use crate::error::SocketResult;
use crate::udp::{Attempt, DatagramReadiness, UdpSocket};
use std::future::Future as _;
use std::task::Poll;
use wasmtime::component::{Accessor, Resource};
use wasmtime_wasi_io::poll::Pollable as _;

/// Waits on `ready` after an attempt found nothing to do. Readiness that holds at once would
/// make the call try again without end and never give the store a turn (a reactor state that
/// never clears): then the other tasks go first, and the call tries again after them.
async fn settle(mut ready: DatagramReadiness) {
    let mut wait = std::pin::pin!(ready.ready());
    let at_once = std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx).is_ready())).await;
    if at_once {
        tokio::task::yield_now().await;
    } else {
        wait.await;
    }
}

impl<T: Send + 'static> HostUdpSocketWithStore<T> for WasockSockets {
    /// `send`: one datagram; waits while the socket's buffer is full or the cap is spent.
    async fn send(
        store: &Accessor<T, Self>,
        this: Resource<UdpSocket>,
        data: Vec<u8>,
        remote_address: Option<IpSocketAddress>,
    ) -> SocketResult<()> {
        let to = remote_address.map(to_std);
        let mut data = data;
        loop {
            let attempt = store.with(|mut access| -> SocketResult<_> {
                access.get().table.get_mut(&this)?.try_send(&mut data, to)
            })?;
            match attempt {
                Attempt::Done(()) => return Ok(()),
                Attempt::Wait(ready) => settle(ready).await,
            }
        }
    }

    /// `receive`: the next datagram the policy lets in; waits for one.
    async fn receive(
        store: &Accessor<T, Self>,
        this: Resource<UdpSocket>,
    ) -> SocketResult<(Vec<u8>, IpSocketAddress)> {
        loop {
            let attempt = store.with(|mut access| -> SocketResult<_> {
                access.get().table.get_mut(&this)?.try_receive()
            })?;
            match attempt {
                Attempt::Done(d) => return Ok((d.data, from_std(d.from))),
                Attempt::Wait(ready) => settle(ready).await,
            }
        }
    }
}

impl HostUdpSocket for WasockCtxView<'_> {
    fn create(&mut self, address_family: IpAddressFamily) -> SocketResult<Resource<UdpSocket>> {
        let sock = UdpSocket::new(&self.ctx.gate, address_family.into())?;
        Ok(self.table.push(sock)?)
    }

    fn bind(
        &mut self,
        this: Resource<UdpSocket>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get_mut(&this)?.bind(to_std(local_address))
    }

    fn connect(
        &mut self,
        this: Resource<UdpSocket>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get_mut(&this)?.connect(to_std(remote_address))
    }

    fn disconnect(&mut self, this: Resource<UdpSocket>) -> SocketResult<()> {
        self.table.get_mut(&this)?.disconnect()
    }

    fn get_local_address(&mut self, this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(from_std(self.table.get(&this)?.local_address()?))
    }

    fn get_remote_address(&mut self, this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(from_std(self.table.get(&this)?.remote_address()?))
    }

    fn get_address_family(
        &mut self,
        this: Resource<UdpSocket>,
    ) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&this)?.family().into())
    }

    fn get_unicast_hop_limit(&mut self, this: Resource<UdpSocket>) -> SocketResult<u8> {
        self.table.get(&this)?.unicast_hop_limit()
    }

    fn set_unicast_hop_limit(&mut self, this: Resource<UdpSocket>, value: u8) -> SocketResult<()> {
        self.table.get(&this)?.set_unicast_hop_limit(value)
    }

    fn get_receive_buffer_size(&mut self, this: Resource<UdpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.receive_buffer_size()
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<UdpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_receive_buffer_size(value)
    }

    fn get_send_buffer_size(&mut self, this: Resource<UdpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.send_buffer_size()
    }

    fn set_send_buffer_size(&mut self, this: Resource<UdpSocket>, value: u64) -> SocketResult<()> {
        self.table.get(&this)?.set_send_buffer_size(value)
    }

    fn drop(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
