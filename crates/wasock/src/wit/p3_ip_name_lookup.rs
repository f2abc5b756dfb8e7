//! `wasi:sockets/ip-name-lookup@0.3`: `resolve-addresses` is 0.2's lookup stream, drained.

use super::p3_types::ip_from_std;
use crate::bindings_p3::ip_name_lookup::{ErrorCode, Host, HostWithStore};
use crate::bindings_p3::types::IpAddress;
use crate::ctx::{WasockCtxView, WasockSockets};
use crate::error;
use crate::lookup::ResolveAddressStream;
use wasmtime::component::Accessor;
use wasmtime_wasi_io::poll::Pollable as _;

impl Host for WasockCtxView<'_> {}

impl<T: Send + 'static> HostWithStore<T> for WasockSockets {
    /// `resolve-addresses`: the same policy, limits, timeout and audit as 0.2's lookups.
    async fn resolve_addresses(
        store: &Accessor<T, Self>,
        name: String,
    ) -> wasmtime::Result<Result<Vec<IpAddress>, ErrorCode>> {
        let started =
            store.with(|mut access| ResolveAddressStream::start(&access.get().ctx.gate, &name));
        let mut stream = match started {
            Ok(stream) => stream,
            Err(code) => return Ok(Err(lookup_code(code))),
        };
        let mut found = Vec::new();
        loop {
            match stream.next() {
                Ok(Some(ip)) => found.push(ip_from_std(ip)),
                Ok(None) => return Ok(Ok(found)),
                Err(error::ErrorCode::WouldBlock) => stream.readiness().ready().await,
                Err(code) => return Ok(Err(lookup_code(code))),
            }
        }
    }
}

/// The neutral code as 0.3's `ip-name-lookup` names it.
fn lookup_code(code: error::ErrorCode) -> ErrorCode {
    use error::ErrorCode as N;
    match code {
        N::AccessDenied => ErrorCode::AccessDenied,
        N::InvalidArgument => ErrorCode::InvalidArgument,
        N::NameUnresolvable => ErrorCode::NameUnresolvable,
        N::TemporaryResolverFailure => ErrorCode::TemporaryResolverFailure,
        N::PermanentResolverFailure => ErrorCode::PermanentResolverFailure,
        N::Unknown => ErrorCode::Other(None),
        other => ErrorCode::Other(Some(
            other.message().unwrap_or_else(|| format!("{other:?}")),
        )),
    }
}
