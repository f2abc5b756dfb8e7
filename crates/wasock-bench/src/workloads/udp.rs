//! UDP: 64-byte datagrams, one `send_to` per datagram as Rust std sends them, to a native sink.

use super::{
    Ctx, alternate, args, cpu_per_unit, failure_notes, loss_percent, rate, row, sample, setup_row,
};
use crate::peer;
use crate::report::{Better, Table};
use anyhow::Result;
use std::time::Duration;

/// The sink gives up after this long in any case.
const SINK_DEADLINE: Duration = Duration::from_secs(200);

pub(crate) fn run(ctx: &Ctx<'_>) -> Result<Table> {
    let n = ctx.params.udp_count;
    let series = alternate(ctx, "udp-send", n, |mode, units| {
        let peer = peer::udp_sink(SINK_DEADLINE)?;
        let a = args(&[&"udp-send", &peer.addr, &units]);
        sample(ctx.runner, mode, Some(peer), &a)
    })?;
    Ok(Table {
        title: format!("UDP send, 64-byte datagrams ({n} datagrams)"),
        notes: [
            vec![
            "The guest binds 127.0.0.1:0 and sends with `send_to`, one datagram per call, as fast \
             as the calls return; a native thread receives (4 MiB receive buffer, capped by \
             `net.core.rmem_max`) and counts. Rate: sends by the guest's clock; loss: datagrams \
             the sink did not count."
                .to_owned(),
        ],
            failure_notes(&series),
        ]
        .concat(),
        rows: vec![
            row("datagrams/s sent", Better::Higher, &series, |s| {
                rate(s, 1.0)
            }),
            row("loss, %", Better::Lower, &series, |s| {
                s.full
                    .iter()
                    .filter(|x| x.report.units > 0)
                    .map(|x| loss_percent(x.report.units, x.peer.count))
                    .collect()
            }),
            row("CPU µs per datagram", Better::Lower, &series, |s| {
                cpu_per_unit(s, 1.0)
            }),
            setup_row(&series),
        ],
    })
}
