//! Deterministic simulation: scenarios of several components on one virtual network, run in
//! virtual time from one seed. Exact replay, seeds that matter, faults a guest observes,
//! mistakes in scenario files, and guests that trap or never stop.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasock::sim::{Ending, Scenario, SimReport, Simulation};

/// The folder holding the test guests.
fn guests() -> PathBuf {
    Path::new(wasock_guests::STD_ECHO_SERVER)
        .parent()
        .expect("guests live in a folder")
        .to_path_buf()
}

/// A scenario from `text`, whose `wasm` paths name files in the guests' folder.
fn scenario(text: &str) -> Scenario {
    Scenario::parse(text, "test.toml", &guests()).unwrap_or_else(|e| panic!("{e}"))
}

fn run(text: &str, seed: u64) -> SimReport {
    Simulation::new(scenario(text))
        .unwrap_or_else(|e| panic!("{e}"))
        .run(seed)
        .unwrap()
}

/// The lines `component` printed.
fn printed(r: &SimReport, component: &str) -> Vec<String> {
    r.output
        .iter()
        .filter(|(c, _, _)| c == component)
        .map(|(_, _, l)| l.clone())
        .collect()
}

/// An echo server on host `server`, port 7000, serving one connection (a service).
macro_rules! echo_server {
    () => {
        r#"
[[component]]
name = "server"
wasm = "std-echo-server.wasm"
args = ["0.0.0.0:7000", "1"]
role = "service"
policy = { allow-inbound = ["tcp://*:7000"] }
"#
    };
}

/// The README's scenario: a client retrying across a partition that heals at 10 s.
const PARTITION: &str = concat!(
    echo_server!(),
    r#"
[sim]
time-limit = "120s"

[[component]]
name = "client"
wasm = "std-retry-client.wasm"
args = ["server:7000", "hello across the partition"]
start = "500ms"
connect-timeout = "2s"
policy = { allow-outbound = ["tcp://server:7000"], allow-resolve = ["server"] }

[[link]]
between = ["client", "server"]
latency = "15ms"

[[event]]
at = "0s"
partition = ["client", "server"]

[[event]]
at = "10s"
heal = ["client", "server"]
"#
);

#[test]
fn a_client_retries_across_a_partition_and_one_seed_replays_exactly() {
    let sim = Simulation::new(scenario(PARTITION)).unwrap();
    let first = sim.run(3).unwrap();
    assert_eq!(
        first.exit_code, 0,
        "{:?}\n{:#?}",
        first.failure, first.output
    );
    let client = printed(&first, "client");
    assert!(
        client[0].starts_with("attempt 1: ") && client[0].contains("TimedOut"),
        "the first attempt meets the partition: {client:?}"
    );
    assert!(
        client.iter().any(|l| l.contains("connected after 10.")),
        "it gets through once the path heals: {client:?}"
    );
    assert!(client.contains(&"echoed: hello across the partition".to_string()));
    assert!(first.virtual_time >= Duration::from_secs(10));
    let again = sim.run(3).unwrap();
    assert_eq!(
        first.trace, again.trace,
        "one seed, one trace, byte for byte"
    );
    assert_eq!(first.output, again.output);
    assert!(
        first.trace.iter().any(|l| l.contains(r#""event":"heal""#)),
        "the trace records the timeline"
    );
}

/// Ping and pong over a path that loses datagrams.
fn lossy(loss: f64) -> String {
    format!(
        r#"
[sim]
time-limit = "60s"

[[component]]
name = "pong"
wasm = "std-udp-ping.wasm"
args = ["server", "0.0.0.0:9000"]
role = "service"
policy = {{ allow-inbound = ["udp://*:9000"], allow-outbound = ["udp://10.0.0.2:*"] }}

[[component]]
name = "ping"
wasm = "std-udp-ping.wasm"
args = ["client", "pong:9000", "20"]
start = "100ms"
policy = {{ allow-outbound = ["udp://pong:9000"], allow-inbound = ["udp://*:* from 10.0.0.1"], allow-resolve = ["pong"] }}

[[link]]
between = ["ping", "pong"]
latency = "5ms"
jitter = "2ms"
loss = {loss}
"#
    )
}

#[test]
fn seeds_decide_what_a_lossy_path_loses() {
    let sim = Simulation::new(scenario(&lossy(0.2))).unwrap();
    let traces: Vec<Vec<String>> = (0..4).map(|s| sim.run(s).unwrap().trace).collect();
    assert!(
        traces.windows(2).any(|w| w[0] != w[1]),
        "different seeds lose different datagrams"
    );
    assert_eq!(traces[2], sim.run(2).unwrap().trace, "and each replays");
    assert!(
        traces
            .iter()
            .flatten()
            .any(|l| l.contains(r#""event":"lost""#) && l.contains(r#""to":"10.0.0.1:9000""#)),
        "the trace names each lost datagram"
    );
    let clean = run(&lossy(0.0), 9);
    assert_eq!(clean.exit_code, 0, "{:?}", clean.failure);
    assert!(printed(&clean, "ping").contains(&"all 20 pings answered".to_string()));
}

#[test]
fn a_minute_of_guest_sleep_costs_no_real_minute() {
    let started = Instant::now();
    let r = run(
        r#"
[[component]]
name = "sleeper"
wasm = "std-sleeper.wasm"
args = ["60"]
"#,
        0,
    );
    let real = started.elapsed();
    assert_eq!(r.exit_code, 0, "{:?}", r.failure);
    assert_eq!(
        printed(&r, "sleeper"),
        ["slept 60s by the monotonic clock, 60s by the wall clock"]
    );
    assert!(r.virtual_time >= Duration::from_secs(60));
    // Far less than the minute it slept (compiling the guest is most of it).
    assert!(real < Duration::from_secs(30), "{real:?}");
}

#[test]
fn faults_reach_guests_as_the_wits_errors() {
    // The server's host is down for the first two seconds (remote-unreachable), and lookups
    // fail until three seconds (temporary-resolver-failure): the client retries through both.
    let r = run(
        r#"
[[component]]
name = "server"
wasm = "std-echo-server.wasm"
args = ["0.0.0.0:7000", "1"]
role = "service"
policy = "allow-all"

[[component]]
name = "client"
wasm = "std-retry-client.wasm"
args = ["10.0.0.1:7000", "direct"]
policy = "allow-all"

[[component]]
name = "by-name"
wasm = "std-retry-client.wasm"
args = ["server:7000", "named"]
role = "service"
policy = "allow-all"

[[event]]
at = "0s"
down = "server"

[[event]]
at = "0s"
lookups = "fail"

[[event]]
at = "2s"
up = "server"

[[event]]
at = "3s"
lookups = "answer"
"#,
        0,
    );
    let client = printed(&r, "client");
    assert!(
        client[0].contains("HostUnreachable"),
        "a host that is down is unreachable: {client:?}"
    );
    assert!(client.contains(&"echoed: direct".to_string()), "{client:?}");
    let named = printed(&r, "by-name");
    assert!(
        named[0].starts_with("attempt 1: ") && !named[0].contains("connected"),
        "a failing resolver fails the lookup: {named:?}"
    );
    assert_eq!(r.exit_code, 0, "{:?}", r.failure);
}

#[test]
fn a_guest_that_never_stops_runs_out_of_fuel() {
    let r = run(
        r#"
[[component]]
name = "spin"
wasm = "std-spin.wasm"
fuel = 20_000_000
"#,
        0,
    );
    assert!(
        matches!(&r.endings[0].1, Ending::Trapped(why) if why.contains("fuel")),
        "{:?}",
        r.endings
    );
    assert_eq!(r.exit_code, 134);
    assert!(r.failure.unwrap().contains("`spin` trapped"));
}

#[test]
fn a_task_still_running_at_the_time_limit_fails_the_run() {
    let r = run(
        r#"
[sim]
time-limit = "5s"

[[component]]
name = "sleeper"
wasm = "std-sleeper.wasm"
args = ["3600"]
"#,
        0,
    );
    assert_eq!(r.endings[0].1, Ending::Running);
    assert_eq!(r.exit_code, 124);
    assert!(
        r.virtual_time <= Duration::from_secs(6),
        "{:?}",
        r.virtual_time
    );
}

#[test]
fn a_denied_operation_is_in_the_trace() {
    let r = run(
        r#"
[[component]]
name = "server"
wasm = "std-echo-server.wasm"
args = ["0.0.0.0:7000", "1"]
"#,
        0,
    );
    assert_ne!(r.exit_code, 0, "no policy: TCP is denied");
    assert!(
        r.trace
            .iter()
            .any(|l| l.contains(r#""event":"create""#) && l.contains(r#""verdict":"deny""#)),
        "{:#?}",
        r.trace
    );
}

/// Each mistake names its line and key.
#[test]
fn scenario_mistakes_name_their_line_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "[[component]]\nname = \"a\"\nwasm = \"x.wasm\"\nlatency = \"1s\"\n",
            "test.toml:4:1: `latency`: unknown key",
        ),
        (
            "[[component]]\nname = \"a\"\nwasm = \"x.wasm\"\nstart = \"soon\"\n",
            "test.toml:4:1: `start`: `soon` is not a duration",
        ),
        (
            "[[component]]\nname = \"a\"\nwasm = \"x.wasm\"\n[[link]]\nloss = 1.5\n",
            "test.toml:5:1: `loss`: must be a chance from 0 to 1",
        ),
        (
            "[[component]]\nname = \"a\"\nwasm = \"x.wasm\"\n[[event]]\nat = \"1s\"\npartition = [\"a\", \"b\"]\n",
            "`b`: names no component",
        ),
        (
            "[[component]]\nname = \"a\"\nwasm = \"x.wasm\"\n[[event]]\npartition = [\"a\", \"a\"]\n",
            "must name two different components",
        ),
        (
            "[[component]]\nname = \"a\"\nwasm = \"x.wasm\"\n[[event]]\nat = \"1s\"\n",
            "needs what happens",
        ),
        (
            "[[component]]\nname = \"a\"\n",
            "`wasm`: component `a` needs a wasm file",
        ),
        (
            "[[component]]\nname = \"a\"\nwasm = \"x.wasm\"\n[[component]]\nname = \"a\"\nwasm = \"y.wasm\"\n",
            "two components are named `a`",
        ),
        (
            "[[component]]\nname = \"a b\"\nwasm = \"x.wasm\"\n",
            "`a b` is not a valid host name",
        ),
        (
            "[sim]\nseed = -1\n[[component]]\nname = \"a\"\nwasm = \"x.wasm\"\n",
            "test.toml:2:1: `seed`: must be a whole number",
        ),
        (
            "[[component]]\nname = \"a\"\nwasm = \"x.wasm\"\npolicy = { allow-outbound = [\"tcp://*:99999\"] }\n",
            "test.toml:4:",
        ),
        (
            "[[component]]\nname = \"a\"\nwasm = \"x.wasm\"\npolicy = { allow-everything = [] }\n",
            "test.toml:4:",
        ),
        ("[sim]\nseed = 1\n", "has no [[component]]"),
        ("[[component]\n", "not valid TOML"),
    ];
    for (text, want) in cases {
        let err = Scenario::parse(text, "test.toml", Path::new("."))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(want),
            "{text:?}\n  gave {err:?}\n  want {want:?}"
        );
    }
    let missing = Simulation::new(scenario(
        "[[component]]\nname = \"gone\"\nwasm = \"no-such.wasm\"\n",
    ));
    let err = missing
        .err()
        .expect("a missing file cannot compile")
        .to_string();
    assert!(
        err.contains("`gone`") && err.contains("no-such.wasm"),
        "{err}"
    );
}

/// A scenario's `[names]` join the directory, and a component gets its `args` and `env`.
#[test]
fn names_args_and_env_reach_the_components() {
    let r = run(
        concat!(
            echo_server!(),
            r#"
[[component]]
name = "client"
wasm = "std-retry-client.wasm"
args = ["db.internal:7000", "by an added name"]
policy = { allow-outbound = ["tcp://db.internal:7000"], allow-resolve = ["db.internal"] }

[[component]]
name = "cli"
wasm = "std-cli.wasm"
args = ["one", "0"]
env = { GREETING = "hello from the scenario" }

[names]
"db.internal" = ["10.0.0.1"]
"#
        ),
        0,
    );
    assert_eq!(r.exit_code, 0, "{:?}\n{:#?}", r.failure, r.output);
    assert!(printed(&r, "client").contains(&"echoed: by an added name".to_string()));
    let cli = printed(&r, "cli");
    assert!(cli.contains(&"args: one 0".to_string()), "{cli:?}");
    assert!(
        cli.contains(&"GREETING=hello from the scenario".to_string()),
        "{cli:?}"
    );
}

/// A raw-binding guest sees a reset path as `connection-reset` on its read, and a listener sees
/// the connection reset while it was queued as `connection-aborted` on `accept`, once; while
/// lookups fail, a lookup is `temporary-resolver-failure`.
#[test]
fn a_guest_sees_resets_as_the_wit_names_them() {
    let r = run(
        r#"
[[component]]
name = "server"
wasm = "raw-faults.wasm"
args = ["late-acceptor", "7000", "2000"]
policy = "allow-all"

[[component]]
name = "client"
wasm = "raw-faults.wasm"
args = ["reset-reader", "10.0.0.1", "7000"]
start = "100ms"
policy = "allow-all"

[[component]]
name = "resolver"
wasm = "raw-faults.wasm"
args = ["lookup", "server"]
policy = "allow-all"

[[event]]
at = "0s"
lookups = "fail"

[[event]]
at = "1s"
reset = ["client", "server"]
"#,
        0,
    );
    assert_eq!(r.exit_code, 0, "{:?}\n{:#?}", r.failure, r.output);
    assert_eq!(printed(&r, "client"), ["read: connection-reset"]);
    assert_eq!(
        printed(&r, "resolver"),
        ["lookup: temporary-resolver-failure"]
    );
    assert_eq!(
        printed(&r, "server"),
        [
            "listening",
            "accept: connection-aborted",
            "accept: would-block"
        ]
    );
}

/// A guest sees a path's bandwidth and latency in its transfer time, and its duplication and
/// jitter in the datagrams it receives.
#[test]
fn a_guest_sees_bandwidth_duplication_and_reordering() {
    let r = run(
        concat!(
            echo_server!(),
            r#"
[[component]]
name = "client"
wasm = "raw-faults.wasm"
args = ["timed-echo", "10.0.0.1", "7000", "50000"]
policy = "allow-all"

[[component]]
name = "counter"
wasm = "raw-faults.wasm"
args = ["udp-counter", "9000", "3000"]
policy = "allow-all"

[[component]]
name = "sender"
wasm = "raw-faults.wasm"
args = ["udp-sender", "10.0.0.3", "9000", "100"]
start = "100ms"
policy = "allow-all"

[[link]]
between = ["client", "server"]
latency = "10ms"
bandwidth = 100_000

[[link]]
between = ["sender", "counter"]
jitter = "20ms"
duplicate = 0.3
"#
        ),
        5,
    );
    assert_eq!(r.exit_code, 0, "{:?}\n{:#?}", r.failure, r.output);
    let echo = printed(&r, "client");
    let ms: u64 = echo[0]
        .strip_prefix("echoed 50000 bytes in ")
        .and_then(|s| s.strip_suffix(" ms"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{echo:?}"));
    assert!(ms >= 500, "50 kB at 100 kB/s takes half a second: {ms} ms");
    let counted = printed(&r, "counter");
    let line = counted.last().unwrap();
    let numbers: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    let [total, distinct, out_of_order] = numbers[..] else {
        panic!("{line}");
    };
    assert_eq!(distinct, 100, "nothing lost: {line}");
    assert!(total > 100, "some arrive twice: {line}");
    assert!(out_of_order > 0, "jitter reorders: {line}");
}

/// A 0.3 guest runs under simulation as a 0.2 one does: its `wasi:cli/run@0.3` as a concurrent
/// call on the paused runtime, every check passing on the virtual network, and one seed
/// replaying its trace and output exactly.
#[test]
fn a_0_3_guest_passes_and_one_seed_replays_exactly() {
    let text = r#"
[sim]
time-limit = "600s"

[[component]]
name = "p3"
wasm = "raw-p3-tcp.wasm"
env = { GUEST_CHECK_LOG = "1" }
policy = "allow-all"
"#;
    let first = passes_and_replays(text, 7);
    let out = printed(&first, "p3");
    assert!(
        out.iter()
            .any(|l| l.starts_with("raw-p3-tcp: ") && l.ends_with(" checks passed")),
        "{out:?}"
    );
    assert!(!out.iter().any(|l| l.contains("FAILED")), "{out:?}");
}

/// Runs `text` with `seed` twice: the first run must exit 0, and the second replay it exactly
/// (trace, output, virtual time). Returns the first.
fn passes_and_replays(text: &str, seed: u64) -> SimReport {
    let sim = Simulation::new(scenario(text)).unwrap();
    let first = sim.run(seed).unwrap();
    assert_eq!(
        first.exit_code, 0,
        "{:?}\n{:#?}",
        first.failure, first.output
    );
    let again = sim.run(seed).unwrap();
    assert_eq!(
        first.trace, again.trace,
        "one seed, one trace, byte for byte"
    );
    assert_eq!(first.output, again.output);
    assert_eq!(first.virtual_time, again.virtual_time);
    first
}

/// Two 0.3 components on two hosts, over a link with latency: the echo pair serves its bytes
/// exactly (a name lookup, a connect, concurrent send and receive, both ends of stream), and
/// one seed replays the run (trace, output, virtual time) exactly.
#[test]
fn a_0_3_echo_pair_across_hosts_replays_exactly() {
    let text = r#"
[sim]
time-limit = "600s"

[[component]]
name = "server"
wasm = "p3-echo-server.wasm"
args = ["0.0.0.0:7000", "1"]
policy = { allow-inbound = ["tcp://*:7000"] }

[[component]]
name = "client"
wasm = "p3-echo-client.wasm"
args = ["server:7000", "64"]
start = "100ms"
policy = { allow-outbound = ["tcp://server:7000"], allow-resolve = ["server"] }

[[link]]
between = ["client", "server"]
latency = "5ms"
"#;
    let first = passes_and_replays(text, 11);
    let client = printed(&first, "client");
    assert!(
        client.iter().any(|l| l.ends_with(" checks passed")),
        "{client:?}"
    );
}

/// An unmodified tokio application (`tokio-echo`: a `tokio::net` server with a task per
/// connection, clients, `tokio::time`, UDP) under simulation: every check passes on the virtual
/// network in virtual time, and one seed replays its trace and output exactly (tokio's own
/// randomness comes from the component's seeded `wasi:random`).
#[test]
fn a_tokio_application_passes_and_one_seed_replays_exactly() {
    let text = r#"
[sim]
time-limit = "600s"

[[component]]
name = "tokio"
wasm = "tokio-echo.wasm"
args = ["20", "3"]
policy = "allow-all"
"#;
    let first = passes_and_replays(text, 5);
    let out = printed(&first, "tokio");
    assert!(
        out.iter().any(|l| l == "tokio-echo: 19 checks passed"),
        "{out:?}"
    );
}
