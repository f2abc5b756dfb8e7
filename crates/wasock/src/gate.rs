//! The one decision point and one accounting point every guest operation passes, shared by an
//! instance's sockets: the policy, what the instance's lookups returned (for name-bound grants),
//! the audit trail, and the counters.

use crate::audit::{AuditEvent, AuditSink, AuditVerdict, PolicyMode};
use crate::backend::Resolver;
use crate::bindings::network::ErrorCode;
use crate::limits::{Accounting, Denial};
use crate::policy::{Action, NameBook, Policy, Protocol, Verdict};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// Most (address, name) pairs an instance's name book keeps; past it, new lookups still answer
/// but grant nothing by name (fail closed).
const NAME_BOOK_CAPACITY: usize = 65_536;

/// Host-side socket behaviour that is not policy.
#[derive(Clone, Debug)]
pub(crate) struct Tuning {
    /// `TCP_NODELAY` on every connected socket (WASI 0.2 gives guests no way to set it).
    pub(crate) tcp_nodelay: bool,
    /// Datagrams granted by one UDP `check-send`.
    pub(crate) udp_send_permits: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            tcp_nodelay: true,
            udp_send_permits: 64,
        }
    }
}

/// Which names this instance's lookups returned for each address.
#[derive(Default)]
struct Names {
    by_addr: HashMap<IpAddr, Vec<String>>,
    pairs: usize,
}

impl NameBook for Names {
    fn names_of(&self, ip: IpAddr) -> &[String] {
        self.by_addr.get(&ip).map(Vec::as_slice).unwrap_or_default()
    }
}

/// See the module doc.
pub(crate) struct Gate {
    policy: Arc<dyn Policy>,
    mode: PolicyMode,
    names: Mutex<Names>,
    audit: Option<Arc<dyn AuditSink>>,
    instance: Arc<str>,
    pub(crate) acct: Arc<Accounting>,
    pub(crate) tuning: Tuning,
    /// How the instance's lookups that the policy allowed are answered.
    pub(crate) resolver: Arc<dyn Resolver>,
}

impl Gate {
    pub(crate) fn new(
        policy: Arc<dyn Policy>,
        mode: PolicyMode,
        audit: Option<Arc<dyn AuditSink>>,
        instance: Arc<str>,
        acct: Arc<Accounting>,
        tuning: Tuning,
        resolver: Arc<dyn Resolver>,
    ) -> Self {
        Gate {
            policy,
            mode,
            names: Mutex::default(),
            audit,
            instance,
            acct,
            tuning,
            resolver,
        }
    }

    fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `action` to the policy, records the decision, and counts a refusal; a refusal in
    /// enforce mode is `access-denied`.
    pub(crate) fn check(&self, action: Action<'_>) -> Result<(), ErrorCode> {
        let decision = self.policy.decide(&action, &*self.names());
        let verdict = match (decision.verdict, self.mode) {
            (Verdict::Allow, _) => AuditVerdict::Allow,
            (Verdict::Deny, PolicyMode::Enforce) => AuditVerdict::Deny,
            (Verdict::Deny, PolicyMode::Audit) => AuditVerdict::WouldDeny,
        };
        let rule = decision.rule.as_deref();
        tracing::debug!(
            target: "wasock::policy",
            instance = &*self.instance,
            op = action.op(),
            ?action,
            ?verdict,
            rule,
        );
        if let Some(sink) = &self.audit {
            sink.record(&AuditEvent::new(&self.instance, &action, verdict, rule));
        }
        if verdict == AuditVerdict::Allow {
            return Ok(());
        }
        if verdict == AuditVerdict::Deny {
            self.acct.refused(Denial::Policy(action.op()));
            Err(ErrorCode::AccessDenied)
        } else {
            self.acct.refused(Denial::WouldDeny(action.op()));
            Ok(())
        }
    }

    /// Records that a lookup of `name` returned `addrs` to this instance (name-bound grants).
    pub(crate) fn remember(&self, name: &str, addrs: &[IpAddr]) {
        let mut names = self.names();
        for ip in addrs {
            if names.pairs >= NAME_BOOK_CAPACITY {
                return;
            }
            let entry = names.by_addr.entry(*ip).or_default();
            if !entry.iter().any(|n| n == name) {
                entry.push(name.to_string());
                names.pairs += 1;
            }
        }
    }

    /// Fixed answers the policy gives for `name`, if any.
    pub(crate) fn mapped_name(&self, name: &str) -> Option<Vec<IpAddr>> {
        self.policy.mapped_name(name)
    }

    /// The host port a guest's bind to `local` really uses (`:80->8080`).
    pub(crate) fn port_map(&self, proto: Protocol, local: SocketAddr) -> PortMap {
        match self.policy.mapped_port(proto, local) {
            Some(host) if host != local.port() => PortMap(Some((local.port(), host))),
            _ => PortMap(None),
        }
    }
}

/// A bound socket's port as the guest sees it and as the host really bound it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PortMap(Option<(u16, u16)>);

impl PortMap {
    /// The address the host binds for the guest's `local`.
    pub(crate) fn to_host(self, local: SocketAddr) -> SocketAddr {
        match self.0 {
            Some((guest, host)) if local.port() == guest => SocketAddr::new(local.ip(), host),
            _ => local,
        }
    }

    /// The address the guest sees for the host's `local` (`local-address`, policy checks).
    pub(crate) fn to_guest(self, local: SocketAddr) -> SocketAddr {
        match self.0 {
            Some((guest, host)) if local.port() == host => SocketAddr::new(local.ip(), guest),
            _ => local,
        }
    }
}
