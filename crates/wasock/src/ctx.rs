//! The per-instance context an embedder builds, and the gate every guest operation passes.

use crate::audit::{AuditSink, PolicyMode};
use crate::backend::{Backend, Net, Resolver, SystemResolver, VirtualHost};
use crate::gate::{Gate, Tuning};
use crate::limits::{Counters, Limits, Stats};
use crate::policy::{DenyAll, Policy, Switches, WithSwitches};
use crate::ready::Ready;
use std::sync::Arc;
use wasmtime::component::{HasData, ResourceTable};

/// Per-instance sockets state: the policy, the limits and the counters.
///
/// Build one per guest instance with [`WasockCtx::builder`]; nothing is allowed by default.
pub struct WasockCtx {
    pub(crate) gate: Arc<Gate>,
    /// wasock's streams and pollables, for its `wasi:io/poll`.
    pub(crate) ready: Ready,
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
    /// Whether every socket operation no deny rule refuses is allowed (default: no). Like
    /// `WasiCtxBuilder::inherit_network`, as a switch.
    pub fn allow_all_network(&mut self, allow: bool) -> &mut Self {
        self.switches.network = allow;
        self
    }

    /// Whether every name lookup no deny rule refuses is allowed (default: no); separate from
    /// sockets, as `WasiCtxBuilder::allow_ip_name_lookup` is. IP literals always resolve.
    pub fn allow_ip_name_lookup(&mut self, allow: bool) -> &mut Self {
        self.switches.lookup = allow;
        self
    }

    /// Decides every operation with `policy` (replacing an earlier one); the allow switches, if
    /// also set, allow only what no deny rule of the policy refuses.
    pub fn policy(&mut self, policy: impl Policy) -> &mut Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// Enforce the policy (default) or only record what it would deny.
    pub fn policy_mode(&mut self, mode: PolicyMode) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Sends a record of every decision to `sink` (see [`crate::audit`]): a closure, a
    /// [`JsonLines`](crate::audit::JsonLines) writer, or an `Arc` of either shared with other
    /// instances.
    pub fn audit(&mut self, sink: impl AuditSink) -> &mut Self {
        self.audit = Some(Arc::new(sink));
        self
    }

    /// The instance's name in audit records (default `"guest"`).
    pub fn instance_name(&mut self, name: impl Into<Arc<str>>) -> &mut Self {
        self.instance = Some(name.into());
        self
    }

    /// Sets the per-instance limits; every value is accepted, the extremes saturate (see
    /// [`Limits`]).
    pub fn limits(&mut self, limits: Limits) -> &mut Self {
        self.limits = limits;
        self
    }

    /// Whether connected TCP sockets get `TCP_NODELAY` (default: on, so small writes never
    /// wait for a delayed ACK).
    pub fn tcp_nodelay(&mut self, on: bool) -> &mut Self {
        self.tuning.tcp_nodelay = on;
        self
    }

    /// Answers the lookups the policy allows with `resolver` instead of the system's
    /// ([`SystemResolver`]); policy, limits, lookup timeout, audit and name-bound grants apply
    /// to its answers as to the system's.
    pub fn resolver(&mut self, resolver: impl Resolver) -> &mut Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// Puts the instance's sockets on `host` of a virtual network instead of the OS: no OS
    /// socket is made. Lookups are answered from the network's directory unless a
    /// [`resolver`](Self::resolver) is set; audit records name the host unless an
    /// [`instance_name`](Self::instance_name) is set. Policy, limits, audit and counters apply as
    /// on the OS.
    pub fn virtual_host(&mut self, host: VirtualHost) -> &mut Self {
        self.net = Net::Virtual(host);
        self
    }

    /// Builds the context, leaving the builder as [`WasockCtx::builder`] made it (everything
    /// denied), as `WasiCtxBuilder::build` takes its settings.
    pub fn build(&mut self) -> WasockCtx {
        let this = std::mem::take(self);
        let policy: Arc<dyn Policy> = match (this.policy, this.switches) {
            (Some(policy), switches) if switches == Switches::default() => policy,
            (Some(policy), switches) => Arc::new(WithSwitches { policy, switches }),
            (None, switches) if switches == Switches::default() => Arc::new(DenyAll),
            (None, switches) => Arc::new(switches),
        };
        let (default_name, default_resolver): (Arc<str>, Arc<dyn Resolver>) = match &this.net {
            Net::Os => ("guest".into(), Arc::new(SystemResolver)),
            Net::Virtual(host) => (host.name().into(), Arc::new(host.resolver())),
        };
        let gate = Gate::new(
            policy,
            this.mode,
            this.audit,
            this.instance.unwrap_or(default_name),
            this.limits,
            this.tuning,
            Backend {
                net: this.net,
                resolver: this.resolver.unwrap_or(default_resolver),
            },
        );
        WasockCtx {
            gate: Arc::new(gate),
            ready: Ready::default(),
        }
    }
}

/// What a store type's [`WasockView`] lends wasock: its sockets context and the resource table
/// it shares with `wasmtime-wasi`.
pub struct WasockCtxView<'a> {
    /// The instance's sockets context.
    pub ctx: &'a mut WasockCtx,
    /// The store's resource table (shared with `wasmtime-wasi`).
    pub table: &'a mut ResourceTable,
}

/// Implemented by a store's data type (beside `wasmtime_wasi::WasiView`) to give wasock its
/// context and table; [`StoreState`](crate::StoreState) is a ready one.
pub trait WasockView: Send {
    /// The sockets context and the store's resource table.
    fn sockets(&mut self) -> WasockCtxView<'_>;
}

/// [`HasData`] marker for calling the generated `add_to_linker` functions directly (internal:
/// `wasock::internals`).
pub struct WasockSockets;

impl HasData for WasockSockets {
    type Data<'a> = WasockCtxView<'a>;
}

/// The view wasock's `wasi:io` glue works on: the same context and table as
/// [`WasockCtxView`], under a crate-private type, so that linking `wasi:io` adds nothing to
/// the public API.
pub(crate) struct WasockIoView<'a> {
    pub(crate) ctx: &'a mut WasockCtx,
    pub(crate) table: &'a mut ResourceTable,
}

/// [`HasData`] for [`WasockIoView`].
pub(crate) struct WasockIo;

impl HasData for WasockIo {
    type Data<'a> = WasockIoView<'a>;
}

/// The store's [`WasockIoView`].
pub(crate) fn io_view<T: WasockView>(data: &mut T) -> WasockIoView<'_> {
    let WasockCtxView { ctx, table } = data.sockets();
    WasockIoView { ctx, table }
}
