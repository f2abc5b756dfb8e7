//! `wasi:sockets/types@0.3`: its error mapping and address conversions (the resources' glue is
//! in `p3_types_tcp.rs` and `p3_types_udp.rs`).

use crate::bindings_p3::types::{
    ErrorCode, Host, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress,
    Ipv6SocketAddress,
};
use crate::ctx::WasockCtxView;
use crate::error::{self, SocketError};

impl Host for WasockCtxView<'_> {
    fn convert_error_code(&mut self, err: SocketError) -> wasmtime::Result<ErrorCode> {
        match err {
            SocketError::Code(code) => Ok(code.into()),
            SocketError::Trap(e) => Err(e),
        }
    }
}

/// The neutral code as 0.3 names it. 0.2-only codes have 0.3 meanings: a second `connect` or
/// `listen` while one is under way is the WIT's `invalid-state`; an OS error no code fits, and
/// the socket limit (0.3 has no `new-socket-limit`), are `other` with their message.
impl From<error::ErrorCode> for ErrorCode {
    fn from(code: error::ErrorCode) -> Self {
        use error::ErrorCode as N;
        match code {
            N::AccessDenied => ErrorCode::AccessDenied,
            N::NotSupported => ErrorCode::NotSupported,
            N::InvalidArgument => ErrorCode::InvalidArgument,
            N::OutOfMemory => ErrorCode::OutOfMemory,
            N::Timeout => ErrorCode::Timeout,
            N::ConcurrencyConflict | N::NotInProgress | N::InvalidState => ErrorCode::InvalidState,
            N::AddressNotBindable => ErrorCode::AddressNotBindable,
            N::AddressInUse => ErrorCode::AddressInUse,
            N::RemoteUnreachable => ErrorCode::RemoteUnreachable,
            N::ConnectionRefused => ErrorCode::ConnectionRefused,
            N::ConnectionBroken => ErrorCode::ConnectionBroken,
            N::ConnectionReset => ErrorCode::ConnectionReset,
            N::ConnectionAborted => ErrorCode::ConnectionAborted,
            N::DatagramTooLarge => ErrorCode::DatagramTooLarge,
            N::Unknown => ErrorCode::Other(None),
            N::WouldBlock
            | N::NewSocketLimit
            | N::NameUnresolvable
            | N::TemporaryResolverFailure
            | N::PermanentResolverFailure
            | N::Os(_) => {
                ErrorCode::Other(Some(code.message().unwrap_or_else(|| format!("{code:?}"))))
            }
        }
    }
}

super::address_conversions!();

#[cfg(test)]
mod tests {
    use super::*;
    use error::ErrorCode as N;
    use std::net::SocketAddr;

    #[test]
    fn addresses_round_trip() {
        for a in ["127.0.0.1:80", "[::1]:443", "[fe80::1%3]:9", "0.0.0.0:0"] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(to_std(from_std(a)), a);
        }
    }

    #[test]
    fn codes_0_3_lacks_become_invalid_state_or_other_with_a_message() {
        assert!(matches!(
            ErrorCode::from(N::ConcurrencyConflict),
            ErrorCode::InvalidState
        ));
        assert!(matches!(
            ErrorCode::from(N::ConnectionBroken),
            ErrorCode::ConnectionBroken
        ));
        assert!(matches!(
            ErrorCode::from(N::Unknown),
            ErrorCode::Other(None)
        ));
        match ErrorCode::from(N::NewSocketLimit) {
            ErrorCode::Other(Some(m)) => assert_eq!(m, "socket limit"),
            other => panic!("{other:?}"),
        }
        match ErrorCode::from(N::Os(libc::ELOOP)) {
            ErrorCode::Other(Some(m)) => assert!(m.to_lowercase().contains("symbolic"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
