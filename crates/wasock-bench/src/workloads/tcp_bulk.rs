//! TCP bulk, one way: guest → native sink (`tcp-send`) and native source → guest (`tcp-recv`).
//! MB/s by the guest's clock and CPU µs per MB (MB = 10^6 bytes).

use super::{
    Ctx, Series, alternate, args, cpu_per_unit, failure_notes, rate, row, sample, setup_row,
};
use crate::peer;
use crate::report::{Better, Table};
use anyhow::{Result, bail};

/// Guest → native sink.
pub(crate) fn send(ctx: &Ctx<'_>) -> Result<Table> {
    let n = ctx.params.bulk_bytes;
    let series = alternate(ctx, "tcp-send", n, |mode, units| {
        let peer = peer::tcp_sink()?;
        let a = args(&[&"tcp-send", &peer.addr, &units]);
        let s = sample(ctx.runner, mode, Some(peer), &a)?;
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
        &series,
    ))
}

/// Native source → guest.
pub(crate) fn recv(ctx: &Ctx<'_>) -> Result<Table> {
    let n = ctx.params.bulk_bytes;
    let series = alternate(ctx, "tcp-recv", n, |mode, units| {
        let peer = peer::tcp_source()?;
        let a = args(&[&"tcp-recv", &peer.addr, &units]);
        let s = sample(ctx.runner, mode, Some(peer), &a)?;
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
        &series,
    ))
}

/// Said under both bulk tables.
const LOOPBACK_NOTE: &str = "On loopback the kernel's TCP work for both ends runs partly in \
    the sender's and partly in the receiver's context, so CPU per MB includes a share of the \
    peer's kernel work that varies with scheduling; compare columns within one table.";

fn table(title: String, note: &str, series: &[Series; 3]) -> Table {
    Table {
        title,
        notes: [
            vec![note.to_owned(), LOOPBACK_NOTE.to_owned()],
            failure_notes(series),
        ]
        .concat(),
        rows: vec![
            row("MB/s", Better::Higher, series, |s| rate(s, 1e6)),
            row("CPU µs per MB", Better::Lower, series, |s| {
                cpu_per_unit(s, 1e6)
            }),
            setup_row(series),
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
