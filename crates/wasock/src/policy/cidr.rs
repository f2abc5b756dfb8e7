//! Address blocks (`10.0.0.0/8`, `[fd00::]/8`) and the one address normalization every match
//! goes through: an IPv6 spelling of an IPv4 address is that IPv4 address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address block: `addr/prefix`, host bits zero. A single address is a `/32` or `/128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// A block from its network address and prefix length; `None` if the prefix is too long
    /// for the family or host bits are set.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let cidr = Cidr::truncated(addr, prefix)?;
        (cidr.addr == addr).then_some(cidr)
    }

    /// The block of `prefix` bits containing `addr` (host bits cleared); `None` if the prefix
    /// is too long for the family.
    pub fn truncated(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let addr = match addr {
            IpAddr::V4(a) if prefix <= 32 => {
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask4(prefix)))
            }
            IpAddr::V6(a) if prefix <= 128 => {
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask6(prefix)))
            }
            _ => return None,
        };
        Some(Cidr { addr, prefix })
    }

    /// The block holding exactly `ip`.
    pub const fn host(ip: IpAddr) -> Cidr {
        let prefix = match ip {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        Cidr { addr: ip, prefix }
    }

    /// A constant block, for the named sets; the caller guarantees zero host bits.
    pub(crate) const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Cidr {
        Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    /// A constant IPv6 block, for the named sets; the caller guarantees zero host bits.
    pub(crate) const fn v6(segments: [u16; 8], prefix: u8) -> Cidr {
        let [a, b, c, d, e, f, g, h] = segments;
        Cidr {
            addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether this block is one address.
    pub fn is_host(&self) -> bool {
        self.prefix == max_prefix(self.addr)
    }

    /// Whether `ip` (an IPv4-mapped one already unmapped) lies in the block; never across
    /// families.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                (u32::from(net) ^ u32::from(ip)) & mask4(self.prefix) == 0
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                (u128::from(net) ^ u128::from(ip)) & mask6(self.prefix) == 0
            }
            _ => false,
        }
    }

    /// The same block with an IPv4-mapped IPv6 prefix (`[::ffff:10.0.0.0]/104`) written as
    /// IPv4 (`10.0.0.0/8`), and an IPv4-compatible host (`[::10.0.0.5]`) as its IPv4 address.
    pub fn normalized(self) -> Cidr {
        match self.addr {
            IpAddr::V6(v6) if self.prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Cidr {
                    addr: IpAddr::V4(v4),
                    prefix: self.prefix - 96,
                },
                None if self.prefix == 128 => Cidr::host(normalize_ip(self.addr)),
                None => self,
            },
            _ => self,
        }
    }
}

/// Canonical spelling: `10.0.0.0/8`, `[fd00::]/8`, and a single address without a prefix.
impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}")?,
            IpAddr::V6(a) => write!(f, "[{a}]")?,
        }
        if !self.is_host() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// The address every rule match sees: an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible
/// (`::a.b.c.d`) IPv6 address becomes the IPv4 address it embeds, so a rule about `10.0.0.5`
/// also governs its IPv6 spellings. `::` and `::1` stay IPv6 (unspecified and loopback).
#[inline]
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let bits = u128::from(v6);
    if bits >> 32 == 0 && bits > 1 {
        return IpAddr::V4(Ipv4Addr::from(bits as u32));
    }
    ip
}

/// Longest prefix for the family of `ip`.
pub(crate) fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn edges_of_a_block() {
        let c = Cidr::new(ip("10.0.0.0"), 8).unwrap();
        assert!(c.contains(ip("10.0.0.0")));
        assert!(c.contains(ip("10.255.255.255")));
        assert!(!c.contains(ip("9.255.255.255")));
        assert!(!c.contains(ip("11.0.0.0")));
        let c6 = Cidr::new(ip("fd00::"), 8).unwrap();
        assert!(c6.contains(ip("fd00::")));
        assert!(c6.contains(ip("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!c6.contains(ip("fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!c6.contains(ip("fe00::")));
    }

    #[test]
    fn zero_prefix_covers_the_family_only() {
        let all4 = Cidr::new(ip("0.0.0.0"), 0).unwrap();
        assert!(all4.contains(ip("255.255.255.255")));
        assert!(!all4.contains(ip("::1")));
    }

    #[test]
    fn host_bits_and_long_prefixes_are_refused() {
        assert_eq!(Cidr::new(ip("10.0.0.5"), 8), None);
        assert_eq!(Cidr::new(ip("10.0.0.0"), 33), None);
        assert_eq!(
            Cidr::truncated(ip("10.0.0.5"), 8),
            Cidr::new(ip("10.0.0.0"), 8)
        );
    }

    #[test]
    fn ipv6_spellings_of_ipv4_normalize() {
        assert_eq!(normalize_ip(ip("::ffff:10.0.0.5")), ip("10.0.0.5"));
        assert_eq!(normalize_ip(ip("::10.0.0.5")), ip("10.0.0.5"));
        assert_eq!(normalize_ip(ip("::1")), ip("::1"));
        assert_eq!(normalize_ip(ip("::")), ip("::"));
        assert_eq!(normalize_ip(ip("fd00::1")), ip("fd00::1"));
        let mapped = Cidr::new(ip("::ffff:10.0.0.0"), 104).unwrap();
        assert_eq!(mapped.normalized().to_string(), "10.0.0.0/8");
        assert_eq!(
            Cidr::host(ip("::10.0.0.5")).normalized().to_string(),
            "10.0.0.5"
        );
    }
}
