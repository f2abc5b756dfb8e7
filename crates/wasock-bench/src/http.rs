//! HTTP servers under `wrk`: `GET /` and a 1 KiB `POST /echo`.
//!
//! - `http-tokio`: `guests/bench-http` (an axum router on hyper's HTTP/1 server) built with its
//!   `tokio` feature: the native server's code, unmodified, on tokio in the guest; on wasock, on
//!   `wasmtime-wasi` and natively (tokio), at 10, 100 and 1 000 connections;
//! - `http`: the same guest on wstd's executor;
//! - `http-batch`: the same guest on its small batch-polling executor instead of wstd's;
//! - `load`: `raw-http-server` (guests/raw: one `wasi:io/poll` loop on the raw bindings) on
//!   wasock and on `wasmtime-wasi` at 1 000 connections (it has no native build).
//!
//! One server run per repetition, mode, method and connection count: the harness picks a free
//! loopback port, starts the server (in process on a thread of its own for the wasm modes, as a
//! child process natively), checks one `GET /` and one `POST /echo` by hand, runs `wrk` (a child
//! process) against it, reads how far the server's peak RSS grew, asks `GET /quit` and waits for
//! the server's summary line. The 0-unit run does the same without `wrk`.
//!
//! Server CPU: in process, this process's CPU time over the server's life (`wrk`, a child, is
//! not in it); natively, the CPU of the children reaped over the server's life minus `wrk`'s.

use crate::report::{Better, Row, Table};
use crate::runner::{Concurrency, Mode, Report, RunOutput, Runner};
use crate::workloads::{
    Ctx, Sample, Series, alternate, alternate_modes, cpu_per_unit, failure_notes, row,
};
use crate::wrk;
use crate::{cpu, heap};
use anyhow::{Context, Result, anyhow, bail};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Connection counts, in the order they run.
const CONNECTIONS: [u32; 3] = [10, 100, 1000];
/// The `load` workload's connection count.
const LOAD_CONNECTIONS: u32 = 1000;
/// wrk's threads: the machine has 2 cores, which wrk shares with the server.
const WRK_THREADS: u32 = 2;
/// wrk's default: a request unanswered for this long is a timeout.
const WRK_TIMEOUT: Duration = Duration::from_secs(2);
/// The body of each `POST /echo`.
const POST_BODY: usize = 1024;
/// The body of `GET /` (see `guests/bench-http`).
const HELLO: &str = "Hello, World!";
/// The body of `raw-http-server`'s `GET /`.
const RAW_HELLO: &str = "hello from wasock\n";
/// How long a server may take from start to answering its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Read/write timeout of the harness's own requests.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to exit after `GET /quit` (it drains for at most 2 s).
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// The server's own time limit beyond the wrk run.
const SERVER_SLACK: Duration = Duration::from_secs(20);
/// `GET /quit` attempts before the harness waits for the server's own time limit.
const QUIT_TRIES: usize = 3;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::Get => "GET /",
            Method::Post => "POST /echo 1 KiB",
        }
    }
}

/// Which server a workload runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Server {
    /// `guests/bench-http` on tokio, as natively (`http-tokio`).
    Tokio,
    /// `guests/bench-http` on wstd's executor (`http`).
    Wstd,
    /// `guests/bench-http` on its batch-polling executor (`http-batch`).
    Batch,
    /// `raw-http-server` (`load`): wasm only.
    Raw,
}

impl Server {
    /// The server's command line (after its name).
    fn args(self, addr: SocketAddr, max: Duration) -> Vec<String> {
        let secs = max.as_secs().to_string();
        match self {
            Server::Tokio => vec!["serve".into(), addr.to_string(), secs, "tokio".into()],
            Server::Wstd => vec!["serve".into(), addr.to_string(), secs, "wstd".into()],
            Server::Batch => vec!["serve".into(), addr.to_string(), secs, "batch".into()],
            Server::Raw => vec![addr.to_string(), "--secs".into(), secs],
        }
    }

    fn hello(self) -> &'static str {
        match self {
            Server::Tokio | Server::Wstd | Server::Batch => HELLO,
            Server::Raw => RAW_HELLO,
        }
    }

    /// Requests answered and the other counts of the server's summary line.
    fn summary(self, out: &RunOutput) -> Result<Report> {
        match self {
            Server::Tokio | Server::Wstd | Server::Batch => out.report(),
            Server::Raw => raw_summary(&out.stdout),
        }
    }
}

/// `raw-http-server: served R requests on C connections (stop: quit, accept errors A, stream
/// errors E)` as a report: units R, fields `conns`, `accept_errors`, `conn_errors`.
fn raw_summary(stdout: &str) -> Result<Report> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("raw-http-server: served "))
        .ok_or_else(|| anyhow!("raw-http-server printed no summary: {stdout:?}"))?;
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("summary `{line}`"))?;
    let [served, conns, accept_errors, stream_errors] = numbers[..] else {
        bail!("unexpected summary `{line}`");
    };
    let fields = [
        ("conns", conns),
        ("accept_errors", accept_errors),
        ("conn_errors", stream_errors),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(Report {
        units: served,
        elapsed: Duration::ZERO,
        fields,
    })
}

/// What every run of a workload shares.
struct Http<'a> {
    server: Server,
    runner: Runner,
    native: &'a Path,
    script: &'a Path,
    duration: Duration,
}

/// Builds the guest, then measures every (method, connection count) in turn.
pub(crate) fn run(ctx: &Ctx<'_>, server: Server) -> Result<Table> {
    let quick = ctx.params.quick;
    if !wrk::available() {
        bail!("the HTTP workloads need wrk (Debian: apt-get install -y wrk)");
    }
    // This process and its children (the native server, wrk) open 1 000 connections and more;
    // a limit that stays low shows as connection errors in the table.
    let _ = wasock_support::raise_open_file_limit(u64::MAX);
    let repo = crate::repo_root()?;
    eprintln!("wasock-bench: building the HTTP guest (wasm32-wasip2 and host)…");
    let guests = crate::guests::build_http(&repo)?;
    let wasm = match server {
        Server::Raw => crate::guests::build_raw_http(&repo)?,
        Server::Tokio => crate::guests::build_http_tokio(&repo)?,
        Server::Wstd | Server::Batch => guests.wasm.clone(),
    };
    let script_dir = guests
        .wasm
        .ancestors()
        .nth(3)
        .context("the guest lives in <target>/wasm32-wasip2/release")?;
    let script = wrk::post_script(script_dir, POST_BODY)?;
    eprintln!("wasock-bench: compiling {}…", wasm.display());
    let http = Http {
        server,
        runner: Runner::with_engine(
            &wasm,
            &guests.native,
            ctx.runner.flavor(),
            ctx.params.http_concurrency,
        )?,
        native: &guests.native,
        script: &script,
        duration: Duration::from_secs(if quick { 3 } else { 6 }),
    };
    let connections: &[u32] = match server {
        Server::Raw => &[LOAD_CONNECTIONS],
        Server::Tokio | Server::Wstd | Server::Batch => &CONNECTIONS,
    };

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut setup = None;
    for method in [Method::Get, Method::Post] {
        for &connections in connections {
            let label = format!("{} c={connections}", method.label());
            let one = |mode, units| {
                let load = (units > 0).then_some((method, connections));
                one(&http, mode, load)
            };
            let series = match server {
                // No native build of the raw-binding server.
                Server::Raw => {
                    alternate_modes(ctx, &label, 1, &[Mode::Wasock, Mode::WasmtimeWasi], one)?
                }
                Server::Tokio | Server::Wstd | Server::Batch => alternate(ctx, &label, 1, one)?,
            };
            notes.extend(failure_notes(&series));
            notes.extend(error_notes(&label, &series, ctx.params.reps));
            rows.extend(rows_for(
                &format!("{}, {connections} conns", method.label()),
                &series,
            ));
            setup.get_or_insert(series);
        }
    }
    if let Some(series) = &setup {
        rows.push(row(
            "CPU of a 0-unit run (start, 2 requests, quit), ms",
            Better::Lower,
            series,
            |s| s.zero.iter().map(|x| x.cpu.as_secs_f64() * 1e3).collect(),
        ));
    }
    let size = std::fs::metadata(&wasm).map_or(0, |m| m.len()) / 1024;
    let title = match server {
        Server::Tokio => {
            "HTTP load: axum on hyper on unmodified tokio under wrk, 10 / 100 / 1 000 connections"
        }
        Server::Wstd => {
            "HTTP load: axum on hyper (wstd's executor) under wrk, 10 / 100 / 1 000 connections"
        }
        Server::Batch => {
            "HTTP load: axum on hyper (a batch-polling executor) under wrk, 10 / 100 / 1 000 connections"
        }
        Server::Raw => {
            "Load: raw-http-server (one poll loop, raw bindings) under wrk, 1 000 connections"
        }
    };
    Ok(Table {
        title: title.to_owned(),
        notes: [
            description(server, http.duration, size, ctx.params.http_concurrency),
            notes,
        ]
        .concat(),
        rows,
    })
}

fn description(
    server: Server,
    duration: Duration,
    wasm_kib: u64,
    concurrency: Concurrency,
) -> Vec<String> {
    let guest = match server {
        Server::Tokio => format!(
            "`guests/bench-http` with its `tokio` feature ({wasm_kib} KiB as a component): an \
             axum 0.8 `Router` served by hyper 1's HTTP/1 connection driver, keep-alive, one \
             task per connection (`tokio::spawn`) on tokio's current-thread runtime, sockets \
             from `tokio::net` (mio over wasi-libc's sockets and `poll`). `GET /` answers 13 \
             bytes, `POST /echo` echoes its body. The guest and the native server are the same \
             code, unmodified tokio 1 built with `--cfg tokio_unstable` (tokio's condition for \
             WASI networking); the guest links one fix to this toolchain's wasi-libc \
             (`fcntl(F_SETFL, O_NONBLOCK)` on a socket, which it refuses and its `ioctl(FIONBIO)` \
             does; fixed in later wasi-libc), without which mio cannot accept. Natively Nagle is \
             off (as wasock sets it; `wasmtime-wasi` leaves it on). Every crate built at \
             opt-level 3."
        ),
        Server::Wstd | Server::Batch => format!(
            "`guests/bench-http` ({wasm_kib} KiB as a component): an axum 0.8 `Router` served by \
             hyper 1's HTTP/1 connection driver, keep-alive, one task per connection on one \
             thread. `GET /` answers 13 bytes, `POST /echo` echoes its body. One source: on \
             `wasm32-wasip2` a small adapter gives hyper the raw `wasi:sockets` streams (tokio \
             cannot accept there with this toolchain's wasi-libc) and the tasks run on {}; \
             natively the same router and connection code run on a current-thread tokio runtime \
             with Nagle off (as wasock sets it; `wasmtime-wasi` leaves it on). Every crate built \
             at opt-level 3.",
            match server {
                Server::Wstd =>
                    "wstd 0.6's reactor, which after each task run checks every \
                                 pending pollable without blocking while other tasks are ready",
                _ =>
                    "the guest's own batch-polling executor (`src/batch.rs`: run every ready \
                      task, then one blocking `poll` over every pollable a task waits on)",
            }
        ),
        Server::Raw => format!(
            "`raw-http-server` ({wasm_kib} KiB as a component, guests/raw): one `wasi:io/poll` \
             loop over every connection on the raw `wasi:sockets` bindings, keep-alive; `GET /` \
             answers 18 bytes, `POST /echo` echoes its body. It has no native build: the native \
             column is empty."
        ),
    };
    vec![
        guest,
        format!(
            "Load: `wrk -t{WRK_THREADS} -cN -d{}s --timeout {}s --latency` on 127.0.0.1, a Lua \
             script for the {POST_BODY}-byte POST body; one fresh server per run. The machine \
             has 2 cores and wrk's two threads compete with the server for them, the same way \
             in all three columns: the rates are those of server and client together on 2 \
             cores, not of the server alone.",
            duration.as_secs(),
            WRK_TIMEOUT.as_secs()
        ),
        "Requests/s, p50 and p99 are wrk's. Errors + timeouts: wrk's socket errors (connect, \
         read, write), timeouts and non-2xx responses, summed (runs with any are listed below). \
         Server CPU per request: (server CPU of the run − median of the 0-unit runs) / requests \
         the server answered; in process the whole process's CPU (wrk is a child and not in \
         it), natively the server process's. RSS growth: how far the server's peak RSS \
         (`VmHWM`) rose under load above its RSS once listening (after the two checks); in \
         process, of this whole process (after `malloc_trim`): what the connections, the \
         instance's memory growth and host-side buffers added. wrk's `--timeout` counts only \
         requests older than the timeout while the run lasts: a server that stalls shows as a \
         low rate, not necessarily as timeouts."
            .to_owned(),
        match concurrency {
            Concurrency::AsNeeded => {
                "Engine: as `wasock run` picks it (`wasock::compile_component`), for both hosts: \
                 a WASI 0.2 guest compiles on an engine without Wasmtime's concurrency support, \
                 whose host calls skip its per-call task bookkeeping."
            }
            Concurrency::On => {
                "Engine: Wasmtime's default, with concurrency support (`--http-concurrency on`), \
                 for both hosts: every host call pays Wasmtime's per-call task bookkeeping."
            }
        }
        .to_owned(),
    ]
}

/// The six rows of one (method, connection count).
fn rows_for(prefix: &str, series: &[Series; 3]) -> Vec<Row> {
    vec![
        row(
            &format!("{prefix}: requests/s"),
            Better::Higher,
            series,
            |s| field(s, "rps_milli", 1e-3),
        ),
        row(
            &format!("{prefix}: p50 latency, ms"),
            Better::Lower,
            series,
            |s| field(s, "p50_ns", 1e-6),
        ),
        row(
            &format!("{prefix}: p99 latency, ms"),
            Better::Lower,
            series,
            |s| field(s, "p99_ns", 1e-6),
        ),
        row(
            &format!("{prefix}: errors + timeouts"),
            Better::Lower,
            series,
            |s| {
                s.full
                    .iter()
                    .map(|x| {
                        ["connect", "read", "write", "timeout", "non_2xx"]
                            .iter()
                            .map(|k| x.report.fields.get(*k).copied().unwrap_or(0))
                            .sum::<u64>() as f64
                    })
                    .collect()
            },
        ),
        row(
            &format!("{prefix}: server CPU µs per request"),
            Better::Lower,
            series,
            |s| cpu_per_unit(s, 1.0),
        ),
        row(
            &format!("{prefix}: RSS growth under load, MB"),
            Better::Lower,
            series,
            |s| field(s, "rss_bytes", 1e-6),
        ),
    ]
}

/// A field of the full runs' reports, times `scale`.
fn field(s: &Series, key: &str, scale: f64) -> Vec<f64> {
    s.full
        .iter()
        .filter_map(|x| x.report.fields.get(key).map(|v| *v as f64 * scale))
        .collect()
}

/// A note for every run whose wrk counted errors, timeouts or non-2xx responses, or whose
/// server failed an accept.
fn error_notes(label: &str, series: &[Series; 3], reps: usize) -> Vec<String> {
    let mut notes = Vec::new();
    for (i, mode) in Mode::ALL.into_iter().enumerate() {
        for (rep, x) in series[i].full.iter().enumerate() {
            let get = |k: &str| x.report.fields.get(k).copied().unwrap_or(0);
            let keys = [
                "connect",
                "read",
                "write",
                "timeout",
                "non_2xx",
                "accept_errors",
                "quit_unanswered",
            ];
            if keys.iter().all(|k| get(k) == 0) {
                continue;
            }
            let quit = if get("quit_unanswered") > 0 {
                " The server did not answer `GET /quit` (it stopped later, by itself)."
            } else {
                ""
            };
            notes.push(format!(
                "`{label}` on {} (run {} of {reps}): wrk connect {}, read {}, write {}, timeout \
                 {}, non-2xx {}; server accept errors {}, connections ended by an error {}.{quit}",
                mode.name(),
                rep + 1,
                get("connect"),
                get("read"),
                get("write"),
                get("timeout"),
                get("non_2xx"),
                get("accept_errors"),
                get("conn_errors"),
            ));
        }
    }
    notes
}

/// One server run in `mode`; with `load`, under wrk.
fn one(http: &Http<'_>, mode: Mode, load: Option<(Method, u32)>) -> Result<Sample> {
    let addr = free_port()?;
    let args = http.server.args(addr, http.duration + SERVER_SLACK);
    let (out, driven) = match mode {
        Mode::Native if http.server == Server::Raw => bail!("raw-http-server has no native build"),
        Mode::Native => native(http, &args, addr, load)?,
        _ => in_process(http, mode, &args, addr, load)?,
    };
    let bench = http.server.summary(&out)?;
    let mut fields = bench.fields;
    fields.insert("rss_bytes".to_owned(), driven.rss);
    fields.insert(
        "quit_unanswered".to_owned(),
        u64::from(driven.quit_unanswered),
    );
    let mut elapsed = bench.elapsed;
    if let Some(w) = &driven.wrk {
        elapsed = w.elapsed;
        fields.insert("rps_milli".to_owned(), (w.requests_per_sec * 1e3) as u64);
        fields.insert("p50_ns".to_owned(), w.p50.as_nanos() as u64);
        fields.insert("p99_ns".to_owned(), w.p99.as_nanos() as u64);
        fields.insert("wrk_requests".to_owned(), w.requests);
        for (k, v) in [
            ("connect", w.errors.connect),
            ("read", w.errors.read),
            ("write", w.errors.write),
            ("timeout", w.errors.timeout),
            ("non_2xx", w.non_2xx),
        ] {
            fields.insert(k.to_owned(), v);
        }
        if bench.units < w.requests {
            bail!(
                "the server answered {} requests, wrk counted {}",
                bench.units,
                w.requests
            );
        }
    }
    let wrk_cpu = driven.wrk.as_ref().map_or(Duration::ZERO, |w| w.cpu);
    let cpu = match mode {
        // Natively the children's CPU includes wrk's, reaped meanwhile.
        Mode::Native => out.cpu.saturating_sub(wrk_cpu),
        _ => out.cpu,
    };
    Ok(Sample {
        report: Report {
            units: bench.units,
            elapsed,
            fields,
        },
        cpu,
        peer: Default::default(),
    })
}

/// What the harness measured while the server ran.
struct Driven {
    wrk: Option<wrk::Report>,
    /// The server did not answer `GET /quit` (it stopped later: a late quit or its time limit).
    quit_unanswered: bool,
    /// Growth of the server's peak RSS under load over its RSS once listening, bytes.
    rss: u64,
}

/// The wasm modes: the server on a thread of its own, driven from this one.
fn in_process(
    http: &Http<'_>,
    mode: Mode,
    args: &[String],
    addr: SocketAddr,
    load: Option<(Method, u32)>,
) -> Result<(RunOutput, Driven)> {
    std::thread::scope(|s| {
        let server = std::thread::Builder::new()
            .name("http-server".to_owned())
            .spawn_scoped(s, || http.runner.run(mode, args))
            .context("spawning the server thread")?;
        let driven = drive(http, addr, load, &mut || !server.is_finished(), None);
        // Stop the server whatever happened, so that the thread ends.
        let quit = quit(addr);
        let out = server
            .join()
            .map_err(|_| anyhow!("the server thread panicked"))??;
        Ok((out, with_quit(driven?, quit)))
    })
}

/// Natively: the server (only `guests/bench-http` has a native build) as a child process.
fn native(
    http: &Http<'_>,
    args: &[String],
    addr: SocketAddr,
    load: Option<(Method, u32)>,
) -> Result<(RunOutput, Driven)> {
    let cpu0 = cpu::children();
    let t0 = Instant::now();
    let mut child = Command::new(http.native)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", http.native.display()))?;
    let pid = child.id();
    let driven = drive(
        http,
        addr,
        load,
        &mut || matches!(child.try_wait(), Ok(None)),
        Some(pid),
    );
    let quit = quit(addr);
    let status = wait_child(&mut child, EXIT_TIMEOUT);
    let cpu = cpu::children().saturating_sub(cpu0);
    let wall = t0.elapsed();
    let output = child.wait_with_output()?;
    let status = status?;
    let driven = with_quit(driven?, quit);
    if !status.success() {
        bail!(
            "native {args:?} exited with {status}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    Ok((RunOutput { stdout, cpu, wall }, driven))
}

/// A server that ran its load but missed `GET /quit` still counts: it is named in a note.
fn with_quit(driven: Driven, quit: Result<()>) -> Driven {
    Driven {
        quit_unanswered: quit.is_err(),
        ..driven
    }
}

/// Waits at most `limit` for `child`, then kills it.
fn wait_child(child: &mut Child, limit: Duration) -> Result<std::process::ExitStatus> {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if t0.elapsed() > limit {
            child.kill()?;
            child.wait()?;
            bail!("the native server did not exit within {limit:?} of GET /quit");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits for the server, checks both routes once, runs wrk when asked, and measures how much
/// the peak RSS of process `pid` (this one for `None`) grew over its RSS once listening.
fn drive(
    http: &Http<'_>,
    addr: SocketAddr,
    load: Option<(Method, u32)>,
    alive: &mut dyn FnMut() -> bool,
    pid: Option<u32>,
) -> Result<Driven> {
    wait_listening(addr, alive)?;
    let hello = request(addr, "GET", "/", b"")?;
    if hello != http.server.hello().as_bytes() {
        bail!("GET / answered {:?}", String::from_utf8_lossy(&hello));
    }
    let body: Vec<u8> = (0..POST_BODY).map(|i| b'a' + (i % 26) as u8).collect();
    if request(addr, "POST", "/echo", &body)? != body {
        bail!("POST /echo did not echo its {POST_BODY}-byte body");
    }
    if pid.is_none() {
        // This process's free heap goes back to the system first, so that growth shows.
        heap::trim();
    }
    reset_peak_rss(pid);
    let idle = heap::status_bytes(pid, "VmRSS").unwrap_or(0);
    let wrk = match load {
        None => None,
        Some((method, connections)) => {
            let (url, script) = match method {
                Method::Get => (format!("http://{addr}/"), None),
                Method::Post => (format!("http://{addr}/echo"), Some(http.script)),
            };
            Some(wrk::run(&wrk::Load {
                url: &url,
                connections,
                threads: WRK_THREADS,
                duration: http.duration,
                timeout: WRK_TIMEOUT,
                script,
            })?)
        }
    };
    let peak = heap::status_bytes(pid, "VmHWM").unwrap_or(0);
    Ok(Driven {
        wrk,
        quit_unanswered: false,
        rss: peak.saturating_sub(idle),
    })
}

/// A loopback address whose port was free a moment ago.
fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// Connects until the server listens (an empty connection, which it closes on end-of-stream).
fn wait_listening(addr: SocketAddr, alive: &mut dyn FnMut() -> bool) -> Result<()> {
    let t0 = Instant::now();
    while t0.elapsed() < READY_TIMEOUT {
        if TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_ok() {
            return Ok(());
        }
        if !alive() {
            bail!("the server exited before listening on {addr}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("the server did not listen on {addr} within {READY_TIMEOUT:?}")
}

/// One HTTP/1.1 request on its own connection (`Connection: close`); the response body.
fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .with_context(|| format!("reading the answer to {method} {path}"))?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("{method} {path}: no complete response head"))?;
    let status = response.split(|b| *b == b'\n').next().unwrap_or_default();
    if !status.starts_with(b"HTTP/1.1 200") {
        bail!(
            "{method} {path} answered {:?}",
            String::from_utf8_lossy(status).trim()
        );
    }
    Ok(response[split + 4..].to_vec())
}

/// `GET /quit`: the server answers and stops. A server still busy with the load's last
/// connections may miss an attempt: up to [`QUIT_TRIES`].
fn quit(addr: SocketAddr) -> Result<()> {
    let mut last = None;
    for _ in 0..QUIT_TRIES {
        match request(addr, "GET", "/quit", b"") {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("no GET /quit attempt")))
}

/// Resets the peak RSS (`VmHWM`) of process `pid` (this one for `None`) to its current RSS
/// (Linux `clear_refs`, value 5).
fn reset_peak_rss(pid: Option<u32>) {
    let path = pid.map_or_else(
        || "/proc/self/clear_refs".to_owned(),
        |p| format!("/proc/{p}/clear_refs"),
    );
    // Failure leaves the old peak, which shows as a larger figure, never a smaller one.
    let _ = std::fs::write(path, "5");
}

#[cfg(test)]
mod tests {
    use super::raw_summary;

    #[test]
    fn raw_http_server_summary() {
        let out = "listening 127.0.0.1:4000\nraw-http-server: served 1234 requests on 1002 \
                   connections (stop: quit, accept errors 0, stream errors 7)\n";
        let r = raw_summary(out).unwrap();
        assert_eq!(r.units, 1234);
        assert_eq!(r.fields["conns"], 1002);
        assert_eq!(r.fields["accept_errors"], 0);
        assert_eq!(r.fields["conn_errors"], 7);
        assert!(raw_summary("listening 127.0.0.1:4000\n").is_err());
    }
}
