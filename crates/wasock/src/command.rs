//! Running a `wasi:cli/command` component with full WASI and wasock's sockets: what the CLI
//! does, packaged for embedders and tests.

use crate::ctx::{WasockCtx, WasockCtxView, WasockView};
use std::sync::Mutex;
use std::time::Duration;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, EngineWeak, Store, Trap};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p3::bindings as p3;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

/// How long a guest runs before it yields its thread, under [`time_slices`].
pub const TIME_SLICE: Duration = Duration::from_millis(10);

/// The engine configuration wasock needs: the component model. Everything else, epoch
/// interruption and fuel included, is the embedder's choice.
pub fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config
}

/// Compiles a component (binary or text) with `config` on the engine it needs: without
/// Wasmtime's concurrency support when it uses none of the component model's async ABI (a WASI
/// 0.2 command), with it otherwise (WASI 0.3). Without it every host call skips Wasmtime's
/// per-call task bookkeeping (5 % of the CPU per request of an HTTP guest on tokio); on such
/// an engine [`add_wasi_to_linker`](crate::add_wasi_to_linker) links WASI 0.2 only.
///
/// A component that needs concurrency fails to validate on the first engine and is compiled
/// on the second; an invalid one reports the second engine's error.
pub fn compile_component(
    config: &wasmtime::Config,
    bytes: &[u8],
) -> Result<(Engine, Component), CompileError> {
    let mut plain = config.clone();
    plain.concurrency_support(false);
    // A configuration that asks for the async ABI itself is not valid without concurrency.
    if let Ok(engine) = Engine::new(&plain)
        && let Ok(component) = Component::new(&engine, bytes)
    {
        return Ok((engine, component));
    }
    let mut concurrent = config.clone();
    concurrent.concurrency_support(true);
    let engine = Engine::new(&concurrent).map_err(CompileError::Engine)?;
    let component = Component::new(&engine, bytes).map_err(CompileError::Component)?;
    Ok((engine, component))
}

/// Why [`compile_component`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CompileError {
    /// The configuration makes no engine.
    Engine(wasmtime::Error),
    /// The bytes are not a valid component for this engine.
    Component(wasmtime::Error),
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompileError::Engine(e) => write!(f, "cannot create the engine: {e}"),
            CompileError::Component(e) => write!(f, "not a valid component: {e}"),
        }
    }
}

impl std::error::Error for CompileError {}

/// Opt-in time slicing: makes the guest of `store` yield to the async runtime after each
/// [`TIME_SLICE`] of running, so that one guest serving a flood of ready sockets (its every
/// `poll` ready at once) or spinning cannot starve the runtime's timers, reactor and other
/// guests. The CLI does this for every guest; a library embedder asks for it.
///
/// The engine needs `Config::epoch_interruption(true)`. This sets the store's epoch deadline
/// behaviour (yield, then a new deadline one epoch later), replacing any the embedder set; on
/// tokio the guest resumes only after the runtime has polled its reactor (`yield_now`), so the
/// sockets of the runtime's other tasks are heard every slice. It also
/// starts one process-wide thread that increments the engine's epoch every [`TIME_SLICE`]
/// (stopping once every engine it ticks is dropped). An embedder with epoch deadlines of their
/// own (timeouts, fairness) should not call this: those deadlines would count these ticks, and
/// the store keeps one deadline behaviour. They can yield from their own
/// `Store::epoch_deadline_callback` instead, or use fuel (`Store::fuel_async_yield_interval`).
pub fn time_slices<T>(store: &mut Store<T>) {
    // tokio's `yield_now` wakes the guest again only after the runtime has polled its reactor:
    // a plain wake would put it straight back in the run queue, and a current-thread runtime
    // polls the reactor only every 61 of its tasks' polls (61 slices while one guest spins).
    store.epoch_deadline_callback(|_| {
        Ok(wasmtime::UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });
    ticker(store.engine());
}

/// Engines whose epoch the ticker thread advances every [`TIME_SLICE`]; `None` while no ticker
/// thread runs.
static TICKED: Mutex<Option<Vec<EngineWeak>>> = Mutex::new(None);

/// Has a ticker thread advance `engine`'s epoch; the thread ends once no ticked engine is left.
fn ticker(engine: &Engine) {
    let mut ticked = crate::sync::lock(&TICKED);
    let engines = match &mut *ticked {
        Some(engines) => engines,
        none => {
            let spawned = std::thread::Builder::new()
                .name("wasock-ticker".into())
                .spawn(tick);
            if spawned.is_err() {
                // No thread to be had: the guest runs unsliced, as without epochs.
                return;
            }
            none.insert(Vec::new())
        }
    };
    if !engines
        .iter()
        .any(|w| w.upgrade().is_some_and(|e| Engine::same(&e, engine)))
    {
        engines.push(engine.weak());
    }
}

/// The ticker thread's loop: bounded by the life of the engines it ticks.
fn tick() {
    loop {
        std::thread::sleep(TIME_SLICE);
        let mut ticked = crate::sync::lock(&TICKED);
        let Some(engines) = &mut *ticked else {
            return;
        };
        engines.retain(|w| match w.upgrade() {
            Some(engine) => {
                engine.increment_epoch();
                true
            }
            None => false,
        });
        if engines.is_empty() {
            *ticked = None;
            return;
        }
    }
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

/// Why a command did not run to an exit code (a later release may add kinds).
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// The component could not be instantiated: an import missing or of another type, or a
    /// host resource refused.
    Instantiate(wasmtime::Error),
    /// The component does not export `wasi:cli/run`: it is not a command.
    NotACommand(wasmtime::Error),
    /// The guest trapped, while being instantiated or in `run`; the error says which trap.
    Trap(wasmtime::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Instantiate(e) => write!(f, "cannot instantiate the component: {e}"),
            RunError::NotACommand(e) => {
                write!(f, "not a wasi:cli/command component (0.2 or 0.3): {e}")
            }
            RunError::Trap(e) => write!(f, "the guest trapped: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Instantiates `component` in `store` and calls its `wasi:cli/run`: `@0.3.x` (as a concurrent
/// call) if it exports one, else `@0.2.x`.
///
/// Returns the exit code: 0 when `run` returns `ok`, 1 when it returns `err`, the code passed
/// to `wasi:cli/exit` when the guest calls it. The store is the embedder's: its epoch deadline,
/// fuel and limiter apply as they set them (see [`time_slices`] for the CLI's choice). Must be
/// called inside a tokio runtime; a current-thread one (or a `LocalSet`) costs the least per
/// wake-up.
pub async fn run_command<T: Send + 'static>(
    store: &mut Store<T>,
    linker: &Linker<T>,
    component: &Component,
) -> Result<i32, RunError> {
    let pre = linker
        .instantiate_pre(component)
        .map_err(RunError::Instantiate)?;
    let pre = AnyCommandPre::new(pre).map_err(RunError::NotACommand)?;
    // tokio's per-task budget would make a guest with many ready sockets see some as not ready
    // until it yields: the guest's own yields (time slices, or the embedder's) bound its turn.
    tokio::task::unconstrained(async {
        // A trap while instantiating (a start function, or the embedder's epoch or fuel) is
        // the guest's, as one in `run` is.
        pre.run(store)
            .await
            .map_err(|e| match e.downcast_ref::<Trap>() {
                Some(_) => RunError::Trap(e),
                None => RunError::Instantiate(e),
            })
    })
    .await
    .and_then(exit_code)
}

/// A `wasi:cli/command` of either version, pre-instantiated.
pub(crate) enum AnyCommandPre<T: 'static> {
    V02(CommandPre<T>),
    V03(p3::CommandPre<T>),
}

impl<T: 'static> Clone for AnyCommandPre<T> {
    fn clone(&self) -> Self {
        match self {
            AnyCommandPre::V02(pre) => AnyCommandPre::V02(pre.clone()),
            AnyCommandPre::V03(pre) => AnyCommandPre::V03(pre.clone()),
        }
    }
}

impl<T: Send + 'static> AnyCommandPre<T> {
    /// The component's `wasi:cli/run`: `@0.3.x` if it exports one (a Rust bin built for
    /// `wasm32-wasip2` exports std's 0.2 `run` beside it, and a 0.2 `run` cannot wait on 0.3
    /// calls), else `@0.2.x`; the 0.2 error when it exports neither.
    pub(crate) fn new(pre: InstancePre<T>) -> wasmtime::Result<Self> {
        match p3::CommandPre::new(pre.clone()) {
            Ok(pre) => Ok(AnyCommandPre::V03(pre)),
            Err(_) => CommandPre::new(pre).map(AnyCommandPre::V02),
        }
    }

    /// Instantiates and calls `run` (0.3's as a concurrent call): `Err` if instantiating
    /// failed, else `run`'s outcome.
    pub(crate) async fn run(
        &self,
        store: &mut Store<T>,
    ) -> Result<wasmtime::Result<Result<(), ()>>, wasmtime::Error> {
        match self {
            AnyCommandPre::V02(pre) => {
                let command = pre.instantiate_async(&mut *store).await?;
                Ok(command.wasi_cli_run().call_run(&mut *store).await)
            }
            AnyCommandPre::V03(pre) => {
                let command = pre.instantiate_async(&mut *store).await?;
                let run = store
                    .run_concurrent(async move |store| command.wasi_cli_run().call_run(store).await)
                    .await;
                Ok(run.and_then(|outcome| outcome))
            }
        }
    }
}

/// The exit code of a finished `wasi:cli/run` call.
pub(crate) fn exit_code(outcome: wasmtime::Result<Result<(), ()>>) -> Result<i32, RunError> {
    match outcome {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(RunError::Trap(e)),
        },
    }
}
