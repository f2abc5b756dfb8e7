//! `resolve-addresses` through the raw bindings (`guests/bench-raw lookup`): IP literals, which
//! Rust std parses itself and never sends to the host, and `localhost`. No native column.

use super::{Ctx, alternate_modes, args, failure_notes, sample_of};
use crate::report::Table;
use crate::runner::Mode;
use anyhow::Result;

pub(crate) fn run(ctx: &Ctx<'_>) -> Result<Table> {
    let raw = ctx.raw()?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (host, n) in [
        ("127.0.0.1", ctx.params.raw_lookup_count),
        ("::1", ctx.params.raw_lookup_count),
        ("localhost", ctx.params.lookup_localhost_count),
    ] {
        let label = format!("lookup-raw {host}");
        let modes = [Mode::Wasock, Mode::WasmtimeWasi];
        let series = alternate_modes(ctx, &label, n, &modes, |mode, units| {
            sample_of(
                ctx.runner,
                mode,
                Some(raw),
                None,
                &args(&[&"lookup", &host, &units]),
            )
        })?;
        failures.extend(failure_notes(&series));
        rows.extend(super::lookup::lookup_rows(host, n, &series));
    }
    Ok(Table {
        title: "`resolve-addresses` through the raw bindings".to_owned(),
        notes: [
            vec![
                "`bench-raw lookup HOST N` calls `resolve-addresses(HOST)` and then \
                 `resolve-next-address` until `none`, waiting on the stream's pollable while it \
                 answers `would-block`, N times; a lookup is the whole sequence, the stream \
                 dropped. IP literals must come back as they are, without a request; `localhost` \
                 is what each host makes of it (wasock: loopback in process, RFC 6761; \
                 `wasmtime-wasi`: the system resolver on a blocking thread). No native column: raw \
                 bindings build only for `wasm32-wasip2` (the std table above has `getaddrinfo`)."
                    .to_owned(),
            ],
            failures,
        ]
        .concat(),
        rows,
    })
}
