//! Deterministic simulation: several components on one [`VirtualNetwork`], on one thread, in
//! virtual time, with one seed.
//!
//! Every instance runs on a current-thread runtime whose clock is paused: it moves only when
//! every task waits, straight to the next timer, so a guest's 60-second timeout costs no real
//! time. Guests read that clock through `wasi:clocks` (monotonic and wall), draw `wasi:random`
//! from generators seeded from the seed, and yield by fuel rather than by wall-clock epochs.
//! The network's faults draw from the same seed. So one scenario and one seed give one trace,
//! byte for byte: every socket decision, fault, guest output line and ending, as JSON lines
//! stamped with virtual time.

mod output;
mod scenario;

pub use scenario::{Scenario, ScenarioError};

use crate::backend::VirtualNetwork;
use crate::command::{AnyCommandPre, StoreState, exit_code};
use crate::{RunError, WasockCtx};
use output::{Trace, TraceOutput};
use rand::SeedableRng;
use rand::rngs::StdRng;
use scenario::{ComponentSpec, EventKind, Role};
use std::fmt;
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;

/// Fuel a guest burns between two yields to the other instances.
const FUEL_SLICE: u64 = 10_000;
/// The wall clock's reading at virtual time zero: 2026-01-01T00:00:00Z.
const WALL_EPOCH: Duration = Duration::from_secs(1_767_225_600);
/// Exit code of a run whose first failure was a trap (as `wasock run`'s).
const TRAP_EXIT: i32 = 134;
/// Exit code of a run whose first failure was a task still running at the time limit.
const TIME_LIMIT_EXIT: i32 = 124;

/// Why a simulation cannot start.
#[derive(Debug)]
pub enum SimError {
    /// A component file could not be compiled.
    Compile {
        /// The component's name in the scenario.
        component: String,
        /// Why.
        error: String,
    },
    /// The engine or runtime could not be made.
    Setup(String),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Compile { component, error } => {
                write!(f, "component `{component}`: {error}")
            }
            SimError::Setup(e) => write!(f, "cannot set the simulation up: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

/// A scenario with its components compiled, ready to run with any seed.
pub struct Simulation {
    scenario: Scenario,
    engine: Engine,
    commands: Vec<AnyCommandPre<StoreState>>,
}

/// How one component ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this code.
    Exited(i32),
    /// It trapped (the message says which trap, or that it ran out of fuel).
    Trapped(String),
    /// It was still running when the run ended.
    Running,
}

/// What one run gave.
#[derive(Debug)]
pub struct SimReport {
    /// The seed it ran with.
    pub seed: u64,
    /// Each component's name and ending, in scenario order.
    pub endings: Vec<(String, Ending)>,
    /// The first failure, if any: which component, and what went wrong.
    pub failure: Option<String>,
    /// The run's exit code: 0, or the first failure's.
    pub exit_code: i32,
    /// The virtual time the run took.
    pub virtual_time: Duration,
    /// The trace: one JSON object per line, in order.
    pub trace: Vec<String>,
    /// The components' output lines in order: component, `stdout` or `stderr`, the line.
    pub output: Vec<(String, &'static str, String)>,
}

impl Simulation {
    /// Compiles the scenario's components.
    pub fn new(scenario: Scenario) -> Result<Simulation, SimError> {
        let mut config = crate::engine_config();
        config.epoch_interruption(false);
        config.consume_fuel(true);
        let engine = Engine::new(&config).map_err(|e| SimError::Setup(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        crate::add_wasi_to_linker(&mut linker).map_err(|e| SimError::Setup(format!("{e:#}")))?;
        let mut commands = Vec::new();
        for c in &scenario.components {
            let compile = |e: wasmtime::Error| SimError::Compile {
                component: c.name.clone(),
                error: format!("{}: {e:#}", c.wasm.display()),
            };
            let component = Component::from_file(&engine, &c.wasm).map_err(compile)?;
            let pre = linker.instantiate_pre(&component).map_err(compile)?;
            commands.push(AnyCommandPre::new(pre).map_err(compile)?);
        }
        Ok(Simulation {
            scenario,
            engine,
            commands,
        })
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Runs the scenario once with `seed`, on a runtime of its own (call it outside any async
    /// runtime): the same seed gives the same report.
    pub fn run(&self, seed: u64) -> Result<SimReport, SimError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .map_err(|e| SimError::Setup(e.to_string()))?;
        Ok(runtime.block_on(self.run_on_virtual_time(seed)))
    }

    async fn run_on_virtual_time(&self, seed: u64) -> SimReport {
        let start = tokio::time::Instant::now();
        let trace = Trace::new(start);
        let net = VirtualNetwork::seeded(seed);
        net.observe(trace.fault_observer());
        let sc = &self.scenario;
        let hosts: Vec<_> = (sc.components.iter())
            .map(|c| {
                net.attach(&c.name)
                    .expect("names were checked unique and valid")
            })
            .collect();
        for link in &sc.links {
            match &link.between {
                Some((a, b)) => drop(net.set_link(a, b, link.faults)),
                None => net.set_default_link(link.faults),
            }
        }
        for (name, addrs) in &sc.names {
            drop(net.add_name(name, addrs.iter().copied()));
        }
        // Events come before components at the same virtual time: those at zero are applied
        // before any component starts, the timeline's task is spawned before theirs.
        let (now, later): (Vec<_>, Vec<_>) = (sc.events.iter())
            .map(|e| (e.at, e.kind.clone()))
            .partition(|(at, _)| at.is_zero());
        apply_events(now, &net, &trace, start).await;
        let timeline = tokio::spawn(apply_events(later, net.clone(), trace.clone(), start));
        let mut running = Vec::new();
        for (i, (spec, host)) in sc.components.iter().zip(hosts).enumerate() {
            let state = StoreState::new(
                self.wasi_ctx(spec, seed, i as u64, &trace),
                sockets_ctx(spec, host, &trace),
            );
            let task = run_component(
                self.engine.clone(),
                self.commands[i].clone(),
                state,
                spec.fuel,
                spec.start,
            );
            running.push(tokio::spawn(task));
        }
        // The run ends when every task has ended, or at the time limit.
        let limit = start + sc.time_limit;
        let mut endings: Vec<Option<(Duration, Ending)>> = vec![None; running.len()];
        let tasks: Vec<usize> = (0..running.len())
            .filter(|&i| sc.components[i].role == Role::Task)
            .collect();
        loop {
            let all_tasks_ended = tasks.iter().all(|&i| endings[i].is_some());
            if (all_tasks_ended && !tasks.is_empty()) || tokio::time::Instant::now() >= limit {
                break;
            }
            // Whichever component ends first, in virtual time; ties in scenario order.
            let next = std::future::poll_fn(|cx| {
                for (i, handle) in running.iter_mut().enumerate() {
                    if endings[i].is_some() {
                        continue;
                    }
                    if let std::task::Poll::Ready(r) = std::pin::Pin::new(handle).poll(cx) {
                        return std::task::Poll::Ready(Some((i, r)));
                    }
                }
                std::task::Poll::Pending
            });
            let Ok(Some((i, result))) = tokio::time::timeout_at(limit, next).await else {
                break;
            };
            let ending = match result {
                Ok(Ok(code)) => Ending::Exited(code),
                Ok(Err(e)) => Ending::Trapped(e),
                Err(e) => Ending::Trapped(format!("the component's task failed: {e}")),
            };
            let at = start.elapsed();
            trace.ending(&sc.components[i].name, &ending);
            endings[i] = Some((at, ending));
        }
        let virtual_time = start.elapsed();
        timeline.abort();
        for handle in &running {
            handle.abort();
        }
        self.report(seed, endings, virtual_time, &trace)
    }

    /// Each component's ending, and the run's first failure.
    fn report(
        &self,
        seed: u64,
        endings: Vec<Option<(Duration, Ending)>>,
        virtual_time: Duration,
        trace: &Trace,
    ) -> SimReport {
        let sc = &self.scenario;
        let mut failures: Vec<(Duration, String, i32)> = Vec::new();
        let mut named = Vec::new();
        for (spec, ending) in sc.components.iter().zip(endings) {
            let (at, ending) = ending.unwrap_or((virtual_time, Ending::Running));
            let failure = match (&ending, spec.role) {
                (Ending::Exited(0), _) | (Ending::Running, Role::Service) => None,
                (Ending::Exited(code), _) => Some((format!("exited with {code}"), *code)),
                (Ending::Trapped(why), _) => Some((format!("trapped: {why}"), TRAP_EXIT)),
                (Ending::Running, Role::Task) => Some((
                    format!("still running at the time limit ({:?})", sc.time_limit),
                    TIME_LIMIT_EXIT,
                )),
            };
            if let Some((what, code)) = failure {
                failures.push((at, format!("`{}` {what}", spec.name), code));
            }
            named.push((spec.name.clone(), ending));
        }
        // The first failure in virtual time; ties in scenario order (a stable sort).
        failures.sort_by_key(|(at, _, _)| *at);
        let first = failures.into_iter().next();
        SimReport {
            seed,
            endings: named,
            exit_code: first.as_ref().map_or(0, |(_, _, code)| *code),
            failure: first.map(|(at, what, _)| format!("{what} at {}", output::stamp(at))),
            virtual_time,
            trace: trace.lines(),
            output: trace.output(),
        }
    }

    /// The component's WASI: its arguments and environment, output into the trace, the
    /// simulation's clocks, randomness seeded from the run's seed and the component's index.
    fn wasi_ctx(&self, spec: &ComponentSpec, seed: u64, index: u64, trace: &Trace) -> WasiCtx {
        let mut b = WasiCtx::builder();
        b.arg(&spec.name);
        b.args(&spec.args);
        b.envs(&spec.env);
        b.stdout(TraceOutput::new(trace, &spec.name, "stdout"));
        b.stderr(TraceOutput::new(trace, &spec.name, "stderr"));
        b.monotonic_clock(output::VirtualMonotonic(trace.start()));
        b.wall_clock(output::VirtualWall(trace.start(), WALL_EPOCH));
        let mix = |salt: u64| {
            let mut x = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.rotate_left(32);
            // splitmix64's finalizer: nearby seeds give unrelated streams.
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        b.secure_random(StdRng::seed_from_u64(mix(1)));
        b.insecure_random(StdRng::seed_from_u64(mix(2)));
        b.insecure_random_seed(u128::from(mix(3)) << 64 | u128::from(mix(4)));
        b.build()
    }
}

/// The component's sockets: on its host, under its policy, every decision in the trace.
fn sockets_ctx(spec: &ComponentSpec, host: crate::VirtualHost, trace: &Trace) -> WasockCtx {
    let limits = crate::limits::Limits {
        connect_timeout: spec
            .connect_timeout
            .or(crate::limits::Limits::default().connect_timeout),
        ..Default::default()
    };
    let mut b = WasockCtx::builder();
    b.virtual_host(host)
        .limits(limits)
        .instance_name(spec.name.clone())
        .audit(trace.audit_sink());
    match &spec.policy {
        Some(rules) => b.policy(rules.clone()),
        None => b.allow_all_network(true).allow_ip_name_lookup(true),
    };
    b.build()
}

/// Runs one component from its start time: its exit code, or why it trapped.
async fn run_component(
    engine: Engine,
    pre: AnyCommandPre<StoreState>,
    state: StoreState,
    fuel: u64,
    start: Duration,
) -> Result<i32, String> {
    tokio::time::sleep(start).await;
    let mut store = Store::new(&engine, state);
    store.set_fuel(fuel).map_err(|e| format!("{e:#}"))?;
    store
        .fuel_async_yield_interval(Some(FUEL_SLICE))
        .map_err(|e| format!("{e:#}"))?;
    let outcome = match pre.run(&mut store).await {
        Ok(outcome) => outcome,
        Err(e) => return Err(format!("cannot instantiate: {e:#}")),
    };
    exit_code(outcome).map_err(|e| match e {
        RunError::Trap(t) if matches!(t.downcast_ref(), Some(wasmtime::Trap::OutOfFuel)) => {
            format!("ran out of fuel ({fuel} units: a loop that never waits?)")
        }
        RunError::Trap(t) => format!("{t:#}"),
        other => other.to_string(),
    })
}

/// Applies the scenario's events at their virtual times, each into the trace.
async fn apply_events(
    events: Vec<(Duration, EventKind)>,
    net: impl std::borrow::Borrow<VirtualNetwork>,
    trace: impl std::borrow::Borrow<Trace>,
    start: tokio::time::Instant,
) {
    let (net, trace) = (net.borrow(), trace.borrow());
    for (at, kind) in events {
        tokio::time::sleep_until(start + at).await;
        let applied = match &kind {
            EventKind::Partition(a, b) => net.partition(a, b, true),
            EventKind::Heal(a, b) => net.partition(a, b, false),
            EventKind::Reset(a, b) => net.reset_connections(a, b),
            EventKind::Down(h) => net.set_host_up(h, false),
            EventKind::Up(h) => net.set_host_up(h, true),
            EventKind::Lookups { failing } => {
                net.fail_lookups(*failing);
                Ok(())
            }
        };
        trace.event(&kind, applied.is_ok());
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Exited(code) => write!(f, "exited with {code}"),
            Ending::Trapped(why) => write!(f, "trapped: {why}"),
            Ending::Running => write!(f, "still running"),
        }
    }
}
