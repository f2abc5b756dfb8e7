//! `wasock policy check --explain`: which rule decides an action, and why.

use super::Action;
use super::Verdict;
use super::action::describe_action;
use super::engine::Outcome;
use std::fmt;
use std::sync::Arc;

/// Why a [`RuleSet`](super::RuleSet) decided as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The deciding rule matches (a deny rule beats every allow rule).
    Matched,
    /// Nothing allows it: default deny.
    NoRule,
    /// `0.0.0.0` or `::` as a destination: never allowed.
    UnspecifiedDestination,
    /// `create`: the protocol has an allow rule.
    ProtocolGranted,
    /// `create`: no allow rule names the protocol.
    NoGrantForProtocol,
    /// Ephemeral bind: the protocol has an outbound allow rule.
    EphemeralForOutbound,
    /// Ephemeral bind: an inbound allow rule with ports `*` covers the address.
    EphemeralForInbound,
    /// Ephemeral bind with neither grant.
    NoEphemeralGrant,
    /// An inbound allow rule covers the local address, but its `from` excludes the peer.
    PeerNotAdmitted,
    /// A datagram on a socket no inbound rule covers, from an address the guest may send to.
    Reply,
    /// A datagram on a socket no inbound rule covers, from an address the guest may not send to.
    NotAReply,
    /// `resolve`: allowed because an outbound or inbound allow rule is written with this name.
    NameGrant,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Matched => "the rule matches",
            Reason::NoRule => "no rule allows it: default deny",
            Reason::UnspecifiedDestination => "0.0.0.0 and :: are never destinations",
            Reason::ProtocolGranted => "the protocol has an allow rule, so its sockets exist",
            Reason::NoGrantForProtocol => {
                "no allow rule names the protocol, so its sockets cannot be created"
            }
            Reason::EphemeralForOutbound => {
                "an ephemeral port is allowed when the protocol has an outbound allow rule"
            }
            Reason::EphemeralForInbound => {
                "an inbound allow rule with ports * covers the address, ephemeral port included"
            }
            Reason::NoEphemeralGrant => {
                "an ephemeral port needs an outbound allow rule for the protocol, or an inbound \
                 allow rule with ports * covering the address: default deny"
            }
            Reason::PeerNotAdmitted => {
                "an inbound rule covers the local address but its `from` does not admit the \
                 peer: default deny"
            }
            Reason::Reply => {
                "no inbound rule covers the local address; the guest may send to the peer, so \
                 its datagram is heard as a reply"
            }
            Reason::NotAReply => {
                "no inbound rule covers the local address and the guest may not send to the \
                 peer: only replies are heard"
            }
            Reason::NameGrant => "a socket rule written with this name lets the guest look it up",
        })
    }
}

/// The answer to "which rule decides this action, and why".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The action, spelled as `parse_action` reads it.
    pub action: String,
    /// Allow or deny.
    pub verdict: Verdict,
    /// The deciding rule, canonically spelled; `None` for a default deny.
    pub rule: Option<Arc<str>>,
    /// Why.
    pub reason: Reason,
    /// Allow rules that matched too, overruled by the deny rule.
    pub overruled: Vec<Arc<str>>,
}

impl Explanation {
    pub(crate) fn new(
        action: &Action<'_>,
        outcome: &Outcome<'_>,
        overruled: Vec<&Arc<str>>,
    ) -> Self {
        Explanation {
            action: describe_action(action),
            verdict: outcome.verdict,
            rule: outcome.rule.cloned(),
            reason: outcome.reason,
            overruled: overruled.into_iter().cloned().collect(),
        }
    }
}

/// `ACTION: allow|deny`, then the rule, the reason and any overruled allow rules, one a line.
impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        };
        writeln!(f, "{}: {verdict}", self.action)?;
        if let Some(rule) = &self.rule {
            writeln!(f, "  rule: {rule}")?;
        }
        write!(f, "  why: {}", self.reason)?;
        if !self.overruled.is_empty() {
            f.write_str(" (deny rules beat allow rules)")?;
            for rule in &self.overruled {
                write!(f, "\n  overrules: {rule}")?;
            }
        }
        Ok(())
    }
}
