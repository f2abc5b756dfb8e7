//! `wasi:sockets/ip-name-lookup`.

use super::detached_pollable;
use super::network::ip_from_std;
use crate::bindings::ip_name_lookup::{Host, HostResolveAddressStream};
use crate::bindings::network::{IpAddress, Network};
use crate::ctx::WasockCtxView;
use crate::error::SocketResult;
use crate::lookup::ResolveAddressStream;
use wasmtime::component::Resource;
use wasmtime_wasi_io::poll::DynPollable;

impl Host for WasockCtxView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        self.table.get(&network)?;
        let stream = ResolveAddressStream::start(&self.ctx.gate, &name)?;
        Ok(self.table.push(stream)?)
    }
}

impl HostResolveAddressStream for WasockCtxView<'_> {
    fn resolve_next_address(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> SocketResult<Option<IpAddress>> {
        Ok(self.table.get_mut(&this)?.next()?.map(ip_from_std))
    }

    fn subscribe(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let waiter = self.table.get(&this)?.readiness();
        detached_pollable(self.table, waiter)
    }

    fn drop(&mut self, rep: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}
