//! Runs the bench guest one of three ways (and the 0.3 bench guest two more) and measures the
//! CPU time the run cost.

use crate::cpu;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p3::bindings::Command as P3Command;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasock::limits::Limits;
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
    /// The 0.3 bench guest (`guests/bench-p3`) on wasock's sockets, 0.2 and 0.3 linked.
    P3Wasock,
    /// The 0.3 bench guest on stock `wasmtime-wasi` (`p2::add_to_linker_async` and
    /// `p3::add_to_linker`), run as a concurrent call.
    P3WasmtimeWasi,
}

impl Mode {
    /// The modes in the order runs alternate.
    pub(crate) const ALL: [Mode; 3] = [Mode::Wasock, Mode::WasmtimeWasi, Mode::Native];
    /// The columns of a `p3-*` workload, in the order its runs alternate: the 0.3 guest on both
    /// hosts, then the 0.2 guest on wasock and natively.
    pub(crate) const P3: [Mode; 4] = [
        Mode::P3Wasock,
        Mode::P3WasmtimeWasi,
        Mode::Wasock,
        Mode::Native,
    ];

    /// Column heading.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Wasock => "wasock",
            Mode::WasmtimeWasi => "wasmtime-wasi",
            Mode::Native => "native",
            Mode::P3Wasock => "0.3 on wasock",
            Mode::P3WasmtimeWasi => "0.3 on wasmtime-wasi",
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
        parse_report(&self.stdout)
    }
}

/// The `BENCH units=N ns=T key=value...` line in a guest's `stdout`.
pub(crate) fn parse_report(stdout: &str) -> Result<Report> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("BENCH "))
        .ok_or_else(|| anyhow!("the guest printed no BENCH line: {stdout:?}"))?;
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

/// Which tokio runtime the in-process hosts run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Flavor {
    /// One thread that runs the guest and waits on the reactor (the `wasock` CLI's).
    CurrentThread,
    /// Worker threads drive the reactor; the guest runs in `block_on` (`wasmtime run`'s).
    MultiThread,
    /// Each host on its own CLI's runtime: wasock current-thread, `wasmtime-wasi`
    /// multi-threaded, as an operator choosing between `wasock run` and `wasmtime run` meets them.
    Cli,
}

impl Flavor {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Flavor::CurrentThread => {
                "a current-thread tokio runtime (as in the `wasock` CLI) for both in-process hosts"
            }
            Flavor::MultiThread => {
                "a multi-threaded tokio runtime (as in `wasmtime run`) for both in-process hosts"
            }
            Flavor::Cli => {
                "each host on its CLI's tokio runtime: wasock current-thread (as `wasock run`), `wasmtime-wasi` multi-threaded (as `wasmtime run`)"
            }
        }
    }

    /// Whether `mode` runs on a multi-threaded runtime.
    fn multi_thread(self, mode: Mode) -> bool {
        match self {
            Flavor::CurrentThread => false,
            Flavor::MultiThread => true,
            Flavor::Cli => matches!(mode, Mode::WasmtimeWasi | Mode::P3WasmtimeWasi),
        }
    }
}

/// A tokio runtime of the kind `multi` says.
fn runtime(multi: bool) -> Result<Arc<tokio::runtime::Runtime>> {
    if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build()
    .map(Arc::new)
    .context("starting a tokio runtime")
}

/// The compiled guest, both linkers, the async runtime and the native binary.
pub(crate) struct Runner {
    /// The runtime kind chosen with `--runtime`.
    flavor: Flavor,
    /// The runtime wasock's runs use.
    rt: Arc<tokio::runtime::Runtime>,
    /// The runtime `wasmtime-wasi`'s runs use, when it is another kind.
    wasi_rt: Option<Arc<tokio::runtime::Runtime>>,
    engine: Engine,
    component: Component,
    wasock_linker: Arc<Linker<StoreState>>,
    wasi_linker: Arc<Linker<WasiState>>,
    /// Stock `wasmtime-wasi` with WASI 0.3 as well, for [`Mode::P3WasmtimeWasi`].
    wasi_p3_linker: Arc<Linker<WasiState>>,
    native: PathBuf,
    wasm: PathBuf,
}

/// Which engine a [`Runner`] compiles on.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Concurrency {
    /// Wasmtime's default: concurrency support, for guests of either WASI version.
    On,
    /// What the guest needs (`wasock::compile_component`).
    AsNeeded,
}

/// `wasmtime::Error` is not `std::error::Error`; keep its whole chain in the message.
pub(crate) fn wasm_err(e: wasmtime::Error) -> anyhow::Error {
    anyhow!("{e:?}")
}

impl Runner {
    /// The runtime kind the in-process hosts run on.
    pub(crate) fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Compiles `wasm` once (outside any timing) and links it both ways, on an engine with
    /// Wasmtime's concurrency support (which the 0.3 guests [`Runner::compile`] adds need).
    pub(crate) fn new(wasm: &Path, native: &Path, flavor: Flavor) -> Result<Runner> {
        Runner::with_engine(wasm, native, flavor, Concurrency::On)
    }

    /// As [`Runner::new`], on the engine `concurrency` says, for both hosts: with
    /// [`Concurrency::AsNeeded`] as `wasock run` picks it (`wasock::compile_component`), a 0.2
    /// guest on one without concurrency support, and [`Runner::compile`] then takes 0.2 guests
    /// only.
    pub(crate) fn with_engine(
        wasm: &Path,
        native: &Path,
        flavor: Flavor,
        concurrency: Concurrency,
    ) -> Result<Runner> {
        let multi = flavor.multi_thread(Mode::Wasock);
        let rt = runtime(multi)?;
        let wasi_multi = flavor.multi_thread(Mode::WasmtimeWasi);
        let wasi_rt = (wasi_multi != multi)
            .then(|| runtime(wasi_multi))
            .transpose()?;
        // Epoch interruption for the time slices both hosts' guests run with.
        let mut config = wasock::engine_config();
        config.epoch_interruption(true);
        let (engine, component) = match concurrency {
            Concurrency::On => {
                let engine = Engine::new(&config).map_err(wasm_err)?;
                let component = Component::from_file(&engine, wasm)
                    .map_err(wasm_err)
                    .with_context(|| format!("compiling {}", wasm.display()))?;
                (engine, component)
            }
            Concurrency::AsNeeded => {
                let bytes =
                    std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
                wasock::compile_component(&config, &bytes)
                    .map_err(|e| anyhow!("compiling {}: {e}", wasm.display()))?
            }
        };
        let mut wasock_linker = Linker::new(&engine);
        wasock::add_wasi_to_linker(&mut wasock_linker).map_err(wasm_err)?;
        let mut wasi_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut wasi_linker).map_err(wasm_err)?;
        let mut wasi_p3_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut wasi_p3_linker).map_err(wasm_err)?;
        if engine.get_concurrency_support() {
            wasmtime_wasi::p3::add_to_linker(&mut wasi_p3_linker).map_err(wasm_err)?;
        }
        Ok(Runner {
            flavor,
            rt,
            wasi_rt,
            engine,
            component,
            wasock_linker: Arc::new(wasock_linker),
            wasi_linker: Arc::new(wasi_linker),
            wasi_p3_linker: Arc::new(wasi_p3_linker),
            native: native.to_owned(),
            wasm: wasm.to_owned(),
        })
    }

    /// The runtime the runs in `mode` use.
    fn rt(&self, mode: Mode) -> &Arc<tokio::runtime::Runtime> {
        match (mode, &self.wasi_rt) {
            (Mode::WasmtimeWasi | Mode::P3WasmtimeWasi, Some(rt)) => rt,
            _ => &self.rt,
        }
    }

    /// The engine the guest was compiled with.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The bench guest, compiled.
    pub(crate) fn component(&self) -> &Component {
        &self.component
    }

    /// Compiles another guest with the same engine.
    pub(crate) fn compile(&self, wasm: &Path) -> Result<Component> {
        Component::from_file(&self.engine, wasm)
            .map_err(wasm_err)
            .with_context(|| format!("compiling {}", wasm.display()))
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
    /// The 0.3 modes run the 0.3 guest, which the workload passes to [`Runner::run_in_process`].
    pub(crate) fn run(&self, mode: Mode, args: &[String]) -> Result<RunOutput> {
        match mode {
            Mode::Wasock | Mode::WasmtimeWasi => self.run_in_process(mode, &self.component, args),
            Mode::Native => self.run_native(args),
            Mode::P3Wasock | Mode::P3WasmtimeWasi => {
                bail!("{} runs the 0.3 guest, not the bench guest", mode.name())
            }
        }
    }

    /// Runs an already compiled `component` in this process on wasock or `wasmtime-wasi`.
    pub(crate) fn run_in_process(
        &self,
        mode: Mode,
        component: &Component,
        args: &[String],
    ) -> Result<RunOutput> {
        self.run_in_process_with(mode, component, args, &Setup::default())
    }

    /// [`Runner::run_in_process`] with `setup` (wasock's limits).
    pub(crate) fn run_in_process_with(
        &self,
        mode: Mode,
        component: &Component,
        args: &[String],
        setup: &Setup,
    ) -> Result<RunOutput> {
        let cpu0 = cpu::process();
        let t0 = Instant::now();
        let instance = self.prepare(mode, component, args, setup)?;
        let code = self
            .rt(mode)
            .block_on(async { tokio::time::timeout(RUN_TIMEOUT, instance.run).await })
            .map_err(|_| anyhow!("the guest ran longer than {RUN_TIMEOUT:?}"))??;
        let wall = t0.elapsed();
        let cpu = cpu::process().saturating_sub(cpu0);
        let stdout = String::from_utf8_lossy(&instance.stdout.contents()).into_owned();
        if code != 0 {
            bail!(
                "guest {args:?} on {} exited with {code}: {}",
                mode.name(),
                String::from_utf8_lossy(&instance.stderr.contents()).trim()
            );
        }
        Ok(RunOutput { stdout, cpu, wall })
    }

    /// Starts `component` in this process as a task of the runtime (so that several instances
    /// run at once, on the runtime's worker threads); see [`Running`].
    pub(crate) fn spawn(
        &self,
        mode: Mode,
        component: &Component,
        args: &[String],
        setup: &Setup,
    ) -> Result<Running> {
        let instance = self.prepare(mode, component, args, setup)?;
        Ok(Running {
            task: self.rt(mode).spawn(instance.run),
            rt: self.rt(mode).clone(),
            stdout: instance.stdout,
            stderr: instance.stderr,
            what: format!("guest {args:?} on {}", mode.name()),
        })
    }

    /// The store, context and future of one in-process run: the future owns what it needs, so
    /// that it can be driven by `block_on` or spawned.
    fn prepare(
        &self,
        mode: Mode,
        component: &Component,
        args: &[String],
        setup: &Setup,
    ) -> Result<Prepared> {
        let stdout = MemoryOutputPipe::new(PIPE_CAPACITY);
        let stderr = MemoryOutputPipe::new(PIPE_CAPACITY);
        let mut builder = WasiCtxBuilder::new();
        builder
            .arg("bench-guest")
            .args(args)
            .stdout(stdout.clone())
            .stderr(stderr.clone());
        let engine = self.engine.clone();
        let component = component.clone();
        let run: GuestRun = match mode {
            // `run_command` runs a 0.2 or a 0.3 command; wasock's linker has both.
            Mode::Wasock | Mode::P3Wasock => {
                let mut sockets = WasockCtx::builder();
                sockets.allow_all_network(true).allow_ip_name_lookup(true);
                if let Some(limits) = &setup.wasock_limits {
                    sockets.limits(limits.clone());
                }
                let state = StoreState::new(builder.build(), sockets.build());
                let linker = self.wasock_linker.clone();
                Box::pin(async move {
                    // Time slices, as the CLI runs every guest.
                    let mut store = Store::new(&engine, state);
                    wasock::time_slices(&mut store);
                    Ok(wasock::run_command(&mut store, &linker, &component).await?)
                })
            }
            Mode::WasmtimeWasi | Mode::P3WasmtimeWasi => {
                builder
                    .inherit_network()
                    .allow_tcp(true)
                    .allow_udp(true)
                    .allow_ip_name_lookup(true);
                let state = WasiState {
                    ctx: builder.build(),
                    table: ResourceTable::new(),
                };
                if mode == Mode::P3WasmtimeWasi {
                    let linker = self.wasi_p3_linker.clone();
                    Box::pin(async move {
                        run_p3_on_wasmtime_wasi(&engine, &linker, &component, state).await
                    })
                } else {
                    let linker = self.wasi_linker.clone();
                    Box::pin(async move {
                        run_on_wasmtime_wasi(&engine, &linker, &component, state).await
                    })
                }
            }
            Mode::Native => bail!("run_in_process is for the wasm modes"),
        };
        Ok(Prepared {
            run,
            stdout,
            stderr,
        })
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

/// The future of one in-process run: the guest's exit code.
type GuestRun = Pin<Box<dyn Future<Output = Result<i32>> + Send>>;

/// An in-process run, ready to start.
struct Prepared {
    run: GuestRun,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

/// What an in-process instance gets besides its arguments.
#[derive(Clone, Default)]
pub(crate) struct Setup {
    /// wasock's limits (`None`: wasock's defaults); `wasmtime-wasi` has none to set.
    pub(crate) wasock_limits: Option<Limits>,
}

/// An instance running as a task of the runtime ([`Runner::spawn`]). Waiting on it drives the
/// runtime from the waiting thread (`Runtime::block_on`), so that on a current-thread runtime the
/// instances run on that thread, as in the CLI; a `Handle` would not drive it.
pub(crate) struct Running {
    task: tokio::task::JoinHandle<Result<i32>>,
    rt: Arc<tokio::runtime::Runtime>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    what: String,
}

impl Running {
    /// Waits (polling its stdout) for the guest to print a line starting with `prefix`, and
    /// returns the rest of that line; fails if the guest ends first or after `timeout`.
    pub(crate) fn wait_line(&self, prefix: &str, timeout: Duration) -> Result<String> {
        let t0 = Instant::now();
        self.rt.block_on(async {
            loop {
                let out = self.stdout.contents();
                let text = String::from_utf8_lossy(&out);
                // Only whole lines: the guest may be in the middle of writing one.
                let mut lines = text.split_inclusive('\n').filter(|l| l.ends_with('\n'));
                if let Some(rest) = lines.find_map(|l| l.strip_prefix(prefix)) {
                    return Ok(rest.trim().to_owned());
                }
                if self.task.is_finished() {
                    bail!(
                        "{} ended before printing `{prefix}`: {}",
                        self.what,
                        String::from_utf8_lossy(&self.stderr.contents()).trim()
                    );
                }
                if t0.elapsed() > timeout {
                    bail!("{} printed no `{prefix}` within {timeout:?}", self.what);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    }

    /// Waits for the guest to exit (aborting it after `timeout`); fails unless it exits with 0.
    /// Returns its stdout.
    pub(crate) fn finish(self, timeout: Duration) -> Result<String> {
        let Running {
            task,
            rt,
            stdout,
            stderr,
            what,
        } = self;
        let abort = task.abort_handle();
        let joined = rt.block_on(async { tokio::time::timeout(timeout, task).await });
        let code = match joined {
            Err(_) => {
                abort.abort();
                bail!("{what} ran longer than {timeout:?}");
            }
            Ok(Err(e)) => bail!("{what}: the task failed: {e}"),
            Ok(Ok(result)) => result?,
        };
        if code != 0 {
            bail!(
                "{what} exited with {code}: {}",
                String::from_utf8_lossy(&stderr.contents()).trim()
            );
        }
        Ok(String::from_utf8_lossy(&stdout.contents()).into_owned())
    }

    /// Stops the guest at its next wait, if it still runs.
    pub(crate) fn abort(&self) {
        self.task.abort();
    }
}

/// What the wasock run does (time slices, then `wasock::run_command`), with `wasmtime-wasi`'s
/// own store type and without `run_command`'s unconstrained tokio budget.
async fn run_on_wasmtime_wasi(
    engine: &Engine,
    linker: &Linker<WasiState>,
    component: &Component,
    state: WasiState,
) -> Result<i32> {
    let pre = linker.instantiate_pre(component).map_err(wasm_err)?;
    let pre = CommandPre::new(pre).map_err(wasm_err)?;
    let mut store = Store::new(engine, state);
    // The same engine and the same time slices as the wasock run.
    wasock::time_slices(&mut store);
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

/// [`run_on_wasmtime_wasi`] for a `wasi:cli/command@0.3.0`: `run` as a concurrent call
/// (`Store::run_concurrent`), as `wasmtime-wasi`'s 0.3 bindings run it.
async fn run_p3_on_wasmtime_wasi(
    engine: &Engine,
    linker: &Linker<WasiState>,
    component: &Component,
    state: WasiState,
) -> Result<i32> {
    let mut store = Store::new(engine, state);
    wasock::time_slices(&mut store);
    let command = P3Command::instantiate_async(&mut store, component, linker)
        .await
        .map_err(wasm_err)?;
    let run = store
        .run_concurrent(async move |accessor| command.wasi_cli_run().call_run(accessor).await)
        .await;
    match run.and_then(|outcome| outcome) {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(anyhow!("the guest trapped: {e:?}")),
        },
    }
}
