//! Running a `wasi:cli/command` component with full WASI and wasock's sockets: what the CLI
//! does, packaged for embedders and tests.

use crate::ctx::{WasockCtx, WasockCtxView, WasockView};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
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

/// Why a command did not run to an exit code.
#[derive(Debug)]
pub enum RunError {
    /// The component could not be instantiated (an import failed at link or start time).
    Instantiate(wasmtime::Error),
    /// The component does not export `wasi:cli/run`: it is not a command.
    NotACommand(wasmtime::Error),
    /// The guest trapped; the error says which trap.
    Trap(wasmtime::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Instantiate(e) => write!(f, "cannot instantiate the component: {e}"),
            RunError::NotACommand(e) => write!(f, "not a wasi:cli/command component: {e}"),
            RunError::Trap(e) => write!(f, "the guest trapped: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Instantiates `component` and calls its `wasi:cli/run`.
///
/// Returns the exit code: 0 when `run` returns `ok`, 1 when it returns `err`, the code passed
/// to `wasi:cli/exit` when the guest calls it. Must be called inside a tokio runtime; a
/// current-thread one (or a `LocalSet`) costs the least per wake-up.
pub async fn run_command(
    engine: &Engine,
    linker: &Linker<StoreState>,
    component: &Component,
    state: StoreState,
) -> Result<i32, RunError> {
    let pre = linker
        .instantiate_pre(component)
        .map_err(RunError::Instantiate)?;
    let pre = CommandPre::new(pre).map_err(RunError::NotACommand)?;
    let mut store = Store::new(engine, state);
    let command = pre
        .instantiate_async(&mut store)
        .await
        .map_err(RunError::Instantiate)?;
    match command.wasi_cli_run().call_run(&mut store).await {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(RunError::Trap(e)),
        },
    }
}
