//! The WASI 0.3 conformance guests (`raw-p3-tcp` and `raw-p3-lookup`, guests/raw-p3-*) on the
//! reference host: stock `wasmtime-wasi` 48's p3 sockets (tests/common/reference_p3.rs).
//!
//! The guests assert what `wasi:sockets@0.3.0` says, not what the reference does. They run
//! with `GUEST_CHECK_LOG=1`, so every check prints a record and a failed check does not stop
//! the guest; every check must pass except the reference's deviations from the WIT listed in
//! [`TCP_DEVIATIONS`] and [`LOOKUP_DEVIATIONS`], each with the WIT sentence it breaks. A
//! deviation that no longer shows fails the test too, so the lists stay true.

mod common;

use std::collections::BTreeMap;

use common::reference_p3::run_reference_p3;
use common::{Outcome, component, engine, expected_checks};

/// A way the reference answers against the WIT: the checks, what the reference answers there,
/// and the WIT sentence that makes the guest's expectation the right one.
struct Deviation {
    /// Check names; with `per_family`, without the family prefix (the check runs for IPv4 and
    /// IPv6, as `v4: CHECK` and `v6: CHECK`).
    checks: &'static [&'static str],
    per_family: bool,
    reference: &'static str,
    wit: &'static str,
    source: &'static str,
    note: &'static str,
}

/// raw-p3-tcp's.
const TCP_DEVIATIONS: &[Deviation] = &[
    Deviation {
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
        per_family: true,
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
    },
    Deviation {
        checks: &["connecting: get-local-address is the bound address"],
        per_family: true,
        reference: "Err(ErrorCode::InvalidState)",
        wit: "Note: Except where explicitly mentioned, whenever this documentation uses the term \
              \"bound\" without backticks it actually means: in the `bound` state *or higher*. \
              (i.e. `bound`, `listening`, `connecting` or `connected`)",
        source: "sockets.wit, resource tcp-socket; get-local-address: \"`invalid-state`: The \
                 socket is not bound to any local address.\"",
        note: "The socket was bound explicitly, then connected to a listener whose accept queue \
               is full, so the connect is pending. The reference gives no local address while \
               connecting (its socket is moved into the connect future).",
    },
    Deviation {
        checks: &[
            "connecting: set-keep-alive-enabled(true)",
            "connecting: get-keep-alive-enabled",
            "connecting: set-hop-limit(9)",
            "connecting: get-hop-limit",
            "connecting: get-receive-buffer-size > 0",
        ],
        per_family: true,
        reference: "Err(ErrorCode::InvalidState)",
        wit: "In practice, API's typically only return the errors documented per API combined \
              with a couple of errors that are always possible: - `other` - `access-denied` - \
              `not-supported` - `out-of-memory`",
        source: "sockets.wit, error-code; the option getters and setters document only \
                 `invalid-argument` (set, value 0) and no state restriction, unlike \
                 set-listen-backlog-size (\"`invalid-state`: (set) The socket is in the \
                 `connecting` or `connected` state.\")",
        note: "While a connect is pending the reference has no socket to read or set options \
               on (it moved it into the connect future) and answers invalid-state. The WIT's \
               \"In theory, every API can return any error code\" makes this the weakest of \
               the deviations: the guest holds the host to the documented errors.",
    },
];

/// raw-p3-lookup's.
const LOOKUP_DEVIATIONS: &[Deviation] = &[];

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

/// Every check of `deviations` by its full name, and the deviation it belongs to.
fn deviating_checks(deviations: &'static [Deviation]) -> BTreeMap<String, &'static Deviation> {
    let mut out = BTreeMap::new();
    for d in deviations {
        for check in d.checks {
            if d.per_family {
                for family in ["v4", "v6"] {
                    out.insert(format!("{family}: {check}"), d);
                }
            } else {
                out.insert(check.to_string(), d);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_tcp_on_reference() {
    on_reference(wasock_guests::RAW_P3_TCP, TCP_DEVIATIONS).await;
}

/// raw-p3-udp's deviations.
const UDP_DEVIATIONS: &[Deviation] = &[Deviation {
    checks: &[
        "disconnect: get-local-address unchanged",
        "disconnect: c receives it",
        "disconnect: a receives from c",
        "disconnect: a receives from b",
    ],
    per_family: true,
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
    on_reference(wasock_guests::RAW_P3_UDP, UDP_DEVIATIONS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_lookup_on_reference() {
    on_reference(wasock_guests::RAW_P3_LOOKUP, LOOKUP_DEVIATIONS).await;
}

/// Runs the guest at `path` on the reference: every check must pass but those of
/// `deviations`, which must fail with the answer given there; the count of checks must be
/// the guest's in EXPECTED_CHECKS.
async fn on_reference(path: &str, deviations: &'static [Deviation]) {
    let run = run_reference_p3(path, &[], &[("GUEST_CHECK_LOG", "1")]).await;
    let (records, total, failed) = records(&run.stdout);
    let listed = deviations;
    let deviations = deviating_checks(listed);

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
    for d in listed {
        println!(
            "- {}{}: reference {}\n  WIT: {}\n  ({}) {}",
            d.checks.join(", "),
            if d.per_family { " (v4 and v6)" } else { "" },
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
