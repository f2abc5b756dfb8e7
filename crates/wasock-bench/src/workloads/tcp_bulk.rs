//! TCP bulk, one way: guest → native sink (`tcp-send`) and native source → guest (`tcp-recv`).
//! MB/s by the guest's clock and CPU µs per MB (MB = 10^6 bytes).

use super::{
    Ctx, Series, alternate_in, args, cpu_per_unit, failure_notes_in, rate, row_in, sample_mode,
    setup_row_in,
};
use crate::peer;
use crate::report::{Better, Table};
use crate::runner::Mode;
use anyhow::{Result, bail};

/// Guest → native sink.
pub(crate) fn send(ctx: &Ctx<'_>) -> Result<Table> {
    send_in(ctx, "tcp-send", Mode::ALL)
}

/// [`send`] in the modes `order` (`label` names the workload in the progress lines).
pub(crate) fn send_in<const N: usize>(
    ctx: &Ctx<'_>,
    label: &str,
    order: [Mode; N],
) -> Result<Table> {
    let n = ctx.params.bulk_bytes;
    let series = alternate_in(ctx, label, n, order, &order, |mode, units| {
        let peer = peer::tcp_sink()?;
        let a = args(&[&"tcp-send", &peer.addr, &units]);
        let s = sample_mode(ctx, mode, Some(peer), &a)?;
        if s.peer.count != s.report.units {
            bail!(
                "{}: the guest sent {} bytes, the sink got {}",
                mode.name(),
                s.report.units,
                s.peer.count
            );
        }
        Ok(s)
    })?;
    Ok(table(
        format!("TCP bulk, guest → native sink ({})", size(n)),
        "The guest connects to a native sink thread and writes in 64 KiB `write_all` calls, \
         then half-closes; the sink reads with a 64 KiB buffer and answers with its byte count. \
         Time: the guest's write loop until the count arrives.",
        order,
        &series,
    ))
}

/// Native source → guest.
pub(crate) fn recv(ctx: &Ctx<'_>) -> Result<Table> {
    recv_in(ctx, "tcp-recv", Mode::ALL)
}

/// [`recv`] in the modes `order`.
pub(crate) fn recv_in<const N: usize>(
    ctx: &Ctx<'_>,
    label: &str,
    order: [Mode; N],
) -> Result<Table> {
    let n = ctx.params.bulk_bytes;
    let series = alternate_in(ctx, label, n, order, &order, |mode, units| {
        let peer = peer::tcp_source()?;
        let a = args(&[&"tcp-recv", &peer.addr, &units]);
        let s = sample_mode(ctx, mode, Some(peer), &a)?;
        if s.peer.count != s.report.units {
            bail!(
                "{}: the source sent {} bytes, the guest got {}",
                mode.name(),
                s.peer.count,
                s.report.units
            );
        }
        Ok(s)
    })?;
    Ok(table(
        format!("TCP bulk, native source → guest ({})", size(n)),
        "The guest connects to a native source thread, asks for the bytes (8-byte request) and \
         reads with a 64 KiB buffer until end-of-stream; the source writes 64 KiB chunks. Time: \
         from the request to end-of-stream.",
        order,
        &series,
    ))
}

/// Said under both bulk tables.
const LOOPBACK_NOTE: &str = "On loopback the kernel's TCP work for both ends runs partly in \
    the sender's and partly in the receiver's context, so CPU per MB includes a share of the \
    peer's kernel work that varies with scheduling; compare columns within one table.";

fn table<const N: usize>(
    title: String,
    note: &str,
    order: [Mode; N],
    series: &[Series; N],
) -> Table {
    Table {
        title,
        notes: [
            vec![note.to_owned(), LOOPBACK_NOTE.to_owned()],
            failure_notes_in(order, series),
        ]
        .concat(),
        rows: vec![
            row_in("MB/s", Better::Higher, order, series, |s| rate(s, 1e6)),
            row_in("CPU µs per MB", Better::Lower, order, series, |s| {
                cpu_per_unit(s, 1e6)
            }),
            setup_row_in(order, series),
        ],
    }
}

/// `1 GiB`, `64 MiB`, or bytes.
pub(crate) fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}
