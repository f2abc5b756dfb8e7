//! `wasi:sockets/tcp`.

use super::detached_pollable;
use super::network::{from_std, to_std};
use crate::bindings::network::{IpAddressFamily, IpSocketAddress, Network};
use crate::bindings::tcp::{Host, HostTcpSocket, ShutdownType};
use crate::ctx::WasockCtxView;
use crate::error::SocketResult;
use crate::tcp::{StreamPair, TcpSocket};
use std::net::Shutdown;
use wasmtime::component::Resource;
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream};

type Streams = (Resource<DynInputStream>, Resource<DynOutputStream>);

/// Pushes a connection's streams, noting them for wasock's `wasi:io/poll`.
fn push_streams(
    view: &mut WasockCtxView<'_>,
    (reader, writer): StreamPair,
) -> SocketResult<Streams> {
    let conn = reader.conn().clone();
    let input: DynInputStream = Box::new(reader);
    let output: DynOutputStream = Box::new(writer);
    let (input, output) = (view.table.push(input)?, view.table.push(output)?);
    view.ctx
        .ready
        .streams_made(input.rep(), output.rep(), &conn);
    Ok((input, output))
}

impl Host for WasockCtxView<'_> {}

impl HostTcpSocket for WasockCtxView<'_> {
    fn start_bind(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let net = self.table.get(&network)?.id;
        self.table
            .get_mut(&this)?
            .start_bind(net, to_std(local_address))
    }

    fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.table.get_mut(&this)?.finish_bind()
    }

    fn start_connect(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let net = self.table.get(&network)?.id;
        self.table
            .get_mut(&this)?
            .start_connect(net, to_std(remote_address))
    }

    fn finish_connect(&mut self, this: Resource<TcpSocket>) -> SocketResult<Streams> {
        let pair = self.table.get_mut(&this)?.finish_connect()?;
        push_streams(self, pair)
    }

    fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.table.get_mut(&this)?.start_listen()
    }

    fn finish_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.table.get_mut(&this)?.finish_listen()
    }

    fn accept(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(
        Resource<TcpSocket>,
        Resource<DynInputStream>,
        Resource<DynOutputStream>,
    )> {
        let (socket, pair) = self.table.get_mut(&this)?.accept()?;
        let socket = self.table.push(socket)?;
        let (input, output) = push_streams(self, pair)?;
        Ok((socket, input, output))
    }

    fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(from_std(self.table.get(&this)?.local_address()?))
    }

    fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(from_std(self.table.get(&this)?.remote_address()?))
    }

    fn is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&this)?.is_listening())
    }

    fn address_family(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&this)?.family().into())
    }

    fn set_listen_backlog_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.table.get_mut(&this)?.set_listen_backlog_size(value)
    }

    fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool> {
        self.table.get(&this)?.keep_alive_enabled()
    }

    fn set_keep_alive_enabled(
        &mut self,
        this: Resource<TcpSocket>,
        value: bool,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_keep_alive_enabled(value)
    }

    fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.keep_alive_idle_time()
    }

    fn set_keep_alive_idle_time(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_keep_alive_idle_time(value)
    }

    fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.keep_alive_interval()
    }

    fn set_keep_alive_interval(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_keep_alive_interval(value)
    }

    fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32> {
        self.table.get(&this)?.keep_alive_count()
    }

    fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()> {
        self.table.get(&this)?.set_keep_alive_count(value)
    }

    fn hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8> {
        self.table.get(&this)?.hop_limit()
    }

    fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        self.table.get(&this)?.set_hop_limit(value)
    }

    fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.receive_buffer_size()
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_receive_buffer_size(value)
    }

    fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.send_buffer_size()
    }

    fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        self.table.get(&this)?.set_send_buffer_size(value)
    }

    fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        let waiter = self.table.get_mut(&this)?.readiness();
        detached_pollable(self.table, waiter)
    }

    fn shutdown(&mut self, this: Resource<TcpSocket>, how: ShutdownType) -> SocketResult<()> {
        let how = match how {
            ShutdownType::Receive => Shutdown::Read,
            ShutdownType::Send => Shutdown::Write,
            ShutdownType::Both => Shutdown::Both,
        };
        self.table.get(&this)?.shutdown(how)
    }

    /// Dropping the socket leaves its streams working (see `tcp::streams`).
    fn drop(&mut self, rep: Resource<TcpSocket>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}
