//! `wasock run`: a component with full WASI and wasock's sockets under the operator's policy.

use crate::fail;
use crate::limit_args::LimitArgs;
use crate::policy_args::PolicyArgs;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use wasmtime::component::Linker;
use wasmtime::{Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx};
use wasock::audit::{AuditSink, JsonLines, PolicyMode};
use wasock::{RunError, StoreState, WasockCtx};

/// Exit code when the guest traps (as a process killed by SIGABRT reports it).
const TRAP_EXIT: u8 = 134;

#[derive(Args)]
#[command(
    after_help = "Exit status: the guest's own (WASI's exit carries ok or err: 0 or \
                        1); 134 when the guest traps; 2 when wasock cannot run it (one line on \
                        stderr says why)."
)]
pub(crate) struct RunArgs {
    /// The component to run: a binary .wasm component, or one in WebAssembly text (.wat)
    component: PathBuf,
    /// Arguments for the guest, after `--` (the guest's own name comes first, as argv[0])
    #[arg(last = true)]
    args: Vec<String>,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Write one JSON line per policy decision to FILE, appended (`-`: stderr)
    #[arg(long, value_name = "FILE", help_heading = "Audit")]
    audit: Option<PathBuf>,
    /// `enforce` denials, or only `audit` them: allow everything and record `would-deny` for
    /// what enforce mode would refuse
    #[arg(
        long,
        value_name = "MODE",
        default_value = "enforce",
        help_heading = "Audit"
    )]
    policy_mode: Mode,
    /// Print the instance's socket counters to stderr when the guest exits
    #[arg(long, help_heading = "Audit")]
    stats: bool,
    /// Preopen a host directory, read-write: HOST or HOST::GUEST [repeatable]
    #[arg(long = "dir", value_name = "HOST[::GUEST]", help_heading = "Guest")]
    dirs: Vec<String>,
    /// Set a guest environment variable: KEY=VALUE, or KEY for the host's value [repeatable]
    #[arg(long = "env", value_name = "KEY[=VALUE]", help_heading = "Guest")]
    envs: Vec<String>,
    /// Pass the host's whole environment to the guest (default: none of it)
    #[arg(long, help_heading = "Guest")]
    inherit_env: bool,
    /// Where the guest's sockets live: `os` (the host's network), or `virtual` (a fresh virtual
    /// network: its own loopback and address, lookups from its directory, no host socket)
    #[arg(
        long,
        value_name = "NETWORK",
        default_value = "os",
        help_heading = "Guest"
    )]
    network: NetworkKind,
    /// Compile without the on-disk compilation cache (default: cache in the user's cache dir)
    #[arg(long, help_heading = "Guest")]
    no_cache: bool,
    /// Tell a profiler the guest's compiled functions: `perfmap` writes /tmp/perf-PID.map, which
    /// `perf report` reads to name them
    #[arg(long, value_name = "STRATEGY", help_heading = "Guest")]
    profile: Option<Profile>,
}

/// `--profile`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Profile {
    Perfmap,
}

/// `--network`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum NetworkKind {
    Os,
    Virtual,
}

/// `--policy-mode`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Mode {
    Enforce,
    Audit,
}

pub(crate) async fn run(args: RunArgs) -> ExitCode {
    let path = &args.component;
    // Flags first: a mistake in a rule or limit is reported before any file is read.
    let sockets = match sockets_ctx(&args) {
        Ok(s) => s,
        Err(msg) => return fail(&msg),
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return fail(&format!("cannot read {path:?}: {e}")),
    };
    let format = match Format::of(&bytes) {
        Ok(format) => format,
        Err(msg) => return fail(&format!("{path:?} {msg}")),
    };
    let mut config = wasock::engine_config();
    // Every guest runs in time slices (see `wasock::time_slices`).
    config.epoch_interruption(true);
    if let Some(Profile::Perfmap) = args.profile {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if !args.no_cache {
        // A cache that cannot be set up only costs start-up time: run without it.
        if let Ok(cache) = wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
            config.cache(Some(cache));
        }
    }
    // A 0.2 command runs on an engine without concurrency support: cheaper host calls.
    let (engine, component) = match wasock::compile_component(&config, &bytes) {
        Ok(compiled) => compiled,
        Err(wasock::CompileError::Engine(e)) => {
            return fail(&format!("cannot create the engine: {}", root(&e)));
        }
        Err(wasock::CompileError::Component(e)) => {
            return fail(&format!("{path:?} {}", format.invalid(&e)));
        }
        Err(e) => return fail(&e.to_string()),
    };
    let mut linker = Linker::<StoreState>::new(&engine);
    if let Err(e) = wasock::add_wasi_to_linker(&mut linker) {
        return fail(&format!("cannot set up WASI: {}", chain(&e)));
    }
    let wasi = match wasi_ctx(&args) {
        Ok(w) => w,
        Err(msg) => return fail(&msg),
    };
    let counters = sockets.counters();
    let state = StoreState::new(wasi, sockets);
    let mut store = Store::new(&engine, state);
    wasock::time_slices(&mut store);
    let outcome = wasock::run_command(&mut store, &linker, &component).await;
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
            eprintln!(
                "wasock: error: {path:?} trapped: {}",
                crate::one_line(&what)
            );
            ExitCode::from(TRAP_EXIT)
        }
        Err(RunError::NotACommand(e)) => fail(&format!(
            "{path:?} is not a command (it must export wasi:cli/run): {}",
            root(&e)
        )),
        Err(RunError::Instantiate(e)) => fail(&format!("cannot start {path:?}: {}", chain(&e))),
        // A kind of failure a later wasock adds: its own words.
        Err(e) => fail(&format!("cannot run {path:?}: {e}")),
    }
}

/// What the component file holds, judged by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Binary WebAssembly that is not a core module (a component, valid or not).
    Binary,
    /// WebAssembly text: Wasmtime parses it.
    Text,
}

impl Format {
    /// The format, or the rest of a sentence about the file saying why it cannot be one.
    fn of(bytes: &[u8]) -> Result<Format, &'static str> {
        if bytes.starts_with(b"\0asm") {
            return match is_core_module(bytes) {
                true => Err(
                    "is a core WebAssembly module, not a component: build it for \
                             wasm32-wasip2 (or wrap it with `wasm-tools component new`)",
                ),
                false => Ok(Format::Binary),
            };
        }
        if bytes.is_empty() {
            return Err("is empty: expected a WebAssembly component");
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Err(
                "is not a WebAssembly component: it does not start with the \
                        WebAssembly magic bytes (\\0asm)",
            );
        };
        match wat_opening(text) {
            Some("module") => Err("is a core WebAssembly module in the text format, not a \
                                   component: a component starts with `(component`"),
            // `(component`, or another form Wasmtime's text parser reads: it judges.
            Some(_) => Ok(Format::Text),
            None => Err(
                "is not a WebAssembly component (it looks like text): expected a \
                         binary .wasm component, or WebAssembly text starting with `(component`",
            ),
        }
    }

    /// The rest of a sentence about the file, for a component Wasmtime refused.
    fn invalid(self, e: &wasmtime::Error) -> String {
        match self {
            Format::Binary => format!("is not a valid component: {}", root(e)),
            Format::Text => format!(
                "is not a valid component (read as WebAssembly text): {}",
                wat_error(e)
            ),
        }
    }
}

/// The keyword after the opening `(` of WebAssembly text (`component`, `module`, or `""` when a
/// block comment or nothing simple follows), past blank space and `;;` line comments; `None`
/// when the text does not open with `(`.
fn wat_opening(text: &str) -> Option<&str> {
    let mut rest = text.trim_start_matches('\u{feff}');
    loop {
        rest = rest.trim_start();
        match rest.strip_prefix(";;") {
            Some(comment) => rest = comment.split_once('\n').map_or("", |(_, next)| next),
            None => break,
        }
    }
    let inner = rest.strip_prefix('(')?.trim_start();
    let end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(inner.len());
    Some(&inner[..end])
}

/// A text-format error on one line: its message and where (`expected `)`, at line 3 column 7`).
fn wat_error(e: &wasmtime::Error) -> String {
    let full = e.chain().last().map(|c| c.to_string()).unwrap_or_default();
    let first = full.lines().next().unwrap_or_default().trim().to_string();
    let at = full
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .and_then(|loc| {
            let mut parts = loc.rsplitn(3, ':');
            let column = parts.next()?.parse::<u32>().ok()?;
            let line = parts.next()?.parse::<u32>().ok()?;
            Some(format!(", at line {line} column {column}"))
        });
    format!("{first}{}", at.unwrap_or_default())
}

/// The sockets context from the policy, limit and audit flags; a one-line error otherwise.
fn sockets_ctx(args: &RunArgs) -> Result<WasockCtx, String> {
    let mut sockets = args.policy.builder()?;
    sockets.limits(args.limits.limits()?);
    let instance = args
        .component
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    let instance = instance.unwrap_or_else(|| "guest".into());
    if let NetworkKind::Virtual = args.network {
        // The host is named after the component where that is a valid host name.
        let net = wasock::VirtualNetwork::new();
        let host = net
            .attach(&instance)
            .or_else(|_| net.attach("guest"))
            .map_err(|e| format!("--network virtual: {e}"))?;
        sockets.virtual_host(host);
    }
    sockets.instance_name(instance);
    if let Mode::Audit = args.policy_mode {
        sockets.policy_mode(PolicyMode::Audit);
    }
    if let Some(path) = args.audit.as_deref() {
        sockets.audit(audit_sink(path)?);
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
        .map_err(|e| format!("--audit {path:?}: cannot open: {e}"))?;
    Ok(Arc::new(JsonLines::new(file)))
}

/// `--stats`: one line a counter group, then the busiest sockets, on stderr.
fn print_stats(counters: &wasock::limits::Counters) {
    for line in counters.report() {
        eprintln!("wasock: stats: {line}");
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
fn wasi_ctx(args: &RunArgs) -> Result<WasiCtx, String> {
    let mut b = WasiCtx::builder();
    b.inherit_stdio();
    b.arg(args.component.display().to_string());
    b.args(&args.args);
    if args.inherit_env {
        b.inherit_env();
    }
    for kv in &args.envs {
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (kv.as_str(), None),
        };
        if key.is_empty() {
            return Err(format!(
                "--env {kv:?}: expected KEY=VALUE or KEY, with a variable name as KEY"
            ));
        }
        match value {
            Some(v) => b.env(key, v),
            None => match std::env::var(key) {
                Ok(v) => b.env(key, v),
                Err(std::env::VarError::NotPresent) => {
                    return Err(format!(
                        "--env {kv:?}: {key:?} is not set in the host environment (give \
                         KEY=VALUE to set it)"
                    ));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(format!(
                        "--env {kv:?}: the host's value of {key:?} is not valid UTF-8"
                    ));
                }
            },
        };
    }
    for dir in &args.dirs {
        let (host, guest) = dir.split_once("::").unwrap_or((dir, dir));
        if host.is_empty() || guest.is_empty() {
            return Err(format!(
                "--dir {dir:?}: expected HOST or HOST::GUEST, with both directories named"
            ));
        }
        b.preopened_dir(host, guest, FsPerms::ReadWrite)
            .map_err(|e| format!("--dir {dir:?}: cannot open the host directory {host:?}: {e}"))?;
    }
    Ok(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_judged_by_the_first_bytes() {
        let error = |bytes: &[u8]| Format::of(bytes).unwrap_err();
        assert_eq!(Format::of(b"\0asm\x0d\0\x01\0"), Ok(Format::Binary));
        assert!(error(b"\0asm\x01\0\0\0").contains("core WebAssembly module, not"));
        assert_eq!(Format::of(b"(component)"), Ok(Format::Text));
        assert_eq!(
            Format::of(b"\n  ;; a comment\n(component)"),
            Ok(Format::Text)
        );
        assert_eq!(Format::of(b"(; block ;) (component)"), Ok(Format::Text));
        assert_eq!(Format::of(b"(modules)"), Ok(Format::Text));
        assert!(error(b"(module)").contains("core WebAssembly module in the text format"));
        assert!(error(b" ( module $m (func))").contains("core WebAssembly module in the text"));
        assert!(error(b"hello, world\n").contains("it looks like text"));
        assert!(error(b";; only a comment").contains("it looks like text"));
        assert!(error(b"").contains("is empty"));
        assert!(error(b"\x7fELF\x02\x01\xff").contains("magic bytes (\\0asm)"));
    }
}
