//! wasock-bench: the same guest on wasock, on stock `wasmtime-wasi`, and natively, side by side.
//!
//! ```text
//! cargo run --release -p wasock-bench -- [--quick] [--reps N] [--bulk-bytes SIZE] [WORKLOAD...]
//! ```
//!
//! # What it measures
//!
//! Every workload is one subcommand of one ordinary `std::net` program, `guests/bench`
//! (`bench-guest`), which the harness builds twice from the same source, in release: for
//! `wasm32-wasip2` and for the host (into `target/bench-guests`). Each workload runs three ways
//! in one harness run:
//!
//! 1. **wasock**: the component on `wasock::add_wasi_to_linker` + `wasock::run_command`, all
//!    network allowed, in this process;
//! 2. **wasmtime-wasi**: the same compiled component on stock `wasmtime_wasi::p2::add_to_linker_async`
//!    (`inherit_network`, TCP, UDP and lookups allowed), in this process, on the same engine;
//! 3. **native**: the host build as a child process.
//!
//! What std cannot express (batched UDP `send` and `receive`, `resolve-addresses` of an IP
//! literal) is a second program, `guests/bench-raw`, on the raw `wasi:sockets` bindings: built for
//! `wasm32-wasip2` only, so its tables have no native column. The `p3-*` workloads run a third,
//! `guests/bench-p3`: the TCP workloads on `wasi:sockets@0.3.0` streams (a 0.3 command, wasm
//! only), on wasock and on stock `wasmtime-wasi`'s 0.3 sockets, next to the bench guest on
//! wasock and natively; four columns, alternating in that order. `tcp-pair` and the guest ↔ guest
//! half of `udp-raw` run two instances at once, as tasks of one tokio runtime; `scale` holds
//! 10 000 idle connections in one instance and reads the host's heap growth from a counting
//! global allocator (`heap.rs`).
//!
//! The HTTP workloads (`http.rs`, with `wrk.rs` driving `wrk`) serve instead of measuring from
//! inside: `http-tokio`, `http` and `http-batch` run `guests/bench-http` (axum on hyper; tokio,
//! wstd's executor or a batch-polling one on wasm, tokio natively) and `load` runs `raw-http-server` (guests/raw,
//! wasm only), each under `wrk` on loopback; rates and latencies are wrk's.
//!
//! Peers (sinks, sources, echo servers) are native threads of the harness on loopback, or native
//! child processes where they hold many sockets. Each component is compiled once per harness
//! run, before any timing. Runs alternate
//! (wasock, wasmtime-wasi, native, wasock, …) for `--reps` repetitions (default 5), and each
//! cell is the median with min–max over the repetitions.
//!
//! Rates and latencies come from the guest's own clock around its work loop. CPU per unit of
//! work is the CPU time of the run with N units minus the median of runs that do everything
//! but the loop (0 units), divided by N, so that start-up and instantiation cancel out. The
//! CPU time of a run is `getrusage(RUSAGE_SELF)` around it for in-process runs, minus the peer
//! thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`), and `RUSAGE_CHILDREN` around the child
//! for native runs. The harness also records how busy the rest of the machine was.
//!
//! A run that fails (a guest error, or a stall past the guest's 30 s read timeout) is named in
//! its table and left out of the cells; the harness goes on with the next run.
//!
//! Results go to stdout and, for full runs, to `BENCHMARKS.md` at the repository root
//! (`--out` elsewhere; `--quick` runs write only with `--out`). Every loop is bounded in count
//! and time; everything stays on 127.0.0.1.

mod child;
mod cpu;
mod guests;
mod heap;
mod http;
mod peer;
mod report;
mod runner;
mod stats;
mod workloads;
mod wrk;

use anyhow::{Context, Result, bail};
use clap::Parser;
use clap::builder::PossibleValuesParser;
use report::Table;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime};
use workloads::{Ctx, Params};

/// One workload: its name (the command-line word), whether it runs the raw-binding guest
/// (`guests/bench-raw`) or the 0.3 bench guest (`guests/bench-p3`), and what measures it.
struct Workload {
    name: &'static str,
    raw: bool,
    p3: bool,
    run: fn(&Ctx<'_>) -> Result<Table>,
}

impl Workload {
    /// A workload of the bench guest (and peers, or other guests it builds itself).
    const fn new(name: &'static str, run: fn(&Ctx<'_>) -> Result<Table>) -> Workload {
        Workload {
            name,
            raw: false,
            p3: false,
            run,
        }
    }

    /// A workload of the raw-binding guest, which is then built and compiled for the run.
    const fn raw(name: &'static str, run: fn(&Ctx<'_>) -> Result<Table>) -> Workload {
        Workload {
            name,
            raw: true,
            p3: false,
            run,
        }
    }

    /// A workload of the 0.3 bench guest (and the bench guest), which is then built and
    /// compiled for the run.
    const fn p3(name: &'static str, run: fn(&Ctx<'_>) -> Result<Table>) -> Workload {
        Workload {
            name,
            raw: false,
            p3: true,
            run,
        }
    }
}

/// Every workload, in the order a full run takes them: the one list of their names.
const WORKLOADS: &[Workload] = &[
    Workload::new("tcp-send", workloads::tcp_bulk::send),
    Workload::new("tcp-recv", workloads::tcp_bulk::recv),
    Workload::new("tcp-rr", workloads::tcp_rr::run),
    Workload::new("tcp-churn", workloads::tcp_churn::run),
    Workload::new("udp-send", workloads::udp::run),
    Workload::new("tcp-pair", workloads::tcp_pair::run),
    Workload::raw("udp-raw", workloads::udp_raw::run),
    Workload::new("lookup", workloads::lookup::run),
    Workload::raw("lookup-raw", workloads::lookup_raw::run),
    Workload::new("scale", workloads::scale::run),
    Workload::new("startup", workloads::startup::run),
    Workload::new("http-tokio", |ctx| http::run(ctx, http::Server::Tokio)),
    Workload::new("http", |ctx| http::run(ctx, http::Server::Wstd)),
    Workload::new("http-batch", |ctx| http::run(ctx, http::Server::Batch)),
    Workload::new("load", |ctx| http::run(ctx, http::Server::Raw)),
    Workload::p3("p3-tcp-send", workloads::p3_tcp::send),
    Workload::p3("p3-tcp-recv", workloads::p3_tcp::recv),
    Workload::p3("p3-tcp-rr", workloads::p3_tcp::rr),
    Workload::p3("p3-tcp-churn", workloads::p3_tcp::churn),
];

#[derive(Parser)]
#[command(
    name = "wasock-bench",
    about = "The same guest on wasock, on wasmtime-wasi and natively; writes BENCHMARKS.md"
)]
struct Args {
    /// Small sizes for a smoke test (does not write BENCHMARKS.md unless --out is given).
    #[arg(long)]
    quick: bool,
    /// Repetitions of each mode (at least 5 for a table worth publishing).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Bytes per TCP bulk run, e.g. 1G, 256M, 65536 (binary units). Default 1G, quick 64M.
    #[arg(long, value_parser = parse_size)]
    bulk_bytes: Option<u64>,
    /// Where to write the markdown report.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A sentence for the report about the machine's state (e.g. what else was running).
    #[arg(long)]
    note: Option<String>,
    /// The `wasock` CLI for the start-up workload [default: target/release/wasock].
    #[arg(long)]
    wasock_cli: Option<PathBuf>,
    /// The tokio runtime of the in-process hosts: `current-thread` for both, as in the `wasock`
    /// CLI; `multi-thread` for both (the guest driven from `block_on`, as `wasmtime run` does);
    /// or `cli`, each host on its own CLI's (wasock current-thread, `wasmtime-wasi` multi).
    #[arg(long, value_enum, default_value_t = runner::Flavor::CurrentThread)]
    runtime: runner::Flavor,
    /// The engine of the HTTP workloads' guests: `as-needed`, as `wasock run` picks it (a 0.2
    /// guest without Wasmtime's concurrency support), or `on`, Wasmtime's default (to measure
    /// what that support costs)
    #[arg(long, value_enum, default_value_t = runner::Concurrency::AsNeeded)]
    http_concurrency: runner::Concurrency,
    /// Workloads to run (default: all, in this order)
    #[arg(value_parser = PossibleValuesParser::new(WORKLOADS.iter().map(|w| w.name)))]
    workloads: Vec<String>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'G' | b'g') => (&s[..s.len() - 1], 30),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 20),
        Some(b'K' | b'k') => (&s[..s.len() - 1], 10),
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|e| format!("`{s}` is not a size: {e}"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasock-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    if args.reps == 0 {
        bail!("--reps must be at least 1");
    }
    // In the order given; clap admits only the names of WORKLOADS.
    let selected: Vec<&Workload> = match args.workloads.is_empty() {
        true => WORKLOADS.iter().collect(),
        false => args
            .workloads
            .iter()
            .filter_map(|a| WORKLOADS.iter().find(|w| w.name == a))
            .collect(),
    };
    let repo = repo_root()?;
    let cli = args
        .wasock_cli
        .clone()
        .unwrap_or_else(|| repo.join("target/release/wasock"));
    let mut params = Params::new(args.quick, args.reps, args.bulk_bytes, cli);
    params.http_concurrency = args.http_concurrency;

    eprintln!("wasock-bench: building the bench guest (wasm32-wasip2 and host)…");
    let guests = guests::build(&repo)?;
    eprintln!("wasock-bench: compiling {}…", guests.wasm.display());
    let runner = runner::Runner::new(&guests.wasm, &guests.native, args.runtime)?;
    let raw = if selected.iter().any(|w| w.raw) {
        eprintln!("wasock-bench: building and compiling the raw-binding guest (wasm32-wasip2)…");
        Some(runner.compile(&guests::build_raw(&repo)?)?)
    } else {
        None
    };
    let p3_wasm = match selected.iter().any(|w| w.p3) {
        true => {
            eprintln!("wasock-bench: building and compiling the 0.3 bench guest (wasm32-wasip2)…");
            Some(guests::build_p3(&repo)?)
        }
        false => None,
    };
    let p3 = p3_wasm.as_deref().map(|w| runner.compile(w)).transpose()?;
    let ctx = Ctx {
        runner: &runner,
        params: &params,
        raw: raw.as_ref(),
        p3: p3.as_ref(),
    };

    let load_before = loadavg();
    let busy0 = cpu::machine_busy();
    let own0 = cpu::process() + cpu::children();
    let t0 = Instant::now();
    let mut tables = Vec::new();
    for workload in &selected {
        let name = workload.name;
        eprintln!("wasock-bench: {name}");
        let table = (workload.run)(&ctx).with_context(|| format!("workload {name}"))?;
        println!("{}", table.markdown());
        tables.push(table);
    }
    let wall = t0.elapsed();
    let own = (cpu::process() + cpu::children()).saturating_sub(own0);
    let others = match (busy0, cpu::machine_busy()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).saturating_sub(own)),
        _ => None,
    };

    let machine = Machine {
        load_before,
        load_after: loadavg(),
        others_cpus: others.map(|o| o.as_secs_f64() / wall.as_secs_f64()),
        wall,
    };
    let markdown = document(
        &args,
        &params,
        &guests,
        p3_wasm.as_deref(),
        &machine,
        &tables,
    );
    let out = match (&args.out, args.quick) {
        (Some(path), _) => Some(path.clone()),
        (None, false) => Some(repo.join("BENCHMARKS.md")),
        (None, true) => None,
    };
    if let Some(path) = out {
        std::fs::write(&path, markdown).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wasock-bench: wrote {}", path.display());
    }
    Ok(())
}

/// The repository root: this crate lives in `crates/wasock-bench`.
fn repo_root() -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = dir
        .ancestors()
        .nth(2)
        .context("crates/wasock-bench lives two levels below the repository root")?;
    Ok(root.to_path_buf())
}

struct Machine {
    load_before: Option<String>,
    load_after: Option<String>,
    /// Average number of CPUs busy with work other than the harness and its children.
    others_cpus: Option<f64>,
    wall: Duration,
}

fn loadavg() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn kernel() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// First line of a command's stdout, if it runs.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

fn document(
    args: &Args,
    params: &Params,
    guests: &guests::Guests,
    p3_wasm: Option<&Path>,
    machine: &Machine,
    tables: &[Table],
) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let unknown = || "unknown".to_owned();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let command: Vec<String> = std::env::args().skip(1).map(|a| shell_quote(&a)).collect();
    let command = if command.is_empty() {
        "cargo run --release -p wasock-bench".to_owned()
    } else {
        format!(
            "cargo run --release -p wasock-bench -- {}",
            command.join(" ")
        )
    };
    let commit = command_line("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_else(unknown);
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let wasm_size = std::fs::metadata(&guests.wasm).map_or(0, |m| m.len());

    let mut md = String::from("# Benchmarks\n\n");
    md.push_str(
        "Measured by the benchmark harness, `crates/wasock-bench` (its crate documentation says \
         how): the same `wasm32-wasip2` guest on wasock and on stock `wasmtime-wasi` 48 in one \
         process, next to a native build of the same source, alternating, on loopback.\n\n",
    );
    if args.quick {
        md.push_str(
            "> **Quick run** (`--quick`): small sizes, a smoke test of the harness, not a \
             measurement to quote.\n\n",
        );
    }
    let others = machine.others_cpus.map_or_else(unknown, |c| {
        // Tick granularity can make the difference slightly negative: clipped to 0.
        if c < 0.005 {
            format!("≈ 0 of {nproc} CPUs")
        } else {
            format!("{c:.2} of {nproc} CPUs")
        }
    });
    md.push_str(&format!(
        "> **Provisional: measured on a shared machine that other engineers' work loads** \
         ({nproc} cores).{} During this run other processes kept on average {others} busy \
         (from `/proc/stat`, minus the harness and its children); load average {} at the start \
         and {} at the end. Timings and ratios from a shared machine are noisy: treat them as a \
         first measurement, not as the verdict.\n\n",
        args.note
            .as_ref()
            .map_or(String::new(), |n| format!(" {n}")),
        machine.load_before.clone().unwrap_or_else(unknown),
        machine.load_after.clone().unwrap_or_else(unknown),
    ));
    let failed: usize = tables
        .iter()
        .flat_map(|t| &t.notes)
        .filter(|n| n.starts_with(workloads::FAILED_RUN))
        .count();
    if failed > 0 {
        md.push_str(&format!(
            "> **{failed} run(s) failed** in this harness run; each table names its failures \
             and leaves those repetitions out of its cells. `os error 6` from the guest is \
             WASI's `EAGAIN`: its 30 s read timeout expired with no data.\n\n"
        ));
    }
    md.push_str(&format!("- Date: {}\n", report::utc(now)));
    md.push_str(&format!("- Command: `{command}`\n"));
    md.push_str(&format!(
        "- Code: commit `{commit}`{}\n",
        if dirty {
            " with uncommitted changes in the working tree"
        } else {
            ""
        }
    ));
    md.push_str(&format!(
        "- Machine: {nproc} CPUs, {}, Linux {}\n",
        cpu_model().unwrap_or_else(unknown),
        kernel().unwrap_or_else(unknown)
    ));
    md.push_str(&format!(
        "- Toolchain: {}\n",
        command_line("rustc", &["--version"]).unwrap_or_else(unknown)
    ));
    md.push_str(&format!(
        "- Guest: `guests/bench` (`bench-guest`, release, opt-level 3), {} KiB as a component; \
         Wasmtime 48 with `wasock::engine_config()` and epoch interruption (time slices of \
         10 ms, `wasock::time_slices`, for both hosts), {}\n",
        wasm_size / 1024,
        args.runtime.describe()
    ));
    if let Some(p3) = p3_wasm {
        md.push_str(&format!(
            "- WASI 0.3 guest (the `p3-*` workloads): `guests/bench-p3` (a `wasi:cli/command@0.3.0` \
             cdylib, release, opt-level 3), {} KiB as a component; `run` as a concurrent call \
             on both hosts\n",
            std::fs::metadata(p3).map_or(0, |m| m.len()) / 1024
        ));
    }
    md.push_str(&format!(
        "- Repetitions: {} per mode, alternated; harness wall time {:.0} s\n\n",
        params.reps,
        machine.wall.as_secs_f64()
    ));
    md.push_str(
        "How to read: each cell is the median (min–max) over the repetitions; ↑ higher is \
         better, ↓ lower is better; the ratios divide the medians. CPU per unit = (CPU time of \
         the run with N units − median CPU time of the runs with 0 units) / N: in process the \
         whole process's CPU (tokio workers included) minus the peer thread's, natively the \
         child's. MB = 10^6 bytes.\n\n",
    );
    for table in tables {
        md.push_str(&table.markdown());
        md.push('\n');
    }
    md
}

/// `arg` as a POSIX shell word: as is when it is plain, else in single quotes.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=./:,+@%".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::{Args, WORKLOADS, parse_size, shell_quote};
    use clap::{CommandFactory, Parser};

    #[test]
    fn workloads_are_named_once_and_chosen_by_name() {
        Args::command().debug_assert();
        let mut names: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            WORKLOADS.len(),
            "a workload name is used twice"
        );
        let args = Args::try_parse_from(["wasock-bench", "udp-raw", "tcp-rr"]).unwrap();
        assert_eq!(args.workloads, ["udp-raw", "tcp-rr"]);
        assert!(Args::try_parse_from(["wasock-bench", "tcp-nope"]).is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--reps"), "--reps");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("x").is_err());
    }
}
