//! `wasock run`: a component with full WASI and wasock's sockets under the operator's policy.

use crate::fail;
use crate::limit_args::LimitArgs;
use crate::policy_args::PolicyArgs;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx};
use wasock::audit::{AuditSink, JsonLines, PolicyMode};
use wasock::{RunError, StoreState, WasockCtx};

/// Exit code when the guest traps (as a process killed by SIGABRT reports it).
const TRAP_EXIT: u8 = 134;

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Write one JSON line per policy decision to FILE (`-`: stderr).
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// `enforce` denials (default), or only `audit` them: allow everything and record
    /// `would-deny` for what enforce mode would refuse.
    #[arg(long, value_name = "MODE", default_value = "enforce")]
    policy_mode: Mode,
    /// Preopen a host directory: HOST_DIR or HOST_DIR::GUEST_DIR.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,
    /// Set a guest environment variable: KEY=VALUE, or KEY to pass the host's value.
    #[arg(long = "env", value_name = "KEY[=VALUE]")]
    envs: Vec<String>,
    /// Pass the host's whole environment to the guest.
    #[arg(long)]
    inherit_env: bool,
    /// Print the instance's socket counters to stderr when the guest exits.
    #[arg(long)]
    stats: bool,
    /// Compile without the on-disk compilation cache (default: cache in the user's cache dir).
    #[arg(long)]
    no_cache: bool,
    /// The component to run.
    component: PathBuf,
    /// Arguments for the guest (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
}

/// `--policy-mode`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Mode {
    Enforce,
    Audit,
}

pub(crate) async fn run(args: RunArgs) -> ExitCode {
    let path = args.component.display().to_string();
    // Flags first: a mistake in a rule or limit is reported before any file is read.
    let sockets = match sockets_ctx(&args) {
        Ok(s) => s,
        Err(msg) => return fail(&msg),
    };
    let bytes = match std::fs::read(&args.component) {
        Ok(b) => b,
        Err(e) => return fail(&format!("cannot read `{path}`: {e}")),
    };
    if is_core_module(&bytes) {
        return fail(&format!(
            "`{path}` is a core WebAssembly module, not a component: build it for wasm32-wasip2 \
             (or wrap it with `wasm-tools component new`)"
        ));
    }
    let mut config = wasock::engine_config();
    if !args.no_cache {
        // A cache that cannot be set up only costs start-up time: run without it.
        if let Ok(cache) = wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
            config.cache(Some(cache));
        }
    }
    let engine = match Engine::new(&config) {
        Ok(e) => e,
        Err(e) => return fail(&format!("cannot create the engine: {e}")),
    };
    let component = match Component::new(&engine, &bytes) {
        Ok(c) => c,
        Err(e) => return fail(&format!("`{path}` is not a valid component: {}", root(&e))),
    };
    let mut linker = Linker::<StoreState>::new(&engine);
    if let Err(e) = wasock::add_wasi_to_linker(&mut linker) {
        return fail(&format!("cannot set up WASI: {e}"));
    }
    let wasi = match wasi_ctx(&args, &path) {
        Ok(w) => w,
        Err(msg) => return fail(&msg),
    };
    let counters = sockets.counters();
    let state = StoreState::new(wasi, sockets);
    let outcome = wasock::run_command(&engine, &linker, &component, state).await;
    if args.stats {
        print_stats(&counters);
    }
    match outcome {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(RunError::Trap(e)) => {
            let what = match e.downcast_ref::<Trap>() {
                Some(trap) => trap.to_string(),
                None => root(&e),
            };
            eprintln!("wasock: error: `{path}` trapped: {what}");
            ExitCode::from(TRAP_EXIT)
        }
        Err(RunError::NotACommand(e)) => fail(&format!(
            "`{path}` is not a command (it must export wasi:cli/run): {}",
            root(&e)
        )),
        Err(RunError::Instantiate(e)) => fail(&format!("cannot start `{path}`: {}", chain(&e))),
    }
}

/// The sockets context from the policy, limit and audit flags; a one-line error otherwise.
fn sockets_ctx(args: &RunArgs) -> Result<WasockCtx, String> {
    let mut sockets = args.policy.builder()?.limits(args.limits.limits()?);
    let instance = args
        .component
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    sockets = sockets.instance_name(instance.unwrap_or_else(|| "guest".into()));
    if let Mode::Audit = args.policy_mode {
        sockets = sockets.policy_mode(PolicyMode::Audit);
    }
    if let Some(path) = args.audit.as_deref() {
        sockets = sockets.audit_shared(audit_sink(path)?);
    }
    Ok(sockets.build())
}

/// `--audit FILE`: JSON lines appended to FILE, or written to stderr for `-`.
fn audit_sink(path: &Path) -> Result<Arc<dyn AuditSink>, String> {
    if path == Path::new("-") {
        return Ok(Arc::new(JsonLines::new(std::io::stderr())));
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("--audit {}: cannot open: {e}", path.display()))?;
    Ok(Arc::new(JsonLines::new(file)))
}

/// `--stats`: one line a counter group, then the busiest sockets, on stderr.
fn print_stats(counters: &wasock::limits::Counters) {
    let s = counters.stats();
    eprintln!(
        "wasock: stats: sockets created {} (peak {} open at once, {} still open)",
        s.sockets_created, s.sockets_peak, s.sockets_open
    );
    eprintln!(
        "wasock: stats: bytes in {} out {} (tcp and udp payloads)",
        s.bytes_in, s.bytes_out
    );
    eprintln!(
        "wasock: stats: udp datagrams in {} out {}",
        s.datagrams_in, s.datagrams_out
    );
    let reasons: Vec<String> = s
        .denied_by
        .iter()
        .map(|(why, n)| format!("{why} {n}"))
        .collect();
    match reasons.is_empty() {
        true => eprintln!("wasock: stats: operations denied 0"),
        false => eprintln!(
            "wasock: stats: operations denied {} ({})",
            s.denials,
            reasons.join(", ")
        ),
    }
    for sock in counters.busiest() {
        let addr = |a: Option<std::net::SocketAddr>| a.map_or("-".to_string(), |a| a.to_string());
        eprintln!(
            "wasock: stats: socket #{} {} {} -> {}: bytes in {} out {}, datagrams in {} out {}{}",
            sock.id,
            sock.protocol,
            addr(sock.local),
            addr(sock.remote),
            sock.bytes_in,
            sock.bytes_out,
            sock.datagrams_in,
            sock.datagrams_out,
            if sock.open { " (open)" } else { "" }
        );
    }
}

/// A binary core module: `\0asm` then version 1 (a component has layer 1 in bytes 6..8).
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.get(..8) == Some(b"\0asm\x01\0\0\0")
}

/// Every cause of an error, first lines only, on one line (a link error names the import in an
/// outer cause and the missing item in the inner one).
fn chain(e: &wasmtime::Error) -> String {
    let lines: Vec<String> = e.chain().map(first_line).collect();
    lines.join(": ")
}

/// The first line of an error's innermost cause: the line that says what went wrong.
fn root(e: &wasmtime::Error) -> String {
    e.chain().last().map(first_line).unwrap_or_default()
}

/// The first line of one cause's message (some span several lines).
fn first_line(cause: &(dyn std::error::Error + 'static)) -> String {
    cause
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// WASI context: inherited stdio, the component's name and the given args, env and preopens.
fn wasi_ctx(args: &RunArgs, path: &str) -> Result<WasiCtx, String> {
    let mut b = WasiCtx::builder();
    b.inherit_stdio();
    b.arg(path);
    b.args(&args.args);
    if args.inherit_env {
        b.inherit_env();
    }
    for kv in &args.envs {
        match kv.split_once('=') {
            Some((k, v)) => b.env(k, v),
            None => match std::env::var(kv) {
                Ok(v) => b.env(kv, v),
                Err(_) => return Err(format!("--env {kv}: not set in the host environment")),
            },
        };
    }
    for dir in &args.dirs {
        let (host, guest) = dir.split_once("::").unwrap_or((dir, dir));
        b.preopened_dir(host, guest, FsPerms::ReadWrite)
            .map_err(|e| format!("--dir {dir}: cannot open `{host}`: {e}"))?;
    }
    Ok(b.build())
}
