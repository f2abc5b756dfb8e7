//! wasock: a `wasi:sockets@0.2` and `@0.3` host for [Wasmtime](wasmtime) — exact to the WIT,
//! deny-by-default, with one policy decision point and one accounting point for every guest
//! network operation, whichever version the guest imports.
//!
//! You keep `wasmtime-wasi` for every other WASI interface; wasock replaces its socket
//! interfaces: 0.2's seven (`network`, `instance-network`, `ip-name-lookup`, `tcp`,
//! `tcp-create-socket`, `udp`, `udp-create-socket`, any `0.2.x`) and 0.3's `types` and
//! `ip-name-lookup`. What you meet, in the order you need it:
//!
//! - [`WasockCtx`], built per guest instance with [`WasockCtx::builder`], whose setters have
//!   `WasiCtxBuilder`'s shapes. Nothing is allowed until you say so.
//! - [`add_wasi_to_linker`] (all of WASI 0.2 and 0.3) or [`add_to_linker`] (the sockets
//!   alone), and [`run_command`] for a `wasi:cli/command` of either version; [`StoreState`] is a ready store type, or
//!   implement [`WasockView`] beside `wasmtime_wasi::WasiView` on your own.
//! - [`policy`]: the [`RuleSet`](policy::RuleSet) rule language, or your own
//!   [`Policy`](policy::Policy).
//! - [`audit`]: one [`AuditEvent`](audit::AuditEvent) per decision, to any
//!   [`AuditSink`](audit::AuditSink).
//! - [`limits`]: per-instance [`Limits`](limits::Limits) and the [`Counters`](limits::Counters)
//!   that outlive the store.
//! - [`Resolver`]: answer the lookups the policy allows yourself.
//! - [`VirtualNetwork`]: put instances' sockets on an in-process network instead of the OS's,
//!   with faults ([`LinkFaults`], partitions, resets); [`sim`] runs a scenario of several
//!   components on one, deterministically, in virtual time, from one seed.
//! - [`time_slices`]: the CLI's time slicing, yours to opt into.
//!
//! wasock runs inside a tokio runtime (its sockets use tokio's reactor). A current-thread
//! runtime (or a `LocalSet`) is the cheap one: the thread that runs the guest also waits on the
//! reactor, so each wake-up costs one context switch instead of two.
//!
//! # Allow all networking
//!
//! ```no_run
//! use wasmtime::component::{Component, Linker};
//! use wasmtime::{Engine, Store};
//! use wasock::{StoreState, WasockCtx};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let engine = Engine::new(&wasock::engine_config())?;
//!     let mut linker = Linker::<StoreState>::new(&engine);
//!     // All of WASI 0.2: wasmtime-wasi for everything but sockets, wasock for sockets.
//!     wasock::add_wasi_to_linker(&mut linker)?;
//!
//!     let component = Component::from_file(&engine, "app.wasm")?;
//!     let wasi = wasmtime_wasi::WasiCtx::builder().inherit_stdio().build();
//!     let sockets = WasockCtx::builder()
//!         .allow_all_network(true)
//!         .allow_ip_name_lookup(true)
//!         .build();
//!     let mut store = Store::new(&engine, StoreState::new(wasi, sockets));
//!     let code = wasock::run_command(&mut store, &linker, &component).await?;
//!     std::process::exit(code);
//! }
//! ```
//!
//! # A policy file
//!
//! Rules as `wasock run --policy` reads them (see [`RuleSet`](policy::RuleSet) for the
//! language); a mistake is a [`ParseError`](policy::ParseError) naming the line and column.
//!
//! ```no_run
//! use wasock::WasockCtx;
//! use wasock::policy::RuleSet;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // allow-outbound = ["tcp://api.example.com:443"]
//! // deny-outbound  = ["*://cloud-metadata:*"]
//! let text = std::fs::read_to_string("policy.toml")?;
//! let rules = RuleSet::from_toml(&text, "policy.toml")?;
//! let sockets = WasockCtx::builder().policy(rules).build();
//! # drop(sockets);
//! // The same rules in code:
//! let rules = RuleSet::builder()
//!     .allow_outbound("tcp://api.example.com:443")?
//!     .deny_outbound("*://cloud-metadata:*")?
//!     .build();
//! # drop(rules);
//! # Ok(())
//! # }
//! ```
//!
//! # Your own policy
//!
//! Any [`Policy`](policy::Policy) decides every [`Action`](policy::Action); it runs on the
//! guest's path, so it must be cheap and must not block. `Action` may gain operations in a
//! later release (it is `#[non_exhaustive]`): deny what you do not know.
//!
//! ```
//! use wasock::WasockCtx;
//! use wasock::policy::{Action, Decision, NameBook, Policy};
//!
//! /// Loopback only, and no name lookups.
//! struct LoopbackOnly;
//!
//! impl Policy for LoopbackOnly {
//!     fn decide(&self, action: &Action<'_>, _names: &dyn NameBook) -> Decision {
//!         let loopback = match action {
//!             Action::Create { .. } => true,
//!             Action::Bind { local, .. } | Action::Listen { local } => local.ip().is_loopback(),
//!             Action::Accept { peer, .. } | Action::Receive { peer, .. } => peer.ip().is_loopback(),
//!             Action::Connect { remote, .. } | Action::Send { remote } => remote.ip().is_loopback(),
//!             Action::Resolve { .. } => false,
//!             // An operation a later wasock adds: denied until this policy knows it.
//!             _ => false,
//!         };
//!         match loopback {
//!             true => Decision::allow(Some("loopback only".into())),
//!             false => Decision::deny(None),
//!         }
//!     }
//! }
//!
//! let sockets = WasockCtx::builder().policy(LoopbackOnly).build();
//! # drop(sockets);
//! ```
//!
//! # Audit to a channel
//!
//! A closure is an [`AuditSink`](audit::AuditSink); it is called on the guest's path, so hand
//! the event on rather than doing I/O there. [`JsonLines`](audit::JsonLines) writes the CLI's
//! `--audit` format; an `Arc` of a sink shares it between instances.
//!
//! ```
//! use std::sync::mpsc;
//! use wasock::WasockCtx;
//! use wasock::audit::{AuditEvent, AuditVerdict, PolicyMode};
//!
//! let (denials, received) = mpsc::channel();
//! let sockets = WasockCtx::builder()
//!     .instance_name("app")
//!     .policy_mode(PolicyMode::Enforce)
//!     .audit(move |event: &AuditEvent<'_>| {
//!         if event.verdict != AuditVerdict::Allow {
//!             let _ = denials.send(format!("{} {:?} {:?}", event.op, event.remote, event.name));
//!         }
//!     })
//!     .build();
//! # drop(sockets);
//! // Elsewhere: `for line in received { … }`.
//! # drop(received);
//! ```
//!
//! # Limits and counters
//!
//! [`Limits`](limits::Limits) bound one instance (every value is accepted, the extremes
//! saturate); the [`Counters`](limits::Counters) handle stays valid after the store is gone.
//!
//! ```
//! use std::time::Duration;
//! use wasock::WasockCtx;
//! use wasock::limits::Limits;
//!
//! let sockets = WasockCtx::builder()
//!     .allow_all_network(true)
//!     .limits(Limits {
//!         max_sockets: Some(64),
//!         connect_timeout: Some(Duration::from_secs(5)),
//!         bandwidth_out: Some(1 << 20),
//!         ..Limits::default()
//!     })
//!     .build();
//! let counters = sockets.counters();
//! // … run the guest with `sockets`, then, also after its store is dropped:
//! let stats = counters.stats();
//! println!("{} sockets at peak, {} bytes sent", stats.sockets_peak, stats.bytes_out);
//! for (reason, count) in &stats.denied_by {
//!     println!("denied {count} times: {reason}");
//! }
//! for socket in counters.busiest() {
//!     println!("{:?} -> {:?}: {} bytes in", socket.local, socket.remote, socket.bytes_in);
//! }
//! ```
//!
//! # Time slicing and your own store
//!
//! The library starts nothing process-wide and leaves the engine's epoch and fuel settings to
//! you. The `wasock` CLI runs every guest in time slices, so that a guest serving a flood of
//! ready sockets cannot starve the runtime's timers and reactor; to do the same, turn on epoch
//! interruption and call [`time_slices`] on the store (its docs say how it meets epoch
//! deadlines of your own). With your own store type:
//!
//! ```no_run
//! use wasmtime::component::{Component, Linker, ResourceTable};
//! use wasmtime::{Engine, Store};
//! use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
//! use wasock::{WasockCtx, WasockCtxView, WasockView};
//!
//! struct Host {
//!     wasi: WasiCtx,
//!     sockets: WasockCtx,
//!     table: ResourceTable,
//! }
//!
//! impl WasiView for Host {
//!     fn ctx(&mut self) -> WasiCtxView<'_> {
//!         WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
//!     }
//! }
//!
//! impl WasockView for Host {
//!     fn sockets(&mut self) -> WasockCtxView<'_> {
//!         WasockCtxView { ctx: &mut self.sockets, table: &mut self.table }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = wasock::engine_config();
//! config.epoch_interruption(true);
//! let engine = Engine::new(&config)?;
//! let mut linker = Linker::<Host>::new(&engine);
//! wasock::add_wasi_to_linker(&mut linker)?;
//! let component = Component::from_file(&engine, "app.wasm")?;
//! let host = Host {
//!     wasi: WasiCtx::builder().inherit_stdio().build(),
//!     sockets: WasockCtx::builder().allow_ip_name_lookup(true).build(),
//!     table: ResourceTable::new(),
//! };
//! let mut store = Store::new(&engine, host);
//! wasock::time_slices(&mut store);
//! let code = wasock::run_command(&mut store, &linker, &component).await?;
//! # let _ = code;
//! # Ok(())
//! # }
//! ```
//!
//! # Inside
//!
//! For contributors: `wit/` converts the WIT's types, one file per interface, and delegates to
//! the state machines `tcp`, `udp` and `lookup`, written once over the `backend` seam (OS
//! sockets). `addr` holds the address rules, `error` the OS → `error-code` table, and `gate` the
//! one decision and accounting point (policy, name book, audit, limits, and the `clock` that
//! times the host's waits). What the `wasock` CLI and the tests need beyond the public API is
//! in `wasock::internals`, hidden from these docs and outside any semver promise.

#![warn(missing_docs, unreachable_pub)]

mod addr;
pub mod audit;
mod backend;
#[allow(missing_docs)]
mod bindings;
#[allow(missing_docs)]
mod bindings_p3;
mod clock;
mod command;
mod ctx;
mod error;
mod gate;
pub mod limits;
mod link;
mod lookup;
mod network;
mod options;
pub mod policy;
mod ready;
pub mod sim;
mod sync;
mod tcp;
mod udp;
mod wit;

pub use backend::{
    Fault, LinkFaults, ResolveError, ResolveFuture, Resolver, SystemResolver, VirtualHost,
    VirtualNetwork, VirtualNetworkError,
};
pub use command::{
    CompileError, RunError, StoreState, TIME_SLICE, compile_component, engine_config, run_command,
    time_slices,
};
pub use ctx::{WasockCtx, WasockCtxBuilder, WasockCtxView, WasockView};
pub use link::{add_to_linker, add_wasi_to_linker};

/// What the `wasock` CLI and wasock's own tests use beyond the public API: the generated host
/// bindings and the resource types behind them (to call the host functions directly), and the
/// policy's internals (its syntax tree, and `policy check --explain`). Hidden from the docs,
/// outside any semver promise: an embedder's code should not need it.
#[doc(hidden)]
pub mod internals {
    /// The host bindings generated from the `wasi:sockets@0.2.12` WIT.
    pub mod bindings {
        pub use crate::bindings::*;
    }

    pub use crate::addr::Family;
    pub use crate::ctx::WasockSockets;
    pub use crate::error::{SocketError, SocketResult};
    pub use crate::lookup::ResolveAddressStream;
    pub use crate::network::{Network, NetworkId};
    pub use crate::tcp::TcpSocket;
    pub use crate::udp::{IncomingDatagramStream, OutgoingDatagramStream, UdpSocket};

    /// The rule language's internals and `policy check --explain`.
    pub mod policy {
        pub use crate::policy::action::{
            ActionError, ActionProblem, ActionSpec, describe_action, parse_action,
        };
        pub use crate::policy::cidr::normalize_ip;
        pub use crate::policy::explain::{Explanation, Reason};
        pub use crate::policy::rules::{
            AddrPattern, FamilyOnly, HostPattern, Kind, NamePattern, PortSet, ResolvePattern, Rule,
            Scheme, SocketPattern,
        };
        pub use crate::policy::switches::{Switches, WithSwitches};
    }
}
