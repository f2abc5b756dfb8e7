//! Differential conformance (issue 11): the conformance guests run on wasock and on stock
//! `wasmtime-wasi` 48 (the reference, tests/common/reference.rs), both with
//! `GUEST_CHECK_LOG=1`, so that every check prints a record (guests/guest-support) and a
//! failed check does not stop the guest. The records are compared check by check.
//!
//! - wasock failing a check, or a wasock run that does not pass with its expected count of
//!   checks, fails the test;
//! - a check that passes on both hosts with the same observed value is equal;
//! - any other difference (another value, failing on the reference, run on one host only)
//!   fails the test unless `tests/differences.toml` lists it: guest, check, both answers and
//!   the WIT sentence that makes wasock's answer the right one;
//! - an entry of that table that no difference matches is stale and fails the test too
//!   (unless it says the reference's answer varies from run to run).
//!
//! When the reference's run ends early (a trap, or a failed check the guest cannot go on
//! from), the checks it did not reach are counted, not compared one by one; a trap is a
//! difference of its own, the pseudo-check `(run)`. The table, as used, is printed at the
//! end.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::differences::{Entry, table};
use common::reference::spawn_reference;
use common::{
    Outcome, Run, allow_all, allow_all_on, allow_all_virtual, expected_checks_with, spawn_env,
};

/// The guests' environment in both hosts: per-check records, keep going after a failure.
const CHECK_LOG: &[(&str, &str)] = &[("GUEST_CHECK_LOG", "1")];

/// The messages the echo client sends (the same as tests/std_guests.rs, for the count).
const ECHO_MESSAGES: [&str; 3] = [
    "hello",
    "wasi sockets",
    "a longer line with some more words",
];

/// The guests compared, with their arguments. They bind ephemeral ports only, so two can
/// run at once. (`std-cli` has no checks; `std-many` is a load test, not conformance.)
const GUESTS: &[(&str, &[&str])] = &[
    (wasock_guests::RAW_TCP, &[]),
    (wasock_guests::RAW_UDP, &[]),
    (wasock_guests::RAW_LOOKUP, &[]),
    (wasock_guests::RAW_DROP_ORDER, &[]),
    (wasock_guests::RAW_POLL, &[]),
    (wasock_guests::UDP_V021, &[]),
    (wasock_guests::TCP_V020, &[]),
    (wasock_guests::STD_LOCALHOST, &[]),
    (wasock_guests::STD_IPV6, &[]),
    (wasock_guests::STD_UDP_ECHO, &[]),
    (wasock_guests::TOKIO_ECHO, &[]),
];

/// Which host a run was on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Host {
    Wasock,
    /// wasock on a fresh virtual network (no OS socket).
    WasockVirtual,
    Reference,
}

/// Runs the guest at `path` with `args` on `host` in check-log mode.
async fn run_on(host: Host, path: &str, args: &[&str]) -> Run {
    match host {
        Host::Wasock => spawn_env(path, args, CHECK_LOG, allow_all()),
        Host::WasockVirtual => spawn_env(path, args, CHECK_LOG, allow_all_virtual()),
        Host::Reference => spawn_reference(path, args, CHECK_LOG),
    }
    .finish()
    .await
}

/// The echo server and client of tests/std_guests.rs, both on `host`; returns the client's
/// run (the server has no checks; its failure is reported in the client's stead).
async fn echo_pair(host: Host) -> Run {
    let server_args = ["127.0.0.1:0", "1"];
    // On the virtual network both ends live on one virtual host (its loopback).
    let shared = wasock::VirtualNetwork::new()
        .attach("guest")
        .expect("a fresh network takes a host");
    let server = match host {
        Host::Wasock => spawn_env(
            wasock_guests::STD_ECHO_SERVER,
            &server_args,
            CHECK_LOG,
            allow_all(),
        ),
        Host::WasockVirtual => spawn_env(
            wasock_guests::STD_ECHO_SERVER,
            &server_args,
            CHECK_LOG,
            allow_all_on(&shared),
        ),
        Host::Reference => spawn_reference(wasock_guests::STD_ECHO_SERVER, &server_args, CHECK_LOG),
    };
    let Some(addr) = server
        .wait_for_line("listening on ", Duration::from_secs(60))
        .await
    else {
        let mut r = server.finish().await;
        r.result = Outcome::Error(format!("the echo server never listened: {:?}", r.result));
        return r;
    };
    let mut args = vec![addr.as_str()];
    args.extend(ECHO_MESSAGES);
    let mut client = match host {
        Host::WasockVirtual => {
            spawn_env(
                wasock_guests::STD_ECHO_CLIENT,
                &args,
                CHECK_LOG,
                allow_all_on(&shared),
            )
            .finish()
            .await
        }
        _ => run_on(host, wasock_guests::STD_ECHO_CLIENT, &args).await,
    };
    let server = server.finish().await;
    if !matches!(server.result, Outcome::Exit(0)) {
        client.result = Outcome::Error(format!("the echo server failed:\n{server}"));
    }
    client
}

/// One check record: `check: CHECK = OBSERVED => ok` or `... => FAILED: MESSAGE`.
#[derive(Clone, Debug)]
struct Record {
    check: String,
    /// How many records of the same check came before this one.
    index: usize,
    /// The observed value, normalized ([`normalize`]).
    observed: String,
    /// `None` when the check passed, else the failure message.
    failure: Option<String>,
}

impl Record {
    /// The answer shown in reports and matched against the table: the observed value, or
    /// for a check with none (a guest's own `fail`) the failure message.
    fn answer(&self) -> String {
        match (&self.failure, self.observed.as_str()) {
            (Some(msg), "-") => format!("FAILED: {msg}"),
            _ => self.observed.clone(),
        }
    }

    fn key(&self) -> (&str, usize) {
        (&self.check, self.index)
    }
}

/// Checks the lookup guests repeat for each address `localhost` has: the virtual network's has
/// `::1` beside `127.0.0.1`, this machine's hosts file may not, and then the virtual run makes
/// these checks once more than the reference (`(not run)` there). A property of the backend,
/// not a difference in any answer.
const PER_LOCALHOST_ADDRESS: &[(&str, &str)] = &[
    ("raw-lookup", "localhost addresses are loopback"),
    ("raw-lookup", "no IPv4-mapped IPv6 address"),
    ("raw-lookup", "unicode name: loopback only"),
    ("raw-lookup", "unicode name: no IPv4-mapped address"),
    ("std-localhost", "resolved addresses are loopback"),
    ("std-localhost", "resolved addresses keep the port"),
    ("std-localhost", "no IPv4-mapped results"),
];

/// Checks whose observed value is a bare port number (an ephemeral port, different in
/// every run): their numbers are compared as `*`.
const PORT_VALUED: &[(&str, &str)] = &[
    ("tcp-v020", "accepted remote-address is the client"),
    ("std-localhost", "resolved addresses keep the port"),
];

/// The check records a run printed.
fn records(run: &Run) -> Vec<Record> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for line in run.stdout.lines() {
        let Some(rest) = line.strip_prefix("check: ") else {
            continue;
        };
        let malformed = || -> ! { panic!("malformed check record {line:?}\n{run}") };
        let Some((check, rest)) = rest.split_once(" = ") else {
            malformed()
        };
        let (observed, failure) = match rest.strip_suffix(" => ok") {
            Some(observed) => (observed, None),
            None => match rest.split_once(" => FAILED: ") {
                Some((observed, msg)) => (observed, Some(normalize(msg))),
                None => malformed(),
            },
        };
        let observed = if PORT_VALUED.contains(&(run.name.as_str(), check)) {
            numbers_as_stars(observed)
        } else {
            normalize(observed)
        };
        // A check made in a wait loop records once per try, and the number of tries depends
        // on timing: a record repeating the one before it (same check, same value, both
        // passed) counts once.
        let repeat = out.last().is_some_and(|p: &Record| {
            p.check == check && p.observed == observed && p.failure.is_none() && failure.is_none()
        });
        if repeat {
            continue;
        }
        let index = seen.entry(check.to_string()).or_default();
        out.push(Record {
            check: check.to_string(),
            index: *index,
            observed,
            failure,
        });
        *index += 1;
    }
    out
}

/// `value` with every number replaced by `*`.
fn numbers_as_stars(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.char_indices() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !value[..i].ends_with(|p: char| p.is_ascii_digit()) {
            out.push('*');
        }
    }
    out
}

/// Makes an observed value comparable between runs and readable:
/// - port numbers differ from run to run (ephemeral ports), so every non-zero port becomes
///   `*`: the `port: N` field of the raw guests' addresses, and the `:N` after an IPv4
///   address or `]` in `std::net` addresses. Port 0 stays: it means "no port".
/// - the bindings print an error code as `ErrorCode { code: 9, name: "invalid-state",
///   message: "..." }`; it becomes its WIT name, `invalid-state`.
fn normalize(value: &str) -> String {
    star_ports(&short_error_codes(value))
}

fn star_ports(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find(':') {
        let (head, tail) = rest.split_at(i + 1);
        out.push_str(head);
        let before = &head[..i];
        let (space, after) = match tail.strip_prefix(' ') {
            Some(after) => (" ", after),
            None => ("", tail),
        };
        let is_port = if space.is_empty() {
            before.ends_with(|c: char| c.is_ascii_digit() || c == ']')
        } else {
            before.ends_with("port")
        };
        let len = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        let digits = &after[..len];
        out.push_str(space);
        if is_port && len > 0 && digits != "0" {
            out.push('*');
        } else {
            out.push_str(digits);
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

fn short_error_codes(value: &str) -> String {
    const START: &str = "ErrorCode { code: ";
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find(START) {
        out.push_str(&rest[..i]);
        let code = &rest[i..];
        let name = code
            .split_once("name: \"")
            .and_then(|(_, n)| n.split_once('"'))
            .map(|(n, _)| n);
        match (name, code.find("\" }")) {
            (Some(name), Some(end)) => {
                out.push_str(name);
                rest = &code[end + 3..];
            }
            _ => {
                out.push_str(code);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl Entry {
    fn covers(&self, d: &Difference) -> Option<usize> {
        let same = self.guest == d.guest
            && self.wasock == d.wasock
            && (self.reference_varies || self.reference == d.reference);
        self.checks
            .iter()
            .position(|c| *c == d.check)
            .filter(|_| same)
    }
}

/// A check on which the two hosts differ.
struct Difference {
    guest: String,
    check: String,
    index: usize,
    wasock: String,
    reference: String,
    /// Where it happened, for the report (not matched against the table).
    detail: String,
}

/// What comparing one guest's two runs found.
#[derive(Default)]
struct Comparison {
    /// Checks run on both hosts with the same result.
    equal: usize,
    differences: Vec<Difference>,
    /// Reasons the test fails whatever the table says.
    problems: Vec<String>,
    /// Checks the reference did not reach because its run stopped early.
    not_reached: usize,
}

const NOT_RUN: &str = "(not run)";

/// The pseudo-check for how the reference's run ended, when it ended early.
const RUN: &str = "(run)";

/// The last line of an error chain (`Caused by: ...`): the trap's reason.
fn cause(chain: &str) -> &str {
    let last = chain.lines().rev().find(|l| !l.trim().is_empty());
    let last = last.unwrap_or(chain).trim();
    // `0: reason` in a numbered chain.
    last.split_once(": ")
        .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
        .map_or(last, |(_, reason)| reason)
}

/// Compares the records of `wasock` and `reference` for `guest`.
fn compare(guest: &str, wasock: &Run, reference: &Run, localhost: (u32, u32)) -> Comparison {
    let mut c = Comparison::default();
    // wasock must pass, with the expected number of checks.
    match wasock.summary_count() {
        Some(n) if matches!(wasock.result, Outcome::Exit(0)) => {
            let want = expected_checks_with(guest, localhost);
            if n != want || n == 0 {
                c.problems.push(format!(
                    "{guest} ran {n} checks on wasock, {want} expected (EXPECTED_CHECKS in \
                     tests/common/mod.rs)"
                ));
            }
        }
        _ => c
            .problems
            .push(format!("{guest} did not pass on wasock:\n{wasock}")),
    }
    let ours = records(wasock);
    let theirs = records(reference);
    for r in ours.iter().filter(|r| r.failure.is_some()) {
        c.problems.push(format!(
            "{guest}: wasock failed check `{}` #{}: {}",
            r.check,
            r.index,
            r.failure.as_deref().unwrap_or_default()
        ));
    }

    // Where the reference stopped, if it did not run to its end: a trap (or a failure to
    // run) is a difference of its own, `(run)`; after a failed check it could not go on
    // from, that check's difference stands for the rest.
    let last = theirs.last();
    let ended = match &reference.result {
        Outcome::Exit(0 | 1) => None,
        Outcome::Exit(code) => Some(format!("exit {code}")),
        Outcome::Trap(e) => Some(format!("trap: {}", cause(e))),
        Outcome::Error(e) => Some(format!("error: {}", cause(e))),
    };
    let stopped_at_failure = last.is_some_and(|r| r.failure.is_some());
    // The checks after the last one both hosts ran were not reached. (The reference's last
    // record may be one wasock never made: a wait that failed on the reference only.)
    let tail_from = (ended.is_some() || stopped_at_failure).then(|| {
        theirs
            .iter()
            .rev()
            .find_map(|t| ours.iter().position(|r| r.key() == t.key()))
            .map_or(0, |i| i + 1)
    });
    if let Some(ended) = ended {
        c.differences.push(Difference {
            guest: guest.to_string(),
            check: RUN.to_string(),
            index: 0,
            wasock: "ran to the end".to_string(),
            reference: ended,
            detail: last.map_or(" (before the first check)".to_string(), |l| {
                format!(" (after `{}`)", l.check)
            }),
        });
    }

    let theirs_by_key: HashMap<_, _> = theirs.iter().map(|r| (r.key(), r)).collect();
    let ours_by_key: HashMap<_, _> = ours.iter().map(|r| (r.key(), r)).collect();
    for (i, w) in ours.iter().enumerate() {
        match theirs_by_key.get(&w.key()) {
            Some(r) if r.failure.is_none() && r.observed == w.observed => c.equal += 1,
            None if tail_from.is_some_and(|from| i >= from) => c.not_reached += 1,
            other => c.differences.push(Difference {
                guest: guest.to_string(),
                check: w.check.clone(),
                index: w.index,
                wasock: w.answer(),
                reference: other.map_or(NOT_RUN.to_string(), |r| r.answer()),
                detail: String::new(),
            }),
        }
    }
    for r in theirs
        .iter()
        .filter(|r| !ours_by_key.contains_key(&r.key()))
    {
        c.differences.push(Difference {
            guest: guest.to_string(),
            check: r.check.clone(),
            index: r.index,
            wasock: NOT_RUN.to_string(),
            reference: r.answer(),
            detail: String::new(),
        });
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasock_agrees_with_wasmtime_wasi() {
    agrees(Host::Wasock, common::localhost_addresses()).await;
}

/// The same comparison with wasock on a virtual network: its sockets answer as the OS's do
/// under the reference, but where `tests/differences.toml` says otherwise for both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasock_on_a_virtual_network_agrees_with_wasmtime_wasi() {
    // The reference's `localhost` is this machine's; the virtual network's has one address of
    // each family: the lookup guests' records differ in count, not in kind.
    agrees(Host::WasockVirtual, (1, 1)).await;
}

/// Runs every guest on wasock (`host`, whose `localhost` has `localhost` addresses) and on the
/// reference, and compares them against the table.
async fn agrees(host: Host, localhost: (u32, u32)) {
    let t0 = Instant::now();
    let table = table();

    // Each guest on both hosts at once: two runs at a time on the two cores.
    let mut runs = Vec::new();
    for (path, args) in GUESTS {
        runs.push(tokio::join!(
            run_on(host, path, args),
            run_on(Host::Reference, path, args)
        ));
    }
    runs.push(tokio::join!(echo_pair(host), echo_pair(Host::Reference)));
    let ran = t0.elapsed();

    let mut problems = Vec::new();
    // How often each check of each entry matched a difference.
    let mut used: Vec<Vec<usize>> = table.iter().map(|e| vec![0; e.checks.len()]).collect();
    let mut report = String::new();
    for (w, r) in &runs {
        let guest = w.name.as_str();
        let c = compare(guest, w, r, localhost);
        writeln!(
            report,
            "{guest}: {} checks equal, {} differ{}",
            c.equal,
            c.differences.len(),
            match c.not_reached {
                0 => String::new(),
                n => format!(", {n} not reached by the reference"),
            }
        )
        .unwrap();
        problems.extend(c.problems);
        for d in c.differences {
            let more_localhost = host == Host::WasockVirtual
                && d.reference == NOT_RUN
                && PER_LOCALHOST_ADDRESS.contains(&(guest, d.check.as_str()));
            if more_localhost {
                writeln!(
                    report,
                    "  [backend] `{}` #{}: wasock {} / reference {} (one more localhost address)",
                    d.check, d.index, d.wasock, d.reference
                )
                .unwrap();
                continue;
            }
            let hit = table
                .iter()
                .enumerate()
                .find_map(|(i, e)| e.covers(&d).map(|j| (i, j)));
            let status = match hit {
                Some((i, j)) => {
                    used[i][j] += 1;
                    "listed"
                }
                None => {
                    problems.push(format!(
                        "{guest}: check `{}` #{} differs and is not in tests/differences.toml:\n  \
                         wasock:    {}\n  reference: {}{}",
                        d.check, d.index, d.wasock, d.reference, d.detail
                    ));
                    "NOT LISTED"
                }
            };
            writeln!(
                report,
                "  [{status}] `{}` #{}: wasock {} / reference {}{}",
                d.check, d.index, d.wasock, d.reference, d.detail
            )
            .unwrap();
        }
    }
    // The table's entries for the guests this test runs (the 0.3 guests' are
    // tests/p3_reference.rs's).
    let in_this_test = |e: &Entry| runs.iter().any(|(w, _)| w.name == e.guest);
    for (e, counts) in table.iter().zip(&used) {
        for (check, n) in e.checks.iter().zip(counts) {
            if *n == 0 && !e.reference_varies && in_this_test(e) {
                problems.push(format!(
                    "stale entry in tests/differences.toml: {} `{check}` (wasock {} / \
                     reference {}) matches no difference; remove it",
                    e.guest, e.wasock, e.reference
                ));
            }
        }
    }

    println!("{report}");
    println!("Accepted differences (tests/differences.toml), as used:");
    for (e, counts) in table.iter().zip(&used).filter(|(e, _)| in_this_test(e)) {
        println!("- {}:", e.guest);
        for (check, n) in e.checks.iter().zip(counts) {
            println!("    `{check}` ({n}x)");
        }
        println!(
            "    wasock:    {}\n    reference: {}\n    WIT ({}): \"{}\"\n    {}",
            e.wasock, e.reference, e.source, e.wit, e.note
        );
    }
    println!("differential: runs {ran:?}, {:?} in all", t0.elapsed());
    assert!(
        problems.is_empty(),
        "{} problem(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn normalize_ports_and_error_codes() {
    let raw = "Ok(Ipv4(Ipv4SocketAddress { port: 41234, address: (127, 0, 0, 1) }))";
    assert_eq!(
        normalize(raw),
        "Ok(Ipv4(Ipv4SocketAddress { port: *, address: (127, 0, 0, 1) }))"
    );
    let zero = "Ipv4SocketAddress { port: 0, address: (0, 0, 0, 0) }";
    assert_eq!(normalize(zero), zero);
    assert_eq!(normalize("127.0.0.1:5000"), "127.0.0.1:*");
    assert_eq!(normalize("Some([::1]:5000)"), "Some([::1]:*)");
    assert_eq!(normalize("[::1]:0"), "[::1]:0");
    assert_eq!(normalize("a: 12, b: 13"), "a: 12, b: 13");
    let code = r#"Err(ErrorCode { code: 9, name: "invalid-state", message: "The operation is not valid." })"#;
    assert_eq!(normalize(code), "Err(invalid-state)");
    assert_eq!(numbers_as_stars("Ok(38060)"), "Ok(*)");
    assert_eq!(
        cause("trap at ...\n\nCaused by:\n    resource has children\n"),
        "resource has children"
    );
    assert_eq!(cause("x\nCaused by:\n    0: outer\n    1: inner"), "inner");
}
