//! The WASI 0.3 reference host: a `wasi:cli/command@0.3.0` guest on stock `wasmtime-wasi` 48,
//! with WASI 0.2 (`p2::add_to_linker_async`, for the `wasi:cli` and `wasi:io` 0.2 imports of
//! the guest's Rust std) and WASI 0.3 (`p3::add_to_linker`) in one linker; network and name
//! lookups fully allowed. One change to stock behaviour keeps the test on the machine, as for
//! the 0.2 reference: `resolve-addresses` passes every name through
//! [`super::reference::no_dns`] first (a name it would look up in DNS is looked up as
//! `localhost`).

use std::sync::{Arc, OnceLock};

use wasmtime::Store;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::p3::bindings::Command;
use wasmtime_wasi::p3::bindings::sockets::ip_name_lookup::HostWithStore as LookupHost;
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use super::reference::no_dns;
use super::{GuestIo, Outcome, Run, Running, engine};

/// Store data of a 0.3 reference run.
pub struct ReferenceP3 {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl ReferenceP3 {
    /// Store data holding `ctx`.
    pub fn new(ctx: WasiCtx) -> Self {
        ReferenceP3 {
            ctx,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for ReferenceP3 {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Stock `wasmtime-wasi`: all of WASI 0.2, then all of WASI 0.3.
pub fn reference_p3_linker() -> Arc<Linker<ReferenceP3>> {
    static LINKER: OnceLock<Arc<Linker<ReferenceP3>>> = OnceLock::new();
    LINKER
        .get_or_init(|| {
            let mut linker: Linker<ReferenceP3> = Linker::new(engine());
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("p2::add_to_linker_async");
            wasmtime_wasi::p3::add_to_linker(&mut linker).expect("p3::add_to_linker");
            linker.allow_shadowing(true);
            linker
                .instance("wasi:sockets/ip-name-lookup@0.3.0")
                .expect("the 0.3 lookup interface")
                .func_wrap_concurrent("resolve-addresses", |accessor, (name,): (String,)| {
                    Box::pin(async move {
                        let sockets = accessor
                            .with_getter::<WasiSockets>(<ReferenceP3 as WasiSocketsView>::sockets);
                        let answer = <WasiSockets as LookupHost<ReferenceP3>>::resolve_addresses(
                            &sockets,
                            no_dns(name),
                        )
                        .await?;
                        Ok((answer,))
                    })
                })
                .expect("shadowing resolve-addresses");
            Arc::new(linker)
        })
        .clone()
}

/// Starts the 0.3 command at `path` on the reference with `args` (argv[0] is the guest's
/// name) and the environment `env`.
pub fn spawn_reference_p3(path: &str, args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut io = GuestIo::new(path, args, env);
    let ctx = io
        .wasi
        .inherit_network()
        .allow_tcp(true)
        .allow_udp(true)
        .allow_ip_name_lookup(true)
        .build();
    let state = ReferenceP3::new(ctx);
    let (linker, component) = (reference_p3_linker(), io.component.clone());
    io.running(async move {
        let mut store = Store::new(engine(), state);
        // The engine has epoch interruption on: the same time slices as wasock's runs.
        wasock::time_slices(&mut store);
        let command = match Command::instantiate_async(&mut store, &component, &linker).await {
            Ok(c) => c,
            Err(e) => return Outcome::Error(format!("cannot instantiate: {e:?}")),
        };
        let run = store
            .run_concurrent(async move |accessor| command.wasi_cli_run().call_run(accessor).await)
            .await;
        match run.and_then(|outcome| outcome) {
            Ok(Ok(())) => Outcome::Exit(0),
            Ok(Err(())) => Outcome::Exit(1),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => Outcome::Exit(exit.0),
                None => Outcome::Trap(format!("{e:?}")),
            },
        }
    })
}

/// Runs the 0.3 command at `path` on the reference to completion (bounded by
/// [`super::RUN_TIMEOUT`]).
pub async fn run_reference_p3(path: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    spawn_reference_p3(path, args, env).finish().await
}
