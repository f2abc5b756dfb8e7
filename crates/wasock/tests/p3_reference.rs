//! The WASI 0.3 TCP conformance guest (`raw-p3-tcp`, guests/raw-p3-tcp) on the reference host:
//! stock `wasmtime-wasi` 48's p3 sockets (tests/common/reference_p3.rs).
//!
//! The guest asserts what `wasi:sockets/types@0.3.0` says, not what the reference does. It runs
//! with `GUEST_CHECK_LOG=1`, so every check prints a record and a failed check does not stop
//! it; every check must pass except the reference's deviations from the WIT listed in
//! [`DEVIATIONS`], each with the WIT sentence it breaks. A deviation that no longer shows
//! fails the test too, so the list stays true.

mod common;

use std::collections::BTreeMap;

use common::reference_p3::run_reference_p3;
use common::{Outcome, component, engine, expected_checks};

/// A way the reference answers against the WIT: the checks (each run for IPv4 and IPv6, so
/// named `v4: CHECK` and `v6: CHECK`), what the reference answers there, and the WIT sentence
/// that makes the guest's expectation the right one.
struct Deviation {
    checks: &'static [&'static str],
    reference: &'static str,
    wit: &'static str,
    source: &'static str,
    note: &'static str,
}

/// raw-p3-tcp's deviations.
const TCP_DEVIATIONS: &[Deviation] = &[Deviation {
    checks: &[
        "refused: closed: get-local-address",
        "refused: closed: get-remote-address",
        "refused: closed: set-listen-backlog-size(16)",
        "refused: closed: get-keep-alive-enabled",
        "refused: closed: get-hop-limit",
        "refused: closed: get-receive-buffer-size",
        "refused: closed: receive: future",
        "refused: closed: send",
    ],
    reference: "Err(ErrorCode::ConnectionRefused)",
    wit: "In addition to the general error codes documented on the `types::error-code` type, \
          TCP socket methods may always return `error(invalid-state)` when in the `closed` \
          state.",
    source: "sockets.wit, resource tcp-socket (and connect: \"After a failed connection \
             attempt, the socket will be in the `closed` state and the only valid action left \
             is to `drop` the socket.\")",
    note: "After a refused connect the reference keeps the connect's error as the closed \
           state's and repeats it from every fallible method (and from the receive and send \
           futures); none of these methods documents connection-refused. `connect`, `bind` \
           and `listen` on the closed socket do give invalid-state there. The same deviation \
           as its 0.2 sockets (tests/differences.toml, raw-tcp \"closed: ...\").",
}];

/// One check record of the guest: `check: NAME = OBSERVED => ok` or `=> FAILED: ...`.
struct Record {
    observed: String,
    ok: bool,
}

/// The check records of `stdout`, by check name (a name checked twice keeps a failure).
fn records(stdout: &str) -> (BTreeMap<String, Record>, usize) {
    let mut by_name: BTreeMap<String, Record> = BTreeMap::new();
    let mut total = 0;
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
        match by_name.get(name) {
            Some(old) if !old.ok => {}
            _ => {
                by_name.insert(name.to_string(), record);
            }
        }
    }
    (by_name, total)
}

/// Every check of `DEVIATIONS` with its family prefix, and the deviation it belongs to.
fn deviating_checks(
    deviations: &'static [Deviation],
    prefixes: &[&str],
) -> BTreeMap<String, &'static Deviation> {
    let mut out = BTreeMap::new();
    for d in deviations {
        for prefix in prefixes {
            for check in d.checks {
                out.insert(format!("{prefix}{check}"), d);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_tcp_on_reference() {
    on_reference(wasock_guests::RAW_P3_TCP, TCP_DEVIATIONS, FAMILIES).await;
}

/// raw-p3-udp's deviations.
const UDP_DEVIATIONS: &[Deviation] = &[Deviation {
    checks: &[
        "disconnect: get-local-address unchanged",
        "disconnect: c receives it",
        "disconnect: a receives from c",
        "disconnect: a receives from b",
    ],
    reference: "false",
    wit: "Dissociate this socket from its peer address. After calling this method, `send` & \
          `receive` are free to communicate with any remote address again.",
    source: "sockets.wit, udp-socket.disconnect",
    note: "The reference's `disconnect` is Linux's `connect(AF_UNSPEC)`, which releases a port \
           the socket was given for port 0: the socket, bound to the loopback address and port \
           0 before it connected, reads port 0 from `get-local-address` afterwards, its next \
           send goes from a fresh port (so the peer sees another sender), and datagrams sent to \
           its address no longer reach it. wasock binds the port straight back \
           (backend/os/datagram.rs, `disconnect`).",
}];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_udp_on_reference() {
    on_reference(wasock_guests::RAW_P3_UDP, UDP_DEVIATIONS, FAMILIES).await;
}

/// The check-name prefixes of a guest that runs its checks for each family.
const FAMILIES: &[&str] = &["v4: ", "v6: "];

/// raw-p3-lookup's deviations (its checks have no family prefix).
const LOOKUP_DEVIATIONS: &[Deviation] = &[Deviation {
    checks: &[
        "invalid name: 300-character name",
        "invalid name: 64-character label",
        "invalid name: empty label a..b",
        "invalid name: label with leading/trailing hyphen",
    ],
    reference: "Ok(..)",
    wit: "`invalid-argument`: `name` is a syntactically invalid domain name or IP address.",
    source: "sockets.wit, ip-name-lookup.error-code (resolve-addresses)",
    note: "The reference validates names with a URL host parser (`url::Host::parse`), which \
           accepts a name longer than 253 characters, a label longer than 63, an empty label \
           and a label starting or ending with a hyphen, and then looks them up (here: as \
           `localhost`, tests/common/reference.rs `no_dns`, so the lookup succeeds). The same \
           deviation as its 0.2 lookup (tests/differences.toml, raw-lookup).",
}];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_lookup_on_reference() {
    on_reference(wasock_guests::RAW_P3_LOOKUP, LOOKUP_DEVIATIONS, &[""]).await;
}

/// Runs the guest at `path` on the reference: every check passes but `deviations`, which fail
/// with the answer they list.
async fn on_reference(path: &str, deviations_list: &'static [Deviation], prefixes: &[&str]) {
    let run = run_reference_p3(path, &[], &[("GUEST_CHECK_LOG", "1")]).await;
    let (records, total) = records(&run.stdout);
    let deviations = deviating_checks(deviations_list, prefixes);

    let mut problems = Vec::new();
    for (name, record) in &records {
        match (record.ok, deviations.get(name)) {
            (true, None) => {}
            (false, Some(d)) if record.observed == d.reference => {}
            (false, Some(d)) => problems.push(format!(
                "`{name}`: the reference answered {}, DEVIATIONS says {}",
                record.observed, d.reference
            )),
            (false, None) => problems.push(format!(
                "`{name}` failed on the reference ({}): a wrong check, or a deviation to \
                 list in DEVIATIONS with the WIT sentence it breaks",
                record.observed
            )),
            (true, Some(_)) => problems.push(format!(
                "`{name}` passes on the reference now: remove it from DEVIATIONS"
            )),
        }
    }
    for name in deviations.keys() {
        if !records.contains_key(name) {
            problems.push(format!("`{name}` (in DEVIATIONS) was not checked"));
        }
    }
    assert!(problems.is_empty(), "{}\n{run}", problems.join("\n"));

    let failed = records.values().filter(|r| !r.ok).count();
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
        "{} on the reference: {} of {total} checks pass; {failed} are its listed \
         deviations from the WIT:",
        run.name,
        total - failed
    );
    for d in deviations_list {
        println!(
            "- {} (checks named {:?} + each): reference {}\n  WIT: {}\n  ({}) {}",
            d.checks.join(", "),
            prefixes,
            d.reference,
            d.wit,
            d.source,
            d.note
        );
    }
}

/// The guest is a `wasi:cli/command@0.3.0` and nothing else: it exports `wasi:cli/run@0.3.0`
/// only (no 0.2 `run` a host could pick instead), and imports the 0.3 sockets and clocks (and
/// std's 0.2 `wasi:cli` / `wasi:io`).
#[test]
fn raw_p3_tcp_is_a_0_3_command() {
    let ty = component(wasock_guests::RAW_P3_TCP).component_type();
    let exports: Vec<String> = ty.exports(engine()).map(|(n, _)| n.to_string()).collect();
    assert_eq!(exports, ["wasi:cli/run@0.3.0"]);
    let imports: Vec<String> = ty.imports(engine()).map(|(n, _)| n.to_string()).collect();
    for want in [
        "wasi:sockets/types@0.3.0",
        "wasi:clocks/monotonic-clock@0.3.0",
    ] {
        assert!(
            imports.iter().any(|n| n == want),
            "raw-p3-tcp does not import {want}; it imports {imports:#?}"
        );
    }
    assert!(
        !imports
            .iter()
            .any(|n| n.starts_with("wasi:sockets/") && !n.ends_with("@0.3.0")),
        "raw-p3-tcp imports a 0.2 sockets interface: {imports:#?}"
    );
}
