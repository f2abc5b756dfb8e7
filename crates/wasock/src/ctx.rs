//! The per-instance context an embedder builds, and the gate every guest operation passes.

use crate::audit::{AuditSink, PolicyMode};
use crate::backend::{Backend, Net, Resolver, SystemResolver, VirtualHost};
use crate::gate::{Gate, Tuning};
use crate::limits::{Counters, Limits, Stats};
use crate::policy::{DenyAll, Policy, Switches, WithSwitches};
use std::sync::Arc;
use wasmtime::component::{HasData, ResourceTable};

/// Per-instance sockets state: the policy, the limits and the counters.
///
/// Build one per guest instance with [`WasockCtx::builder`]; nothing is allowed by default.
pub struct WasockCtx {
    pub(crate) gate: Arc<Gate>,
}

impl WasockCtx {
    /// A builder with everything denied.
    pub fn builder() -> WasockCtxBuilder {
        WasockCtxBuilder::default()
    }

    /// The instance's counters now.
    pub fn stats(&self) -> Stats {
        self.gate.stats()
    }

    /// A handle on the instance's counters that stays valid after the store is dropped.
    pub fn counters(&self) -> Counters {
        self.gate.counters()
    }
}

/// Configures a [`WasockCtx`].
#[derive(Default)]
pub struct WasockCtxBuilder {
    switches: Switches,
    policy: Option<Arc<dyn Policy>>,
    limits: Limits,
    tuning: Tuning,
    mode: PolicyMode,
    audit: Option<Arc<dyn AuditSink>>,
    instance: Option<Arc<str>>,
    resolver: Option<Arc<dyn Resolver>>,
    net: Net,
}

impl WasockCtxBuilder {
    /// Allows every socket operation (the opposite of the default).
    pub fn allow_all_network(mut self) -> Self {
        self.switches.network = true;
        self
    }

    /// Allows every name lookup (separate from sockets, as in `wasmtime run`).
    pub fn allow_lookup(mut self) -> Self {
        self.switches.lookup = true;
        self
    }

    /// Decides every operation with `policy`; the allow switches, if also set, allow only what
    /// no deny rule of the policy refuses.
    pub fn policy(mut self, policy: impl Policy) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// Enforce the policy (default) or only record what it would deny.
    pub fn policy_mode(mut self, mode: PolicyMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sends a record of every decision to `sink` (see [`crate::audit`]).
    pub fn audit(mut self, sink: impl AuditSink) -> Self {
        self.audit = Some(Arc::new(sink));
        self
    }

    /// Sends a record of every decision to a sink shared with other instances.
    pub fn audit_shared(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// The instance's name in audit records (default `"guest"`).
    pub fn instance_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.instance = Some(name.into());
        self
    }

    /// Sets the per-instance limits; every value is accepted, the extremes saturate (see
    /// [`Limits`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether connected TCP sockets get `TCP_NODELAY` (default: on, so small writes never
    /// wait for a delayed ACK).
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.tuning.tcp_nodelay = on;
        self
    }

    /// Answers the lookups the policy allows with `resolver` instead of the system's
    /// ([`SystemResolver`]); policy, limits, lookup timeout, audit and name-bound grants apply
    /// to its answers as to the system's.
    pub fn resolver(mut self, resolver: impl Resolver) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// Puts the instance's sockets on `host` of a virtual network instead of the OS: no OS
    /// socket is made. Lookups are answered from the network's directory unless a
    /// [`resolver`](Self::resolver) is set; audit records name the host unless an
    /// [`instance_name`](Self::instance_name) is set. Policy, limits, audit and counters apply as
    /// on the OS.
    pub fn virtual_host(mut self, host: VirtualHost) -> Self {
        self.net = Net::Virtual(host);
        self
    }

    /// Builds the context.
    pub fn build(self) -> WasockCtx {
        let policy: Arc<dyn Policy> = match (self.policy, self.switches) {
            (Some(policy), switches) if switches == Switches::default() => policy,
            (Some(policy), switches) => Arc::new(WithSwitches { policy, switches }),
            (None, switches) if switches == Switches::default() => Arc::new(DenyAll),
            (None, switches) => Arc::new(switches),
        };
        let (default_name, default_resolver): (Arc<str>, Arc<dyn Resolver>) = match &self.net {
            Net::Os => ("guest".into(), Arc::new(SystemResolver)),
            Net::Virtual(host) => (host.name().into(), Arc::new(host.resolver())),
        };
        let gate = Gate::new(
            policy,
            self.mode,
            self.audit,
            self.instance.unwrap_or(default_name),
            self.limits,
            self.tuning,
            Backend {
                net: self.net,
                resolver: self.resolver.unwrap_or(default_resolver),
            },
        );
        WasockCtx {
            gate: Arc::new(gate),
        }
    }
}

/// Borrowed view of the sockets context and the resource table, for host trait impls.
pub struct WasockCtxView<'a> {
    /// The instance's sockets context.
    pub ctx: &'a mut WasockCtx,
    /// The store's resource table (shared with `wasmtime-wasi`).
    pub table: &'a mut ResourceTable,
}

/// Implemented by a store's data type to give wasock its context and table.
pub trait WasockView: Send {
    /// The sockets context and the store's resource table.
    fn sockets(&mut self) -> WasockCtxView<'_>;
}

/// [`HasData`] marker for calling the generated `add_to_linker` functions directly.
pub struct WasockSockets;

impl HasData for WasockSockets {
    type Data<'a> = WasockCtxView<'a>;
}
