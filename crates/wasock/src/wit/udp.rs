//! `wasi:sockets/udp`.

use super::detached_pollable;
use super::network::{from_std, to_std};
use crate::bindings::network::{IpAddressFamily, IpSocketAddress, Network};
use crate::bindings::udp::{
    Host, HostIncomingDatagramStream, HostOutgoingDatagramStream, HostUdpSocket, IncomingDatagram,
    OutgoingDatagram,
};
use crate::ctx::WasockCtxView;
use crate::error::SocketResult;
use crate::udp::{self, IncomingDatagramStream, OutgoingDatagramStream, UdpReadiness, UdpSocket};
use wasmtime::component::Resource;
use wasmtime_wasi_io::poll::DynPollable;

impl Host for WasockCtxView<'_> {}

impl HostUdpSocket for WasockCtxView<'_> {
    fn start_bind(
        &mut self,
        this: Resource<UdpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let net = self.table.get(&network)?.id;
        self.table
            .get_mut(&this)?
            .start_bind(net, to_std(local_address))
    }

    fn finish_bind(&mut self, this: Resource<UdpSocket>) -> SocketResult<()> {
        self.table.get_mut(&this)?.finish_bind()
    }

    fn stream(
        &mut self,
        this: Resource<UdpSocket>,
        remote_address: Option<IpSocketAddress>,
    ) -> SocketResult<(
        Resource<IncomingDatagramStream>,
        Resource<OutgoingDatagramStream>,
    )> {
        let (incoming, outgoing) = self
            .table
            .get_mut(&this)?
            .stream(remote_address.map(to_std))?;
        Ok((self.table.push(incoming)?, self.table.push(outgoing)?))
    }

    fn local_address(&mut self, this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(from_std(self.table.get(&this)?.local_address()?))
    }

    fn remote_address(&mut self, this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(from_std(self.table.get(&this)?.remote_address()?))
    }

    fn address_family(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&this)?.family().into())
    }

    fn unicast_hop_limit(&mut self, this: Resource<UdpSocket>) -> SocketResult<u8> {
        self.table.get(&this)?.unicast_hop_limit()
    }

    fn set_unicast_hop_limit(&mut self, this: Resource<UdpSocket>, value: u8) -> SocketResult<()> {
        self.table.get(&this)?.set_unicast_hop_limit(value)
    }

    fn receive_buffer_size(&mut self, this: Resource<UdpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.receive_buffer_size()
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<UdpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_receive_buffer_size(value)
    }

    fn send_buffer_size(&mut self, this: Resource<UdpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.send_buffer_size()
    }

    fn set_send_buffer_size(&mut self, this: Resource<UdpSocket>, value: u64) -> SocketResult<()> {
        self.table.get(&this)?.set_send_buffer_size(value)
    }

    fn subscribe(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        self.table.get(&this)?;
        detached_pollable(self.table, UdpReadiness)
    }

    /// Dropping the socket leaves its datagram streams working.
    fn drop(&mut self, rep: Resource<UdpSocket>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl HostIncomingDatagramStream for WasockCtxView<'_> {
    fn receive(
        &mut self,
        this: Resource<IncomingDatagramStream>,
        max_results: u64,
    ) -> SocketResult<Vec<IncomingDatagram>> {
        let got = self.table.get_mut(&this)?.receive(max_results)?;
        Ok(got
            .into_iter()
            .map(|d| IncomingDatagram {
                data: d.data,
                remote_address: from_std(d.from),
            })
            .collect())
    }

    fn subscribe(
        &mut self,
        this: Resource<IncomingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let waiter = self.table.get(&this)?.readiness();
        detached_pollable(self.table, waiter)
    }

    fn drop(&mut self, rep: Resource<IncomingDatagramStream>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl HostOutgoingDatagramStream for WasockCtxView<'_> {
    fn check_send(&mut self, this: Resource<OutgoingDatagramStream>) -> SocketResult<u64> {
        self.table.get_mut(&this)?.check_send()
    }

    fn send(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
        datagrams: Vec<OutgoingDatagram>,
    ) -> SocketResult<u64> {
        let datagrams = datagrams
            .into_iter()
            .map(|d| udp::OutgoingDatagram {
                data: d.data,
                to: d.remote_address.map(to_std),
            })
            .collect::<Vec<_>>();
        self.table.get_mut(&this)?.send(&datagrams)
    }

    fn subscribe(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let waiter = self.table.get(&this)?.readiness();
        detached_pollable(self.table, waiter)
    }

    fn drop(&mut self, rep: Resource<OutgoingDatagramStream>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}
