//! The one place that checks addresses against the spec's argument rules (each version's glue in
//! `wit/` converts its WIT addresses to and from `SocketAddr`).
//!
//! Argument checks run before the policy: an address the WIT calls invalid is `invalid-argument`
//! whatever the policy says.

use crate::error::ErrorCode;
use std::net::{IpAddr, SocketAddr};

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

    /// `0.0.0.0` or `::`: where 0.3's implicit binds go.
    pub(crate) fn unspecified(self) -> IpAddr {
        match self {
            Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            Family::Ipv6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        }
    }
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
    addr: SocketAddr,
) -> Result<SocketAddr, ErrorCode> {
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
    addr: SocketAddr,
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

    fn v4(s: &str) -> SocketAddr {
        s.parse().unwrap()
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
