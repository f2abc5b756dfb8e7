//! Scale: one instance holding many idle TCP connections at once (10 000), the guest's end
//! opened by `connect` in one table half and by `accept` in the other; host bytes per
//! connection, time to establish them, CPU per connection.
//!
//! The guest's peer is a native child process (`bench-guest hold-listen` / `hold-dial`), so that
//! the harness process holds only the guest's sockets (10 000 fds, with the fd limit raised to
//! its hard limit). The guest and the harness talk over a control connection (the protocol is in
//! `guests/bench`'s documentation): the harness takes its "before" figures when the guest is
//! ready, its "after" figures when the guest says it holds its connections, and lets it go on.

use super::{
    Ctx, Sample, Series, alternate, args, cpu_per_unit, failure_notes, row, set_signed,
    signed_per_unit,
};
use crate::child::Child;
use crate::peer::{self, PeerReport};
use crate::report::{Better, Row, Table};
use crate::runner::{Mode, Setup};
use crate::{cpu, heap};
use anyhow::{Context, Result, anyhow, bail};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;
use wasock::limits::Limits;

/// How long a native listening peer may take to print its address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one step of the control protocol may take (the guest's loop stops at 120 s).
const STEP_TIMEOUT: Duration = Duration::from_secs(150);
/// How long a peer may take to exit once its stdin closed.
const PEER_EXIT: Duration = Duration::from_secs(60);
/// File descriptors the harness process needs besides the guest's connections.
const FD_MARGIN: u64 = 256;

/// Which end of the connections the guest holds.
#[derive(Clone, Copy, Debug)]
enum Side {
    /// The guest connects to a native listener.
    Connect,
    /// The guest accepts from a native dialer.
    Accept,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Connect => "connect",
            Side::Accept => "accept",
        }
    }
}

pub(crate) fn run(ctx: &Ctx<'_>) -> Result<Table> {
    let n = ctx.params.scale_count;
    // This process and its children (native guests, peers): up to the hard limit.
    let limit = wasock_support::raise_open_file_limit(u64::MAX)
        .context("raising the open-file limit (RLIMIT_NOFILE)")?;
    if limit < n + FD_MARGIN {
        bail!(
            "the fd limit ({limit}) is below the {} this workload needs",
            n + FD_MARGIN
        );
    }
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for side in [Side::Connect, Side::Accept] {
        let label = format!("scale {}", side.name());
        let series = alternate(ctx, &label, n, |mode, units| hold(ctx, side, mode, units))?;
        failures.extend(failure_notes(&series));
        rows.extend(side_rows(side, n, &series));
    }
    Ok(Table {
        title: format!("Scale: {n} idle TCP connections held by one instance"),
        notes: [
            vec![
                format!(
                    "`connect` rows: the guest (`bench-guest hold-connect`, Rust std) opens {n} \
                     connections one after another to a native listener in a child process and \
                     holds them. `accept` rows: the guest listens and accepts {n} connections \
                     from a native dialer in a child process (kept at most 96 connections ahead \
                     of the guest's accepts, so that the guest's accept queue never overflows) \
                     and holds them. The guest holds the connections idle while the harness \
                     measures, then closes them. Native: the native build of the same program as \
                     a child process. The fd limit is raised to its hard limit ({limit}); \
                     wasock's socket limit to {} (`wasmtime-wasi` has none).",
                    n + 16
                ),
                "Host heap bytes per connection: the growth of the harness's live heap from \
                 the guest's `ready` (after its set-up) to its `held` (all connections open), \
                 counted by a counting global allocator over the system allocator (bytes \
                 requested; malloc's own per-block overhead excluded), divided by the \
                 connections: what the host (wasmtime, the WASI implementation, tokio) keeps per \
                 idle connection. The wasm guest's own memory is not on this heap; no native \
                 figure (a native program has no host). Resident memory per connection: the \
                 growth of `RssAnon` (anonymous resident memory: heap, stacks, wasm linear \
                 memory) of the process the guest runs in over the same interval, after \
                 `malloc_trim(0)` in process: host and guest together in process, the program \
                 itself natively. Neither includes the kernel's memory for a socket, which is the \
                 same for all three."
                    .to_owned(),
                "Time to establish: the guest's clock around its connect or accept loop. The \
                 native listening peer raises its backlog to 4096 (std listens with 128, and a \
                 sequential dialer that outruns an acceptor losing its CPU for a moment would pay \
                 a 1 s SYN retransmit per overflow). After measuring, the listening end closes \
                 first, so that no run leaves `TIME_WAIT` sockets on ephemeral ports for the next \
                 one's connects to search past. CPU per connection: (CPU of the run − CPU of a \
                 0-connection run) / connections: open, hold, close, the guest side only (the \
                 peer is another process)."
                    .to_owned(),
            ],
            failures,
        ]
        .concat(),
        rows,
    })
}

fn side_rows(side: Side, n: u64, series: &[Series; 3]) -> Vec<Row> {
    let name = side.name();
    vec![
        row(
            &format!("`{name}`: host heap bytes per connection"),
            Better::Lower,
            series,
            |s| signed_per_unit(s, "heap_bytes"),
        ),
        row(
            &format!("`{name}`: resident memory (RssAnon) bytes per connection"),
            Better::Lower,
            series,
            |s| signed_per_unit(s, "rss_bytes"),
        ),
        row(
            &format!("`{name}`: time to establish {n} connections, ms"),
            Better::Lower,
            series,
            |s| {
                s.full
                    .iter()
                    .map(|x| x.report.elapsed.as_secs_f64() * 1e3)
                    .collect()
            },
        ),
        row(
            &format!("`{name}`: CPU µs per connection (open, hold, close)"),
            Better::Lower,
            series,
            |s| cpu_per_unit(s, 1.0),
        ),
    ]
}

/// What the control thread measured.
struct Measured {
    held: u64,
    /// Live-heap growth of this process (in-process runs).
    heap: Option<i64>,
    /// `RssAnon` growth of the guest's process.
    rss: Option<i64>,
    /// CPU time of the control thread.
    cpu: Duration,
}

/// One run: the peer, the control thread, the guest; then the peers let go.
fn hold(ctx: &Ctx<'_>, side: Side, mode: Mode, units: u64) -> Result<Sample> {
    let runner = ctx.runner;
    let (control, ctrl_addr) = peer::listen()?;
    let native = runner.native().to_owned();
    let mut listener_peer = None;
    let guest_args = match side {
        Side::Connect => {
            let mut peer = Child::spawn(&native, &args(&[&"hold-listen", &units]))?;
            let addr = peer.wait_line("LISTEN ", LISTEN_TIMEOUT)?;
            listener_peer = Some(peer);
            args(&[&"hold-connect", &ctrl_addr, &addr, &units])
        }
        Side::Accept => args(&[&"hold-accept", &ctrl_addr, &units]),
    };
    let in_process = mode.in_process();
    let controller = std::thread::Builder::new()
        .name("scale-control".to_owned())
        .spawn(move || control_loop(&control, in_process, listener_peer, native, units))
        .context("spawning the control thread")?;
    let setup = Setup {
        wasock_limits: Some(Limits {
            max_sockets: Some(units as usize + 16),
            ..Limits::default()
        }),
    };
    let out = match mode {
        Mode::Native => runner.run(mode, &guest_args),
        _ => runner.run_in_process_with(mode, runner.component(), &guest_args, &setup),
    };
    let controlled = controller
        .join()
        .map_err(|_| anyhow!("the control thread panicked"))?;
    let out = out?;
    let (measured, peer) = controlled?;
    peer.finish(PEER_EXIT)?;
    let mut report = out.report()?;
    if report.units != units || measured.held != units {
        bail!(
            "{}: the guest held {} of {units} connections",
            mode.name(),
            report.units
        );
    }
    if let Some(heap) = measured.heap {
        set_signed(&mut report, "heap_bytes", heap);
    }
    if let Some(rss) = measured.rss {
        set_signed(&mut report, "rss_bytes", rss);
    }
    let cpu = if in_process {
        out.cpu.saturating_sub(measured.cpu)
    } else {
        out.cpu
    };
    Ok(Sample {
        report,
        cpu,
        peer: PeerReport {
            count: measured.held,
            cpu: measured.cpu,
        },
    })
}

/// Stops the heap counter however the control loop ends.
struct CountingHeap;

impl Drop for CountingHeap {
    fn drop(&mut self) {
        heap::stop();
    }
}

/// The harness's side of the control protocol. The peer is the listener given (the connect
/// side) or a dialer started here once the guest's listener port is known (the accept side).
/// After measuring, the connect side's peer closes its ends first (so that no `TIME_WAIT` holds
/// an ephemeral port the next run's connects would have to search past), and the accept side's
/// guest does. The peer is returned unreaped, so that natively its CPU time never lands in the
/// guest's `RUSAGE_CHILDREN` window; the caller reaps it after the guest's run.
fn control_loop(
    control: &TcpListener,
    in_process: bool,
    listener_peer: Option<Child>,
    native: PathBuf,
    units: u64,
) -> Result<(Measured, Child)> {
    let mut stream = peer::accept(control)?;
    stream.set_read_timeout(Some(STEP_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let ready = read_line(&mut reader)?;
    let (pid, port) = match ready.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["ready", pid, port] => (pid.parse::<u32>()?, port.parse::<u16>()?),
        _ => bail!("control: expected `ready PID PORT`, got {ready:?}"),
    };
    let (mut peer, dialing) = match listener_peer {
        Some(peer) => (peer, false),
        None => {
            let addr = format!("127.0.0.1:{port}");
            let dialer = Child::spawn(&native, &args(&[&"hold-dial", &addr, &units]))?;
            (dialer, true)
        }
    };
    // The guest's process: this one (pid 0) or the native child.
    let process = (pid != 0).then_some(pid);
    if in_process {
        heap::trim();
    }
    let rss0 = heap::rss_anon(process);
    let counting = in_process.then(|| {
        heap::start();
        CountingHeap
    });
    send_line(&mut stream, "go")?;
    let held = loop {
        let line = read_line(&mut reader)?;
        if let Some(k) = line.strip_prefix("accepted ") {
            if let Some(stdin) = peer.stdin().filter(|_| dialing) {
                writeln!(stdin, "accepted {k}").context("passing progress to the dialer")?;
            }
            continue;
        }
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["held", n, _ns] => break n.parse::<u64>()?,
            _ => bail!("control: expected `held N NS`, got {line:?}"),
        }
    };
    let heap = counting.map(|c| {
        let growth = heap::growth();
        drop(c);
        growth
    });
    let rss1 = heap::rss_anon(process);
    if !dialing {
        peer.close_stdin();
        peer.wait_line("closed", PEER_EXIT)?;
    }
    send_line(&mut stream, "done")?;
    let rss = match (rss0, rss1) {
        (Some(a), Some(b)) => Some(b as i64 - a as i64),
        _ => None,
    };
    Ok((
        Measured {
            held,
            heap,
            rss,
            cpu: cpu::thread(),
        },
        peer,
    ))
}

fn read_line(reader: &mut BufReader<TcpStream>) -> Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line).context("control read")? == 0 {
        bail!("the guest closed the control connection");
    }
    Ok(line.trim_end().to_owned())
}

fn send_line(stream: &mut TcpStream, line: &str) -> Result<()> {
    stream
        .write_all(format!("{line}\n").as_bytes())
        .context("control write")
}
