//! Running a `wasi:cli/command` component with full WASI and wasock's sockets: what the CLI
//! does, packaged for embedders and tests.

use crate::ctx::{WasockCtx, WasockCtxView, WasockView};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

/// An engine configuration wasock works with (the component model on; Wasmtime 48 always
/// supports the async host functions wasock's linker needs).
pub fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config
}

/// Store data for a command: `wasmtime-wasi`'s context, wasock's, and their shared table.
pub struct StoreState {
    /// WASI context for every interface but sockets.
    pub wasi: WasiCtx,
    /// wasock's sockets context.
    pub sockets: WasockCtx,
    /// The resource table both use.
    pub table: ResourceTable,
}

impl StoreState {
    /// Store data from the two contexts, with an empty table.
    pub fn new(wasi: WasiCtx, sockets: WasockCtx) -> Self {
        StoreState {
            wasi,
            sockets,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasockView for StoreState {
    fn sockets(&mut self) -> WasockCtxView<'_> {
        WasockCtxView {
            ctx: &mut self.sockets,
            table: &mut self.table,
        }
    }
}

/// Instantiates `component` and calls its `wasi:cli/run`.
///
/// Returns the exit code: 0 when `run` returns `ok`, 1 when it returns `err`, the code passed
/// to `wasi:cli/exit` when the guest calls it. A trap is an `Err` whose chain says which trap.
/// Must be called inside a tokio runtime.
pub async fn run_command(
    engine: &Engine,
    linker: &Linker<StoreState>,
    component: &Component,
    state: StoreState,
) -> wasmtime::Result<i32> {
    let mut store = Store::new(engine, state);
    let command = Command::instantiate_async(&mut store, component, linker)
        .await
        .map_err(|e| e.context("cannot instantiate the component"))?;
    match command.wasi_cli_run().call_run(&mut store).await {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(e),
        },
    }
}
