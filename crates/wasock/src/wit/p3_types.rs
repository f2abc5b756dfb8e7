//! `wasi:sockets/types@0.3`: its error mapping and address conversions (the resources' glue is
//! in `p3_types_tcp.rs` and `p3_types_udp.rs`).

use crate::addr::Family;
use crate::bindings_p3::types::{
    ErrorCode, Host, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress,
    Ipv6SocketAddress,
};
use crate::ctx::WasockCtxView;
use crate::error::{self, SocketError};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

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

impl From<IpAddressFamily> for Family {
    fn from(f: IpAddressFamily) -> Self {
        match f {
            IpAddressFamily::Ipv4 => Family::Ipv4,
            IpAddressFamily::Ipv6 => Family::Ipv6,
        }
    }
}

impl From<Family> for IpAddressFamily {
    fn from(f: Family) -> Self {
        match f {
            Family::Ipv4 => IpAddressFamily::Ipv4,
            Family::Ipv6 => IpAddressFamily::Ipv6,
        }
    }
}

/// A 0.3 socket address as the core's `SocketAddr`.
pub(super) fn to_std(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(a) => {
            let (x, y, z, w) = a.address;
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(x, y, z, w), a.port))
        }
        IpSocketAddress::Ipv6(a) => {
            let (p0, p1, p2, p3, p4, p5, p6, p7) = a.address;
            let ip = Ipv6Addr::new(p0, p1, p2, p3, p4, p5, p6, p7);
            SocketAddr::V6(SocketAddrV6::new(ip, a.port, a.flow_info, a.scope_id))
        }
    }
}

/// The core's `SocketAddr` as a 0.3 socket address.
pub(super) fn from_std(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(a) => {
            let [x, y, z, w] = a.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: a.port(),
                address: (x, y, z, w),
            })
        }
        SocketAddr::V6(a) => {
            let [p0, p1, p2, p3, p4, p5, p6, p7] = a.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: a.port(),
                flow_info: a.flowinfo(),
                address: (p0, p1, p2, p3, p4, p5, p6, p7),
                scope_id: a.scope_id(),
            })
        }
    }
}

/// An IP address as 0.3's `ip-address`.
pub(super) fn ip_from_std(ip: IpAddr) -> IpAddress {
    match ip {
        IpAddr::V4(v4) => {
            let [x, y, z, w] = v4.octets();
            IpAddress::Ipv4((x, y, z, w))
        }
        IpAddr::V6(v6) => {
            let [p0, p1, p2, p3, p4, p5, p6, p7] = v6.segments();
            IpAddress::Ipv6((p0, p1, p2, p3, p4, p5, p6, p7))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use error::ErrorCode as N;

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
