//! The decision point: every guest network operation is described as an [`Action`] and put to
//! one [`Policy`] before it happens. Pure code, no I/O.
//!
//! Deny by default: [`DenyAll`] is what a context starts with. The rule language (CIDRs, ports,
//! names, mapping) plugs in as another `Policy`.
//!
//! The rule language is [`RuleSet`]: rules such as `allow-outbound tcp://api.example.com:443`
//! from flags, a TOML file ([`RuleSet::from_toml`]) or [`RuleSet::builder`], compiled into a
//! `Policy`; a rule it refuses is a [`ParseError`] saying where and what ([`Problem`]). Your own
//! type implementing [`Policy`] can decide instead.
//!
//! Inside (private, or for the CLI through `wasock::internals`): `rules` (syntax tree), `parse`
//! (one rule), `error`, `cidr` and `sets` (addresses), `engine` (the decisions), `file` (TOML),
//! `switches` (the builder's allow switches), `explain` and `action` (`policy check --explain`).

pub(crate) mod action;
pub(crate) mod cidr;
mod engine;
mod error;
pub(crate) mod explain;
pub(crate) mod file;
mod parse;
pub(crate) mod rules;
mod sets;
pub(crate) mod switches;

pub use cidr::Cidr;
pub use engine::{RuleSet, RuleSetBuilder};
pub use error::{ParseError, Problem, Source};
pub use sets::NamedSet;
pub(crate) use switches::{Switches, WithSwitches};

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Transport protocol of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP (`wasi:sockets/tcp`).
    Tcp,
    /// UDP (`wasi:sockets/udp`).
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One guest operation, as the policy sees it. `local` is the socket's own address, `remote`
/// and `peer` the other end's. A later release may add operations: a policy denies those it
/// does not know.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action<'a> {
    /// `create-tcp-socket` / `create-udp-socket`.
    Create { proto: Protocol },
    /// `start-bind` on `local` (port 0: ephemeral).
    Bind { proto: Protocol, local: SocketAddr },
    /// TCP `start-listen` on the bound address.
    Listen { local: SocketAddr },
    /// TCP `accept` of a connection from `peer` on a listener bound to `local`.
    Accept { local: SocketAddr, peer: SocketAddr },
    /// TCP `start-connect`, or UDP `stream` with a remote address.
    Connect { proto: Protocol, remote: SocketAddr },
    /// One UDP datagram sent to `remote`.
    Send { remote: SocketAddr },
    /// One UDP datagram received on `local` from `peer`.
    Receive { local: SocketAddr, peer: SocketAddr },
    /// `resolve-addresses` of a host name (already IDNA-encoded and lower-cased).
    Resolve { name: &'a str },
}

impl Action<'_> {
    /// Short operation name, as audit records spell it.
    pub fn op(&self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::Bind { .. } => "bind",
            Action::Listen { .. } => "listen",
            Action::Accept { .. } => "accept",
            Action::Connect { .. } => "connect",
            Action::Send { .. } => "send",
            Action::Receive { .. } => "receive",
            Action::Resolve { .. } => "resolve",
        }
    }
}

/// What the policy decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The operation goes ahead.
    Allow,
    /// The operation is refused (`access-denied`, a reset, a dropped datagram, or a failed lookup).
    Deny,
}

/// A verdict and the rule that reached it, for the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub verdict: Verdict,
    /// The deciding rule as the operator wrote it; `None` for the default (deny) or a switch.
    pub rule: Option<Arc<str>>,
}

impl Decision {
    /// Allowed by `rule`.
    pub fn allow(rule: Option<Arc<str>>) -> Self {
        Decision {
            verdict: Verdict::Allow,
            rule,
        }
    }

    /// Denied by `rule` (`None`: nothing allowed it).
    pub fn deny(rule: Option<Arc<str>>) -> Self {
        Decision {
            verdict: Verdict::Deny,
            rule,
        }
    }
}

/// What this instance's own lookups returned: the memory behind name-bound grants.
pub trait NameBook {
    /// Every name (normalized) whose lookup by this instance returned `ip`.
    fn names_of(&self, ip: IpAddr) -> &[String];
}

/// A book with nothing in it.
impl NameBook for () {
    fn names_of(&self, _: IpAddr) -> &[String] {
        &[]
    }
}

/// Decides guest network operations. Must be cheap and must not block: it runs on every
/// connect, accept, datagram and lookup.
pub trait Policy: Send + Sync + 'static {
    /// Decide one operation; `names` says which names this instance resolved to which addresses.
    fn decide(&self, action: &Action<'_>, names: &dyn NameBook) -> Decision;

    /// Fixed answers for a (normalized) name, given instead of asking the resolver (`name->addr`).
    fn mapped_name(&self, _name: &str) -> Option<Vec<IpAddr>> {
        None
    }

    /// The host port a guest's bind to `local` really uses (`:80->8080`); `None`: the same.
    fn mapped_port(&self, _proto: Protocol, _local: SocketAddr) -> Option<u16> {
        None
    }
}

/// Refuses everything: the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct DenyAll;

impl Policy for DenyAll {
    fn decide(&self, _: &Action<'_>, _: &dyn NameBook) -> Decision {
        Decision::deny(None)
    }
}

/// Allows everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl Policy for AllowAll {
    fn decide(&self, _: &Action<'_>, _: &dyn NameBook) -> Decision {
        Decision::allow(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_are_independent() {
        let a: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let connect = Action::Connect {
            proto: Protocol::Tcp,
            remote: a,
        };
        let resolve = Action::Resolve { name: "localhost" };
        let only_lookup = Switches {
            network: false,
            lookup: true,
        };
        assert_eq!(only_lookup.decide(&connect, &()).verdict, Verdict::Deny);
        assert_eq!(only_lookup.decide(&resolve, &()).verdict, Verdict::Allow);
        let only_net = Switches {
            network: true,
            lookup: false,
        };
        assert_eq!(only_net.decide(&connect, &()).verdict, Verdict::Allow);
        assert_eq!(only_net.decide(&resolve, &()).verdict, Verdict::Deny);
        assert_eq!(DenyAll.decide(&connect, &()).verdict, Verdict::Deny);
        assert_eq!(AllowAll.decide(&resolve, &()).verdict, Verdict::Allow);
    }

    #[test]
    fn switches_never_overrule_a_deny_rule() {
        let a: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let b: SocketAddr = "10.0.0.5:80".parse().unwrap();
        let rules = RuleSet::builder()
            .deny_outbound("tcp://10.0.0.0/8:*")
            .unwrap()
            .build();
        let p = WithSwitches {
            policy: Arc::new(rules),
            switches: Switches {
                network: true,
                lookup: false,
            },
        };
        let connect = |remote| Action::Connect {
            proto: Protocol::Tcp,
            remote,
        };
        assert_eq!(p.decide(&connect(a), &()).verdict, Verdict::Allow);
        let denied = p.decide(&connect(b), &());
        assert_eq!(denied.verdict, Verdict::Deny);
        assert!(denied.rule.is_some());
        let resolve = Action::Resolve { name: "localhost" };
        assert_eq!(p.decide(&resolve, &()).verdict, Verdict::Deny);
    }
}
