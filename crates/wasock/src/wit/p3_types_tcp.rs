//! `wasi:sockets/types@0.3`, `tcp-socket`: each call is the 0.2 state machine's steps for it
//! (`crate::tcp`), and the streams are `crate::tcp`'s one-copy producer and consumer.

use super::p3_types::{from_std, to_std};
use crate::bindings_p3::types::{
    Duration, ErrorCode, HostTcpSocket, HostTcpSocketWithStore, IpAddressFamily, IpSocketAddress,
};
use crate::ctx::{WasockCtxView, WasockSockets};
use crate::error::{self, SocketResult};
use crate::tcp::{AcceptStream, Ending, ReceiveStream, SendStream, TcpSocket};
use wasmtime::component::{Access, Accessor, FutureReader, Resource, StreamReader};
use wasmtime_wasi_io::poll::Pollable as _;

/// The future a `send` or `receive` returns: how its stream ended, as 0.3 names it.
fn ending<T>(
    store: &mut Access<'_, T, WasockSockets>,
    ending: Result<Ending, error::ErrorCode>,
) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
    FutureReader::new(store, async move {
        let how = match ending {
            Ok(rx) => rx.await.unwrap_or(Ok(())),
            Err(code) => Err(code),
        };
        wasmtime::error::Ok(how.map_err(ErrorCode::from))
    })
}

/// The code of a refused `send` or `receive` (`invalid-state`, never a trap, reaches the future).
fn refused(e: error::SocketError) -> wasmtime::Result<error::ErrorCode> {
    match e {
        error::SocketError::Code(code) => Ok(code),
        error::SocketError::Trap(e) => Err(e),
    }
}

impl<T: Send + 'static> HostTcpSocketWithStore<T> for WasockSockets {
    /// `connect`: 0.2's `start-connect`, then `finish-connect` each time the socket is ready.
    async fn connect(
        store: &Accessor<T, Self>,
        this: Resource<TcpSocket>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let remote = to_std(remote_address);
        store.with(|mut access| access.get().table.get_mut(&this)?.connect_start(remote))?;
        // On loopback the connect has usually resolved already: the readiness to wait on is
        // made only when it has not.
        let mut ready = None;
        loop {
            let wait = store.with(|mut access| -> SocketResult<_> {
                let sock = access.get().table.get_mut(&this)?;
                Ok(match sock.connect_poll()? {
                    Some(()) => None,
                    None => Some(ready.take().unwrap_or_else(|| sock.readiness())),
                })
            })?;
            let Some(mut wait) = wait else {
                return Ok(());
            };
            wait.ready().await;
            ready = Some(wait);
        }
    }

    /// `listen`: implicit bind, listen, and a stream of accepted sockets.
    fn listen(
        mut store: Access<'_, T, Self>,
        this: Resource<TcpSocket>,
    ) -> SocketResult<StreamReader<Resource<TcpSocket>>> {
        let getter = store.getter();
        let acceptor = store.get().table.get_mut(&this)?.listen()?;
        Ok(StreamReader::new(
            &mut store,
            AcceptStream::new(acceptor, getter),
        )?)
    }

    /// `send`: once, when connected; otherwise the guest's stream is closed and the future
    /// says why.
    fn send(
        mut store: Access<'_, T, Self>,
        this: Resource<TcpSocket>,
        mut data: StreamReader<u8>,
    ) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
        let taken = store.get().table.get_mut(&this)?.take_send();
        match taken {
            Ok(conn) => {
                let (consumer, rx) = SendStream::new(conn);
                data.pipe(&mut store, consumer)?;
                ending(&mut store, Ok(rx))
            }
            Err(e) => {
                let code = refused(e)?;
                data.close(&mut store)?;
                ending(&mut store, Err(code))
            }
        }
    }

    /// `receive`: once, when connected; otherwise a closed stream and the future says why.
    fn receive(
        mut store: Access<'_, T, Self>,
        this: Resource<TcpSocket>,
    ) -> wasmtime::Result<(StreamReader<u8>, FutureReader<Result<(), ErrorCode>>)> {
        let taken = store.get().table.get_mut(&this)?.take_receive();
        match taken {
            Ok(conn) => {
                let (producer, rx) = ReceiveStream::new(conn);
                let stream = StreamReader::new(&mut store, producer)?;
                Ok((stream, ending(&mut store, Ok(rx))?))
            }
            Err(e) => {
                let code = refused(e)?;
                let stream = StreamReader::new(&mut store, std::iter::empty())?;
                Ok((stream, ending(&mut store, Err(code))?))
            }
        }
    }
}

impl HostTcpSocket for WasockCtxView<'_> {
    fn create(&mut self, address_family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        let sock = TcpSocket::new(&self.ctx.gate, address_family.into())?;
        Ok(self.table.push(sock)?)
    }

    fn bind(
        &mut self,
        this: Resource<TcpSocket>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get_mut(&this)?.bind(to_std(local_address))
    }

    fn get_local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(from_std(self.table.get(&this)?.local_address()?))
    }

    fn get_remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(from_std(self.table.get(&this)?.remote_address()?))
    }

    fn get_is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        Ok(self.table.get(&this)?.is_listening())
    }

    fn get_address_family(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&this)?.family().into())
    }

    fn set_listen_backlog_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.table.get_mut(&this)?.set_listen_backlog_size(value)
    }

    fn get_keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool> {
        self.table.get(&this)?.keep_alive_enabled()
    }

    fn set_keep_alive_enabled(
        &mut self,
        this: Resource<TcpSocket>,
        value: bool,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_keep_alive_enabled(value)
    }

    fn get_keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<Duration> {
        self.table.get(&this)?.keep_alive_idle_time()
    }

    fn set_keep_alive_idle_time(
        &mut self,
        this: Resource<TcpSocket>,
        value: Duration,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_keep_alive_idle_time(value)
    }

    fn get_keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<Duration> {
        self.table.get(&this)?.keep_alive_interval()
    }

    fn set_keep_alive_interval(
        &mut self,
        this: Resource<TcpSocket>,
        value: Duration,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_keep_alive_interval(value)
    }

    fn get_keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32> {
        self.table.get(&this)?.keep_alive_count()
    }

    fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()> {
        self.table.get(&this)?.set_keep_alive_count(value)
    }

    fn get_hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8> {
        self.table.get(&this)?.hop_limit()
    }

    fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        self.table.get(&this)?.set_hop_limit(value)
    }

    fn get_receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.receive_buffer_size()
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.table.get(&this)?.set_receive_buffer_size(value)
    }

    fn get_send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.table.get(&this)?.send_buffer_size()
    }

    fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        self.table.get(&this)?.set_send_buffer_size(value)
    }

    fn drop(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
