//! Runs the bench guest one of three ways and measures the CPU time the run cost.

use crate::cpu;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasock::{StoreState, WasockCtx};

/// No single guest run may take longer than this (the guest bounds its own loops well below).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Room for the guest's stdout and stderr in memory (it prints one line).
const PIPE_CAPACITY: usize = 1 << 20;

/// One of the three ways a workload runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The component on wasock's sockets (`wasock::add_wasi_to_linker`).
    Wasock,
    /// The same component on stock `wasmtime-wasi` (`p2::add_to_linker_async`).
    WasmtimeWasi,
    /// The same source built for the host, run as a child process.
    Native,
}

impl Mode {
    /// The modes in the order runs alternate.
    pub(crate) const ALL: [Mode; 3] = [Mode::Wasock, Mode::WasmtimeWasi, Mode::Native];

    /// Column heading.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Wasock => "wasock",
            Mode::WasmtimeWasi => "wasmtime-wasi",
            Mode::Native => "native",
        }
    }

    /// Whether the guest runs inside this process (so a peer thread's CPU must be subtracted).
    pub(crate) fn in_process(self) -> bool {
        !matches!(self, Mode::Native)
    }
}

/// What one run printed and cost.
pub(crate) struct RunOutput {
    /// The guest's stdout.
    pub(crate) stdout: String,
    /// CPU time of the run: this process's for in-process modes (peer threads included),
    /// the child's for native.
    pub(crate) cpu: Duration,
    /// Wall time from start to exit (instantiation or process spawn included).
    pub(crate) wall: Duration,
}

impl RunOutput {
    /// The guest's `BENCH units=N ns=T key=value...` line.
    pub(crate) fn report(&self) -> Result<Report> {
        let line = self
            .stdout
            .lines()
            .find(|l| l.starts_with("BENCH "))
            .ok_or_else(|| anyhow!("the guest printed no BENCH line: {:?}", self.stdout))?;
        let mut fields = BTreeMap::new();
        for pair in line.split_whitespace().skip(1) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| anyhow!("malformed BENCH field `{pair}`"))?;
            let v: u64 = v.parse().with_context(|| format!("BENCH field `{pair}`"))?;
            fields.insert(k.to_owned(), v);
        }
        let get = |k: &str| {
            fields
                .get(k)
                .copied()
                .ok_or_else(|| anyhow!("BENCH line without `{k}`: {line}"))
        };
        Ok(Report {
            units: get("units")?,
            elapsed: Duration::from_nanos(get("ns")?),
            fields,
        })
    }
}

/// The guest's own account of its timed loop.
pub(crate) struct Report {
    /// Work units done.
    pub(crate) units: u64,
    /// Time the loop took, by the guest's monotonic clock.
    pub(crate) elapsed: Duration,
    /// Every field of the line (`units` and `ns` included).
    pub(crate) fields: BTreeMap<String, u64>,
}

/// Store data for the stock `wasmtime-wasi` runs.
struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for WasiState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// The compiled guest, both linkers, the async runtime and the native binary.
pub(crate) struct Runner {
    rt: tokio::runtime::Runtime,
    engine: Engine,
    component: Component,
    wasock_linker: Linker<StoreState>,
    wasi_linker: Linker<WasiState>,
    native: PathBuf,
    wasm: PathBuf,
}

/// `wasmtime::Error` is not `std::error::Error`; keep its whole chain in the message.
pub(crate) fn wasm_err(e: wasmtime::Error) -> anyhow::Error {
    anyhow!("{e:?}")
}

impl Runner {
    /// Compiles `wasm` once (outside any timing) and links it both ways.
    pub(crate) fn new(wasm: &Path, native: &Path) -> Result<Runner> {
        // Like the CLI: a multi-threaded runtime, the guest driven from `block_on`.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        let engine = Engine::new(&wasock::engine_config()).map_err(wasm_err)?;
        let component = Component::from_file(&engine, wasm)
            .map_err(wasm_err)
            .with_context(|| format!("compiling {}", wasm.display()))?;
        let mut wasock_linker = Linker::new(&engine);
        wasock::add_wasi_to_linker(&mut wasock_linker).map_err(wasm_err)?;
        let mut wasi_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut wasi_linker).map_err(wasm_err)?;
        Ok(Runner {
            rt,
            engine,
            component,
            wasock_linker,
            wasi_linker,
            native: native.to_owned(),
            wasm: wasm.to_owned(),
        })
    }

    /// The engine the guest was compiled with.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Path of the guest component.
    pub(crate) fn wasm(&self) -> &Path {
        &self.wasm
    }

    /// Path of the native build of the guest.
    pub(crate) fn native(&self) -> &Path {
        &self.native
    }

    /// Runs the guest with `args` (after its name) in `mode`; fails unless it exits with 0.
    pub(crate) fn run(&self, mode: Mode, args: &[String]) -> Result<RunOutput> {
        match mode {
            Mode::Wasock | Mode::WasmtimeWasi => self.run_in_process(mode, &self.component, args),
            Mode::Native => self.run_native(args),
        }
    }

    /// Runs an already compiled `component` in this process on wasock or `wasmtime-wasi`.
    pub(crate) fn run_in_process(
        &self,
        mode: Mode,
        component: &Component,
        args: &[String],
    ) -> Result<RunOutput> {
        let stdout = MemoryOutputPipe::new(PIPE_CAPACITY);
        let stderr = MemoryOutputPipe::new(PIPE_CAPACITY);
        let mut builder = WasiCtxBuilder::new();
        builder
            .arg("bench-guest")
            .args(args)
            .stdout(stdout.clone())
            .stderr(stderr.clone());
        let cpu0 = cpu::process();
        let t0 = Instant::now();
        let code = match mode {
            Mode::Wasock => {
                let sockets = WasockCtx::builder()
                    .allow_all_network()
                    .allow_lookup()
                    .build();
                let state = StoreState::new(builder.build(), sockets);
                let run = wasock::run_command(&self.engine, &self.wasock_linker, component, state);
                self.rt
                    .block_on(async { tokio::time::timeout(RUN_TIMEOUT, run).await })
                    .map_err(|_| anyhow!("the guest ran longer than {RUN_TIMEOUT:?}"))??
            }
            Mode::WasmtimeWasi => {
                builder
                    .inherit_network()
                    .allow_tcp(true)
                    .allow_udp(true)
                    .allow_ip_name_lookup(true);
                let state = WasiState {
                    ctx: builder.build(),
                    table: ResourceTable::new(),
                };
                let run = run_on_wasmtime_wasi(&self.engine, &self.wasi_linker, component, state);
                self.rt
                    .block_on(async { tokio::time::timeout(RUN_TIMEOUT, run).await })
                    .map_err(|_| anyhow!("the guest ran longer than {RUN_TIMEOUT:?}"))??
            }
            Mode::Native => bail!("run_in_process is for the wasm modes"),
        };
        let wall = t0.elapsed();
        let cpu = cpu::process().saturating_sub(cpu0);
        let stdout = String::from_utf8_lossy(&stdout.contents()).into_owned();
        if code != 0 {
            bail!(
                "guest {args:?} on {} exited with {code}: {}",
                mode.name(),
                String::from_utf8_lossy(&stderr.contents()).trim()
            );
        }
        Ok(RunOutput { stdout, cpu, wall })
    }

    fn run_native(&self, args: &[String]) -> Result<RunOutput> {
        let cpu0 = cpu::children();
        let t0 = Instant::now();
        let mut child = Command::new(&self.native)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.native.display()))?;
        // Poll rather than block so that a stuck child is killed; the child's CPU is its own.
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if t0.elapsed() > RUN_TIMEOUT {
                child.kill()?;
                child.wait()?;
                bail!("native {args:?} ran longer than {RUN_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let wall = t0.elapsed();
        let cpu = cpu::children().saturating_sub(cpu0);
        let output = child.wait_with_output()?;
        if !status.success() {
            bail!(
                "native {args:?} exited with {status}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(RunOutput {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            cpu,
            wall,
        })
    }
}

/// What `wasock::run_command` does, with `wasmtime-wasi`'s own store type.
async fn run_on_wasmtime_wasi(
    engine: &Engine,
    linker: &Linker<WasiState>,
    component: &Component,
    state: WasiState,
) -> Result<i32> {
    let pre = linker.instantiate_pre(component).map_err(wasm_err)?;
    let pre = CommandPre::new(pre).map_err(wasm_err)?;
    let mut store = Store::new(engine, state);
    let command = pre.instantiate_async(&mut store).await.map_err(wasm_err)?;
    match command.wasi_cli_run().call_run(&mut store).await {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(anyhow!("the guest trapped: {e:?}")),
        },
    }
}
