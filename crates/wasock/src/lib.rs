//! wasock: a `wasi:sockets@0.2` host for Wasmtime — exact to the WIT, deny-by-default, with one
//! policy decision point and one accounting point for every guest network operation.
//!
//! Layout:
//! - [`wit`](crate) glue, one file per WIT interface (`src/wit/tcp.rs`, …), converting types and
//!   delegating to
//! - the state machines: `tcp`, `udp`, `lookup`, written once over
//! - the backend seam `backend` (OS sockets today);
//! - `addr` (address rules), `error` (OS → `error-code` table), [`policy`] (the decisions),
//!   `gate` (the one decision and accounting point: policy, name book, [`audit`], [`limits`],
//!   and the `clock` that times and runs the host's waits),
//!   and [`WasockCtx`] that configures them per instance.
//!
//! # Embedding
//!
//! ```no_run
//! use wasmtime::component::{Component, Linker};
//! use wasmtime::{Engine, Store};
//! use wasock::{StoreState, WasockCtx};
//!
//! // A current-thread runtime: the thread that runs the guest also waits on the reactor, so
//! // each wake-up costs one context switch instead of two (see BENCHMARKS.md).
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

#![warn(missing_docs, unreachable_pub)]

mod addr;
pub mod audit;
mod backend;
#[allow(missing_docs)]
pub mod bindings;
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
mod sync;
mod tcp;
mod udp;
mod wit;

pub use addr::Family;
pub use backend::{ResolveError, ResolveFuture, Resolver, SystemResolver};
pub use command::{RunError, StoreState, TIME_SLICE, engine_config, run_command, time_slices};
pub use ctx::{WasockCtx, WasockCtxBuilder, WasockCtxView, WasockSockets, WasockView};
pub use error::{SocketError, SocketResult};
pub use link::{add_to_linker, add_wasi_to_linker};
pub use lookup::ResolveAddressStream;
pub use network::{Network, NetworkId};
pub use tcp::TcpSocket;
pub use udp::{IncomingDatagramStream, OutgoingDatagramStream, UdpSocket};
