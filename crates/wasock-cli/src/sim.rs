//! `wasock sim`: runs a scenario's components on one virtual network, deterministically, for
//! one seed or a sweep of seeds. A thin shell over `wasock::sim`.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wasock::sim::{Scenario, SimReport, Simulation};

/// Failing seeds a sweep describes one by one.
const SWEEP_SHOWN: usize = 5;
/// Most seeds one sweep runs.
const MAX_SWEEP: u64 = 1_000_000;

#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 when every component did what its role asks (a task exits 0 \
                  before the time limit; a service never fails); else the first failure's code \
                  (the guest's own, 134 for a trap, 124 for the time limit); 1 when a sweep has \
                  a failing seed; 2 when the scenario cannot run."
)]
pub(crate) struct SimArgs {
    /// The scenario file (TOML): components, links, the timeline of faults
    scenario: PathBuf,
    /// The seed of every random choice (default: the scenario's `seed`, else 0)
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Run every seed of A..B (B excluded) and report which fail, e.g. `--seeds 0..100`
    #[arg(long, value_name = "A..B", value_parser = seed_range, conflicts_with = "seed")]
    seeds: Option<Range<u64>>,
    /// Write the trace to FILE, one JSON object per line (`-`: stdout)
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    trace: Option<PathBuf>,
    /// Print only the summary, not the components' output
    #[arg(long, short)]
    quiet: bool,
}

/// `A..B`, with A < B and at most a million seeds.
fn seed_range(text: &str) -> Result<Range<u64>, String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("`{text}` is not a range of seeds such as 0..100"))?;
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{s}` in `{text}` is not a whole number"))
    };
    let (a, b) = (num(a)?, num(b)?);
    if a >= b {
        return Err(format!(
            "`{text}` holds no seed: the end is excluded, so use {a}..{}",
            a + 1
        ));
    }
    if b - a > MAX_SWEEP {
        return Err(format!("`{text}` is more than {MAX_SWEEP} seeds"));
    }
    Ok(a..b)
}

pub(crate) fn sim(args: SimArgs) -> ExitCode {
    let scenario = match Scenario::from_file(&args.scenario) {
        Ok(s) => s,
        Err(e) => return crate::fail(&e.to_string()),
    };
    let default_seed = scenario.seed();
    // A trace file that cannot be written is reported before anything runs.
    let file = args.trace.as_deref().filter(|p| *p != Path::new("-"));
    if let Some((path, Err(e))) = file.map(|p| (p, std::fs::File::create(p))) {
        let path = path.display();
        return crate::fail(&format!("cannot write the trace to {path}: {e}"));
    }
    let sim = match Simulation::new(scenario) {
        Ok(s) => s,
        Err(e) => return crate::fail(&e.to_string()),
    };
    match args.seeds {
        Some(seeds) => sweep(&sim, &args.scenario, seeds),
        None => once(&sim, &args, args.seed.unwrap_or(default_seed)),
    }
}

/// One run: the output, the trace if asked, a summary line.
fn once(sim: &Simulation, args: &SimArgs, seed: u64) -> ExitCode {
    let report = match sim.run(seed) {
        Ok(r) => r,
        Err(e) => return crate::fail(&e.to_string()),
    };
    if !args.quiet {
        print_output(sim, &report);
    }
    let written = args.trace.as_deref().map(|p| (p, write_trace(p, &report)));
    if let Some((path, Err(e))) = written {
        return crate::fail(&format!(
            "cannot write the trace to {}: {e}",
            path.display()
        ));
    }
    eprintln!("wasock sim: {}", summary(&report, &args.scenario));
    ExitCode::from(report.exit_code.clamp(0, 255) as u8)
}

/// Each output line with its component's name in front, aligned.
fn print_output(sim: &Simulation, report: &SimReport) {
    let width = sim
        .scenario()
        .component_names()
        .iter()
        .map(|n| n.len())
        .max()
        .unwrap_or(0);
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for (component, stream, line) in &report.output {
        let text = format!("{component:>width$} | {line}");
        let _ = match *stream {
            "stderr" => writeln!(err, "{text}"),
            _ => writeln!(out, "{text}"),
        };
    }
}

fn write_trace(path: &Path, report: &SimReport) -> std::io::Result<()> {
    let mut text = report.trace.join("\n");
    text.push('\n');
    if path == Path::new("-") {
        return std::io::stdout().lock().write_all(text.as_bytes());
    }
    std::fs::write(path, text)
}

/// The run in one line: passed, or its first failure and how to replay it.
fn summary(report: &SimReport, scenario: &Path) -> String {
    let time = format!("{:.3}s of virtual time", report.virtual_time.as_secs_f64());
    match &report.failure {
        None => format!("seed {}: passed ({time})", report.seed),
        Some(what) => format!(
            "seed {}: FAILED: {what} ({time}); replay with `wasock sim {} --seed {}`",
            report.seed,
            scenario.display(),
            report.seed
        ),
    }
}

/// Every seed of `seeds`: one line per failing seed, then the count.
fn sweep(sim: &Simulation, scenario: &Path, seeds: Range<u64>) -> ExitCode {
    let total = seeds.end - seeds.start;
    let mut failed = Vec::new();
    let started = std::time::Instant::now();
    for seed in seeds {
        match sim.run(seed) {
            Ok(r) if r.failure.is_some() => {
                // The first few in full; the count says how many more.
                if failed.len() < SWEEP_SHOWN {
                    eprintln!("wasock sim: {}", summary(&r, scenario));
                }
                failed.push(seed);
            }
            Ok(_) => {}
            Err(e) => return crate::fail(&e.to_string()),
        }
    }
    let took = started.elapsed().as_secs_f64();
    if failed.is_empty() {
        eprintln!("wasock sim: all {total} seeds passed ({took:.1}s)");
        return ExitCode::SUCCESS;
    }
    let shown: Vec<String> = failed.iter().take(20).map(u64::to_string).collect();
    eprintln!(
        "wasock sim: {} of {total} seeds failed: {}{} ({took:.1}s); replay one with `wasock sim {} --seed {}`",
        failed.len(),
        shown.join(", "),
        if failed.len() > 20 { ", …" } else { "" },
        scenario.display(),
        failed[0]
    );
    ExitCode::FAILURE
}
