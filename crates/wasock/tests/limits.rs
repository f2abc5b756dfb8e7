//! Per-instance limits: each is hit by a guest, returns the spec's error code, and leaves the
//! host serving other instances.

mod common;

use common::{allow_all, run};
use wasock::WasockCtx;
use wasock::limits::{Denial, Limits};
use wasock::policy::Protocol;

/// `new-socket-limit` at creation (TCP and UDP share the budget) and at `accept`, which leaves
/// the connection queued; dropped sockets give their slots back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_limit() {
    let limit = 6;
    let sockets = WasockCtx::builder()
        .allow_all_network()
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
        .allow_all_network()
        .allow_lookup()
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
        .allow_all_network()
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
        .allow_all_network()
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
