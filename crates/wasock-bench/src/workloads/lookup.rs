//! Name lookup through Rust std's `to_socket_addrs`: an IP literal and `localhost`.

use super::{Ctx, Series, alternate, args, cpu_per_unit, failure_notes, rate, row, sample};
use crate::report::{Better, Row, Table};
use anyhow::Result;

pub(crate) fn run(ctx: &Ctx<'_>) -> Result<Table> {
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (host, n) in [
        ("127.0.0.1", ctx.params.lookup_literal_count),
        ("localhost", ctx.params.lookup_localhost_count),
    ] {
        let label = format!("lookup {host}");
        let series = alternate(ctx, &label, n, |mode, units| {
            sample(ctx.runner, mode, None, &args(&[&"lookup", &host, &units]))
        })?;
        failures.extend(failure_notes(&series));
        rows.extend(lookup_rows(host, n, &series));
    }
    Ok(Table {
        title: "Name lookup through std `to_socket_addrs`".to_owned(),
        notes: [
            vec![
            "The guest calls `(HOST, 80).to_socket_addrs()` in a loop and counts the addresses. \
             Rust std parses an IP literal itself, so the `127.0.0.1` rows never reach \
             `resolve-addresses` (they measure the guest alone); `localhost` goes through \
             `wasi:sockets/ip-name-lookup` on wasm and `getaddrinfo` natively."
                .to_owned(),
        ],
            failures,
        ]
        .concat(),
        rows,
    })
}

/// The two rows of a lookup table for `host`: lookups per second and CPU per lookup.
pub(super) fn lookup_rows(host: &str, n: u64, series: &[Series; 3]) -> [Row; 2] {
    [
        row(
            &format!("`{host}`: lookups/s ({n})"),
            Better::Higher,
            series,
            |s| rate(s, 1.0),
        ),
        row(
            &format!("`{host}`: CPU µs per lookup"),
            Better::Lower,
            series,
            |s| cpu_per_unit(s, 1.0),
        ),
    ]
}
