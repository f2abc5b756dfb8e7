//! `wasi:sockets/network@0.2`: its error codes and address types, converted to and from the
//! version-neutral ones the core speaks.

use crate::addr::Family;
use crate::bindings::network::{
    ErrorCode, Host, HostNetwork, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress,
    Ipv6SocketAddress, Network,
};
use crate::ctx::WasockCtxView;
use crate::error::{self, SocketError, from_io};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
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

/// Converts a WIT socket address to a std one (lossless).
pub(crate) fn to_std(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(a) => {
            let (x, y, z, w) = a.address;
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(x, y, z, w), a.port))
        }
        IpSocketAddress::Ipv6(a) => {
            let (s0, s1, s2, s3, s4, s5, s6, s7) = a.address;
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::new(s0, s1, s2, s3, s4, s5, s6, s7),
                a.port,
                a.flow_info,
                a.scope_id,
            ))
        }
    }
}

/// Converts a std socket address to the WIT one (lossless).
pub(crate) fn from_std(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(a) => IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port: a.port(),
            address: ip4_tuple(*a.ip()),
        }),
        SocketAddr::V6(a) => IpSocketAddress::Ipv6(Ipv6SocketAddress {
            port: a.port(),
            flow_info: a.flowinfo(),
            scope_id: a.scope_id(),
            address: ip6_tuple(*a.ip()),
        }),
    }
}

/// Converts a std IP address to the WIT one.
pub(crate) fn ip_from_std(ip: IpAddr) -> IpAddress {
    match ip {
        IpAddr::V4(a) => IpAddress::Ipv4(ip4_tuple(a)),
        IpAddr::V6(a) => IpAddress::Ipv6(ip6_tuple(a)),
    }
}

fn ip4_tuple(a: Ipv4Addr) -> (u8, u8, u8, u8) {
    let [x, y, z, w] = a.octets();
    (x, y, z, w)
}

fn ip6_tuple(a: Ipv6Addr) -> (u16, u16, u16, u16, u16, u16, u16, u16) {
    let [s0, s1, s2, s3, s4, s5, s6, s7] = a.segments();
    (s0, s1, s2, s3, s4, s5, s6, s7)
}

#[cfg(test)]
mod tests {
    use super::*;

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
