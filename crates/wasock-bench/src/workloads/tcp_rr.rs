//! TCP request/response: 64-byte ping-pong on one connection with a native echo thread.

use super::{
    Ctx, alternate_in, args, cpu_per_unit, failure_notes_in, field_us, rate, row_in, sample_mode,
    setup_row_in,
};
use crate::peer;
use crate::report::{Better, Table};
use crate::runner::Mode;
use anyhow::{Result, bail};

pub(crate) fn run(ctx: &Ctx<'_>) -> Result<Table> {
    run_in(ctx, "tcp-rr", Mode::ALL)
}

/// [`run`] in the modes `order` (`label` names the workload in the progress lines).
pub(crate) fn run_in<const N: usize>(
    ctx: &Ctx<'_>,
    label: &str,
    order: [Mode; N],
) -> Result<Table> {
    let n = ctx.params.rr_count;
    let series = alternate_in(ctx, label, n, order, &order, |mode, units| {
        let peer = peer::tcp_echo()?;
        let a = args(&[&"tcp-rr", &peer.addr, &units]);
        let s = sample_mode(ctx, mode, Some(peer), &a)?;
        if s.peer.count != s.report.units {
            bail!(
                "{}: the guest counted {} round trips, the echo {}",
                mode.name(),
                s.report.units,
                s.peer.count
            );
        }
        Ok(s)
    })?;
    Ok(Table {
        title: format!("TCP request/response, 64 bytes ({n} round trips)"),
        notes: [
            vec![
            "The guest writes 64 bytes and reads the 64-byte echo, one round trip at a time, on \
             one connection to a native echo thread (Nagle off on the echo side). Latency: the \
             guest's clock around each round trip; the p50/p99 cells summarise the per-run \
             percentiles."
                .to_owned(),
        ],
            failure_notes_in(order, &series),
        ]
        .concat(),
        rows: vec![
            row_in("round trips/s", Better::Higher, order, &series, |s| {
                rate(s, 1.0)
            }),
            row_in("p50 latency, µs", Better::Lower, order, &series, |s| {
                field_us(s, "p50_ns")
            }),
            row_in("p99 latency, µs", Better::Lower, order, &series, |s| {
                field_us(s, "p99_ns")
            }),
            row_in(
                "CPU µs per round trip",
                Better::Lower,
                order,
                &series,
                |s| cpu_per_unit(s, 1.0),
            ),
            setup_row_in(order, &series),
        ],
    })
}
