//! The one place that converts WIT addresses and checks them against the spec's argument rules.
//!
//! Argument checks run before the policy: an address the WIT calls invalid is `invalid-argument`
//! whatever the policy says.

use crate::bindings::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The address family of a socket, as `ip-address-family` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// `ipv4`
    Ipv4,
    /// `ipv6` (always v6-only)
    Ipv6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Family {
        match addr {
            SocketAddr::V4(_) => Family::Ipv4,
            SocketAddr::V6(_) => Family::Ipv6,
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

/// Unmaps `::ffff:a.b.c.d` to `a.b.c.d`; lookups never return IPv4-mapped addresses.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

fn is_ipv4_mapped(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

fn is_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_multicast() && !v4.is_broadcast(),
        IpAddr::V6(v6) => !v6.is_multicast(),
    }
}

/// Which socket kind an address is for: TCP's rules add "not a unicast address".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Tcp,
    Udp,
}

/// `start-bind` argument rules: the socket's family, not IPv4-mapped; for TCP also unicast
/// ("`local-address` is not a unicast address", which UDP's `start-bind` does not list).
pub(crate) fn check_local(
    kind: Kind,
    family: Family,
    addr: IpSocketAddress,
) -> Result<SocketAddr, ErrorCode> {
    let addr = to_std(addr);
    let unicast_ok = kind == Kind::Udp || is_unicast(&addr.ip());
    if Family::of(&addr) != family || !unicast_ok || is_ipv4_mapped(&addr.ip()) {
        return Err(ErrorCode::InvalidArgument);
    }
    Ok(addr)
}

/// `start-connect`, UDP `stream` and `send` rules: as [`check_local`], plus not unspecified
/// and not port 0.
pub(crate) fn check_remote(
    kind: Kind,
    family: Family,
    addr: IpSocketAddress,
) -> Result<SocketAddr, ErrorCode> {
    let addr = check_local(kind, family, addr)?;
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err(ErrorCode::InvalidArgument);
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpSocketAddress {
        from_std(s.parse().unwrap())
    }

    #[test]
    fn round_trip_is_lossless() {
        for s in ["127.0.0.1:80", "[::1]:443", "[fe80::1%3]:9"] {
            let a: SocketAddr = s.parse().unwrap();
            assert_eq!(to_std(from_std(a)), a);
        }
    }

    #[test]
    fn local_rules() {
        use Kind::{Tcp, Udp};
        for kind in [Tcp, Udp] {
            assert!(check_local(kind, Family::Ipv4, v4("0.0.0.0:0")).is_ok());
            assert!(check_local(kind, Family::Ipv4, v4("127.0.0.1:0")).is_ok());
            assert!(check_local(kind, Family::Ipv6, v4("[::]:0")).is_ok());
            for (family, bad) in [
                (Family::Ipv6, "127.0.0.1:0"),
                (Family::Ipv4, "[::1]:0"),
                (Family::Ipv6, "[::ffff:127.0.0.1]:0"),
            ] {
                assert_eq!(
                    check_local(kind, family, v4(bad)),
                    Err(ErrorCode::InvalidArgument)
                );
            }
        }
        // Only TCP's start-bind lists "not a unicast address".
        for (family, group) in [
            (Family::Ipv4, "224.0.0.1:0"),
            (Family::Ipv4, "255.255.255.255:0"),
            (Family::Ipv6, "[ff02::1]:0"),
        ] {
            assert_eq!(
                check_local(Tcp, family, v4(group)),
                Err(ErrorCode::InvalidArgument)
            );
            assert!(check_local(Udp, family, v4(group)).is_ok());
        }
    }

    #[test]
    fn remote_rules() {
        for kind in [Kind::Tcp, Kind::Udp] {
            assert!(check_remote(kind, Family::Ipv4, v4("127.0.0.1:1")).is_ok());
            for bad in ["0.0.0.0:80", "127.0.0.1:0"] {
                assert_eq!(
                    check_remote(kind, Family::Ipv4, v4(bad)),
                    Err(ErrorCode::InvalidArgument)
                );
            }
            assert_eq!(
                check_remote(kind, Family::Ipv6, v4("[::]:80")),
                Err(ErrorCode::InvalidArgument)
            );
        }
        assert!(check_remote(Kind::Udp, Family::Ipv4, v4("224.0.0.1:5")).is_ok());
        assert!(check_remote(Kind::Tcp, Family::Ipv4, v4("224.0.0.1:5")).is_err());
    }

    #[test]
    fn lookups_unmap() {
        let m: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(canonical_ip(m), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
