//! TCP connection churn: connect, exchange 1 KiB each way, close; one connection at a time.

use super::{
    Ctx, alternate_in, args, cpu_per_unit, failure_notes_in, rate, row_in, sample_mode,
    setup_row_in,
};
use crate::peer;
use crate::report::{Better, Table};
use crate::runner::Mode;
use anyhow::Result;

pub(crate) fn run(ctx: &Ctx<'_>) -> Result<Table> {
    run_in(ctx, "tcp-churn", Mode::ALL)
}

/// [`run`] in the modes `order` (`label` names the workload in the progress lines).
pub(crate) fn run_in<const N: usize>(
    ctx: &Ctx<'_>,
    label: &str,
    order: [Mode; N],
) -> Result<Table> {
    let n = ctx.params.churn_count;
    let series = alternate_in(ctx, label, n, order, &order, |mode, units| {
        let peer = peer::tcp_churn(units)?;
        let a = args(&[&"tcp-churn", &peer.addr, &units]);
        sample_mode(ctx, mode, Some(peer), &a)
    })?;
    Ok(Table {
        title: format!("TCP connection churn ({n} connections)"),
        notes: [
            vec![
            "Per connection the guest connects to a native server thread, writes 1 KiB, reads the \
             1 KiB echo and closes; the server then reads end-of-stream and closes. Sequential."
                .to_owned(),
        ],
            failure_notes_in(order, &series),
        ]
        .concat(),
        rows: vec![
            row_in("connections/s", Better::Higher, order, &series, |s| {
                rate(s, 1.0)
            }),
            row_in(
                "CPU µs per connection",
                Better::Lower,
                order,
                &series,
                |s| cpu_per_unit(s, 1.0),
            ),
            setup_row_in(order, &series),
        ],
    })
}
