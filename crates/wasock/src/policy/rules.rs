//! The rule language's syntax tree: what one rule says, its canonical spelling, and how each of
//! its parts matches an address, a port or a name. Parsing lives in `parse`, deciding in
//! `engine`.

use super::cidr::Cidr;
use super::sets::NamedSet;
use super::{NameBook, Protocol};
use std::fmt;
use std::net::IpAddr;

/// The six rule kinds; each is a CLI flag (`--allow-outbound`), a TOML key and a builder method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `allow-outbound`: the guest may connect or send to the remote.
    AllowOutbound,
    /// `deny-outbound`: the guest may never connect or send to the remote.
    DenyOutbound,
    /// `allow-inbound`: the guest may bind and listen on the local address, and hear its peers.
    AllowInbound,
    /// `deny-inbound`: the local address (or, with `from`, those peers) is off limits.
    DenyInbound,
    /// `allow-resolve`: the guest may look the name up (or gets fixed answers with `->`).
    AllowResolve,
    /// `deny-resolve`: the guest may never look the name up.
    DenyResolve,
}

impl Kind {
    /// Every kind, in the order a normalized policy lists them.
    pub const ALL: [Kind; 6] = [
        Kind::AllowOutbound,
        Kind::DenyOutbound,
        Kind::AllowInbound,
        Kind::DenyInbound,
        Kind::AllowResolve,
        Kind::DenyResolve,
    ];

    /// The kind's name (`allow-outbound`), as flags and TOML keys spell it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::AllowOutbound => "allow-outbound",
            Kind::DenyOutbound => "deny-outbound",
            Kind::AllowInbound => "allow-inbound",
            Kind::DenyInbound => "deny-inbound",
            Kind::AllowResolve => "allow-resolve",
            Kind::DenyResolve => "deny-resolve",
        }
    }

    /// The kind a name (with or without the leading `--`) spells.
    pub fn from_name(name: &str) -> Option<Kind> {
        let name = name.strip_prefix("--").unwrap_or(name);
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether rules of this kind allow (rather than deny).
    pub fn is_allow(self) -> bool {
        matches!(
            self,
            Kind::AllowOutbound | Kind::AllowInbound | Kind::AllowResolve
        )
    }

    /// Whether rules of this kind govern name lookups (rather than sockets).
    pub fn is_resolve(self) -> bool {
        matches!(self, Kind::AllowResolve | Kind::DenyResolve)
    }

    /// Whether rules of this kind govern the local side (bind, listen, accept, receive).
    pub fn is_inbound(self) -> bool {
        matches!(self, Kind::AllowInbound | Kind::DenyInbound)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `tcp://`, `udp://` or `*://`: which protocol a socket rule covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `tcp`.
    Tcp,
    /// `udp`.
    Udp,
    /// `*`: both.
    Any,
}

impl Scheme {
    /// Whether the scheme covers sockets of `proto`.
    #[inline]
    pub fn covers(self, proto: Protocol) -> bool {
        matches!(
            (self, proto),
            (Scheme::Any, _) | (Scheme::Tcp, Protocol::Tcp) | (Scheme::Udp, Protocol::Udp)
        )
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Tcp => "tcp",
            Scheme::Udp => "udp",
            Scheme::Any => "*",
        })
    }
}

/// A pattern over normalized host names: `db.internal`, `*.example.com` (every name below
/// `example.com`, at any depth, but not `example.com` itself), or `*` (every name).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NamePattern {
    /// `*`: any name.
    Any,
    /// One name, normalized (IDNA, lower case, no trailing dot).
    Exact(Box<str>),
    /// `*.DOMAIN`: stored as `.DOMAIN` (normalized), so a match is a suffix test.
    Subdomains(Box<str>),
}

impl NamePattern {
    /// Whether the normalized `name` matches.
    #[inline]
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Any => true,
            NamePattern::Exact(n) => **n == *name,
            NamePattern::Subdomains(dot_domain) => {
                name.len() > dot_domain.len() && name.ends_with(&**dot_domain)
            }
        }
    }

    /// How specific the pattern is, for choosing among mappings: an exact name beats any
    /// wildcard, a longer domain beats a shorter one.
    pub(crate) fn specificity(&self) -> usize {
        match self {
            NamePattern::Any => 0,
            NamePattern::Subdomains(d) => d.len(),
            NamePattern::Exact(_) => usize::MAX,
        }
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamePattern::Any => f.write_str("*"),
            NamePattern::Exact(n) => f.write_str(n),
            NamePattern::Subdomains(d) => write!(f, "*{d}"),
        }
    }
}

/// An address pattern: `*`, one address or block, or a named set. It is what a `from` part
/// lists, and the address forms of a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrPattern {
    /// `*`: every address, `0.0.0.0` and `::` included.
    Any,
    /// `10.0.0.5`, `[::1]`, `10.0.0.0/8`, `[fd00::]/8` (IPv4 spellings normalized to IPv4).
    Block(Cidr),
    /// `loopback`, `private`, …
    Set(NamedSet),
}

impl AddrPattern {
    /// Whether the normalized address matches.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            AddrPattern::Any => true,
            AddrPattern::Block(c) => c.contains(ip),
            AddrPattern::Set(s) => s.contains(ip),
        }
    }

    /// Whether no address of `family` can match (so `#FAMILY` would make the rule empty).
    pub(crate) fn excludes_family(&self, family: FamilyOnly) -> bool {
        let blocks: &[Cidr] = match self {
            AddrPattern::Any => return false,
            AddrPattern::Block(c) => std::slice::from_ref(c),
            AddrPattern::Set(s) => s.blocks(),
        };
        blocks.iter().all(|b| !family.admits(b.addr()))
    }
}

impl fmt::Display for AddrPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrPattern::Any => f.write_str("*"),
            AddrPattern::Block(c) => c.fmt(f),
            AddrPattern::Set(s) => s.fmt(f),
        }
    }
}

/// The HOST of a socket rule: an address pattern, matched directly, or a name pattern, matched
/// through the names this instance's own lookups returned for the address (name-bound grants).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `*`, an address, a block or a set.
    Addr(AddrPattern),
    /// `api.example.com` or `*.example.com`.
    Name(NamePattern),
}

impl HostPattern {
    /// Whether the address matches: `ip` normalized, `raw` as the guest gave it (a name-bound
    /// rule matches if the lookup returned either spelling).
    #[inline]
    pub fn covers(&self, ip: IpAddr, raw: IpAddr, names: &dyn NameBook) -> bool {
        match self {
            HostPattern::Addr(a) => a.contains(ip),
            HostPattern::Name(n) => {
                names.names_of(ip).iter().any(|x| n.matches(x))
                    || (raw != ip && names.names_of(raw).iter().any(|x| n.matches(x)))
            }
        }
    }
}

/// A host name that is also a set's reserved word is written with a trailing dot.
impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Addr(a) => a.fmt(f),
            HostPattern::Name(NamePattern::Exact(n))
                if NamedSet::from_word(n).is_some() || NamedSet::near_miss(n).is_some() =>
            {
                write!(f, "{n}.")
            }
            HostPattern::Name(n) => n.fmt(f),
        }
    }
}

/// PORTS: sorted, merged, non-empty inclusive ranges within 1..=65535 (`*` is `1-65535`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortSet(Box<[(u16, u16)]>);

impl PortSet {
    /// `*`.
    pub fn all() -> PortSet {
        PortSet(Box::new([(1, u16::MAX)]))
    }

    /// The set of the given ranges (each `lo <= hi`, `lo >= 1`), sorted and merged.
    pub(crate) fn from_ranges(mut ranges: Vec<(u16, u16)>) -> PortSet {
        ranges.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        PortSet(merged.into_boxed_slice())
    }

    /// Whether `port` is in the set (port 0, ephemeral, never is).
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= port && port <= hi)
    }

    /// Whether the set is `*`.
    pub fn is_all(&self) -> bool {
        *self.0 == [(1, u16::MAX)]
    }

    /// The one port of a single-port set.
    pub fn single(&self) -> Option<u16> {
        match *self.0 {
            [(lo, hi)] if lo == hi => Some(lo),
            _ => None,
        }
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("*");
        }
        for (i, &(lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// `#ipv4-only` / `#ipv6-only`: restricts a socket rule to one address family (of the
/// normalized address, so `::ffff:10.0.0.5` is IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FamilyOnly {
    /// `#ipv4-only`.
    Ipv4,
    /// `#ipv6-only`.
    Ipv6,
}

impl FamilyOnly {
    /// Whether the normalized address is of this family.
    #[inline]
    pub fn admits(self, ip: IpAddr) -> bool {
        matches!(
            (self, ip),
            (FamilyOnly::Ipv4, IpAddr::V4(_)) | (FamilyOnly::Ipv6, IpAddr::V6(_))
        )
    }
}

impl fmt::Display for FamilyOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FamilyOnly::Ipv4 => "#ipv4-only",
            FamilyOnly::Ipv6 => "#ipv6-only",
        })
    }
}

/// An outbound or inbound rule's pattern: `SCHEME://HOST:PORTS[#FAMILY][->PORT][ from PEERS]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SocketPattern {
    /// Which protocols.
    pub scheme: Scheme,
    /// Which addresses (remote for outbound, local for inbound).
    pub host: HostPattern,
    /// Which ports.
    pub ports: PortSet,
    /// Optional family restriction.
    pub family: Option<FamilyOnly>,
    /// Inbound mapping `->PORT`: the host port a bind to the (single) rule port really uses.
    pub map_to: Option<u16>,
    /// Inbound `from PEERS`: which peers may connect or send; `None`: any.
    pub from: Option<Box<[AddrPattern]>>,
}

impl SocketPattern {
    /// Whether the rule's scheme, ports, family and host cover a socket address of `proto`.
    #[inline]
    pub fn covers(
        &self,
        proto: Protocol,
        ip: IpAddr,
        raw: IpAddr,
        port: u16,
        names: &dyn NameBook,
    ) -> bool {
        self.scheme.covers(proto)
            && self.ports.contains(port)
            && self.family.is_none_or(|f| f.admits(ip))
            && self.host.covers(ip, raw, names)
    }

    /// Whether the `from` part admits the normalized peer address (no `from`: every peer).
    #[inline]
    pub fn admits_peer(&self, peer: IpAddr) -> bool {
        self.from
            .as_deref()
            .is_none_or(|from| from.iter().any(|p| p.contains(peer)))
    }
}

impl fmt::Display for SocketPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.ports)?;
        if let Some(family) = self.family {
            family.fmt(f)?;
        }
        if let Some(port) = self.map_to {
            write!(f, "->{port}")?;
        }
        if let Some(from) = &self.from {
            f.write_str(" from ")?;
            for (i, peer) in from.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                peer.fmt(f)?;
            }
        }
        Ok(())
    }
}

/// A resolve rule's pattern: `NAMEPATTERN[->ADDR[,ADDR…]]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResolvePattern {
    /// Which names.
    pub name: NamePattern,
    /// Fixed answers (`->`), normalized and without duplicates; empty: ask the resolver.
    pub map_to: Box<[IpAddr]>,
}

impl fmt::Display for ResolvePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.name.fmt(f)?;
        for (i, ip) in self.map_to.iter().enumerate() {
            f.write_str(if i == 0 { "->" } else { "," })?;
            match ip {
                IpAddr::V4(a) => write!(f, "{a}")?,
                IpAddr::V6(a) => write!(f, "[{a}]")?,
            }
        }
        Ok(())
    }
}

/// One rule: a kind and its pattern. Built by parsing (`Rule::new`, `str::parse`), so the
/// pattern always fits the kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    kind: Kind,
    body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Body {
    Socket(SocketPattern),
    Resolve(ResolvePattern),
}

impl Rule {
    /// A socket rule (the parser has checked the pattern fits the kind).
    pub(crate) fn socket(kind: Kind, pattern: SocketPattern) -> Rule {
        Rule {
            kind,
            body: Body::Socket(pattern),
        }
    }

    /// A resolve rule (the parser has checked the pattern fits the kind).
    pub(crate) fn resolve(kind: Kind, pattern: ResolvePattern) -> Rule {
        Rule {
            kind,
            body: Body::Resolve(pattern),
        }
    }

    /// The rule's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The pattern of an outbound or inbound rule.
    pub fn socket_pattern(&self) -> Option<&SocketPattern> {
        match &self.body {
            Body::Socket(p) => Some(p),
            Body::Resolve(_) => None,
        }
    }

    /// The pattern of a resolve rule.
    pub fn resolve_pattern(&self) -> Option<&ResolvePattern> {
        match &self.body {
            Body::Resolve(p) => Some(p),
            Body::Socket(_) => None,
        }
    }

    /// The pattern alone, canonically spelled (what a flag's value or a TOML string holds).
    pub fn pattern(&self) -> String {
        match &self.body {
            Body::Socket(p) => p.to_string(),
            Body::Resolve(p) => p.to_string(),
        }
    }
}

/// `KIND PATTERN`, canonically spelled: what audit records name as the deciding rule.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.body {
            Body::Socket(p) => write!(f, "{} {p}", self.kind),
            Body::Resolve(p) => write!(f, "{} {p}", self.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_subdomains_not_the_apex() {
        let p = NamePattern::Subdomains(".example.com".into());
        assert!(p.matches("a.example.com"));
        assert!(p.matches("a.b.example.com"));
        assert!(!p.matches("example.com"));
        assert!(!p.matches("badexample.com"));
        assert!(!p.matches("example.com.evil"));
    }

    #[test]
    fn port_sets_merge_and_print_canonically() {
        let p = PortSet::from_ranges(vec![(8000, 8099), (443, 443), (80, 80), (8050, 8200)]);
        assert_eq!(p.to_string(), "80,443,8000-8200");
        assert!(p.contains(8200) && !p.contains(8201) && !p.contains(0));
        assert_eq!(
            PortSet::from_ranges(vec![(1, 100), (101, 65535)]),
            PortSet::all()
        );
        assert_eq!(PortSet::all().to_string(), "*");
        assert!(!PortSet::all().contains(0));
    }
}
