//! The per-instance context an embedder builds, and the gate every guest operation passes.

use crate::bindings::network::ErrorCode;
use crate::limits::{Accounting, Counters, Limits, Stats};
use crate::policy::{Action, DenyAll, Policy, Switches, Verdict};
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
        self.gate.acct.stats()
    }

    /// A handle on the instance's counters that stays valid after the store is dropped.
    pub fn counters(&self) -> Counters {
        Counters(self.gate.acct.clone())
    }
}

/// Host-side socket behaviour that is not policy.
#[derive(Clone, Debug)]
pub(crate) struct Tuning {
    /// `TCP_NODELAY` on every connected socket (WASI 0.2 gives guests no way to set it).
    pub(crate) tcp_nodelay: bool,
    /// Datagrams granted by one UDP `check-send`.
    pub(crate) udp_send_permits: u64,
    /// Bytes granted by one TCP `check-write` (and so the most buffered host-side per stream).
    pub(crate) tcp_write_budget: usize,
    /// How long a name lookup may take before `temporary-resolver-failure`.
    pub(crate) lookup_timeout: std::time::Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            tcp_nodelay: true,
            udp_send_permits: 64,
            tcp_write_budget: 64 * 1024,
            lookup_timeout: crate::lookup::DEFAULT_TIMEOUT,
        }
    }
}

/// Configures a [`WasockCtx`].
#[derive(Default)]
pub struct WasockCtxBuilder {
    switches: Switches,
    policy: Option<Arc<dyn Policy>>,
    limits: Limits,
    tuning: Tuning,
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

    /// Decides every operation with `policy` instead of the allow switches.
    pub fn policy(mut self, policy: impl Policy) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// Sets the per-instance limits.
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

    /// Builds the context.
    pub fn build(self) -> WasockCtx {
        let policy: Arc<dyn Policy> = match self.policy {
            Some(p) => p,
            None if self.switches == Switches::default() => Arc::new(DenyAll),
            None => Arc::new(self.switches),
        };
        let gate = Gate {
            policy,
            acct: Arc::new(Accounting::new(self.limits)),
            tuning: self.tuning,
        };
        WasockCtx {
            gate: Arc::new(gate),
        }
    }
}

/// The one decision point and one accounting point, shared by an instance's sockets.
pub(crate) struct Gate {
    policy: Arc<dyn Policy>,
    pub(crate) acct: Arc<Accounting>,
    pub(crate) tuning: Tuning,
}

impl Gate {
    /// Puts `action` to the policy; a refusal is counted, traced and returned as `access-denied`.
    pub(crate) fn check(&self, action: Action<'_>) -> Result<(), ErrorCode> {
        match self.policy.decide(&action, &()).verdict {
            Verdict::Allow => {
                tracing::trace!(target: "wasock::policy", op = action.op(), ?action, "allow");
                Ok(())
            }
            Verdict::Deny => {
                self.acct.denied();
                tracing::debug!(target: "wasock::policy", op = action.op(), ?action, "deny");
                Err(ErrorCode::AccessDenied)
            }
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
