//! The WASI 0.3 conformance guests (`raw-p3-tcp` and `raw-p3-lookup`, guests/raw-p3-*) on the
//! reference host: stock `wasmtime-wasi` 48's p3 sockets (tests/common/reference_p3.rs).
//!
//! The guests assert what `wasi:sockets@0.3.0` says, not what the reference does. They run
//! with `GUEST_CHECK_LOG=1`, so every check prints a record and a failed check does not stop
//! the guest; every check must pass except the reference's deviations from the WIT listed in
//! `tests/differences.toml` (the table 0.2's differential test reads), each with the WIT
//! sentence it breaks. A deviation that no longer shows fails the test too, so the table stays
//! true.

mod common;

use std::collections::BTreeMap;

use common::differences::{Entry, table};
use common::reference_p3::run_reference_p3;
use common::{Outcome, component, engine, expected_checks};

/// One check record of the guest: `check: NAME = OBSERVED => ok` or `=> FAILED: ...`.
struct Record {
    observed: String,
    ok: bool,
}

/// The check records of `stdout`, by check name (a name checked twice keeps a failure); the
/// number of records, and of failed ones.
fn records(stdout: &str) -> (BTreeMap<String, Record>, usize, usize) {
    let mut by_name: BTreeMap<String, Record> = BTreeMap::new();
    let (mut total, mut failed) = (0, 0);
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("check: ") else {
            continue;
        };
        let (head, outcome) = rest
            .rsplit_once(" => ")
            .unwrap_or_else(|| panic!("malformed check record: {line}"));
        let (name, observed) = head
            .split_once(" = ")
            .unwrap_or_else(|| panic!("malformed check record: {line}"));
        total += 1;
        let record = Record {
            observed: observed.to_string(),
            ok: outcome == "ok",
        };
        if !record.ok {
            failed += 1;
        }
        match by_name.get(name) {
            Some(old) if !old.ok => {}
            _ => {
                by_name.insert(name.to_string(), record);
            }
        }
    }
    (by_name, total, failed)
}

/// The table's entries for `guest` (tests/differences.toml), by check name.
fn deviating_checks(table: &[Entry], guest: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (i, e) in table.iter().enumerate().filter(|(_, e)| e.guest == guest) {
        assert_eq!(
            e.wasock, "passes",
            "a 0.3 entry's wasock answer is the WIT's: `passes`"
        );
        for check in &e.checks {
            out.insert(check.clone(), i);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_tcp_on_reference() {
    on_reference(wasock_guests::RAW_P3_TCP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_udp_on_reference() {
    on_reference(wasock_guests::RAW_P3_UDP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_lookup_on_reference() {
    on_reference(wasock_guests::RAW_P3_LOOKUP).await;
}

/// Runs the guest at `path` on the reference: every check must pass but those of
/// `deviations`, which must fail with the answer given there; the count of checks must be
/// the guest's in EXPECTED_CHECKS.
async fn on_reference(path: &str) {
    let run = run_reference_p3(path, &[], &[("GUEST_CHECK_LOG", "1")]).await;
    let (records, total, failed) = records(&run.stdout);
    let table = table();
    let by_check = deviating_checks(&table, &run.name);
    let deviations: BTreeMap<&String, &Entry> =
        by_check.iter().map(|(c, i)| (c, &table[*i])).collect();

    let mut problems = Vec::new();
    for (name, record) in &records {
        match (record.ok, deviations.get(name)) {
            (true, None) => {}
            (false, Some(d)) if record.observed == d.reference => {}
            (false, Some(d)) => problems.push(format!(
                "`{name}`: the reference answered {}, tests/differences.toml says {}",
                record.observed, d.reference
            )),
            (false, None) => problems.push(format!(
                "`{name}` failed on the reference ({}): a wrong check, or a deviation to \
                 list in tests/differences.toml with the WIT sentence it breaks",
                record.observed
            )),
            (true, Some(_)) => problems.push(format!(
                "`{name}` passes on the reference now: remove it from tests/differences.toml"
            )),
        }
    }
    for name in deviations.keys() {
        if !records.contains_key(*name) {
            problems.push(format!(
                "`{name}` (in tests/differences.toml) was not checked"
            ));
        }
    }
    assert!(problems.is_empty(), "{}\n{run}", problems.join("\n"));

    let want = expected_checks(&run.name);
    assert_eq!(
        total, want as usize,
        "{} ran {total} checks, EXPECTED_CHECKS (tests/common/mod.rs) says {want}\n{run}",
        run.name
    );
    let summary = if failed == 0 {
        format!("{}: {total} checks passed", run.name)
    } else {
        format!(
            "{}: {} checks passed, {failed} failed",
            run.name,
            total - failed
        )
    };
    assert!(
        run.stdout.lines().any(|l| l == summary),
        "no summary line `{summary}`\n{run}"
    );
    let want_exit = i32::from(failed > 0);
    assert!(
        matches!(run.result, Outcome::Exit(code) if code == want_exit),
        "the guest did not exit with {want_exit}\n{run}"
    );
    println!(
        "{} on the reference: {} of {total} checks pass; {failed} are its listed deviations \
         from the WIT:",
        run.name,
        total - failed
    );
    for d in table.iter().filter(|e| e.guest == run.name) {
        println!(
            "- {}: reference {}\n  WIT: {}\n  ({}) {}",
            d.checks.join(", "),
            d.reference,
            d.wit,
            d.source,
            d.note
        );
    }
}

/// Each guest is a `wasi:cli/command@0.3.0` and nothing else: it exports `wasi:cli/run@0.3.0`
/// only (no 0.2 `run` a host could pick instead), and imports the 0.3 sockets and clocks (and
/// std's 0.2 `wasi:cli` / `wasi:io`).
#[test]
fn raw_p3_guests_are_0_3_commands() {
    for (path, want) in [
        (wasock_guests::RAW_P3_TCP, "wasi:sockets/types@0.3.0"),
        (wasock_guests::RAW_P3_UDP, "wasi:sockets/types@0.3.0"),
        (
            wasock_guests::RAW_P3_LOOKUP,
            "wasi:sockets/ip-name-lookup@0.3.0",
        ),
    ] {
        assert_0_3_command(path, want);
    }
}

#[track_caller]
fn assert_0_3_command(path: &str, sockets: &str) {
    let ty = component(path).component_type();
    let exports: Vec<String> = ty.exports(engine()).map(|(n, _)| n.to_string()).collect();
    assert_eq!(exports, ["wasi:cli/run@0.3.0"], "{path}");
    let imports: Vec<String> = ty.imports(engine()).map(|(n, _)| n.to_string()).collect();
    for want in [sockets, "wasi:clocks/monotonic-clock@0.3.0"] {
        assert!(
            imports.iter().any(|n| n == want),
            "{path} does not import {want}; it imports {imports:#?}"
        );
    }
    assert!(
        !imports
            .iter()
            .any(|n| n.starts_with("wasi:sockets/") && !n.ends_with("@0.3.0")),
        "{path} imports a 0.2 sockets interface: {imports:#?}"
    );
}
