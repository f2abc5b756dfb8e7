//! `wasi:io/streams`: every stream as `wasmtime-wasi-io` serves it; wasock only notes which
//! pollables wait on its TCP streams (`subscribe`) and forgets them on `drop`.

use crate::ctx::WasockIoView;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    self, Host, HostInputStream, HostOutputStream,
};
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream, StreamError, StreamResult};

type Table = ResourceTable;

impl Host for WasockIoView<'_> {
    fn convert_stream_error(&mut self, e: StreamError) -> wasmtime::Result<streams::StreamError> {
        Host::convert_stream_error(self.table, e)
    }
}

impl HostInputStream for WasockIoView<'_> {
    async fn drop(&mut self, this: Resource<DynInputStream>) -> wasmtime::Result<()> {
        self.ctx.ready.stream_dropped(this.rep());
        <Table as HostInputStream>::drop(self.table, this).await
    }

    fn read(&mut self, this: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        HostInputStream::read(self.table, this, len)
    }

    async fn blocking_read(
        &mut self,
        this: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        HostInputStream::blocking_read(self.table, this, len).await
    }

    fn skip(&mut self, this: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        HostInputStream::skip(self.table, this, len)
    }

    async fn blocking_skip(
        &mut self,
        this: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        HostInputStream::blocking_skip(self.table, this, len).await
    }

    /// `subscribe`: a pollable, noted as waiting on this stream if it is a TCP stream.
    fn subscribe(
        &mut self,
        this: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.ctx.ready.linked();
        let stream = this.rep();
        let pollable = HostInputStream::subscribe(self.table, this)?;
        self.ctx.ready.subscribed(stream, pollable.rep());
        Ok(pollable)
    }
}

impl HostOutputStream for WasockIoView<'_> {
    async fn drop(&mut self, this: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        self.ctx.ready.stream_dropped(this.rep());
        <Table as HostOutputStream>::drop(self.table, this).await
    }

    fn check_write(&mut self, this: Resource<DynOutputStream>) -> StreamResult<u64> {
        HostOutputStream::check_write(self.table, this)
    }

    fn write(&mut self, this: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        HostOutputStream::write(self.table, this, bytes)
    }

    async fn blocking_write_and_flush(
        &mut self,
        this: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        HostOutputStream::blocking_write_and_flush(self.table, this, bytes).await
    }

    fn flush(&mut self, this: Resource<DynOutputStream>) -> StreamResult<()> {
        HostOutputStream::flush(self.table, this)
    }

    async fn blocking_flush(&mut self, this: Resource<DynOutputStream>) -> StreamResult<()> {
        HostOutputStream::blocking_flush(self.table, this).await
    }

    /// `subscribe`: a pollable, noted as waiting on this stream if it is a TCP stream.
    fn subscribe(
        &mut self,
        this: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.ctx.ready.linked();
        let stream = this.rep();
        let pollable = HostOutputStream::subscribe(self.table, this)?;
        self.ctx.ready.subscribed(stream, pollable.rep());
        Ok(pollable)
    }

    fn write_zeroes(&mut self, this: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        HostOutputStream::write_zeroes(self.table, this, len)
    }

    async fn blocking_write_zeroes_and_flush(
        &mut self,
        this: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        HostOutputStream::blocking_write_zeroes_and_flush(self.table, this, len).await
    }

    fn splice(
        &mut self,
        this: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        HostOutputStream::splice(self.table, this, src, len)
    }

    async fn blocking_splice(
        &mut self,
        this: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        HostOutputStream::blocking_splice(self.table, this, src, len).await
    }
}
