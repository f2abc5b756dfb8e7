//! The TCP workloads on WASI 0.3: `p3-tcp-send`, `p3-tcp-recv`, `p3-tcp-rr` and `p3-tcp-churn`
//! are `tcp-send`, `tcp-recv`, `tcp-rr` and `tcp-churn` (the same native peers, checks and
//! rows) in the four modes of [`Mode::P3`]: the 0.3 bench guest (`guests/bench-p3`) on wasock
//! and on stock `wasmtime-wasi`, then the 0.2 bench guest on wasock and natively, alternating.

use super::{Ctx, tcp_bulk, tcp_churn, tcp_rr};
use crate::report::Table;
use crate::runner::Mode;
use anyhow::Result;

/// What the 0.3 tables add to the 0.2 tables' notes.
const P3_NOTE: &str = "WASI 0.3: the first two columns run `guests/bench-p3`, a \
    `wasi:cli/command@0.3.0` speaking the same protocol on `wasi:sockets@0.3.0` streams (64 KiB \
    buffers read into and written from whole, reused), on wasock and on stock `wasmtime-wasi` 48 \
    (`p2::add_to_linker_async` + `p3::add_to_linker`, `run` as a concurrent call); the other two \
    run the 0.2 bench guest (Rust std) on wasock and natively, as the workload without `p3-` does.";

/// `p3-tcp-send`.
pub(crate) fn send(ctx: &Ctx<'_>) -> Result<Table> {
    tcp_bulk::send_in(ctx, "p3-tcp-send", Mode::P3).map(p3)
}

/// `p3-tcp-recv`.
pub(crate) fn recv(ctx: &Ctx<'_>) -> Result<Table> {
    tcp_bulk::recv_in(ctx, "p3-tcp-recv", Mode::P3).map(p3)
}

/// `p3-tcp-rr`.
pub(crate) fn rr(ctx: &Ctx<'_>) -> Result<Table> {
    tcp_rr::run_in(ctx, "p3-tcp-rr", Mode::P3).map(p3)
}

/// `p3-tcp-churn`.
pub(crate) fn churn(ctx: &Ctx<'_>) -> Result<Table> {
    tcp_churn::run_in(ctx, "p3-tcp-churn", Mode::P3).map(p3)
}

/// A 0.2 table made a 0.3 one: its title marked, the note on the columns first.
fn p3(mut table: Table) -> Table {
    table.title = format!("WASI 0.3 vs 0.2: {}", table.title);
    table.notes.insert(0, P3_NOTE.to_owned());
    table
}
