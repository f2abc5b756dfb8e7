//! `wasi:io/poll`: wasock's TCP stream pollables answered by [`crate::ready`]; every other
//! pollable by `wasmtime-wasi-io`, unchanged.

use crate::ctx::WasockIoView;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi_io::bindings::wasi::io::poll::{Host, HostPollable};
use wasmtime_wasi_io::poll::DynPollable;

impl Host for WasockIoView<'_> {
    async fn poll(&mut self, list: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        self.ctx.ready.linked();
        self.ctx.ready.poll(self.table, list).await
    }
}

impl HostPollable for WasockIoView<'_> {
    async fn block(&mut self, this: Resource<DynPollable>) -> wasmtime::Result<()> {
        self.ctx.ready.linked();
        match self.ctx.ready.block(this.rep()).await {
            Some(()) => Ok(()),
            None => HostPollable::block(self.table, this).await,
        }
    }

    async fn ready(&mut self, this: Resource<DynPollable>) -> wasmtime::Result<bool> {
        self.ctx.ready.linked();
        match self.ctx.ready.ready(this.rep()) {
            Some(ready) => Ok(ready),
            None => HostPollable::ready(self.table, this).await,
        }
    }

    fn drop(&mut self, this: Resource<DynPollable>) -> wasmtime::Result<()> {
        self.ctx.ready.pollable_dropped(this.rep());
        <ResourceTable as HostPollable>::drop(self.table, this)
    }
}
