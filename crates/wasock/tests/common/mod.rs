//! Shared harness for the guest-based integration tests: runs a guest component
//! (built by `wasock-guests`) under wasock with captured stdout/stderr, or under stock
//! `wasmtime-wasi` ([`reference`]), and checks its summary against [`EXPECTED_CHECKS`].
//!
//! One engine, one linker per host and one compiled `Component` per guest are shared by
//! all tests of a test binary (compiling is the slow part).

#![allow(dead_code)]

pub mod differences;
pub mod reference;
pub mod reference_p3;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasock::{RunError, StoreState, WasockCtx};

/// How long a single guest may run before the test gives up on it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Capacity of each captured output pipe.
const PIPE_CAPACITY: usize = 1 << 20;

/// The engine shared by every test in this binary: epoch interruption on, for the time slices
/// every guest here runs with, as under the CLI.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = wasock::engine_config();
        config.epoch_interruption(true);
        Engine::new(&config).expect("engine")
    })
}

/// A linker with all of WASI 0.2 (wasock for sockets).
pub fn linker() -> Arc<Linker<StoreState>> {
    static LINKER: OnceLock<Arc<Linker<StoreState>>> = OnceLock::new();
    LINKER
        .get_or_init(|| {
            let mut linker = Linker::new(engine());
            wasock::add_wasi_to_linker(&mut linker).expect("add_wasi_to_linker");
            Arc::new(linker)
        })
        .clone()
}

/// The compiled component at `path` (compiled once per test binary).
pub fn component(path: &str) -> Component {
    static CACHE: OnceLock<Mutex<HashMap<String, Component>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.lock().unwrap().get(path) {
        return c.clone();
    }
    // Compile outside the lock so two tests can compile different guests at once.
    let c = Component::from_file(engine(), path)
        .unwrap_or_else(|e| panic!("cannot compile {path}: {e:?}"));
    cache
        .lock()
        .unwrap()
        .entry(path.to_string())
        .or_insert(c)
        .clone()
}

/// The name of a guest from its path (`.../raw-tcp.wasm` → `raw-tcp`).
pub fn guest_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_suffix(".wasm").unwrap_or(file)
}

/// Sockets context allowing all network operations and lookups.
pub fn allow_all() -> WasockCtx {
    WasockCtx::builder()
        .allow_all_network(true)
        .allow_ip_name_lookup(true)
        .build()
}

/// Sockets context allowing all network operations and lookups, on a host of its own fresh
/// virtual network (no OS socket).
pub fn allow_all_virtual() -> WasockCtx {
    let host = wasock::VirtualNetwork::new()
        .attach("guest")
        .expect("a fresh network takes a host");
    allow_all_on(&host)
}

/// Sockets context allowing all network operations and lookups, on `host` of a virtual
/// network (instances given the same host share its loopback).
pub fn allow_all_on(host: &wasock::VirtualHost) -> WasockCtx {
    WasockCtx::builder()
        .allow_all_network(true)
        .allow_ip_name_lookup(true)
        .virtual_host(host.clone())
        .build()
}

/// An allow-all context on each backend, with how many IPv4 and IPv6 addresses `localhost`
/// has there: the OS's (this machine's hosts file decides), then a fresh virtual network's
/// (127.0.0.1 and ::1).
pub fn on_both_backends() -> [(&'static str, WasockCtx, (u32, u32)); 2] {
    [
        ("os", allow_all(), localhost_addresses()),
        ("virtual", allow_all_virtual(), (1, 1)),
    ]
}

/// A guest running in its own store on a tokio task.
pub struct Running {
    pub name: String,
    handle: tokio::task::JoinHandle<Outcome>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

/// Starts the guest at `path` with `args` (argv[0] is the guest's name) and `sockets`.
pub fn spawn(path: &str, args: &[&str], sockets: WasockCtx) -> Running {
    spawn_env(path, args, &[], sockets)
}

/// What a guest gets on either host: its compiled component, stdout and stderr captured, and
/// a WASI context builder holding its arguments (argv[0] is the guest's name) and `env`.
pub struct GuestIo {
    pub name: String,
    pub component: Component,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    pub wasi: wasmtime_wasi::WasiCtxBuilder,
}

impl GuestIo {
    pub fn new(path: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let name = guest_name(path).to_string();
        let stdout = MemoryOutputPipe::new(PIPE_CAPACITY);
        let stderr = MemoryOutputPipe::new(PIPE_CAPACITY);
        let mut argv = vec![name.clone()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let mut wasi = WasiCtx::builder();
        wasi.args(&argv)
            .envs(env)
            .stdout(stdout.clone())
            .stderr(stderr.clone());
        GuestIo {
            name,
            component: component(path),
            stdout,
            stderr,
            wasi,
        }
    }

    /// The guest running as `run`, its output captured.
    pub fn running(self, run: impl Future<Output = Outcome> + Send + 'static) -> Running {
        Running {
            name: self.name,
            handle: tokio::spawn(run),
            stdout: self.stdout,
            stderr: self.stderr,
        }
    }
}

/// [`spawn`] with the environment variables `env`.
pub fn spawn_env(path: &str, args: &[&str], env: &[(&str, &str)], sockets: WasockCtx) -> Running {
    let mut io = GuestIo::new(path, args, env);
    let state = StoreState::new(io.wasi.build(), sockets);
    let (linker, component) = (linker(), io.component.clone());
    io.running(async move {
        let mut store = Store::new(engine(), state);
        wasock::time_slices(&mut store);
        match wasock::run_command(&mut store, &linker, &component).await {
            Ok(code) => Outcome::Exit(code),
            Err(RunError::Trap(e)) => Outcome::Trap(format!("{e:?}")),
            Err(e) => Outcome::Error(format!("{e}\n{e:?}")),
        }
    })
}

impl Running {
    /// What the guest has written to stdout so far.
    pub fn stdout_now(&self) -> String {
        String::from_utf8_lossy(&self.stdout.contents()).into_owned()
    }

    /// Waits (bounded) for a stdout line starting with `prefix` and returns the rest of
    /// that line. Returns `None` on timeout or when the guest ended without printing it.
    pub async fn wait_for_line(&self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let out = self.stdout_now();
            if let Some(line) = out.lines().find(|l| l.starts_with(prefix)) {
                return Some(line[prefix.len()..].to_string());
            }
            if self.handle.is_finished() || tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (bounded by [`RUN_TIMEOUT`]) for the guest to end.
    pub async fn finish(mut self) -> Run {
        let result = match tokio::time::timeout(RUN_TIMEOUT, &mut self.handle).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join)) => Outcome::Error(format!("the task running the guest failed: {join}")),
            Err(_) => {
                self.handle.abort();
                Outcome::Error(format!("the guest did not finish within {RUN_TIMEOUT:?}"))
            }
        };
        Run {
            name: self.name,
            result,
            stdout: String::from_utf8_lossy(&self.stdout.contents()).into_owned(),
            stderr: String::from_utf8_lossy(&self.stderr.contents()).into_owned(),
        }
    }
}

/// Runs the guest at `path` to completion.
pub async fn run(path: &str, args: &[&str], sockets: WasockCtx) -> Run {
    spawn(path, args, sockets).finish().await
}

/// How a guest run ended.
#[derive(Debug)]
pub enum Outcome {
    /// The guest exited (0 for a normal return).
    Exit(i32),
    /// The guest trapped; the error chain as text.
    Trap(String),
    /// It could not run (instantiation failed, not a command) or the harness gave up.
    Error(String),
}

/// The outcome of one guest run.
pub struct Run {
    pub name: String,
    pub result: Outcome,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "guest `{}`", self.name)?;
        match &self.result {
            Outcome::Exit(code) => writeln!(f, "exit code: {code}")?,
            Outcome::Trap(e) => writeln!(f, "TRAP: {e}")?,
            Outcome::Error(e) => writeln!(f, "ERROR: {e}")?,
        }
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        writeln!(f, "--- stderr ---\n{}", self.stderr)
    }
}

impl Run {
    /// Asserts exit code 0 and the summary line `NAME: N checks passed` with N > 0 (a guest
    /// that ran no check proves nothing); returns N.
    #[track_caller]
    pub fn assert_passed(&self) -> u32 {
        assert!(
            matches!(self.result, Outcome::Exit(0)),
            "{} did not exit with 0\n{self}",
            self.name
        );
        match self.summary_count() {
            Some(0) => panic!("{} ran no checks\n{self}", self.name),
            Some(n) => {
                println!("{}: {n} checks passed", self.name);
                n
            }
            None => panic!("no `{}: N checks passed` line\n{self}", self.name),
        }
    }

    /// [`Run::assert_passed`], and N must be the guest's count in [`EXPECTED_CHECKS`]
    /// (see [`expected_checks`]).
    #[track_caller]
    pub fn assert_passed_count(&self) -> u32 {
        self.assert_passed_count_with(localhost_addresses())
    }

    /// [`Run::assert_passed_count`] for a host whose `localhost` has `localhost` (IPv4, IPv6)
    /// addresses: the virtual network's has one of each, whatever this machine's hosts file says.
    #[track_caller]
    pub fn assert_passed_count_with(&self, localhost: (u32, u32)) -> u32 {
        let n = self.assert_passed();
        let want = expected_checks_with(&self.name, localhost);
        assert_eq!(
            n,
            want,
            "{} ran {n} checks, {want} expected: if checks were added or removed on purpose, \
             set its entry in EXPECTED_CHECKS (tests/common/mod.rs) to {}\n{self}",
            self.name,
            i64::from(n) - i64::from(want - base_count(&self.name)),
        );
        n
    }

    /// N of the summary line `NAME: N checks passed`, if there is one.
    pub fn summary_count(&self) -> Option<u32> {
        let prefix = format!("{}: ", self.name);
        self.stdout.lines().find_map(|l| {
            l.strip_prefix(&prefix)?
                .strip_suffix(" checks passed")?
                .parse()
                .ok()
        })
    }

    /// Asserts exit code 0 (for guests with their own kind of summary).
    #[track_caller]
    pub fn assert_exit_zero(&self) {
        assert!(
            matches!(self.result, Outcome::Exit(0)),
            "{} did not exit with 0\n{self}",
            self.name
        );
    }

    /// Asserts the run ended in a trap (not an exit, not a failure to run); returns the
    /// error chain as text.
    #[track_caller]
    pub fn assert_trapped(&self) -> String {
        match &self.result {
            Outcome::Trap(e) => e.clone(),
            _ => panic!("{} did not end in a trap\n{self}", self.name),
        }
    }
}

/// How many checks each guest runs in this suite: its summary line must say exactly this
/// ([`Run::assert_passed_count`]). When a guest gains or loses checks on purpose, update its
/// entry; the failure message says the new number. A guest whose count depends on its
/// arguments has the count for the arguments the suite passes it; one whose count depends
/// on the machine has the machine-independent part here and the rest in
/// [`expected_checks`]. (No guest skips its IPv6 checks when `::1` is missing: they fail
/// instead, so IPv6 does not change a count.)
pub const EXPECTED_CHECKS: &[(&str, u32)] = &[
    ("raw-tcp", 439),
    ("raw-udp", 219),
    ("raw-lookup", 42),
    ("raw-drop-order", 121),
    ("raw-poll", 68),
    // WASI 0.3; on the reference, the checks tests/p3_reference.rs lists as its deviations fail
    ("raw-p3-tcp", 434),
    ("raw-p3-udp", 312),
    ("raw-p3-lookup", 15),
    // every scenario (no arguments)
    ("raw-p3-abuse", 108),
    // with any HOST:PORT and KIB given as an IP address
    ("p3-echo-client", 9),
    ("udp-v021", 36),
    ("tcp-v020", 20),
    ("std-udp-echo", 99),
    // with `50` (tests/std_guests.rs)
    ("std-many", 355),
    ("std-localhost", 15),
    ("std-ipv6", 30),
    // with the three messages of tests/std_guests.rs and tests/differential.rs
    ("std-echo-client", 18),
    // with any arguments
    ("tokio-echo", 19),
];

/// The machine-independent count of `guest` in [`EXPECTED_CHECKS`].
#[track_caller]
fn base_count(guest: &str) -> u32 {
    match EXPECTED_CHECKS.iter().find(|(g, _)| *g == guest) {
        Some((_, n)) => *n,
        None => panic!("guest `{guest}` has no entry in EXPECTED_CHECKS (tests/common/mod.rs)"),
    }
}

/// The number of checks `guest` runs on this machine: [`EXPECTED_CHECKS`], plus the checks
/// the lookup guests repeat for every address `localhost` has here (the hosts file decides:
/// `127.0.0.1`, often `::1` too). Per address, `std-localhost` checks loopback and the port,
/// and for an IPv6 address that it is not IPv4-mapped; `raw-lookup` checks loopback and
/// not-mapped for `localhost` and again for `bücher.localhost` (wasock gives it the
/// addresses of `localhost`).
#[track_caller]
pub fn expected_checks(guest: &str) -> u32 {
    expected_checks_with(guest, localhost_addresses())
}

/// [`expected_checks`] where `localhost` has `v4` IPv4 and `v6` IPv6 addresses.
#[track_caller]
pub fn expected_checks_with(guest: &str, (v4, v6): (u32, u32)) -> u32 {
    let base = base_count(guest);
    match guest {
        "std-localhost" => base + 2 * (v4 + v6) + v6,
        "raw-lookup" => base + 2 * 2 * (v4 + v6),
        _ => base,
    }
}

/// How many IPv4 and IPv6 addresses `localhost` resolves to on this machine.
pub fn localhost_addresses() -> (u32, u32) {
    use std::net::ToSocketAddrs;
    let mut addrs: Vec<_> = ("localhost", 0)
        .to_socket_addrs()
        .map(|a| a.map(|a| a.ip()).collect())
        .unwrap_or_default();
    addrs.sort();
    addrs.dedup();
    let v4 = addrs.iter().filter(|a| a.is_ipv4()).count() as u32;
    (v4, addrs.len() as u32 - v4)
}

/// The number of fds this process has open now (`/proc/self/fd`).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits (at most `max`) until the fd count is at or below `target`, or, with
/// `target == usize::MAX`, until it stops changing for 100 ms; returns the count.
pub async fn settle_fds(target: usize, max: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + max;
    let mut last = fd_count();
    let mut stable_since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = fd_count();
        if now != last {
            stable_since = tokio::time::Instant::now();
            last = now;
        }
        let done = if target == usize::MAX {
            stable_since.elapsed() >= Duration::from_millis(100)
        } else {
            now <= target
        };
        if done || tokio::time::Instant::now() >= deadline {
            return now;
        }
    }
}
