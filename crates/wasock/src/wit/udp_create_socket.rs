//! `wasi:sockets/udp-create-socket`.

use crate::bindings::network::IpAddressFamily;
use crate::bindings::udp_create_socket::Host;
use crate::ctx::WasockCtxView;
use crate::error::SocketResult;
use crate::udp::UdpSocket;
use wasmtime::component::Resource;

impl Host for WasockCtxView<'_> {
    fn create_udp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<UdpSocket>> {
        let socket = UdpSocket::new(&self.ctx.gate, family.into())?;
        Ok(self.table.push(socket)?)
    }
}
