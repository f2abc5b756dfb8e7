//! TCP request/response: 64-byte ping-pong on one connection with a native echo thread.

use super::{
    Ctx, alternate, args, cpu_per_unit, failure_notes, field_us, rate, row, sample, setup_row,
};
use crate::peer;
use crate::report::{Better, Table};
use anyhow::{Result, bail};

pub(crate) fn run(ctx: &Ctx<'_>) -> Result<Table> {
    let n = ctx.params.rr_count;
    let series = alternate(ctx, "tcp-rr", n, |mode, units| {
        let peer = peer::tcp_echo()?;
        let a = args(&[&"tcp-rr", &peer.addr, &units]);
        let s = sample(ctx.runner, mode, Some(peer), &a)?;
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
            failure_notes(&series),
        ]
        .concat(),
        rows: vec![
            row("round trips/s", Better::Higher, &series, |s| rate(s, 1.0)),
            row("p50 latency, µs", Better::Lower, &series, |s| {
                field_us(s, "p50_ns")
            }),
            row("p99 latency, µs", Better::Lower, &series, |s| {
                field_us(s, "p99_ns")
            }),
            row("CPU µs per round trip", Better::Lower, &series, |s| {
                cpu_per_unit(s, 1.0)
            }),
            setup_row(&series),
        ],
    })
}
