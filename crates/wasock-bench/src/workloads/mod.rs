//! The workloads, and what they share: one sampled run, alternation of the three modes (or of
//! a `p3-*` workload's four, [`Mode::P3`]) over the repetitions, and the derived per-unit
//! metrics.

pub(crate) mod lookup;
pub(crate) mod lookup_raw;
pub(crate) mod p3_tcp;
pub(crate) mod scale;
pub(crate) mod startup;
pub(crate) mod tcp_bulk;
pub(crate) mod tcp_churn;
pub(crate) mod tcp_pair;
pub(crate) mod tcp_rr;
pub(crate) mod udp;
pub(crate) mod udp_raw;

use crate::peer::{Peer, PeerReport};
use crate::report::{Better, Row};
use crate::runner::{Mode, Report, Runner};
use crate::stats::{Summary, median};
use anyhow::{Context, Result, anyhow};
use std::path::PathBuf;
use std::time::Duration;
use wasmtime::component::Component;

/// Sizes and counts of one harness run.
pub(crate) struct Params {
    /// The engine of the HTTP workloads (`--http-concurrency`).
    pub(crate) http_concurrency: crate::runner::Concurrency,
    /// Smoke-test sizes (`--quick`).
    pub(crate) quick: bool,
    pub(crate) reps: usize,
    pub(crate) bulk_bytes: u64,
    pub(crate) rr_count: u64,
    pub(crate) churn_count: u64,
    pub(crate) udp_count: u64,
    pub(crate) lookup_literal_count: u64,
    pub(crate) lookup_localhost_count: u64,
    /// `resolve-addresses` of an IP literal through the raw bindings.
    pub(crate) raw_lookup_count: u64,
    /// Datagrams sent through the raw bindings' batched `send`.
    pub(crate) udp_raw_count: u64,
    /// Idle connections held at once by one instance.
    pub(crate) scale_count: u64,
    /// The `wasock` CLI for the start-up workload.
    pub(crate) wasock_cli: PathBuf,
}

impl Params {
    /// Full-size runs (`quick == false`) or a smoke-test size.
    pub(crate) fn new(quick: bool, reps: usize, bulk_bytes: Option<u64>, cli: PathBuf) -> Params {
        let (bulk, rr, churn, udp, literal, localhost) = if quick {
            (64 << 20, 2_000, 200, 20_000, 200_000, 500)
        } else {
            (1 << 30, 20_000, 5_000, 200_000, 2_000_000, 10_000)
        };
        Params {
            quick,
            reps,
            bulk_bytes: bulk_bytes.unwrap_or(bulk),
            rr_count: rr,
            churn_count: churn,
            udp_count: udp,
            lookup_literal_count: literal,
            lookup_localhost_count: localhost,
            raw_lookup_count: if quick { 100_000 } else { 1_000_000 },
            udp_raw_count: if quick { 200_000 } else { 1_000_000 },
            // Not smaller when quick: the workload is about this many.
            scale_count: 10_000,
            wasock_cli: cli,
            http_concurrency: crate::runner::Concurrency::AsNeeded,
        }
    }
}

/// What the workloads need.
pub(crate) struct Ctx<'a> {
    pub(crate) runner: &'a Runner,
    pub(crate) params: &'a Params,
    /// The raw-binding guest, compiled when a selected workload runs it.
    pub(crate) raw: Option<&'a Component>,
    /// The 0.3 bench guest (`guests/bench-p3`), compiled when a selected workload runs it.
    pub(crate) p3: Option<&'a Component>,
}

impl Ctx<'_> {
    /// The raw-binding guest.
    pub(crate) fn raw(&self) -> Result<&Component> {
        self.raw
            .ok_or_else(|| anyhow!("the raw-binding guest was not built for this run"))
    }

    /// The 0.3 bench guest.
    pub(crate) fn p3(&self) -> Result<&Component> {
        self.p3
            .ok_or_else(|| anyhow!("the 0.3 bench guest was not built for this run"))
    }
}

/// One run of the guest, with the CPU time attributed to the guest side.
pub(crate) struct Sample {
    pub(crate) report: Report,
    /// CPU of the guest side: the process's (minus the peer thread's) in process, the child's
    /// natively.
    pub(crate) cpu: Duration,
    pub(crate) peer: PeerReport,
}

/// Runs the guest once against `peer` (started by the caller, who put its address in `args`).
pub(crate) fn sample(
    runner: &Runner,
    mode: Mode,
    peer: Option<Peer>,
    args: &[String],
) -> Result<Sample> {
    sample_of(runner, mode, None, peer, args)
}

/// [`sample`] of the guest `mode` runs: the 0.3 bench guest in the 0.3 modes, else the bench
/// guest.
pub(crate) fn sample_mode(
    ctx: &Ctx<'_>,
    mode: Mode,
    peer: Option<Peer>,
    args: &[String],
) -> Result<Sample> {
    match mode {
        Mode::P3Wasock | Mode::P3WasmtimeWasi => {
            sample_of(ctx.runner, mode, Some(ctx.p3()?), peer, args)
        }
        _ => sample(ctx.runner, mode, peer, args),
    }
}

/// [`sample`] of `component` (in process) instead of the bench guest, when given.
pub(crate) fn sample_of(
    runner: &Runner,
    mode: Mode,
    component: Option<&Component>,
    peer: Option<Peer>,
    args: &[String],
) -> Result<Sample> {
    let t0 = std::time::Instant::now();
    let out = match component {
        Some(c) => runner.run_in_process(mode, c, args),
        None => runner.run(mode, args),
    }
    .with_context(|| format!("after {:.1} s", t0.elapsed().as_secs_f64()))?;
    let peer = match peer {
        Some(p) => p.finish()?,
        None => PeerReport::default(),
    };
    let cpu = if mode.in_process() {
        out.cpu.saturating_sub(peer.cpu)
    } else {
        out.cpu
    };
    Ok(Sample {
        report: out.report()?,
        cpu,
        peer,
    })
}

/// The runs of one mode: with 0 units (set-up only) and with N units.
#[derive(Default)]
pub(crate) struct Series {
    pub(crate) zero: Vec<Sample>,
    pub(crate) full: Vec<Sample>,
    /// Runs that failed (the repetition is left out of the cells), with the error.
    pub(crate) failures: Vec<String>,
}

/// How a table's note about a failed run starts.
pub(crate) const FAILED_RUN: &str = "**A run failed**";

/// Notes naming every failed run of `series`, for a table.
pub(crate) fn failure_notes(series: &[Series; 3]) -> Vec<String> {
    failure_notes_in(Mode::ALL, series)
}

/// [`failure_notes`] of series of the modes `order`.
pub(crate) fn failure_notes_in<const N: usize>(
    order: [Mode; N],
    series: &[Series; N],
) -> Vec<String> {
    let mut notes = Vec::new();
    for (i, mode) in order.into_iter().enumerate() {
        for failure in &series[i].failures {
            notes.push(format!(
                "{FAILED_RUN} ({}) and its repetition is left out: {failure}",
                mode.name()
            ));
        }
    }
    notes
}

/// `reps` rounds of (wasock, wasmtime-wasi, native), each a 0-unit run then an `n`-unit run.
pub(crate) fn alternate(
    ctx: &Ctx<'_>,
    label: &str,
    n: u64,
    one: impl FnMut(Mode, u64) -> Result<Sample>,
) -> Result<[Series; 3]> {
    alternate_modes(ctx, label, n, &Mode::ALL, one)
}

/// [`alternate`] over `modes` only; the other modes' series stay empty (`—` in the table).
pub(crate) fn alternate_modes(
    ctx: &Ctx<'_>,
    label: &str,
    n: u64,
    modes: &[Mode],
    one: impl FnMut(Mode, u64) -> Result<Sample>,
) -> Result<[Series; 3]> {
    alternate_in(ctx, label, n, Mode::ALL, modes, one)
}

/// [`alternate_modes`] with the series of the modes `order`, run in that order.
pub(crate) fn alternate_in<const N: usize>(
    ctx: &Ctx<'_>,
    label: &str,
    n: u64,
    order: [Mode; N],
    modes: &[Mode],
    mut one: impl FnMut(Mode, u64) -> Result<Sample>,
) -> Result<[Series; N]> {
    let mut series: [Series; N] = std::array::from_fn(|_| Series::default());
    for rep in 1..=ctx.params.reps {
        for (i, mode) in order.into_iter().enumerate() {
            if !modes.contains(&mode) {
                continue;
            }
            // A failed run is recorded and reported, not fatal: one guest error must not
            // lose the whole measurement.
            let (zero, full) = match one(mode, 0).and_then(|z| Ok((z, one(mode, n)?))) {
                Ok(pair) => pair,
                Err(e) => {
                    let msg = format!("repetition {rep}: {e:#}");
                    eprintln!(
                        "  {label} {rep}/{} {:<13} FAILED: {msg}",
                        ctx.params.reps,
                        mode.name()
                    );
                    series[i].failures.push(msg);
                    continue;
                }
            };
            eprintln!(
                "  {label} {rep}/{} {:<13} {} units in {:.3} s, CPU {:.3} s (0-unit run {:.3} s)",
                ctx.params.reps,
                mode.name(),
                full.report.units,
                full.report.elapsed.as_secs_f64(),
                full.cpu.as_secs_f64(),
                zero.cpu.as_secs_f64(),
            );
            series[i].zero.push(zero);
            series[i].full.push(full);
        }
    }
    Ok(series)
}

/// A row with `f` applied to each mode's series.
pub(crate) fn row(
    metric: &str,
    better: Better,
    series: &[Series; 3],
    f: impl Fn(&Series) -> Vec<f64>,
) -> Row {
    row_in(metric, better, Mode::ALL, series, f)
}

/// [`row`] of series of the modes `order`.
pub(crate) fn row_in<const N: usize>(
    metric: &str,
    better: Better,
    order: [Mode; N],
    series: &[Series; N],
    f: impl Fn(&Series) -> Vec<f64>,
) -> Row {
    let mut row = Row::new(metric, better);
    for (i, mode) in order.into_iter().enumerate() {
        row.set(mode, Summary::of(&f(&series[i])));
    }
    row
}

/// Units per second by the guest's clock, divided by `scale` (1e6 for MB/s).
pub(crate) fn rate(s: &Series, scale: f64) -> Vec<f64> {
    s.full
        .iter()
        .map(|x| x.report.units as f64 / x.report.elapsed.as_secs_f64() / scale)
        .collect()
}

/// CPU µs per `scale` units: (CPU of each N-unit run − median CPU of the 0-unit runs) / N.
pub(crate) fn cpu_per_unit(s: &Series, scale: f64) -> Vec<f64> {
    let zero: Vec<f64> = s.zero.iter().map(|x| x.cpu.as_secs_f64()).collect();
    let Some(base) = median(&zero) else {
        return Vec::new();
    };
    s.full
        .iter()
        .filter(|x| x.report.units > 0)
        .map(|x| (x.cpu.as_secs_f64() - base) * 1e6 / (x.report.units as f64 / scale))
        .collect()
}

/// CPU ms of the 0-unit runs (everything but the loop: instantiation or process start, set-up).
pub(crate) fn setup_cpu_ms(s: &Series) -> Vec<f64> {
    s.zero.iter().map(|x| x.cpu.as_secs_f64() * 1e3).collect()
}

/// A guest report field in µs (the guest reports nanoseconds).
pub(crate) fn field_us(s: &Series, key: &str) -> Vec<f64> {
    s.full
        .iter()
        .filter_map(|x| x.report.fields.get(key).map(|ns| *ns as f64 / 1e3))
        .collect()
}

/// The row every workload ends with.
pub(crate) fn setup_row(series: &[Series; 3]) -> Row {
    setup_row_in(Mode::ALL, series)
}

/// [`setup_row`] of series of the modes `order`.
pub(crate) fn setup_row_in<const N: usize>(order: [Mode; N], series: &[Series; N]) -> Row {
    row_in(
        "CPU of a 0-unit run (set-up only), ms",
        Better::Lower,
        order,
        series,
        setup_cpu_ms,
    )
}

/// A signed figure the harness adds to a run's report (stored as the bits of an `i64`).
pub(crate) fn set_signed(report: &mut Report, key: &str, value: i64) {
    report.fields.insert(key.to_owned(), value as u64);
}

/// A figure of [`set_signed`], divided by the run's units, from each N-unit run that has it.
pub(crate) fn signed_per_unit(s: &Series, key: &str) -> Vec<f64> {
    s.full
        .iter()
        .filter(|x| x.report.units > 0)
        .filter_map(|x| {
            let v = *x.report.fields.get(key)? as i64;
            Some(v as f64 / x.report.units as f64)
        })
        .collect()
}

/// Strings for a guest command line.
pub(crate) fn args(parts: &[&dyn std::fmt::Display]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// Per cent of `sent` datagrams that were not `received` (0 when none was sent).
pub(crate) fn loss_percent(sent: u64, received: u64) -> f64 {
    match sent {
        0 => 0.0,
        _ => 100.0 * sent.saturating_sub(received) as f64 / sent as f64,
    }
}
