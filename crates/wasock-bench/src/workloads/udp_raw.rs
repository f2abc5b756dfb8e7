//! UDP batched through the raw bindings (`guests/bench-raw`): 64-byte datagrams, each `send`
//! carrying as many as `check-send` permitted, to a native sink and to a second instance that
//! takes them with `receive(64)`. No native column: raw bindings have no native build (the std
//! `udp-send` table has one).

use super::{
    Ctx, Sample, Series, alternate_modes, args, cpu_per_unit, failure_notes, loss_percent, rate,
    row, sample_of, setup_row,
};
use crate::cpu;
use crate::peer::{self, PeerReport};
use crate::report::{Better, Row, Table};
use crate::runner::{Mode, Setup, parse_report};
use anyhow::Result;
use std::time::Duration;

/// The sink gives up after this long in any case.
const SINK_DEADLINE: Duration = Duration::from_secs(200);
/// How long the receiving guest may take to print its address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// No guest of a pair may run longer than this.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// The modes a raw-binding guest runs in.
const WASM_MODES: [Mode; 2] = [Mode::Wasock, Mode::WasmtimeWasi];

pub(crate) fn run(ctx: &Ctx<'_>) -> Result<Table> {
    let n = ctx.params.udp_raw_count;
    let raw = ctx.raw()?;
    let to_sink = alternate_modes(ctx, "udp-raw → sink", n, &WASM_MODES, |mode, units| {
        let peer = peer::udp_sink(SINK_DEADLINE)?;
        let a = args(&[&"udp-send", &peer.addr, &units]);
        sample_of(ctx.runner, mode, Some(raw), Some(peer), &a)
    })?;
    let pair = alternate_modes(ctx, "udp-raw ↔ guest", n, &WASM_MODES, |mode, units| {
        guest_pair(ctx, mode, units)
    })?;
    let from_native = alternate_modes(ctx, "udp-raw ← native", n, &WASM_MODES, |mode, units| {
        native_to_guest(ctx, mode, units)
    })?;

    let mut rows = vec![
        row(
            "→ sink: datagrams/s sent",
            Better::Higher,
            &to_sink,
            |s| rate(s, 1.0),
        ),
        row("→ sink: loss, %", Better::Lower, &to_sink, loss),
        row(
            "→ sink: datagrams per `send` call",
            Better::Higher,
            &to_sink,
            per_send,
        ),
        row(
            "→ sink: CPU µs per datagram sent",
            Better::Lower,
            &to_sink,
            |s| cpu_per_unit(s, 1.0),
        ),
        row("↔ guest: datagrams/s sent", Better::Higher, &pair, |s| {
            rate(s, 1.0)
        }),
        row(
            "↔ guest: datagrams/s received",
            Better::Higher,
            &pair,
            received_rate,
        ),
        row("↔ guest: loss, %", Better::Lower, &pair, loss),
        row(
            "↔ guest: datagrams per `receive(64)` that returned some",
            Better::Higher,
            &pair,
            |s| per_receive(s, "recv_", |x| x.peer.count),
        ),
        row(
            "↔ guest: CPU µs per datagram sent, both ends",
            Better::Lower,
            &pair,
            |s| cpu_per_unit(s, 1.0),
        ),
    ];
    rows.extend([
        row(
            "← native: datagrams/s received",
            Better::Higher,
            &from_native,
            |s| rate(s, 1.0),
        ),
        row("← native: loss, %", Better::Lower, &from_native, |s| {
            s.full
                .iter()
                .filter(|x| x.peer.count > 0)
                .map(|x| loss_percent(x.peer.count, x.report.units))
                .collect()
        }),
        row(
            "← native: datagrams per `receive(64)` that returned some",
            Better::Higher,
            &from_native,
            |s| per_receive(s, "", |x| x.report.units),
        ),
        row(
            "← native: CPU µs per datagram received",
            Better::Lower,
            &from_native,
            |s| cpu_per_unit(s, 1.0),
        ),
    ]);
    let mut setup = setup_row(&to_sink);
    setup.metric = "→ sink: CPU of a 0-unit run (set-up only), ms".to_owned();
    rows.push(setup);
    let mut setup: Row = setup_row(&pair);
    setup.metric = "↔ guest: CPU of a 0-unit run (set-up only, both ends), ms".to_owned();
    rows.push(setup);

    Ok(Table {
        title: format!("UDP batched through the raw bindings, 64-byte datagrams ({n} datagrams)"),
        notes: [
            vec![
                "`bench-raw udp-send` binds 127.0.0.1:0 and sends on an unconnected stream, each \
                 datagram addressed: it asks `check-send`, builds that many datagrams (at most \
                 1024) and hands them all to one `send`; a permit of 0 waits on the stream's \
                 pollable. No pacing; a fixed count; then three `END` markers 20 ms apart. Rate: \
                 sends by the sender's clock."
                    .to_owned(),
                "→ sink: a native thread receives (4 MiB receive buffer, capped by \
                 `net.core.rmem_max`) and counts, as for `udp-send`. ↔ guest: a second instance, \
                 `bench-raw udp-recv` (same host, same process, a task of the same runtime) binds \
                 127.0.0.1:0, asks for a 4 MiB receive buffer and calls `receive(64)`, waiting on \
                 its pollable when a call returns nothing, until all arrived, an `END` came or \
                 2 s passed idle; its rate is what arrived over the time from its first to its \
                 last non-empty `receive`. Loss (what the receiver did not count) is reported, not \
                 an error. CPU of the pair: the whole process, both instances. ← native: the same \
                 receiving guest, flooded by a native thread that sends 64 datagrams per \
                 `send(2)` through UDP segmentation offload (`UDP_SEGMENT`; no pacing, the same \
                 count and `END` markers), so that the receiver, not its sender, sets the rate; \
                 CPU: the process minus the source thread."
                    .to_owned(),
                "On loopback the kernel delivers a datagram partly in its sender's context and \
                 partly in a softirq thread, as scheduling has it, so CPU per datagram includes a \
                 varying share of the receiving side's kernel work: compare the columns of one \
                 run. No native column: raw bindings build only for `wasm32-wasip2`. The std \
                 `udp-send` table above is the one with a native program (one `send_to` per \
                 datagram)."
                    .to_owned(),
            ],
            failure_notes(&to_sink),
            failure_notes(&pair),
            failure_notes(&from_native),
        ]
        .concat(),
        rows,
    })
}

/// Loss in % of what was sent: sent minus what the receiver counted.
fn loss(s: &Series) -> Vec<f64> {
    s.full
        .iter()
        .filter(|x| x.report.units > 0)
        .map(|x| loss_percent(x.report.units, x.peer.count))
        .collect()
}

/// Datagrams per `send` call of the sender.
fn per_send(s: &Series) -> Vec<f64> {
    s.full
        .iter()
        .filter_map(|x| {
            let sends = *x.report.fields.get("sends")?;
            (sends > 0).then(|| x.report.units as f64 / sends as f64)
        })
        .collect()
}

/// Datagrams per second the receiving guest took, over its first-to-last `receive`.
fn received_rate(s: &Series) -> Vec<f64> {
    s.full
        .iter()
        .filter_map(|x| {
            let ns = *x.report.fields.get("recv_ns")?;
            (ns > 0).then(|| x.peer.count as f64 / (ns as f64 / 1e9))
        })
        .collect()
}

/// Datagrams per `receive(64)` call that returned any: the receiver's `receives` and `empty`
/// fields (under `prefix`), and what it `received`.
fn per_receive(s: &Series, prefix: &str, received: impl Fn(&Sample) -> u64) -> Vec<f64> {
    s.full
        .iter()
        .filter_map(|x| {
            let calls = x.report.fields.get(&format!("{prefix}receives"))?;
            let empty = x.report.fields.get(&format!("{prefix}empty"))?;
            (calls > empty).then(|| received(x) as f64 / (calls - empty) as f64)
        })
        .collect()
}

/// One native → guest run: the receiving guest first, then a native source thread flooding it.
fn native_to_guest(ctx: &Ctx<'_>, mode: Mode, units: u64) -> Result<Sample> {
    let runner = ctx.runner;
    let raw = ctx.raw()?;
    let cpu0 = cpu::process();
    let receiver = runner.spawn(mode, raw, &args(&[&"udp-recv", &units]), &Setup::default())?;
    let source = receiver
        .wait_line("LISTEN ", LISTEN_TIMEOUT)
        .and_then(|addr| peer::udp_source(addr.parse()?, units));
    if source.is_err() {
        receiver.abort();
    }
    let received = receiver.finish(RUN_TIMEOUT);
    let source = source?.finish()?;
    let report = parse_report(&received?)?;
    let cpu = cpu::process()
        .saturating_sub(cpu0)
        .saturating_sub(source.cpu);
    Ok(Sample {
        report,
        cpu,
        peer: source,
    })
}

/// One guest → guest run: the receiver first, the sender once the receiver printed its address.
fn guest_pair(ctx: &Ctx<'_>, mode: Mode, units: u64) -> Result<Sample> {
    let runner = ctx.runner;
    let raw = ctx.raw()?;
    let setup = Setup::default();
    let cpu0 = cpu::process();
    let receiver = runner.spawn(mode, raw, &args(&[&"udp-recv", &units]), &setup)?;
    let sent = receiver
        .wait_line("LISTEN ", LISTEN_TIMEOUT)
        .and_then(|addr| {
            let send_args = args(&[&"udp-send", &addr, &units]);
            runner
                .spawn(mode, raw, &send_args, &setup)?
                .finish(RUN_TIMEOUT)
        });
    if sent.is_err() {
        receiver.abort();
    }
    let received = receiver.finish(RUN_TIMEOUT);
    let mut sent = parse_report(&sent?)?;
    let received = parse_report(&received?)?;
    let cpu = cpu::process().saturating_sub(cpu0);
    // The receiver's figures join the sender's report, under names of their own.
    let field = |k: &str| received.fields.get(k).copied().unwrap_or(0);
    for (key, value) in [
        ("recv_ns", field("ns")),
        ("recv_receives", field("receives")),
        ("recv_empty", field("empty")),
    ] {
        sent.fields.insert(key.to_owned(), value);
    }
    Ok(Sample {
        report: sent,
        cpu,
        peer: PeerReport {
            count: received.units,
            cpu: Duration::ZERO,
        },
    })
}
