//! `wasi:sockets/instance-network`.

use crate::bindings::instance_network::Host;
use crate::ctx::WasockCtxView;
use crate::network::{Network, NetworkId};
use wasmtime::component::Resource;

impl Host for WasockCtxView<'_> {
    /// `instance-network`: a new handle to the default network.
    fn instance_network(&mut self) -> wasmtime::Result<Resource<Network>> {
        Ok(self.table.push(Network {
            id: NetworkId::DEFAULT,
        })?)
    }
}
