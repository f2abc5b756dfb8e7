//! The parser of one rule: `KIND PATTERN` or a kind's pattern alone, into a [`Rule`].
//!
//! ```text
//! socket:  SCHEME://HOST:PORTS[#FAMILY][->PORT][ from PEER[,PEER...]]
//! resolve: NAMEPATTERN[->ADDR[,ADDR...]]
//! ```
//!
//! Errors carry the byte offset of the offending part; [`Fail::into_error`] turns it into a
//! column once the caller knows where the text came from.

use super::cidr::{Cidr, max_prefix, normalize_ip};
use super::error::{Fail, ParseError, Problem, Source};
use super::rules::{
    AddrPattern, FamilyOnly, HostPattern, Kind, NamePattern, PortSet, ResolvePattern, Rule, Scheme,
    SocketPattern,
};
use super::sets::NamedSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

impl Rule {
    /// Parses `pattern` as a rule of `kind`; errors name the flag `--KIND`.
    pub fn new(kind: Kind, pattern: &str) -> Result<Rule, ParseError> {
        parse_pattern(kind, pattern)
            .map_err(|e| e.into_error(Source::Flag(format!("--{kind}")), pattern))
    }
}

/// `KIND PATTERN`, e.g. `allow-outbound tcp://api.example.com:443`.
impl FromStr for Rule {
    type Err = ParseError;

    fn from_str(line: &str) -> Result<Rule, ParseError> {
        parse_line(line).map_err(|e| e.into_error(Source::Line, line))
    }
}

/// Parses a kind's pattern; offsets in the error are into `text`.
pub(crate) fn parse_pattern(kind: Kind, text: &str) -> Result<Rule, Fail> {
    let mut c = Cursor { s: text, pos: 0 };
    c.skip_ws();
    rule_at(kind, &mut c)
}

/// Parses `KIND PATTERN`; offsets in the error are into `line`.
fn parse_line(line: &str) -> Result<Rule, Fail> {
    let mut c = Cursor { s: line, pos: 0 };
    c.skip_ws();
    let at = c.pos;
    let word = c.take_while(|ch| !ch.is_whitespace());
    let kind = Kind::from_name(word).ok_or(Fail::at(at, Problem::UnknownKind))?;
    c.skip_ws();
    rule_at(kind, &mut c)
}

fn rule_at(kind: Kind, c: &mut Cursor<'_>) -> Result<Rule, Fail> {
    if c.rest().trim().is_empty() {
        return Err(Fail::at(c.pos, Problem::EmptyPattern));
    }
    let rule = if kind.is_resolve() {
        Rule::resolve(kind, resolve_pattern(kind, c)?)
    } else {
        Rule::socket(kind, socket_pattern(kind, c)?)
    };
    c.skip_ws();
    if !c.rest().is_empty() {
        return Err(Fail::at(c.pos, Problem::TrailingInput));
    }
    Ok(rule)
}

/// A cursor over the text being parsed.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, token: &str) -> bool {
        let hit = self.rest().starts_with(token);
        if hit {
            self.pos += token.len();
        }
        hit
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|ch: char| !f(ch)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn skip_ws(&mut self) {
        self.take_while(char::is_whitespace);
    }
}

fn socket_pattern(kind: Kind, c: &mut Cursor<'_>) -> Result<SocketPattern, Fail> {
    let start = c.pos;
    let word = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '*');
    if !c.eat("://") {
        let at = if is_scheme(word) { c.pos } else { start };
        return Err(Fail::at(at, Problem::MissingScheme));
    }
    let scheme = match word.to_ascii_lowercase().as_str() {
        "tcp" => Scheme::Tcp,
        "udp" => Scheme::Udp,
        "*" => Scheme::Any,
        _ => return Err(Fail::at(start, Problem::UnknownScheme)),
    };

    let host_at = c.pos;
    let host = host(c)?;
    if !c.eat(":") {
        return Err(Fail::at(c.pos, Problem::MissingPorts));
    }
    let ports_at = c.pos;
    let ports = ports(c)?;

    let mut family = None;
    let mut map_to = None;
    loop {
        let at = c.pos;
        if c.eat("#") {
            let mut word = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '-');
            if c.peek() == Some('>') && word.ends_with('-') {
                c.pos -= 1;
                word = &word[..word.len() - 1];
            }
            let f = match word.to_ascii_lowercase().as_str() {
                "ipv4-only" => FamilyOnly::Ipv4,
                "ipv6-only" => FamilyOnly::Ipv6,
                _ => return Err(Fail::at(at, Problem::UnknownFamily)),
            };
            if family.replace(f).is_some() {
                return Err(Fail::at(at, Problem::Repeated));
            }
            if matches!(&host, HostPattern::Addr(a) if a.excludes_family(f)) {
                return Err(Fail::at(at, Problem::FamilyContradiction));
            }
        } else if c.eat("->") {
            if kind != Kind::AllowInbound {
                let problem = if kind.is_inbound() {
                    Problem::MappingOnDeny
                } else {
                    Problem::MappingNotInbound
                };
                return Err(Fail::at(at, problem));
            }
            if ports.single().is_none() {
                return Err(Fail::at(ports_at, Problem::MappingNeedsSinglePort));
            }
            if matches!(host, HostPattern::Name(_)) {
                return Err(Fail::at(host_at, Problem::MappingNeedsAddressHost));
            }
            let port_at = c.pos;
            let port = port(c).map_err(|_| Fail::at(port_at, Problem::BadMappedPort))?;
            if map_to.replace(port).is_some() {
                return Err(Fail::at(at, Problem::Repeated));
            }
        } else {
            break;
        }
    }

    let before_ws = c.pos;
    c.skip_ws();
    let mut from = None;
    if c.pos > before_ws && starts_with_word(c.rest(), "from") {
        if !kind.is_inbound() {
            return Err(Fail::at(c.pos, Problem::FromNotInbound));
        }
        c.pos += "from".len();
        c.skip_ws();
        from = Some(peers(c)?.into_boxed_slice());
    }
    Ok(SocketPattern {
        scheme,
        host,
        ports,
        family,
        map_to,
        from,
    })
}

fn is_scheme(word: &str) -> bool {
    ["tcp", "udp", "*"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(word))
}

/// Whether `text` starts with `word` (case-insensitive) followed by whitespace or the end.
fn starts_with_word(text: &str, word: &str) -> bool {
    text.get(..word.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(word))
        && text[word.len()..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace)
}

/// HOST, up to the `:` before the ports.
fn host(c: &mut Cursor<'_>) -> Result<HostPattern, Fail> {
    let at = c.pos;
    if c.peek() == Some('[') {
        return Ok(HostPattern::Addr(AddrPattern::Block(bracketed(c)?)));
    }
    let segment = c.rest();
    let segment = &segment[..segment
        .find(|ch: char| ch.is_whitespace() || ch == '#')
        .unwrap_or(segment.len())];
    if segment.matches(':').count() >= 2 {
        return Err(Fail::at(at, Problem::UnbracketedIpv6));
    }
    let token = c.take_while(|ch| !matches!(ch, ':' | '/' | '#') && !ch.is_whitespace());
    if token.is_empty() {
        return Err(Fail::at(at, Problem::MissingHost));
    }
    if token == "*" {
        return Ok(HostPattern::Addr(AddrPattern::Any));
    }
    if let Ok(v4) = token.parse::<Ipv4Addr>() {
        let cidr = with_prefix(c, IpAddr::V4(v4), at)?;
        return Ok(HostPattern::Addr(AddrPattern::Block(cidr)));
    }
    if c.peek() == Some('/') {
        return Err(Fail::at(c.pos, Problem::PrefixWithoutAddress));
    }
    if !token.contains('*') && !token.ends_with('.') {
        if let Some(set) = NamedSet::from_word(token) {
            return Ok(HostPattern::Addr(AddrPattern::Set(set)));
        }
        if let Some(set) = NamedSet::near_miss(token) {
            return Err(Fail::at(at, Problem::NearSet(set)));
        }
    }
    name_pattern(token, at).map(HostPattern::Name)
}

/// `[IPv6]` with an optional `/N`, normalized.
fn bracketed(c: &mut Cursor<'_>) -> Result<Cidr, Fail> {
    let at = c.pos;
    c.pos += 1;
    let Some(len) = c.rest().find(']') else {
        return Err(Fail::at(at, Problem::UnclosedBracket));
    };
    let inner = &c.rest()[..len];
    let v6: Ipv6Addr = inner
        .parse()
        .map_err(|_| Fail::at(at + 1, Problem::BadIpv6))?;
    c.pos += len + 1;
    with_prefix(c, IpAddr::V6(v6), at)
}

/// The block of `addr` and an optional `/N` at the cursor; `addr_at` locates host-bit errors.
fn with_prefix(c: &mut Cursor<'_>, addr: IpAddr, addr_at: usize) -> Result<Cidr, Fail> {
    let max = max_prefix(addr);
    if !c.eat("/") {
        return Ok(Cidr::host(addr).normalized());
    }
    let at = c.pos;
    let digits = c.take_while(|ch| ch.is_ascii_digit());
    let prefix = digits
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= max)
        .ok_or(Fail::at(at, Problem::BadPrefix { max }))?;
    match Cidr::new(addr, prefix) {
        Some(cidr) => Ok(cidr.normalized()),
        None => {
            let meant = Cidr::truncated(addr, prefix).map(Cidr::normalized);
            let meant = meant.ok_or(Fail::at(at, Problem::BadPrefix { max }))?;
            Err(Fail::at(addr_at, Problem::HostBitsSet(meant)))
        }
    }
}

/// A name, `*.domain` or `*`, normalized like a lookup's name.
fn name_pattern(token: &str, at: usize) -> Result<NamePattern, Fail> {
    if token == "*" {
        return Ok(NamePattern::Any);
    }
    if let Some(domain) = token.strip_prefix("*.") {
        if let Some(i) = domain.find('*') {
            return Err(Fail::at(at + 2 + i, Problem::BadWildcard));
        }
        let domain = name(domain, at + 2)?;
        return Ok(NamePattern::Subdomains(format!(".{domain}").into()));
    }
    if let Some(i) = token.find('*') {
        return Err(Fail::at(at + i, Problem::BadWildcard));
    }
    Ok(NamePattern::Exact(name(token, at)?.into()))
}

/// One host name, normalized (IDNA, lower case, no trailing dot).
fn name(token: &str, at: usize) -> Result<String, Fail> {
    let bare = token.strip_suffix('.').unwrap_or(token);
    let last = bare.rsplit('.').next().unwrap_or_default();
    let numeric = !last.is_empty()
        && (last.bytes().all(|b| b.is_ascii_digit())
            || last
                .strip_prefix("0x")
                .or_else(|| last.strip_prefix("0X"))
                .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())));
    if numeric {
        return Err(Fail::at(at, Problem::NumericHost));
    }
    crate::lookup::normalize_name(token).map_err(|_| Fail::at(at, Problem::BadName))
}

/// PORTS: `*`, `N`, `A-B`, or a comma list of those numbers and ranges.
fn ports(c: &mut Cursor<'_>) -> Result<PortSet, Fail> {
    if c.eat("*") {
        if c.peek() == Some(',') {
            return Err(Fail::at(c.pos - 1, Problem::StarInList));
        }
        return Ok(PortSet::all());
    }
    let mut ranges = Vec::new();
    loop {
        let at = c.pos;
        match c.peek() {
            Some('*') => return Err(Fail::at(at, Problem::StarInList)),
            Some(ch) if ch.is_ascii_digit() => {}
            _ if !ranges.is_empty() => return Err(Fail::at(at, Problem::EmptyListItem)),
            _ => return Err(Fail::at(at, Problem::BadPort)),
        }
        let lo = port(c)?;
        let hi = if !c.rest().starts_with("->") && c.eat("-") {
            port(c)?
        } else {
            lo
        };
        if lo > hi {
            return Err(Fail::at(at, Problem::ReversedRange));
        }
        ranges.push((lo, hi));
        if !c.eat(",") {
            return Ok(PortSet::from_ranges(ranges));
        }
    }
}

/// One port number, 1-65535.
fn port(c: &mut Cursor<'_>) -> Result<u16, Fail> {
    let at = c.pos;
    let digits = c.take_while(|ch| ch.is_ascii_digit());
    match digits.parse::<u16>() {
        Ok(0) => Err(Fail::at(at, Problem::PortZero)),
        Ok(port) => Ok(port),
        Err(_) => Err(Fail::at(at, Problem::BadPort)),
    }
}

/// `PEER[,PEER...]` after `from`; spaces may follow each comma.
fn peers(c: &mut Cursor<'_>) -> Result<Vec<AddrPattern>, Fail> {
    let mut out = Vec::new();
    loop {
        let at = c.pos;
        let token = c.take_while(|ch| ch != ',' && !ch.is_whitespace());
        out.push(peer(token, at)?);
        let save = c.pos;
        c.skip_ws();
        if !c.eat(",") {
            c.pos = save;
            return Ok(out);
        }
        c.skip_ws();
    }
}

/// One peer: `*`, an address (IPv6 with or without brackets), a CIDR or a set.
fn peer(token: &str, at: usize) -> Result<AddrPattern, Fail> {
    if token.is_empty() {
        return Err(Fail::at(at, Problem::BadPeer));
    }
    if token == "*" {
        return Ok(AddrPattern::Any);
    }
    if token.starts_with('[') {
        let mut c = Cursor { s: token, pos: 0 };
        let cidr = bracketed(&mut c).map_err(|e| Fail::at(at + e.at, e.problem))?;
        if !c.rest().is_empty() {
            return Err(Fail::at(at + c.pos, Problem::BadPeer));
        }
        return Ok(AddrPattern::Block(cidr));
    }
    let (addr_text, prefix) = match token.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (token, None),
    };
    if let Ok(addr) = addr_text.parse::<IpAddr>() {
        let mut c = Cursor {
            s: token,
            pos: addr_text.len(),
        };
        let cidr = with_prefix(&mut c, addr, 0).map_err(|e| Fail::at(at + e.at, e.problem))?;
        if prefix.is_some_and(|p| c.pos != token.len() || p.is_empty()) {
            return Err(Fail::at(
                at + c.pos,
                Problem::BadPrefix {
                    max: max_prefix(addr),
                },
            ));
        }
        return Ok(AddrPattern::Block(cidr));
    }
    if let Some(set) = NamedSet::from_word(token) {
        return Ok(AddrPattern::Set(set));
    }
    if let Some(set) = NamedSet::near_miss(token) {
        return Err(Fail::at(at, Problem::NearSet(set)));
    }
    if crate::lookup::normalize_name(token).is_ok() {
        return Err(Fail::at(at, Problem::NameAsPeer));
    }
    Err(Fail::at(at, Problem::BadPeer))
}

/// `NAMEPATTERN[->ADDR[,ADDR...]]`.
fn resolve_pattern(kind: Kind, c: &mut Cursor<'_>) -> Result<ResolvePattern, Fail> {
    let at = c.pos;
    let rest = c.rest();
    let segment = &rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())];
    let (name_text, mapping) = match segment.find("->") {
        Some(i) => (&segment[..i], Some(i)),
        None => (segment, None),
    };
    c.pos += segment.len();
    if name_text.is_empty() {
        return Err(Fail::at(at, Problem::MissingName));
    }
    if parse_ip(name_text).is_some() {
        return Err(Fail::at(at, Problem::ResolveLiteral));
    }
    let name = name_pattern(name_text, at)?;
    let mut map_to: Vec<IpAddr> = Vec::new();
    if let Some(i) = mapping {
        if kind != Kind::AllowResolve {
            return Err(Fail::at(at + i, Problem::MappingOnDeny));
        }
        let mut item_at = at + i + 2;
        for item in segment[i + 2..].split(',') {
            if item.is_empty() {
                return Err(Fail::at(item_at, Problem::MissingMappedAddress));
            }
            let ip = parse_ip(item).ok_or(Fail::at(item_at, Problem::BadMappedAddress))?;
            let ip = normalize_ip(ip);
            if ip.is_unspecified() {
                return Err(Fail::at(item_at, Problem::MappedUnspecified));
            }
            if !map_to.contains(&ip) {
                map_to.push(ip);
            }
            item_at += item.len() + 1;
        }
    }
    Ok(ResolvePattern {
        name,
        map_to: map_to.into_boxed_slice(),
    })
}

/// An IP literal: `a.b.c.d`, an IPv6 address, or `[IPv6]`.
fn parse_ip(text: &str) -> Option<IpAddr> {
    match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(inner) => inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical spelling of a rule line.
    fn canon(line: &str) -> String {
        line.parse::<Rule>()
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .to_string()
    }

    /// The column and problem of a refused pattern of `kind`.
    fn refused(kind: Kind, pattern: &str) -> (usize, Problem) {
        let e = Rule::new(kind, pattern).expect_err(pattern);
        (e.column, e.problem)
    }

    #[test]
    fn every_host_form_parses_to_its_canonical_spelling() {
        for (written, canonical) in [
            (
                "allow-outbound tcp://api.example.com:443",
                "allow-outbound tcp://api.example.com:443",
            ),
            (
                "allow-outbound TCP://API.Example.COM.:443",
                "allow-outbound tcp://api.example.com:443",
            ),
            (
                "allow-outbound tcp://bücher.example:443",
                "allow-outbound tcp://xn--bcher-kva.example:443",
            ),
            (
                "allow-outbound tcp://*.Example.com:443",
                "allow-outbound tcp://*.example.com:443",
            ),
            (
                "allow-outbound udp://10.0.0.5:53",
                "allow-outbound udp://10.0.0.5:53",
            ),
            (
                "allow-outbound udp://[::1]:53",
                "allow-outbound udp://[::1]:53",
            ),
            (
                "allow-outbound udp://[::ffff:10.0.0.5]:53",
                "allow-outbound udp://10.0.0.5:53",
            ),
            (
                "allow-outbound udp://[::10.0.0.5]:53",
                "allow-outbound udp://10.0.0.5:53",
            ),
            (
                "deny-outbound *://10.0.0.0/8:*",
                "deny-outbound *://10.0.0.0/8:*",
            ),
            (
                "deny-outbound *://[FD00::]/8:*",
                "deny-outbound *://[fd00::]/8:*",
            ),
            (
                "deny-outbound *://[::ffff:10.0.0.0]/104:*",
                "deny-outbound *://10.0.0.0/8:*",
            ),
            (
                "deny-outbound *://10.0.0.5/32:*",
                "deny-outbound *://10.0.0.5:*",
            ),
            ("allow-outbound *://*:*", "allow-outbound *://*:*"),
            (
                "deny-outbound *://Cloud-Metadata:*",
                "deny-outbound *://cloud-metadata:*",
            ),
            (
                "allow-outbound tcp://private.:80",
                "allow-outbound tcp://private.:80",
            ),
            (
                "allow-outbound tcp://privat.:80",
                "allow-outbound tcp://privat.:80",
            ),
            (
                "allow-outbound tcp://localhost:80",
                "allow-outbound tcp://localhost:80",
            ),
        ] {
            assert_eq!(canon(written), canonical, "{written}");
            assert_eq!(canon(canonical), canonical, "round trip of {canonical}");
        }
    }

    #[test]
    fn ports_families_mappings_and_peers() {
        for (written, canonical) in [
            (
                "allow-outbound tcp://x.example:8000-8099,443,80",
                "allow-outbound tcp://x.example:80,443,8000-8099",
            ),
            (
                "allow-outbound tcp://x.example:1-65535",
                "allow-outbound tcp://x.example:*",
            ),
            (
                "allow-outbound tcp://*:443#IPv6-only",
                "allow-outbound tcp://*:443#ipv6-only",
            ),
            (
                "allow-inbound tcp://*:80->8080",
                "allow-inbound tcp://*:80->8080",
            ),
            (
                "allow-inbound tcp://*:80->8080#ipv4-only",
                "allow-inbound tcp://*:80#ipv4-only->8080",
            ),
            (
                "allow-inbound udp://*:53  FROM  loopback , ::1, [fd00::]/8,10.0.0.0/8",
                "allow-inbound udp://*:53 from loopback,[::1],[fd00::]/8,10.0.0.0/8",
            ),
            (
                "deny-inbound tcp://*:* from cloud-metadata",
                "deny-inbound tcp://*:* from cloud-metadata",
            ),
            (
                "allow-resolve DB.Internal.->127.0.0.1,::1,127.0.0.1",
                "allow-resolve db.internal->127.0.0.1,[::1]",
            ),
            (
                "allow-resolve *.example.com->[::ffff:127.0.0.1]",
                "allow-resolve *.example.com->127.0.0.1",
            ),
            ("deny-resolve *", "deny-resolve *"),
        ] {
            assert_eq!(canon(written), canonical, "{written}");
            assert_eq!(canon(canonical), canonical, "round trip of {canonical}");
        }
    }

    #[test]
    fn a_from_that_is_the_loopback_block_prints_as_written() {
        // 127.0.0.0/8 is not rewritten into the set: blocks stay blocks.
        assert_eq!(
            canon("allow-inbound tcp://*:8080 from 127.0.0.0/8"),
            "allow-inbound tcp://*:8080 from 127.0.0.0/8"
        );
    }

    #[test]
    fn errors_name_the_flag_column_and_expectation() {
        let e = Rule::new(Kind::AllowOutbound, "tcp://x:99999").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--allow-outbound tcp://x:99999: column 9: expected a port 1-65535 or a range A-B"
        );
        let e = "allow-outbond tcp://x:1".parse::<Rule>().unwrap_err();
        assert_eq!((e.column, e.problem), (1, Problem::UnknownKind));
        let e = "allow-outbound tcp://x:0".parse::<Rule>().unwrap_err();
        assert_eq!((e.column, e.problem), (24, Problem::PortZero));
    }

    #[test]
    fn each_mistake_has_its_own_problem() {
        use Kind::*;
        use Problem::*;
        for (kind, pattern, column, problem) in [
            (AllowOutbound, "", 1, EmptyPattern),
            (AllowOutbound, "api.example.com:443", 1, MissingScheme),
            (AllowOutbound, "tcp:/api.example.com:443", 4, MissingScheme),
            (AllowOutbound, "tpc://api.example.com:443", 1, UnknownScheme),
            (AllowOutbound, "tcp://:443", 7, MissingHost),
            (AllowOutbound, "tcp://fd00::1:443", 7, UnbracketedIpv6),
            (AllowOutbound, "tcp://[fd00::1:443", 7, UnclosedBracket),
            (AllowOutbound, "tcp://[fd00::g]:443", 8, BadIpv6),
            (AllowOutbound, "tcp://2130706433:443", 7, NumericHost),
            (AllowOutbound, "tcp://0x7f.1:443", 7, NumericHost),
            (AllowOutbound, "tcp://010.0.0.1:443", 7, NumericHost),
            (AllowOutbound, "tcp://exa_mple!.com:443", 7, BadName),
            (AllowOutbound, "tcp://a.*.example.com:443", 9, BadWildcard),
            (AllowOutbound, "tcp://*example.com:443", 7, BadWildcard),
            (
                AllowOutbound,
                "tcp://privat:443",
                7,
                NearSet(NamedSet::Private),
            ),
            (
                AllowOutbound,
                "tcp://example.com/8:443",
                18,
                PrefixWithoutAddress,
            ),
            (
                AllowOutbound,
                "tcp://10.0.0.0/33:443",
                16,
                BadPrefix { max: 32 },
            ),
            (
                AllowOutbound,
                "tcp://[fd00::]/129:443",
                16,
                BadPrefix { max: 128 },
            ),
            (AllowOutbound, "tcp://api.example.com", 22, MissingPorts),
            (AllowOutbound, "tcp://api.example.com:", 23, BadPort),
            (AllowOutbound, "tcp://api.example.com:http", 23, BadPort),
            (AllowOutbound, "tcp://x.example:0", 17, PortZero),
            (AllowOutbound, "tcp://x.example:90-80", 17, ReversedRange),
            (AllowOutbound, "tcp://x.example:80,", 20, EmptyListItem),
            (AllowOutbound, "tcp://x.example:80,*", 20, StarInList),
            (AllowOutbound, "tcp://x.example:*,80", 17, StarInList),
            (
                AllowOutbound,
                "tcp://x.example:80#ipv5-only",
                19,
                UnknownFamily,
            ),
            (
                AllowOutbound,
                "tcp://10.0.0.0/8:80#ipv6-only",
                20,
                FamilyContradiction,
            ),
            (
                AllowOutbound,
                "tcp://x.example:80#ipv4-only#ipv4-only",
                29,
                Repeated,
            ),
            (
                AllowOutbound,
                "tcp://x.example:80->8080",
                19,
                MappingNotInbound,
            ),
            (DenyInbound, "tcp://*:80->8080", 11, MappingOnDeny),
            (
                AllowInbound,
                "tcp://*:80,81->8080",
                9,
                MappingNeedsSinglePort,
            ),
            (
                AllowInbound,
                "tcp://me.example:80->8080",
                7,
                MappingNeedsAddressHost,
            ),
            (AllowInbound, "tcp://*:80->0", 13, BadMappedPort),
            (AllowInbound, "tcp://*:80->8080->8081", 17, Repeated),
            (
                AllowOutbound,
                "tcp://x.example:80 from loopback",
                20,
                FromNotInbound,
            ),
            (AllowInbound, "tcp://*:80 from", 16, BadPeer),
            (AllowInbound, "tcp://*:80 from ", 17, BadPeer),
            (AllowInbound, "tcp://*:80 from loopback,", 26, BadPeer),
            (AllowInbound, "tcp://*:80 from db.internal", 17, NameAsPeer),
            (
                AllowInbound,
                "tcp://*:80 from 10.0.0.1/40",
                26,
                BadPrefix { max: 32 },
            ),
            (
                AllowInbound,
                "tcp://*:80 from 10.0.0.1/8",
                17,
                HostBitsSet(Cidr::new("10.0.0.0".parse().unwrap(), 8).unwrap()),
            ),
            (
                AllowInbound,
                "tcp://*:80 from loopbak",
                17,
                NearSet(NamedSet::Loopback),
            ),
            (AllowInbound, "tcp://*:80 to loopback", 12, TrailingInput),
            (AllowOutbound, "tcp://x.example:80x", 19, TrailingInput),
            (AllowResolve, "10.0.0.5", 1, ResolveLiteral),
            (AllowResolve, "[::1]", 1, ResolveLiteral),
            (AllowResolve, "->127.0.0.1", 1, MissingName),
            (AllowResolve, "db.internal->", 14, MissingMappedAddress),
            (
                AllowResolve,
                "db.internal->127.0.0.1,,::1",
                24,
                MissingMappedAddress,
            ),
            (AllowResolve, "db.internal->localhost", 14, BadMappedAddress),
            (AllowResolve, "db.internal->0.0.0.0", 14, MappedUnspecified),
            (DenyResolve, "db.internal->127.0.0.1", 12, MappingOnDeny),
            (AllowResolve, "db.internal extra", 13, TrailingInput),
        ] {
            assert_eq!(
                refused(kind, pattern),
                (column, problem),
                "{kind} {pattern}"
            );
        }
    }

    #[test]
    fn host_bits_suggest_the_block() {
        let e = Rule::new(Kind::DenyOutbound, "*://10.0.0.5/8:*").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--deny-outbound *://10.0.0.5/8:*: column 5: expected the first address of the \
             block (host bits zero): did you mean 10.0.0.0/8?"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let e = Rule::new(Kind::AllowOutbound, "tcp://bücher.example:0").unwrap_err();
        assert_eq!((e.column, e.problem), (22, Problem::PortZero));
    }
}
