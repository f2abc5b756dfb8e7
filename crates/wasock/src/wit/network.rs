//! `wasi:sockets/network`.

use crate::bindings::network::{ErrorCode, Host, HostNetwork, Network};
use crate::ctx::WasockCtxView;
use crate::error::{SocketError, from_io};
use wasmtime::component::Resource;

impl Host for WasockCtxView<'_> {
    fn convert_error_code(&mut self, err: SocketError) -> wasmtime::Result<ErrorCode> {
        match err {
            SocketError::Code(code) => Ok(code),
            SocketError::Trap(trap) => Err(trap),
        }
    }

    /// `network-error-code`: the socket error behind a stream's `last-operation-failed`.
    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        let err = self.table.get(&err)?;
        if let Some(code) = err.downcast_ref::<ErrorCode>() {
            return Ok(Some(*code));
        }
        Ok(err.downcast_ref::<std::io::Error>().map(from_io))
    }
}

impl HostNetwork for WasockCtxView<'_> {
    fn drop(&mut self, rep: Resource<Network>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}
