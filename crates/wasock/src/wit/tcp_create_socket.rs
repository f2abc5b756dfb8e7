//! `wasi:sockets/tcp-create-socket`.

use crate::bindings::network::IpAddressFamily;
use crate::bindings::tcp_create_socket::Host;
use crate::ctx::WasockCtxView;
use crate::error::SocketResult;
use crate::tcp::TcpSocket;
use wasmtime::component::Resource;

impl Host for WasockCtxView<'_> {
    fn create_tcp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        let socket = TcpSocket::new(&self.ctx.gate, family.into())?;
        Ok(self.table.push(socket)?)
    }
}
