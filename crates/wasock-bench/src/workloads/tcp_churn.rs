//! TCP connection churn: connect, exchange 1 KiB each way, close; one connection at a time.

use super::{Ctx, alternate, args, cpu_per_unit, failure_notes, rate, row, sample, setup_row};
use crate::peer;
use crate::report::{Better, Table};
use anyhow::Result;

pub(crate) fn run(ctx: &Ctx<'_>) -> Result<Table> {
    let n = ctx.params.churn_count;
    let series = alternate(ctx, "tcp-churn", n, |mode, units| {
        let peer = peer::tcp_churn(units)?;
        let a = args(&[&"tcp-churn", &peer.addr, &units]);
        sample(ctx.runner, mode, Some(peer), &a)
    })?;
    Ok(Table {
        title: format!("TCP connection churn ({n} connections)"),
        notes: [
            vec![
            "Per connection the guest connects to a native server thread, writes 1 KiB, reads the \
             1 KiB echo and closes; the server then reads end-of-stream and closes. Sequential."
                .to_owned(),
        ],
            failure_notes(&series),
        ]
        .concat(),
        rows: vec![
            row("connections/s", Better::Higher, &series, |s| rate(s, 1.0)),
            row("CPU µs per connection", Better::Lower, &series, |s| {
                cpu_per_unit(s, 1.0)
            }),
            setup_row(&series),
        ],
    })
}
