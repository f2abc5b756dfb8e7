//! `wasi:sockets/network@0.2`: its error codes and address types, converted to and from the
//! version-neutral ones the core speaks.

use crate::bindings::network::{
    ErrorCode, Host, HostNetwork, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress,
    Ipv6SocketAddress, Network,
};
use crate::ctx::WasockCtxView;
use crate::error::{self, SocketError, from_io};
use wasmtime::component::Resource;

impl Host for WasockCtxView<'_> {
    fn convert_error_code(&mut self, err: SocketError) -> wasmtime::Result<ErrorCode> {
        match err {
            SocketError::Code(code) => Ok(code.into()),
            SocketError::Trap(trap) => Err(trap),
        }
    }

    /// `network-error-code`: the socket error behind a stream's `last-operation-failed`.
    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        let err = self.table.get(&err)?;
        if let Some(code) = err.downcast_ref::<error::ErrorCode>() {
            return Ok(Some((*code).into()));
        }
        Ok(err
            .downcast_ref::<std::io::Error>()
            .map(|e| from_io(e).into()))
    }
}

impl HostNetwork for WasockCtxView<'_> {
    fn drop(&mut self, rep: Resource<Network>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

/// 0.2's `error-code` for a neutral one: EPIPE is `connection-reset` (0.2 lists it there), an OS
/// error no code fits is `unknown`.
impl From<error::ErrorCode> for ErrorCode {
    fn from(code: error::ErrorCode) -> Self {
        use error::ErrorCode as E;
        match code {
            E::Unknown | E::Os(_) => ErrorCode::Unknown,
            E::AccessDenied => ErrorCode::AccessDenied,
            E::NotSupported => ErrorCode::NotSupported,
            E::InvalidArgument => ErrorCode::InvalidArgument,
            E::OutOfMemory => ErrorCode::OutOfMemory,
            E::Timeout => ErrorCode::Timeout,
            E::ConcurrencyConflict => ErrorCode::ConcurrencyConflict,
            E::NotInProgress => ErrorCode::NotInProgress,
            E::WouldBlock => ErrorCode::WouldBlock,
            E::InvalidState => ErrorCode::InvalidState,
            E::NewSocketLimit => ErrorCode::NewSocketLimit,
            E::AddressNotBindable => ErrorCode::AddressNotBindable,
            E::AddressInUse => ErrorCode::AddressInUse,
            E::RemoteUnreachable => ErrorCode::RemoteUnreachable,
            E::ConnectionRefused => ErrorCode::ConnectionRefused,
            E::ConnectionBroken | E::ConnectionReset => ErrorCode::ConnectionReset,
            E::ConnectionAborted => ErrorCode::ConnectionAborted,
            E::DatagramTooLarge => ErrorCode::DatagramTooLarge,
            E::NameUnresolvable => ErrorCode::NameUnresolvable,
            E::TemporaryResolverFailure => ErrorCode::TemporaryResolverFailure,
            E::PermanentResolverFailure => ErrorCode::PermanentResolverFailure,
        }
    }
}

super::address_conversions!();

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn round_trip_is_lossless() {
        for s in ["127.0.0.1:80", "[::1]:443", "[fe80::1%3]:9"] {
            let a: SocketAddr = s.parse().unwrap();
            assert_eq!(to_std(from_std(a)), a);
        }
    }

    #[test]
    fn broken_pipe_and_os_errors_as_0_2_names_them() {
        use error::ErrorCode as E;
        assert_eq!(
            ErrorCode::from(E::ConnectionBroken),
            ErrorCode::ConnectionReset
        );
        assert_eq!(ErrorCode::from(E::Os(libc::ELOOP)), ErrorCode::Unknown);
    }
}
