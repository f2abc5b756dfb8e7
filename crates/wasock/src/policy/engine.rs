//! [`RuleSet`]: the rule language as a [`Policy`]. Rules are compiled once into one vector per
//! kind; a decision walks the deny rules, then the allow rules, without allocating. The
//! language and its semantics are documented on [`RuleSet`].

use super::cidr::normalize_ip;
use super::error::ParseError;
use super::explain::{Explanation, Reason};
use super::rules::{HostPattern, Kind, ResolvePattern, Rule, SocketPattern};
use super::{Action, Decision, NameBook, Policy, Protocol, Verdict};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A compiled rule: its pattern and its canonical text, shared by every decision it makes.
#[derive(Clone, Debug)]
struct Compiled<P> {
    text: Arc<str>,
    pattern: P,
}

/// The operator's network policy as a [`Policy`]: rules of the rule language, compiled.
///
/// # Syntax
///
/// A rule is a kind and a pattern: `allow-outbound`, `deny-outbound`, `allow-inbound`,
/// `deny-inbound` take `SCHEME://HOST:PORTS[#FAMILY][->PORT][ from PEER[,PEER...]]`;
/// `allow-resolve`, `deny-resolve` take `NAMEPATTERN[->ADDR[,ADDR...]]`.
/// - SCHEME: `tcp`, `udp` or `*`.
/// - HOST: a name (`api.example.com`, IDNA allowed, normalized like a lookup: lower case, no
///   trailing dot); `*.example.com` (every name below `example.com` at any depth, not
///   `example.com` itself); `10.0.0.5`; `[fd00::1]`; `10.0.0.0/8`; `[fd00::]/8`; `*`; or a set
///   ([`NamedSet`](super::NamedSet)): `loopback`, `private`, `link-local`, `multicast`,
///   `documentation`, `cloud-metadata`, `unspecified`, `cgnat`, `any-ipv4`, `any-ipv6`. Set
///   names are reserved; a host really called `private` is written `private.`.
/// - PORTS: `*`, `N`, `A-B` or a list `80,443,8000-8099`, within 1-65535.
/// - FAMILY: `#ipv4-only` or `#ipv6-only`.
/// - `->PORT` (allow-inbound, one port, address host): a guest binding that port gets `PORT`
///   on the host (`tcp://*:80->8080`).
/// - `from` (inbound only): which peers may connect or send, as addresses, CIDRs, sets or `*`
///   (`allow-inbound tcp://*:8080 from loopback,10.0.0.0/8`).
/// - `->ADDR,...` (allow-resolve): the name is answered with these addresses, never asking
///   the resolver.
///
/// IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`) addresses are matched as
/// the IPv4 address they embed, in rules and in actions alike.
///
/// # Decisions
///
/// Deny beats allow; nothing matching means deny; [`Decision::rule`] is the deciding rule's
/// canonical text (`allow-outbound tcp://api.example.com:443`).
/// - `connect`/`send`: outbound rules on the remote address and port. A name host matches an
///   address this instance's lookup of a matching name returned (name-bound grants and
///   denies). `0.0.0.0` and `::` are never destinations.
/// - `bind` to port 0 (ephemeral): allowed when the protocol has any outbound allow rule, or an
///   inbound allow rule with ports `*` covering the address; deny-inbound rules never name
///   port 0.
/// - `bind` to a chosen port, `listen`: an inbound allow rule must cover the local address and
///   port. `0.0.0.0`/`::` (every interface) is covered only by a host containing it: `*`,
///   `unspecified`, `any-ipv4`/`any-ipv6`, the address itself or a block holding it; so
///   `loopback` covers `127.0.0.1`, not `0.0.0.0`. A deny-inbound rule without `from`
///   forbids the address and port.
/// - `accept`/`receive`: the inbound allow rule covering `local` must admit the peer (`from`);
///   a deny-inbound rule covering `local` denies every peer, or with `from` those peers. A UDP
///   socket no inbound allow rule covers hears only replies: datagrams from an address and
///   port it may send to (and not from peers a deny-inbound `from` names).
/// - `create`: allowed when the protocol has any allow rule, outbound or inbound.
/// - `resolve`: denied by a matching deny-resolve rule; allowed by a matching allow-resolve
///   rule, or by an allow-outbound/allow-inbound rule whose host is a matching name or
///   `*.domain`. A host `*` grants no lookups, and deny-outbound rules deny none.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    allow_out: Vec<Compiled<SocketPattern>>,
    deny_out: Vec<Compiled<SocketPattern>>,
    allow_in: Vec<Compiled<SocketPattern>>,
    deny_in: Vec<Compiled<SocketPattern>>,
    allow_resolve: Vec<Compiled<ResolvePattern>>,
    deny_resolve: Vec<Compiled<ResolvePattern>>,
    rules: Vec<Rule>,
}

/// Collects rules from flags, files or code; [`RuleSetBuilder::build`] compiles them. Its
/// setters take `&mut self`, as [`WasockCtxBuilder`](crate::WasockCtxBuilder)'s do; a rule it
/// refuses is a [`ParseError`] and adds nothing.
#[derive(Clone, Debug, Default)]
pub struct RuleSetBuilder {
    rules: Vec<Rule>,
}

impl RuleSetBuilder {
    /// Adds a parsed rule.
    #[doc(hidden)]
    pub fn push(&mut self, rule: Rule) -> &mut Self {
        self.rules.push(rule);
        self
    }

    /// Adds `pattern` as a rule of the kind named `kind` (`allow-outbound` or
    /// `--allow-outbound`); errors name the flag.
    pub fn rule(&mut self, kind: &str, pattern: &str) -> Result<&mut Self, ParseError> {
        let kind = Kind::from_name(kind).ok_or_else(|| ParseError {
            source: super::Source::Flag(format!("--{}", kind.trim_start_matches('-'))),
            text: pattern.to_owned(),
            column: 1,
            problem: super::Problem::UnknownKind,
        })?;
        Ok(self.push(Rule::new(kind, pattern)?))
    }

    /// Adds a whole rule line, `KIND PATTERN`.
    #[doc(hidden)]
    pub fn line(&mut self, line: &str) -> Result<&mut Self, ParseError> {
        Ok(self.push(line.parse()?))
    }

    /// Adds every rule of a TOML policy file (see [`RuleSet::from_toml`]); a mistake anywhere
    /// in the file adds none of them.
    pub fn toml(&mut self, text: &str, path: &str) -> Result<&mut Self, ParseError> {
        self.rules.extend(super::file::parse(text, path)?);
        Ok(self)
    }

    /// `--allow-outbound PATTERN`.
    pub fn allow_outbound(&mut self, pattern: &str) -> Result<&mut Self, ParseError> {
        Ok(self.push(Rule::new(Kind::AllowOutbound, pattern)?))
    }

    /// `--deny-outbound PATTERN`.
    pub fn deny_outbound(&mut self, pattern: &str) -> Result<&mut Self, ParseError> {
        Ok(self.push(Rule::new(Kind::DenyOutbound, pattern)?))
    }

    /// `--allow-inbound PATTERN`.
    pub fn allow_inbound(&mut self, pattern: &str) -> Result<&mut Self, ParseError> {
        Ok(self.push(Rule::new(Kind::AllowInbound, pattern)?))
    }

    /// `--deny-inbound PATTERN`.
    pub fn deny_inbound(&mut self, pattern: &str) -> Result<&mut Self, ParseError> {
        Ok(self.push(Rule::new(Kind::DenyInbound, pattern)?))
    }

    /// `--allow-resolve PATTERN`.
    pub fn allow_resolve(&mut self, pattern: &str) -> Result<&mut Self, ParseError> {
        Ok(self.push(Rule::new(Kind::AllowResolve, pattern)?))
    }

    /// `--deny-resolve PATTERN`.
    pub fn deny_resolve(&mut self, pattern: &str) -> Result<&mut Self, ParseError> {
        Ok(self.push(Rule::new(Kind::DenyResolve, pattern)?))
    }

    /// Compiles the rules (duplicates, after normalization, dropped; order otherwise kept),
    /// leaving the builder empty, as [`RuleSet::builder`] made it.
    pub fn build(&mut self) -> RuleSet {
        let rules = std::mem::take(&mut self.rules);
        let mut set = RuleSet::default();
        let mut seen = std::collections::HashSet::with_capacity(rules.len());
        for rule in rules {
            if !seen.insert(rule.clone()) {
                continue;
            }
            let text: Arc<str> = rule.to_string().into();
            let kind = rule.kind();
            if let Some(p) = rule.socket_pattern() {
                let compiled = Compiled {
                    text,
                    pattern: p.clone(),
                };
                match kind {
                    Kind::AllowOutbound => set.allow_out.push(compiled),
                    Kind::DenyOutbound => set.deny_out.push(compiled),
                    Kind::AllowInbound => set.allow_in.push(compiled),
                    _ => set.deny_in.push(compiled),
                }
            } else if let Some(p) = rule.resolve_pattern() {
                let compiled = Compiled {
                    text,
                    pattern: p.clone(),
                };
                match kind {
                    Kind::AllowResolve => set.allow_resolve.push(compiled),
                    _ => set.deny_resolve.push(compiled),
                }
            }
            set.rules.push(rule);
        }
        set
    }
}

/// What a decision found: the verdict, the deciding rule, and why.
pub(crate) struct Outcome<'r> {
    pub(crate) verdict: Verdict,
    pub(crate) rule: Option<&'r Arc<str>>,
    pub(crate) reason: Reason,
}

impl<'r> Outcome<'r> {
    fn allow(rule: &'r Arc<str>, reason: Reason) -> Self {
        Outcome {
            verdict: Verdict::Allow,
            rule: Some(rule),
            reason,
        }
    }

    fn deny(rule: Option<&'r Arc<str>>, reason: Reason) -> Self {
        Outcome {
            verdict: Verdict::Deny,
            rule,
            reason,
        }
    }
}

/// One side of a socket address as matching sees it: normalized, as given, and the port.
#[derive(Clone, Copy)]
struct At {
    ip: IpAddr,
    raw: IpAddr,
    port: u16,
}

impl At {
    #[inline]
    fn of(addr: SocketAddr) -> At {
        At {
            ip: normalize_ip(addr.ip()),
            raw: addr.ip(),
            port: addr.port(),
        }
    }
}

/// Where a decision records the allow rules a deny rule overruled (only `explain` asks).
pub(crate) type Overruled<'a, 'r> = Option<&'a mut Vec<&'r Arc<str>>>;

impl RuleSet {
    /// An empty builder.
    pub fn builder() -> RuleSetBuilder {
        RuleSetBuilder::default()
    }

    /// The rules, as written (normalized), in the order added, duplicates dropped.
    #[doc(hidden)]
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether there are no rules (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Which rule decides `action` and why.
    #[doc(hidden)]
    pub fn explain(&self, action: &Action<'_>, names: &dyn NameBook) -> Explanation {
        let mut overruled = Vec::new();
        let outcome = self.judge(action, names, Some(&mut overruled));
        Explanation::new(action, &outcome, overruled)
    }

    /// The decision core shared by `decide` and `explain`.
    pub(crate) fn judge<'r>(
        &'r self,
        action: &Action<'_>,
        names: &dyn NameBook,
        overruled: Overruled<'_, 'r>,
    ) -> Outcome<'r> {
        match *action {
            Action::Create { proto } => self.create(proto),
            Action::Connect { proto, remote } => self.outbound(proto, remote, names, overruled),
            Action::Send { remote } => self.outbound(Protocol::Udp, remote, names, overruled),
            Action::Bind { proto, local } if local.port() == 0 => {
                self.ephemeral(proto, local, names)
            }
            Action::Bind { proto, local } => self.local(proto, local, names, overruled),
            Action::Listen { local } => self.local(Protocol::Tcp, local, names, overruled),
            Action::Accept { local, peer } => {
                self.peer(Protocol::Tcp, local, peer, names, overruled)
            }
            Action::Receive { local, peer } => self.receive(local, peer, names, overruled),
            Action::Resolve { name } => self.resolve(name, overruled),
        }
    }

    fn create(&self, proto: Protocol) -> Outcome<'_> {
        let grant = (self.allow_out.iter())
            .chain(&self.allow_in)
            .find(|r| r.pattern.scheme.covers(proto));
        match grant {
            Some(r) => Outcome::allow(&r.text, Reason::ProtocolGranted),
            None => Outcome::deny(None, Reason::NoGrantForProtocol),
        }
    }

    fn outbound<'r>(
        &'r self,
        proto: Protocol,
        remote: SocketAddr,
        names: &dyn NameBook,
        mut overruled: Overruled<'_, 'r>,
    ) -> Outcome<'r> {
        let at = At::of(remote);
        if at.ip.is_unspecified() {
            return Outcome::deny(None, Reason::UnspecifiedDestination);
        }
        let covers =
            |r: &&Compiled<SocketPattern>| r.pattern.covers(proto, at.ip, at.raw, at.port, names);
        if let Some(d) = self.deny_out.iter().find(covers) {
            record(&mut overruled, self.allow_out.iter().filter(covers));
            return Outcome::deny(Some(&d.text), Reason::Matched);
        }
        match self.allow_out.iter().find(covers) {
            Some(a) => Outcome::allow(&a.text, Reason::Matched),
            None => Outcome::deny(None, Reason::NoRule),
        }
    }

    fn ephemeral(&self, proto: Protocol, local: SocketAddr, names: &dyn NameBook) -> Outcome<'_> {
        if let Some(a) = self
            .allow_out
            .iter()
            .find(|r| r.pattern.scheme.covers(proto))
        {
            return Outcome::allow(&a.text, Reason::EphemeralForOutbound);
        }
        let at = At::of(local);
        let any_port = |r: &&Compiled<SocketPattern>| {
            let p = &r.pattern;
            p.ports.is_all()
                && p.scheme.covers(proto)
                && p.family.is_none_or(|f| f.admits(at.ip))
                && p.host.covers(at.ip, at.raw, names)
        };
        let Some(grant) = self.allow_in.iter().find(any_port) else {
            return Outcome::deny(None, Reason::NoEphemeralGrant);
        };
        match (self.deny_in.iter()).find(|r| r.pattern.from.is_none() && any_port(r)) {
            Some(d) => Outcome::deny(Some(&d.text), Reason::Matched),
            None => Outcome::allow(&grant.text, Reason::EphemeralForInbound),
        }
    }

    fn local<'r>(
        &'r self,
        proto: Protocol,
        local: SocketAddr,
        names: &dyn NameBook,
        mut overruled: Overruled<'_, 'r>,
    ) -> Outcome<'r> {
        let at = At::of(local);
        let covers =
            |r: &&Compiled<SocketPattern>| r.pattern.covers(proto, at.ip, at.raw, at.port, names);
        if let Some(d) = (self.deny_in.iter()).find(|r| r.pattern.from.is_none() && covers(r)) {
            record(&mut overruled, self.allow_in.iter().filter(covers));
            return Outcome::deny(Some(&d.text), Reason::Matched);
        }
        match self.allow_in.iter().find(covers) {
            Some(a) => Outcome::allow(&a.text, Reason::Matched),
            None => Outcome::deny(None, Reason::NoRule),
        }
    }

    fn peer<'r>(
        &'r self,
        proto: Protocol,
        local: SocketAddr,
        peer: SocketAddr,
        names: &dyn NameBook,
        mut overruled: Overruled<'_, 'r>,
    ) -> Outcome<'r> {
        let at = At::of(local);
        let peer_ip = normalize_ip(peer.ip());
        let covers =
            |r: &&Compiled<SocketPattern>| r.pattern.covers(proto, at.ip, at.raw, at.port, names);
        let admits = |r: &&Compiled<SocketPattern>| covers(r) && r.pattern.admits_peer(peer_ip);
        if let Some(d) = self.deny_in.iter().find(admits) {
            record(&mut overruled, self.allow_in.iter().filter(admits));
            return Outcome::deny(Some(&d.text), Reason::Matched);
        }
        if let Some(a) = self.allow_in.iter().find(admits) {
            return Outcome::allow(&a.text, Reason::Matched);
        }
        if self.allow_in.iter().any(|r| covers(&r)) {
            return Outcome::deny(None, Reason::PeerNotAdmitted);
        }
        Outcome::deny(None, Reason::NoRule)
    }

    fn receive<'r>(
        &'r self,
        local: SocketAddr,
        peer: SocketAddr,
        names: &dyn NameBook,
        overruled: Overruled<'_, 'r>,
    ) -> Outcome<'r> {
        let at = At::of(local);
        let granted = (self.allow_in.iter())
            .any(|r| (r.pattern).covers(Protocol::Udp, at.ip, at.raw, at.port, names));
        if granted {
            return self.peer(Protocol::Udp, local, peer, names, overruled);
        }
        let peer_ip = normalize_ip(peer.ip());
        let named_peer = self.deny_in.iter().find(|r| {
            r.pattern.from.is_some()
                && r.pattern.admits_peer(peer_ip)
                && (r.pattern).covers(Protocol::Udp, at.ip, at.raw, at.port, names)
        });
        if let Some(d) = named_peer {
            return Outcome::deny(Some(&d.text), Reason::Matched);
        }
        let reply = self.outbound(Protocol::Udp, peer, names, overruled);
        let reason = match (reply.verdict, reply.reason) {
            (Verdict::Allow, _) => Reason::Reply,
            (Verdict::Deny, Reason::Matched) => Reason::Matched,
            (Verdict::Deny, _) => Reason::NotAReply,
        };
        Outcome { reason, ..reply }
    }

    fn resolve<'r>(&'r self, name: &str, mut overruled: Overruled<'_, 'r>) -> Outcome<'r> {
        let by_resolve = |r: &&Compiled<ResolvePattern>| r.pattern.name.matches(name);
        let by_host = |r: &&Compiled<SocketPattern>| matches!(&r.pattern.host, HostPattern::Name(n) if n.matches(name));
        if let Some(d) = self.deny_resolve.iter().find(by_resolve) {
            record(&mut overruled, self.allow_resolve.iter().filter(by_resolve));
            let host_grants = self.allow_out.iter().chain(&self.allow_in).filter(by_host);
            record(&mut overruled, host_grants);
            return Outcome::deny(Some(&d.text), Reason::Matched);
        }
        if let Some(a) = self.allow_resolve.iter().find(by_resolve) {
            return Outcome::allow(&a.text, Reason::Matched);
        }
        match self.allow_out.iter().chain(&self.allow_in).find(by_host) {
            Some(a) => Outcome::allow(&a.text, Reason::NameGrant),
            None => Outcome::deny(None, Reason::NoRule),
        }
    }
}

/// Records the allow rules a deny overruled, when someone asked.
fn record<'r, P: 'r>(
    overruled: &mut Overruled<'_, 'r>,
    rules: impl Iterator<Item = &'r Compiled<P>>,
) {
    if let Some(out) = overruled.as_mut() {
        out.extend(rules.map(|r| &r.text));
    }
}

impl Policy for RuleSet {
    fn decide(&self, action: &Action<'_>, names: &dyn NameBook) -> Decision {
        let outcome = self.judge(action, names, None);
        Decision {
            verdict: outcome.verdict,
            rule: outcome.rule.cloned(),
        }
    }

    /// The addresses of the most specific matching `allow-resolve NAME->ADDR,...` rule (an exact
    /// name beats `*.domain`, a longer domain a shorter one, then the first written).
    fn mapped_name(&self, name: &str) -> Option<Vec<IpAddr>> {
        let mut best: Option<&ResolvePattern> = None;
        for p in self.allow_resolve.iter().map(|r| &r.pattern) {
            let better = best.is_none_or(|b| p.name.specificity() > b.name.specificity());
            if !p.map_to.is_empty() && p.name.matches(name) && better {
                best = Some(p);
            }
        }
        best.map(|p| p.map_to.to_vec())
    }

    /// The host port of the first `allow-inbound …:PORT->HOSTPORT` rule covering `local`.
    fn mapped_port(&self, proto: Protocol, local: SocketAddr) -> Option<u16> {
        let at = At::of(local);
        (self.allow_in.iter())
            .filter(|r| r.pattern.map_to.is_some())
            .find(|r| r.pattern.covers(proto, at.ip, at.raw, at.port, &()))
            .and_then(|r| r.pattern.map_to)
    }
}

/// One rule per line, `KIND PATTERN`, kinds grouped in [`Kind::ALL`] order, canonical spelling.
impl fmt::Display for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for kind in Kind::ALL {
            for rule in self.rules.iter().filter(|r| r.kind() == kind) {
                writeln!(f, "{rule}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
