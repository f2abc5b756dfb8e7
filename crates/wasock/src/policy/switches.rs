//! The two allow switches of the context builder and the CLI, alone or on top of a policy.

use super::{Action, Decision, NameBook, Policy, Protocol, Verdict};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Two switches, as `--allow-all-network` and `--allow-lookup` set them: sockets on or off, and
/// name lookup on or off, independently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Switches {
    /// Every socket operation allowed.
    pub network: bool,
    /// Every name lookup allowed.
    pub lookup: bool,
}

impl Policy for Switches {
    fn decide(&self, action: &Action<'_>, _: &dyn NameBook) -> Decision {
        let (allowed, switch) = match action {
            Action::Resolve { .. } => (self.lookup, "--allow-lookup"),
            _ => (self.network, "--allow-all-network"),
        };
        if allowed {
            Decision::allow(Some(switch.into()))
        } else {
            Decision::deny(None)
        }
    }
}

/// A policy with the switches on top: a switch allows what the policy leaves to the default
/// deny, never what one of its deny rules refuses (`--allow-all-network` beside a `--policy`).
pub struct WithSwitches {
    /// The policy that decides first.
    pub policy: Arc<dyn Policy>,
    /// What is allowed where the policy has no rule.
    pub switches: Switches,
}

impl Policy for WithSwitches {
    fn decide(&self, action: &Action<'_>, names: &dyn NameBook) -> Decision {
        let decided = self.policy.decide(action, names);
        if decided.verdict == Verdict::Deny && decided.rule.is_none() {
            let switched = self.switches.decide(action, names);
            if switched.verdict == Verdict::Allow {
                return switched;
            }
        }
        decided
    }

    fn mapped_name(&self, name: &str) -> Option<Vec<IpAddr>> {
        self.policy.mapped_name(name)
    }

    fn mapped_port(&self, proto: Protocol, local: SocketAddr) -> Option<u16> {
        self.policy.mapped_port(proto, local)
    }
}
