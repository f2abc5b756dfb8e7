//! Named address sets (`loopback`, `private`, …): reserved words in a rule's host position.
//!
//! A set is written bare (`tcp://private:*`, case-insensitive). A real host that happens to be
//! called like a set is written with a trailing dot (`tcp://private.:80`), the DNS spelling of
//! an absolute name. A one-label host within two typos of a set name (`privat`) is refused as a
//! likely misspelling; it too can be written with a trailing dot.

use super::cidr::Cidr;
use std::fmt;
use std::net::IpAddr;

/// A named set of address blocks, usable wherever a host or peer address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NamedSet {
    /// `loopback`: 127.0.0.0/8, ::1.
    Loopback,
    /// `private`: 10/8, 172.16/12, 192.168/16, fc00::/7.
    Private,
    /// `link-local`: 169.254/16, fe80::/10.
    LinkLocal,
    /// `multicast`: 224/4, ff00::/8.
    Multicast,
    /// `documentation`: 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// `cloud-metadata`: 169.254.169.254, fd00:ec2::254, 100.100.100.200.
    CloudMetadata,
    /// `unspecified`: 0.0.0.0, :: (binding every interface).
    Unspecified,
    /// `cgnat`: 100.64.0.0/10, the shared address space (carrier NAT, overlay VPNs).
    Cgnat,
    /// `any-ipv4`: 0.0.0.0/0.
    AnyIpv4,
    /// `any-ipv6`: ::/0 (IPv6 spellings of IPv4 addresses are IPv4, not in this set).
    AnyIpv6,
}

const LOOPBACK: &[Cidr] = &[
    Cidr::v4(127, 0, 0, 0, 8),
    Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128),
];
const PRIVATE: &[Cidr] = &[
    Cidr::v4(10, 0, 0, 0, 8),
    Cidr::v4(172, 16, 0, 0, 12),
    Cidr::v4(192, 168, 0, 0, 16),
    Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
];
const LINK_LOCAL: &[Cidr] = &[
    Cidr::v4(169, 254, 0, 0, 16),
    Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
];
const MULTICAST: &[Cidr] = &[
    Cidr::v4(224, 0, 0, 0, 4),
    Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
];
const DOCUMENTATION: &[Cidr] = &[
    Cidr::v4(192, 0, 2, 0, 24),
    Cidr::v4(198, 51, 100, 0, 24),
    Cidr::v4(203, 0, 113, 0, 24),
    Cidr::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    Cidr::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
];
const CLOUD_METADATA: &[Cidr] = &[
    Cidr::v4(169, 254, 169, 254, 32),
    Cidr::v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128),
    Cidr::v4(100, 100, 100, 200, 32),
];
const UNSPECIFIED: &[Cidr] = &[Cidr::v4(0, 0, 0, 0, 32), Cidr::v6([0; 8], 128)];
const CGNAT: &[Cidr] = &[Cidr::v4(100, 64, 0, 0, 10)];
const ANY_IPV4: &[Cidr] = &[Cidr::v4(0, 0, 0, 0, 0)];
const ANY_IPV6: &[Cidr] = &[Cidr::v6([0; 8], 0)];

impl NamedSet {
    /// Every set, in the order documentation lists them.
    pub const ALL: [NamedSet; 10] = [
        NamedSet::Loopback,
        NamedSet::Private,
        NamedSet::LinkLocal,
        NamedSet::Multicast,
        NamedSet::Documentation,
        NamedSet::CloudMetadata,
        NamedSet::Unspecified,
        NamedSet::Cgnat,
        NamedSet::AnyIpv4,
        NamedSet::AnyIpv6,
    ];

    /// The reserved word naming the set.
    pub fn name(self) -> &'static str {
        match self {
            NamedSet::Loopback => "loopback",
            NamedSet::Private => "private",
            NamedSet::LinkLocal => "link-local",
            NamedSet::Multicast => "multicast",
            NamedSet::Documentation => "documentation",
            NamedSet::CloudMetadata => "cloud-metadata",
            NamedSet::Unspecified => "unspecified",
            NamedSet::Cgnat => "cgnat",
            NamedSet::AnyIpv4 => "any-ipv4",
            NamedSet::AnyIpv6 => "any-ipv6",
        }
    }

    /// The set a word names (case-insensitive, no trailing dot).
    pub fn from_word(word: &str) -> Option<NamedSet> {
        NamedSet::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(word))
    }

    /// The set a one-label word is probably a misspelling of: one edit away, or two for set
    /// names of eight letters or more.
    pub fn near_miss(word: &str) -> Option<NamedSet> {
        if word.contains('.') {
            return None;
        }
        let word = word.to_ascii_lowercase();
        NamedSet::ALL.into_iter().find(|s| {
            let allowed = if s.name().len() >= 8 { 2 } else { 1 };
            edit_distance(&word, s.name()) <= allowed
        })
    }

    /// The address blocks of the set.
    pub fn blocks(self) -> &'static [Cidr] {
        match self {
            NamedSet::Loopback => LOOPBACK,
            NamedSet::Private => PRIVATE,
            NamedSet::LinkLocal => LINK_LOCAL,
            NamedSet::Multicast => MULTICAST,
            NamedSet::Documentation => DOCUMENTATION,
            NamedSet::CloudMetadata => CLOUD_METADATA,
            NamedSet::Unspecified => UNSPECIFIED,
            NamedSet::Cgnat => CGNAT,
            NamedSet::AnyIpv4 => ANY_IPV4,
            NamedSet::AnyIpv6 => ANY_IPV6,
        }
    }

    /// Whether the (normalized) address is in the set.
    #[inline]
    pub fn contains(self, ip: IpAddr) -> bool {
        self.blocks().iter().any(|b| b.contains(ip))
    }
}

impl fmt::Display for NamedSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Levenshtein distance of two short ASCII words.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sets_hold_their_blocks_and_edges() {
        use NamedSet::*;
        for (set, inside, outside) in [
            (Loopback, "127.255.255.255", "128.0.0.0"),
            (Loopback, "::1", "::2"),
            (Private, "172.31.255.255", "172.32.0.0"),
            (Private, "172.16.0.0", "172.15.255.255"),
            (Private, "fdff::1", "fe00::"),
            (LinkLocal, "169.254.0.0", "169.255.0.0"),
            (Multicast, "239.255.255.255", "240.0.0.0"),
            (Multicast, "ff02::1", "fe80::1"),
            (Documentation, "2001:db8::1", "2001:db9::"),
            (CloudMetadata, "169.254.169.254", "169.254.169.253"),
            (CloudMetadata, "fd00:ec2::254", "fd00:ec2::253"),
            (CloudMetadata, "100.100.100.200", "100.100.100.201"),
            (Unspecified, "0.0.0.0", "0.0.0.1"),
            (Unspecified, "::", "::1"),
            (Cgnat, "100.127.255.255", "100.128.0.0"),
            (AnyIpv4, "1.2.3.4", "::2"),
            (AnyIpv6, "::2", "1.2.3.4"),
        ] {
            assert!(set.contains(ip(inside)), "{set} {inside}");
            assert!(!set.contains(ip(outside)), "{set} {outside}");
        }
    }

    #[test]
    fn words_and_misspellings() {
        assert_eq!(NamedSet::from_word("LoopBack"), Some(NamedSet::Loopback));
        assert_eq!(NamedSet::from_word("localhost"), None);
        assert_eq!(NamedSet::near_miss("privat"), Some(NamedSet::Private));
        assert_eq!(NamedSet::near_miss("loopbak"), Some(NamedSet::Loopback));
        assert_eq!(NamedSet::near_miss("localhost"), None);
        assert_eq!(NamedSet::near_miss("db"), None);
        assert_eq!(NamedSet::near_miss("chat"), None);
        assert_eq!(NamedSet::near_miss("linklocal"), Some(NamedSet::LinkLocal));
        assert_eq!(NamedSet::near_miss("privat.example"), None);
        for set in NamedSet::ALL {
            assert_eq!(NamedSet::from_word(set.name()), Some(set));
            for block in set.blocks() {
                assert_eq!(Cidr::new(block.addr(), block.prefix()), Some(*block));
            }
        }
    }
}
