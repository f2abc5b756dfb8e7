//! Per-instance limits: each is hit by a guest, returns the spec's error code, and leaves the
//! host serving other instances.

mod common;

use common::{Outcome, allow_all, run};
use std::time::Duration;
use wasock::WasockCtx;
use wasock::limits::{Denial, Limits};
use wasock::policy::Protocol;

/// `new-socket-limit` at creation (TCP and UDP share the budget) and at `accept`, which leaves
/// the connection queued; dropped sockets give their slots back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_limit() {
    let limit = 6;
    let sockets = WasockCtx::builder()
        .allow_all_network(true)
        .limits(Limits {
            max_sockets: Some(limit),
            ..Limits::default()
        })
        .build();
    let counters = sockets.counters();
    let r = run(
        wasock_guests::RAW_LIMITS,
        &["sockets", &limit.to_string()],
        sockets,
    )
    .await;
    r.assert_passed();
    let stats = counters.stats();
    assert_eq!(stats.sockets_open, 0, "every socket was dropped: {stats:?}");
    assert_eq!(stats.sockets_peak, limit, "{stats:?}");
    assert!(stats.denied_by[&Denial::SocketLimit] >= 2, "{stats:?}");

    // Another instance on the same host is unaffected.
    run(wasock_guests::STD_UDP_ECHO, &[], allow_all())
        .await
        .assert_passed();
}

/// Past the concurrent-lookup limit, a lookup is `temporary-resolver-failure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_limit() {
    let limits = Limits {
        max_lookups: 0,
        ..Limits::default()
    };
    let sockets = WasockCtx::builder()
        .allow_all_network(true)
        .allow_ip_name_lookup(true)
        .limits(limits)
        .build();
    let counters = sockets.counters();
    run(wasock_guests::RAW_LIMITS, &["lookups"], sockets)
        .await
        .assert_passed();
    let stats = counters.stats();
    assert!(stats.denied_by[&Denial::LookupLimit] >= 1, "{stats:?}");
    run(wasock_guests::STD_LOCALHOST, &[], common::allow_all())
        .await
        .assert_passed();
}

/// A connect that cannot complete ends in `timeout` at the instance's connect timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout() {
    let limits = Limits {
        connect_timeout: Some(std::time::Duration::from_millis(300)),
        ..Limits::default()
    };
    let sockets = WasockCtx::builder()
        .allow_all_network(true)
        .limits(limits)
        .build();
    let counters = sockets.counters();
    run(wasock_guests::RAW_LIMITS, &["connect-timeout"], sockets)
        .await
        .assert_passed();
    let stats = counters.stats();
    assert_eq!(stats.denied_by[&Denial::ConnectTimeout], 1, "{stats:?}");
}

/// Bandwidth caps slow the guest to the configured rate (a token bucket holding one second's
/// worth): echoing 300 KB at 100 KB/s each way cannot finish in under 3 s (2 s to send past the
/// first second's burst, 2 s to receive likewise, overlapping by at most the burst).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_caps() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        (&s).write_all(line.as_bytes()).unwrap();
    });
    let rate = 100_000;
    let limits = Limits {
        bandwidth_in: Some(rate),
        bandwidth_out: Some(rate),
        ..Limits::default()
    };
    let sockets = WasockCtx::builder()
        .allow_all_network(true)
        .limits(limits)
        .build();
    let counters = sockets.counters();
    let message = "x".repeat(300_000);
    let started = std::time::Instant::now();
    run(wasock_guests::STD_ECHO_CLIENT, &[&addr, &message], sockets)
        .await
        .assert_passed();
    let took = started.elapsed();
    server.join().unwrap();
    let stats = counters.stats();
    assert!(
        stats.bytes_out > 300_000 && stats.bytes_in > 300_000,
        "{stats:?}"
    );
    assert!(
        took >= std::time::Duration::from_secs(3),
        "took {took:?} at {rate} B/s each way"
    );
    // Per socket: the one connection carried every byte, both ways, and is closed.
    assert!(counters.sockets().is_empty(), "all closed");
    let busiest = counters.busiest();
    assert_eq!(busiest.len(), 1, "{busiest:?}");
    let conn = &busiest[0];
    assert_eq!(conn.protocol, Protocol::Tcp);
    assert_eq!(conn.remote, Some(addr.parse().unwrap()));
    assert!(conn.local.is_some_and(|l| l.ip().is_loopback()), "{conn:?}");
    assert_eq!(
        (conn.bytes_in, conn.bytes_out),
        (stats.bytes_in, stats.bytes_out)
    );
}

/// Every limit at its largest value: the host saturates them (waits of about 100 years, a
/// `check-write` grant of `u32::MAX` bytes, the OS's own backlog cap) and keeps serving; the
/// guest gets the spec's answers.
fn largest_limits() -> Limits {
    Limits {
        max_sockets: Some(usize::MAX),
        max_lookups: usize::MAX,
        lookup_timeout: Duration::MAX,
        connect_timeout: Some(Duration::MAX),
        write_buffer: usize::MAX,
        max_backlog: u32::MAX,
        bandwidth_in: Some(u64::MAX),
        bandwidth_out: Some(u64::MAX),
    }
}

/// Every limit at its smallest value.
fn smallest_limits() -> Limits {
    Limits {
        max_sockets: Some(0),
        max_lookups: 0,
        lookup_timeout: Duration::ZERO,
        connect_timeout: Some(Duration::ZERO),
        write_buffer: 0,
        max_backlog: 0,
        bandwidth_in: Some(0),
        bandwidth_out: Some(0),
    }
}

/// The largest limits (`Duration::MAX` timeouts, `u64::MAX` bandwidth, `usize::MAX` write
/// buffer, `u32::MAX` backlog) panic nothing: raw-tcp's whole conformance run (connects,
/// listeners, streams) passes, and so does a std echo client moving 300 KB each way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn largest_limits_saturate() {
    let ctx = || {
        WasockCtx::builder()
            .allow_all_network(true)
            .limits(largest_limits())
            .build()
    };
    run(wasock_guests::RAW_TCP, &[], ctx())
        .await
        .assert_passed();

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || echo_one_line(listener));
    let sockets = ctx();
    let counters = sockets.counters();
    let message = "x".repeat(300_000);
    run(wasock_guests::STD_ECHO_CLIENT, &[&addr, &message], sockets)
        .await
        .assert_passed();
    server.join().unwrap();
    let stats = counters.stats();
    assert!(
        stats.bytes_out > 300_000 && stats.bytes_in > 300_000,
        "{stats:?}"
    );
    assert_eq!(stats.denials, 0, "{stats:?}");
}

/// Serves one connection of the test's own: reads a line and writes it back (bounded by a
/// read timeout).
fn echo_one_line(listener: std::net::TcpListener) {
    use std::io::{BufRead, BufReader, Write};
    let (s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).unwrap();
    (&s).write_all(line.as_bytes()).unwrap();
}

/// The smallest limits are refusals with the spec's error codes, never a host failure: no
/// socket at all is `new-socket-limit` (the guest reports it and exits), no lookup slot is
/// `temporary-resolver-failure`, and a zero connect timeout ends a connect that is not done at
/// once in `timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smallest_limits_refuse() {
    let ctx = |limits: Limits| {
        WasockCtx::builder()
            .allow_all_network(true)
            .allow_ip_name_lookup(true)
            .limits(limits)
            .build()
    };
    let sockets = ctx(smallest_limits());
    let counters = sockets.counters();
    run(wasock_guests::RAW_LIMITS, &["lookups"], sockets)
        .await
        .assert_passed();
    assert!(counters.stats().denied_by[&Denial::LookupLimit] >= 1);

    let sockets = ctx(smallest_limits());
    let counters = sockets.counters();
    let r = run(wasock_guests::STD_UDP_ECHO, &[], sockets).await;
    assert!(matches!(r.result, Outcome::Exit(code) if code != 0), "{r}");
    assert!(counters.stats().denied_by[&Denial::SocketLimit] >= 1);

    // A zero connect timeout: the connect either was done at once or is `timeout`.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || echo_one_line(listener));
    let sockets = ctx(Limits {
        max_sockets: None,
        ..smallest_limits()
    });
    let counters = sockets.counters();
    let r = run(wasock_guests::STD_ECHO_CLIENT, &[&addr, "hi"], sockets).await;
    let timeouts = counters
        .stats()
        .denied_by
        .get(&Denial::ConnectTimeout)
        .copied();
    match r.result {
        Outcome::Exit(0) => {
            assert_eq!(timeouts, None, "{r}");
            server.join().unwrap();
        }
        Outcome::Exit(_) => assert_eq!(timeouts, Some(1), "{r}"),
        _ => panic!("the guest must exit\n{r}"),
    }
    // The host keeps serving other instances.
    run(wasock_guests::STD_UDP_ECHO, &[], allow_all())
        .await
        .assert_passed();
}
