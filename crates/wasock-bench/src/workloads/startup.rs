//! Start-up: time until the guest's first line (`bench-guest start` prints one line and exits).
//!
//! - `wasock run` as a process, first start with an empty compilation cache (a fresh
//!   `XDG_CACHE_HOME`) and second start with the cache the first one filled; the native
//!   column is the native build started as a process, to its first line.
//! - In process (no CLI): compile + instantiate + run, and instantiate + run of the component
//!   compiled once, on wasock and on `wasmtime-wasi`. The guest exits right after its line, so
//!   these are measured to exit.

use super::Ctx;
use crate::report::{Better, Row, Table};
use crate::runner::{Mode, wasm_err};
use crate::stats::Summary;
use anyhow::{Context, Result, anyhow, bail};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wasmtime::component::Component;

const FIRST_LINE_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn run(ctx: &Ctx<'_>) -> Result<Table> {
    let runner = ctx.runner;
    let cli = &ctx.params.wasock_cli;
    let have_cli = cli.is_file();
    let bytes = std::fs::read(runner.wasm()).context("reading the guest component")?;
    let cache_root = runner
        .wasm()
        .ancestors()
        .nth(3)
        .unwrap_or(Path::new("."))
        .join(format!("startup-cache-{}", std::process::id()));

    let mut cold_cli = Vec::new();
    let mut warm_cli = Vec::new();
    let mut native = Vec::new();
    let mut compile = [Vec::new(), Vec::new()];
    let mut instantiate = [Vec::new(), Vec::new()];
    for rep in 1..=ctx.params.reps {
        if have_cli {
            let cache = cache_root.join(rep.to_string());
            std::fs::create_dir_all(&cache)?;
            let wasm = runner.wasm().as_os_str();
            let cli_args = [
                std::ffi::OsStr::new("run"),
                wasm,
                "--".as_ref(),
                "start".as_ref(),
            ];
            cold_cli.push(ms(first_line(cli, &cli_args, Some(&cache))?));
            warm_cli.push(ms(first_line(cli, &cli_args, Some(&cache))?));
            std::fs::remove_dir_all(&cache).ok();
        }
        native.push(ms(first_line(runner.native(), &["start".as_ref()], None)?));
        for (i, mode) in [Mode::Wasock, Mode::WasmtimeWasi].into_iter().enumerate() {
            let t0 = Instant::now();
            let component = Component::new(runner.engine(), &bytes).map_err(wasm_err)?;
            runner.run_in_process(mode, &component, &["start".to_owned()])?;
            compile[i].push(ms(t0.elapsed()));
            let out = runner.run(mode, &["start".to_owned()])?;
            instantiate[i].push(ms(out.wall));
        }
        eprintln!(
            "  startup {rep}/{}: cli cold {} ms, warm {} ms, native {:.2} ms",
            ctx.params.reps,
            cold_cli.last().map_or("—".into(), |v| format!("{v:.1}")),
            warm_cli.last().map_or("—".into(), |v| format!("{v:.1}")),
            native.last().copied().unwrap_or_default(),
        );
    }
    std::fs::remove_dir_all(&cache_root).ok();

    let mut row_cold = Row::new("`wasock run`, first start (empty cache), ms", Better::Lower);
    row_cold.set(Mode::Wasock, Summary::of(&cold_cli));
    row_cold.set(Mode::Native, Summary::of(&native));
    let mut row_warm = Row::new("`wasock run`, second start (warm cache), ms", Better::Lower);
    row_warm.set(Mode::Wasock, Summary::of(&warm_cli));
    row_warm.set(Mode::Native, Summary::of(&native));
    let mut row_compile = Row::new("in process: compile + instantiate + run, ms", Better::Lower);
    let mut row_inst = Row::new(
        "in process: instantiate + run (compiled once), ms",
        Better::Lower,
    );
    for (i, mode) in [Mode::Wasock, Mode::WasmtimeWasi].into_iter().enumerate() {
        row_compile.set(mode, Summary::of(&compile[i]));
        row_inst.set(mode, Summary::of(&instantiate[i]));
    }
    let mut notes = vec![
        "`bench-guest start` prints one line and exits. Process rows: from spawning the process \
         to reading the guest's first line on a pipe; the native column of both process rows is \
         the same native measurement (a native program has no compilation cache). In-process \
         rows: the harness's own engine, no cache, measured to the guest's exit (which follows \
         its line at once); the stock `wasmtime-wasi` column has no CLI here, so its process \
         rows are empty."
            .to_owned(),
    ];
    if have_cli {
        notes.push(format!("CLI: `{}`.", cli.display()));
    } else {
        notes.push(format!(
            "`{}` was not built, so the CLI rows are empty (`cargo build --release -p \
             wasock-cli`).",
            cli.display()
        ));
    }
    Ok(Table {
        title: "Start-up, time to the guest's first line".to_owned(),
        notes,
        rows: vec![row_cold, row_warm, row_compile, row_inst],
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Spawns `program args`, returns the time until its first stdout line, then waits for its exit.
fn first_line(
    program: &Path,
    args: &[&std::ffi::OsStr],
    cache_home: Option<&Path>,
) -> Result<Duration> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = cache_home {
        // wasmtime's default cache directory is `$XDG_CACHE_HOME/wasmtime` on Linux.
        cmd.env("XDG_CACHE_HOME", dir);
    }
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout pipe"))?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        let got = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send((Instant::now(), got.map(|_| line)));
    });
    let (at, line) = match rx.recv_timeout(FIRST_LINE_TIMEOUT) {
        Ok(v) => v,
        Err(_) => {
            child.kill()?;
            child.wait()?;
            bail!(
                "{} printed nothing within {FIRST_LINE_TIMEOUT:?}",
                program.display()
            );
        }
    };
    let output = child.wait_with_output()?;
    reader
        .join()
        .map_err(|_| anyhow!("the reader thread panicked"))?;
    let line = line?;
    if !output.status.success() || line.trim() != "started" {
        bail!(
            "{} {args:?}: exit {}, first line {line:?}, stderr {}",
            program.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(at - t0)
}
