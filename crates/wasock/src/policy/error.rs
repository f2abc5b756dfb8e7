//! Why a rule or a policy file was refused: where (flag, or file and line), at which column, and
//! what was expected there.

use super::cidr::Cidr;
use super::sets::NamedSet;
use std::fmt;

/// A refused rule or policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Where the text came from.
    pub source: Source,
    /// The rule text (or, for file structure errors, the offending key or value).
    pub text: String,
    /// 1-based column, in characters: within `text` for a flag or a line, within the file line
    /// for a file.
    pub column: usize,
    /// What was expected there.
    pub problem: Problem,
}

/// Where a rule was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag (or builder method) such as `--allow-outbound`; `text` is its value.
    Flag(String),
    /// A policy file, at a 1-based line.
    File {
        /// The file's path, as given.
        path: String,
        /// 1-based line.
        line: usize,
    },
    /// A whole rule line, `KIND PATTERN`.
    Line,
}

/// What was expected and not found. Each variant names one rule of the syntax; a later release
/// may add variants.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Not one of the six kinds.
    UnknownKind,
    /// A kind with no pattern.
    EmptyPattern,
    /// No `SCHEME://` at the start.
    MissingScheme,
    /// A word before `://` that is not `tcp`, `udp` or `*`.
    UnknownScheme,
    /// Nothing where the host goes.
    MissingHost,
    /// An IPv6 address without brackets.
    UnbracketedIpv6,
    /// `[` without `]`.
    UnclosedBracket,
    /// Not an IPv6 address inside `[ ]`.
    BadIpv6,
    /// A dotted-number host that is not a decimal IPv4 address (`2130706433`, `010.0.0.1`).
    NumericHost,
    /// Not a valid host name.
    BadName,
    /// `*` anywhere but alone or as the first label.
    BadWildcard,
    /// A one-label word close to a set's name.
    NearSet(NamedSet),
    /// `/N` after something that is not an address.
    PrefixWithoutAddress,
    /// A prefix length out of range for the family.
    BadPrefix {
        /// 32 or 128.
        max: u8,
    },
    /// A block written with host bits set; carries the block that was probably meant.
    HostBitsSet(Cidr),
    /// No `:PORTS` after the host.
    MissingPorts,
    /// Not a port or range.
    BadPort,
    /// Port 0 in a rule.
    PortZero,
    /// A range `A-B` with `A > B`.
    ReversedRange,
    /// Nothing after a `,`.
    EmptyListItem,
    /// `*` inside a port list.
    StarInList,
    /// `#` followed by something else than `ipv4-only` or `ipv6-only`.
    UnknownFamily,
    /// A family restriction no address of the host has.
    FamilyContradiction,
    /// `#FAMILY` or `->PORT` given twice.
    Repeated,
    /// `->PORT` on an outbound rule.
    MappingNotInbound,
    /// `->` on a deny rule.
    MappingOnDeny,
    /// `->PORT` after more than one port.
    MappingNeedsSinglePort,
    /// `->PORT` on a rule whose host is a name.
    MappingNeedsAddressHost,
    /// Not a port after `->`.
    BadMappedPort,
    /// `from` on an outbound rule.
    FromNotInbound,
    /// Nothing, or not an address, CIDR or set, after `from` or a `,` in the peer list.
    BadPeer,
    /// A name among the peers.
    NameAsPeer,
    /// Text after the end of the rule.
    TrailingInput,
    /// No name before `->` in a resolve rule.
    MissingName,
    /// An IP literal as a resolve pattern.
    ResolveLiteral,
    /// Nothing after `->` or a `,` in a resolve mapping.
    MissingMappedAddress,
    /// Not an IP address in a resolve mapping.
    BadMappedAddress,
    /// `0.0.0.0` or `::` in a resolve mapping.
    MappedUnspecified,
    /// The policy file is not valid TOML.
    TomlSyntax(Box<toml::de::Error>),
    /// A key that is not a rule kind.
    UnknownKey,
    /// A key whose value is not a list.
    NotAList,
    /// A list item that is not a string.
    NotAString,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KINDS: &str = "allow-outbound, deny-outbound, allow-inbound, deny-inbound, \
                             allow-resolve or deny-resolve";
        const HOST: &str = "a name, *.domain, an IPv4 address, [IPv6], a CIDR, * or a set \
                            (loopback, private, link-local, multicast, documentation, \
                            cloud-metadata, unspecified, cgnat, any-ipv4, any-ipv6)";
        const PEER: &str = "an IPv4 address, [IPv6], a CIDR, * or a set";
        match self {
            Problem::UnknownKind => write!(f, "expected a rule kind: {KINDS}"),
            Problem::EmptyPattern => f.write_str("expected a pattern after the rule kind"),
            Problem::MissingScheme => f.write_str("expected a scheme: tcp://, udp:// or *://"),
            Problem::UnknownScheme => f.write_str("expected a scheme tcp, udp or * before `://`"),
            Problem::MissingHost => write!(f, "expected a host: {HOST}"),
            Problem::UnbracketedIpv6 => {
                f.write_str("expected an IPv6 address in brackets, as in [::1]:80")
            }
            Problem::UnclosedBracket => f.write_str("expected `]` closing the IPv6 address"),
            Problem::BadIpv6 => f.write_str("expected an IPv6 address inside `[ ]`"),
            Problem::NumericHost => f.write_str(
                "expected an IPv4 address in dotted decimal (a.b.c.d) or a host name; \
                 a numeric last label is neither",
            ),
            Problem::BadName => f.write_str(
                "expected a host name: labels of letters, digits, `-` or `_` separated by dots \
                 (IDNA names allowed)",
            ),
            Problem::BadWildcard => {
                f.write_str("expected `*` alone or `*.` followed by a domain, as in *.example.com")
            }
            Problem::NearSet(set) => write!(
                f,
                "expected a set name: did you mean `{set}`? (a host with this one-label name is \
                 written with a trailing dot)"
            ),
            Problem::PrefixWithoutAddress => {
                f.write_str("expected an IP address before a `/N` prefix length")
            }
            Problem::BadPrefix { max } => write!(f, "expected a prefix length 0-{max}"),
            Problem::HostBitsSet(cidr) => write!(
                f,
                "expected the first address of the block (host bits zero): did you mean {cidr}?"
            ),
            Problem::MissingPorts => f.write_str("expected `:` and the ports after the host"),
            Problem::BadPort => f.write_str("expected a port 1-65535 or a range A-B"),
            Problem::PortZero => f.write_str(
                "expected a port 1-65535: port 0 (ephemeral) is never written in a rule",
            ),
            Problem::ReversedRange => f.write_str("expected a range A-B with A <= B"),
            Problem::EmptyListItem => f.write_str("expected another item after `,`"),
            Problem::StarInList => {
                f.write_str("expected a port or a range: `*` stands alone, never in a list")
            }
            Problem::UnknownFamily => f.write_str("expected `#ipv4-only` or `#ipv6-only`"),
            Problem::FamilyContradiction => {
                f.write_str("expected a family the host has: this restriction excludes all of it")
            }
            Problem::Repeated => f.write_str("expected `#FAMILY` and `->PORT` at most once each"),
            Problem::MappingNotInbound => {
                f.write_str("expected no `->PORT`: port mapping is for allow-inbound rules only")
            }
            Problem::MappingOnDeny => {
                f.write_str("expected no `->`: mapping is for allow rules only")
            }
            Problem::MappingNeedsSinglePort => {
                f.write_str("expected a single port before `->PORT`")
            }
            Problem::MappingNeedsAddressHost => f.write_str(
                "expected an address, CIDR, set or * as the host of a `->PORT` rule: a bound \
                 address is not looked up",
            ),
            Problem::BadMappedPort => f.write_str("expected a host port 1-65535 after `->`"),
            Problem::FromNotInbound => {
                f.write_str("expected the end of the rule: `from PEERS` is for inbound rules only")
            }
            Problem::BadPeer => write!(f, "expected a peer: {PEER}"),
            Problem::NameAsPeer => write!(
                f,
                "expected a peer: {PEER}; a name cannot match a peer, peers are not looked up"
            ),
            Problem::TrailingInput => f.write_str(
                "expected the end of the rule (a rule has no spaces but those around `from` on \
                 inbound rules)",
            ),
            Problem::MissingName => f.write_str("expected a name pattern: a name, *.domain or *"),
            Problem::ResolveLiteral => f.write_str(
                "expected a name pattern (a name, *.domain or *): an IP literal is answered \
                 without a lookup",
            ),
            Problem::MissingMappedAddress => f.write_str("expected an IP address"),
            Problem::BadMappedAddress => {
                f.write_str("expected an IP address: a.b.c.d, an IPv6 address or [IPv6]")
            }
            Problem::MappedUnspecified => {
                f.write_str("expected a usable address: 0.0.0.0 and :: are never destinations")
            }
            Problem::TomlSyntax(e) => write!(f, "expected valid TOML: {}", e.message().trim()),
            Problem::UnknownKey => write!(f, "expected a rule kind as the key: {KINDS}"),
            Problem::NotAList => f.write_str(
                "expected a list of rule strings, as in [\"tcp://api.example.com:443\"]",
            ),
            Problem::NotAString => f.write_str("expected a rule string"),
        }
    }
}

/// `--allow-outbound tcp://x:99999: column 9: expected …`, or `FILE:LINE:COLUMN: expected …`.
impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ParseError {
            source,
            text,
            column,
            problem,
        } = self;
        match source {
            Source::Flag(flag) => write!(f, "{flag} {text}: column {column}: {problem}"),
            Source::File { path, line } => {
                write!(f, "{path}:{line}:{column}: {problem} (in `{text}`)")
            }
            Source::Line => write!(f, "{text}: column {column}: {problem}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// A problem at a byte offset of the text being parsed; turned into a [`ParseError`] once the
/// caller knows where the text came from.
#[derive(Debug)]
pub(crate) struct Fail {
    /// Byte offset into the parsed text.
    pub(crate) at: usize,
    /// What was expected there.
    pub(crate) problem: Problem,
}

impl Fail {
    /// A problem at byte `at`.
    pub(crate) fn at(at: usize, problem: Problem) -> Fail {
        Fail { at, problem }
    }

    /// The error, for `text` given through `source` (column counted in `text`).
    pub(crate) fn into_error(self, source: Source, text: &str) -> ParseError {
        ParseError {
            source,
            column: column_of(text, self.at),
            text: text.to_owned(),
            problem: self.problem,
        }
    }
}

/// 1-based character column of byte offset `at` in a one-line `text`.
pub(crate) fn column_of(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..at].chars().count() + 1
}
