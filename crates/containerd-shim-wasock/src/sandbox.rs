//! Running one container: its component, under the policy of its annotations, with the
//! container's arguments, environment, root directory and stdio; and precompiling the
//! components of an image's wasm layers.

use crate::bundle;
use crate::settings::{Settings, SettingsError};
use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{RuntimeContext, WasmLayer};
use containerd_shim_wasm::shim::Compiler;
use std::fmt;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx};
use wasock::audit::JsonLines;
use wasock::{RunError, StoreState};

/// The exit code of a container whose component trapped (as a process killed by SIGABRT).
const TRAP_EXIT: i32 = 134;
/// The exit code of a container the shim could not run (its stderr says why).
const CANNOT_RUN_EXIT: i32 = 2;

/// The shim's sandbox: stateless, one per container process.
#[derive(Default)]
pub(crate) struct WasockSandbox;

impl Sandbox for WasockSandbox {
    /// Rule: a container runs only under settings read without a mistake; whatever stops it
    /// from running is one line on its stderr, `wasock: error: …`, and exit code 2.
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> anyhow::Result<i32> {
        match run(ctx).await {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("wasock: error: {e}");
                Ok(match e {
                    StartError::Trap(_) => TRAP_EXIT,
                    _ => CANNOT_RUN_EXIT,
                })
            }
        }
    }
}

/// Why a container's component did not run to its end.
#[derive(Debug)]
pub(crate) enum StartError {
    /// The annotations of the container's bundle could not be read.
    Bundle(&'static bundle::BundleError),
    /// An annotation, or the policy it gives, has a mistake.
    Settings(SettingsError),
    /// The component's bytes could not be had (a missing file, several wasm layers).
    Source(String),
    /// A core module, which the shim does not run.
    CoreModule,
    /// Wasmtime refused the engine, the component or the WASI set-up.
    Wasmtime { what: &'static str, error: String },
    /// The component exports no `wasi:cli/run`.
    NotACommand(String),
    /// The guest trapped.
    Trap(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Bundle(e) => write!(f, "{e}"),
            StartError::Settings(e) => write!(f, "{e}"),
            StartError::Source(e) => write!(f, "cannot read the component: {e}"),
            StartError::CoreModule => f.write_str(
                "the entrypoint is a core WebAssembly module, not a component: build it for \
                 wasm32-wasip2",
            ),
            StartError::Wasmtime { what, error } => write!(f, "{what}: {error}"),
            StartError::NotACommand(e) => write!(
                f,
                "the component is not a command (it must export wasi:cli/run): {e}"
            ),
            StartError::Trap(e) => write!(f, "the component trapped: {e}"),
        }
    }
}

/// The container's run: settings first (a mistake stops it before any component is read),
/// then the component, the linker `wasock run` builds, and the guest to its exit.
async fn run(ctx: &impl RuntimeContext) -> Result<i32, StartError> {
    let annotations = bundle::annotations().map_err(StartError::Bundle)?;
    let settings = Settings::from_annotations(annotations, |path| std::fs::read_to_string(path))
        .map_err(StartError::Settings)?;
    let (audit, stats) = (settings.audit, settings.stats);

    let entrypoint = ctx.entrypoint();
    let name = entrypoint.name.clone().unwrap_or_else(|| "guest".into());
    let source = &entrypoint.source;
    let bytes = (source.as_bytes()).map_err(|e| StartError::Source(e.to_string()))?;
    let precompiled = (source.is_precompiled()).map_err(|e| StartError::Source(e.to_string()))?;

    // The engine the component needs, as under `wasock run`: without Wasmtime's concurrency
    // support for a WASI 0.2 command (cheaper host calls), with it for a 0.3 one.
    let (engine, component) = match precompiled {
        true => Engines::new()?.deserialize(&bytes)?,
        false if is_core_module(&bytes) => return Err(StartError::CoreModule),
        false => wasock::compile_component(&engine_config(), &bytes).map_err(|e| match e {
            wasock::CompileError::Engine(e) => wasmtime_error("cannot create the engine", &e),
            wasock::CompileError::Component(e) => wasmtime_error("the component is not valid", &e),
            e => StartError::Wasmtime {
                what: "the component is not valid",
                error: e.to_string(),
            },
        })?,
    };
    let mut linker = Linker::<StoreState>::new(&engine);
    wasock::add_wasi_to_linker(&mut linker)
        .map_err(|e| wasmtime_error("cannot set up WASI", &e))?;

    let mut sockets = settings.builder();
    sockets.instance_name(name);
    if audit {
        sockets.audit(JsonLines::new(std::io::stderr()));
    }
    let sockets = sockets.build();
    let counters = sockets.counters();
    let wasi = wasi_ctx(ctx)?;
    let mut store = Store::new(&engine, StoreState::new(wasi, sockets));
    // Time slices, as `wasock run` gives every guest.
    wasock::time_slices(&mut store);
    let outcome = wasock::run_command(&mut store, &linker, &component).await;
    if stats {
        for line in counters.report() {
            eprintln!("wasock: stats: {line}");
        }
    }
    match outcome {
        Ok(code) => Ok(code),
        Err(RunError::Trap(e)) => Err(StartError::Trap(match e.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => root(&e),
        })),
        Err(RunError::NotACommand(e)) => Err(StartError::NotACommand(root(&e))),
        Err(RunError::Instantiate(e)) => Err(wasmtime_error("cannot start the component", &e)),
        Err(other) => Err(StartError::Trap(other.to_string())),
    }
}

/// The configuration of every container's engine.
fn engine_config() -> wasmtime::Config {
    let mut config = wasock::engine_config();
    // Epoch interruption for the time slices every guest runs with, as under `wasock run`.
    config.epoch_interruption(true);
    config
}

/// The two engines a container may run on (see `wasock::compile_component`): one without
/// Wasmtime's concurrency support, for WASI 0.2 commands, and one with it, for 0.3 ones.
struct Engines {
    plain: Engine,
    concurrent: Engine,
}

impl Engines {
    fn new() -> Result<Engines, StartError> {
        let mut plain = engine_config();
        plain.concurrency_support(false);
        let mut concurrent = engine_config();
        concurrent.concurrency_support(true);
        let new = |config: &wasmtime::Config| {
            Engine::new(config).map_err(|e| wasmtime_error("cannot create the engine", &e))
        };
        Ok(Engines {
            plain: new(&plain)?,
            concurrent: new(&concurrent)?,
        })
    }

    /// A precompiled component on the engine it was compiled for: Wasmtime refuses an
    /// artifact made for another configuration before reading any of it.
    fn deserialize(self, bytes: &[u8]) -> Result<(Engine, Component), StartError> {
        // SAFETY: precompiled layers are the shim's own output (`Precompiler::compile`), which
        // containerd keeps in its content store under a key naming both engines.
        if let Ok(component) = unsafe { Component::deserialize(&self.plain, bytes) } {
            return Ok((self.plain, component));
        }
        // SAFETY: as above.
        match unsafe { Component::deserialize(&self.concurrent, bytes) } {
            Ok(component) => Ok((self.concurrent, component)),
            Err(e) => Err(wasmtime_error("the component is not valid", &e)),
        }
    }

    /// The component compiled for the engine it needs: the plain one unless it uses the
    /// component model's async ABI (it then fails to validate there).
    fn precompile(&self, bytes: &[u8]) -> wasmtime::Result<Vec<u8>> {
        self.plain
            .precompile_component(bytes)
            .or_else(|_| self.concurrent.precompile_component(bytes))
    }
}

/// The container's WASI: its stdio, its arguments (the entrypoint first), its environment, and
/// its root directory as the guest's `/`.
fn wasi_ctx(ctx: &impl RuntimeContext) -> Result<WasiCtx, StartError> {
    let mut b = WasiCtx::builder();
    b.inherit_stdio();
    let mut args = ctx.args().iter();
    if let Some(arg0) = args.next() {
        // `path#function` names a core module's export; a command has one entry point.
        b.arg(arg0.split_once('#').map_or(arg0.as_str(), |(path, _)| path));
    }
    b.args(&args.collect::<Vec<_>>());
    for kv in ctx.envs() {
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        b.env(key, value);
    }
    b.preopened_dir("/", "/", FsPerms::ReadWrite)
        .map_err(|e| wasmtime_error("cannot open the container's root directory", &e))?;
    Ok(b.build())
}

/// A binary core module: `\0asm` then version 1 (a component has layer 1 in bytes 6..8).
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.get(..8) == Some(b"\0asm\x01\0\0\0")
}

/// Wasmtime's refusal of `what`, as the innermost cause's first line.
fn wasmtime_error(what: &'static str, e: &wasmtime::Error) -> StartError {
    StartError::Wasmtime {
        what,
        error: root(e),
    }
}

/// The first line of an error's innermost cause: the line that says what went wrong.
fn root(e: &wasmtime::Error) -> String {
    let last = e.chain().last().map(|c| c.to_string()).unwrap_or_default();
    last.lines().next().unwrap_or_default().to_string()
}

/// Compiles the components of an image's wasm layers ahead of the first start.
pub(crate) struct Precompiler {
    engines: Engines,
}

impl Precompiler {
    /// `None` when no engine can be had: the components are then compiled at each start.
    pub(crate) fn new() -> Option<Precompiler> {
        Engines::new().ok().map(|engines| Precompiler { engines })
    }
}

impl Compiler for Precompiler {
    /// Rule: a precompiled component is reused only by this shim version on an engine
    /// Wasmtime calls compatible (same Wasmtime, same configuration, same CPU features).
    fn cache_key(&self) -> impl std::hash::Hash {
        (
            env!("CARGO_PKG_VERSION"),
            self.engines.plain.precompile_compatibility_hash(),
            self.engines.concurrent.precompile_compatibility_hash(),
        )
    }

    /// Components are precompiled; a core module, or anything else, is left as it is.
    async fn compile(&self, layers: &[WasmLayer]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(layers.len());
        for layer in layers {
            let bytes = &layer.layer;
            let component =
                !layer.precompiled && bytes.starts_with(b"\0asm") && !is_core_module(bytes);
            out.push(match component {
                true => {
                    Some((self.engines.precompile(bytes)).map_err(|e| {
                        anyhow::anyhow!("cannot compile the component: {}", root(&e))
                    })?)
                }
                false => None,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_modules_are_told_apart_from_components() {
        assert!(is_core_module(b"\0asm\x01\0\0\0"));
        assert!(!is_core_module(b"\0asm\x0d\0\x01\0"));
        assert!(!is_core_module(b"\0asm"));
    }
}
