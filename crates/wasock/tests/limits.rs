//! Per-instance limits: each is hit by a guest, returns the spec's error code, and leaves the
//! host serving other instances.

mod common;

use common::{allow_all, run};
use wasock::WasockCtx;
use wasock::limits::Limits;

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
    run(wasock_guests::RAW_LIMITS, &["lookups"], sockets)
        .await
        .assert_passed();
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
    run(wasock_guests::RAW_LIMITS, &["connect-timeout"], sockets)
        .await
        .assert_passed();
}
