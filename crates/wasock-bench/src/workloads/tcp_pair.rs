//! TCP bulk, guest ↔ guest: two instances of the bench guest in one process, `tcp-sink`
//! listening and `tcp-send` writing to it, both on wasock or both on `wasmtime-wasi`; natively,
//! two processes of the native build. MB/s by the sender's clock, CPU µs per MB of both ends.

use super::tcp_bulk::size;
use super::{Ctx, Sample, alternate, args, cpu_per_unit, failure_notes, rate, row, setup_row};
use crate::child::Child;
use crate::cpu;
use crate::peer::PeerReport;
use crate::report::{Better, Table};
use crate::runner::{Mode, Setup, parse_report};
use anyhow::{Result, bail};
use std::time::Duration;

/// How long the receiving guest may take to print its address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// No guest of a pair may run longer than this.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

pub(crate) fn run(ctx: &Ctx<'_>) -> Result<Table> {
    let n = ctx.params.bulk_bytes;
    let series = alternate(ctx, "tcp-pair", n, |mode, units| {
        let s = pair(ctx, mode, units)?;
        if s.peer.count != s.report.units {
            bail!(
                "{}: the sender sent {} bytes, the receiver got {}",
                mode.name(),
                s.report.units,
                s.peer.count
            );
        }
        Ok(s)
    })?;
    Ok(Table {
        title: format!("TCP bulk, guest ↔ guest in one process ({})", size(n)),
        notes: [
            vec![
                "Two instances of the bench guest: `tcp-sink` listens on 127.0.0.1:0, accepts one \
                 connection and reads it with a 64 KiB buffer to end-of-stream, then answers with \
                 its byte count; `tcp-send` connects to it and writes in 64 KiB `write_all` calls, \
                 then half-closes. In process both are tasks of the harness's tokio runtime \
                 (`--runtime`; on the current-thread one they share a thread), both on wasock or both on `wasmtime-wasi`; natively two processes of \
                 the native build. Time: the sender's write loop until the count arrives. CPU: \
                 both ends (the whole process in process, both children natively)."
                    .to_owned(),
            ],
            failure_notes(&series),
        ]
        .concat(),
        rows: vec![
            row("MB/s", Better::Higher, &series, |s| rate(s, 1e6)),
            row("CPU µs per MB, both ends", Better::Lower, &series, |s| {
                cpu_per_unit(s, 1e6)
            }),
            setup_row(&series),
        ],
    })
}

/// One run: the receiver first, the sender once the receiver printed its address.
fn pair(ctx: &Ctx<'_>, mode: Mode, units: u64) -> Result<Sample> {
    let runner = ctx.runner;
    let sink_args = args(&[&"tcp-sink", &units]);
    let (sent, received, cpu) = match mode {
        Mode::Native => {
            let cpu0 = cpu::children();
            let mut sink = Child::spawn(runner.native(), &sink_args)?;
            let addr = sink.wait_line("LISTEN ", LISTEN_TIMEOUT)?;
            let sent = runner.run(mode, &args(&[&"tcp-send", &addr, &units]))?;
            let received = sink.finish(RUN_TIMEOUT)?;
            (sent.stdout, received, cpu::children().saturating_sub(cpu0))
        }
        _ => {
            let component = runner.component();
            let setup = Setup::default();
            let cpu0 = cpu::process();
            let sink = runner.spawn(mode, component, &sink_args, &setup)?;
            let sent = sink.wait_line("LISTEN ", LISTEN_TIMEOUT).and_then(|addr| {
                let send_args = args(&[&"tcp-send", &addr, &units]);
                runner
                    .spawn(mode, component, &send_args, &setup)?
                    .finish(RUN_TIMEOUT)
            });
            if sent.is_err() {
                sink.abort();
            }
            let received = sink.finish(RUN_TIMEOUT);
            let sent = sent?;
            (sent, received?, cpu::process().saturating_sub(cpu0))
        }
    };
    let received = parse_report(&received)?;
    Ok(Sample {
        report: parse_report(&sent)?,
        cpu,
        peer: PeerReport {
            count: received.units,
            cpu: Duration::ZERO,
        },
    })
}
