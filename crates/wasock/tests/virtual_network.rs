//! Guests on the virtual network, with no OS socket (the conformance and std guests run on both
//! backends in their own tests): drop order, limits, two components on two hosts of one
//! network finding each other by name, the loopback benchmark.

mod common;

use std::time::Duration;

use common::{allow_all_virtual, run, spawn};
use wasock::{VirtualHost, VirtualNetwork, WasockCtx};

/// An allow-all context on `host`.
fn on(host: VirtualHost) -> WasockCtx {
    common::allow_all_on(&host)
}

/// Every drop order `wasi:io` allows, and nothing left open after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_order() {
    let sockets = allow_all_virtual();
    let counters = sockets.counters();
    run(wasock_guests::RAW_DROP_ORDER, &[], sockets)
        .await
        .assert_passed_count();
    let stats = counters.stats();
    assert_eq!(stats.sockets_open, 0, "every socket was dropped: {stats:?}");
}

/// A server on host `server` and a client on host `client`: the client finds the server by
/// name in the network's directory and gets every echo back; the server sees the client's
/// own address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_components_find_each_other_by_name() {
    let net = VirtualNetwork::new();
    let server_host = net.attach("server").unwrap();
    let client_host = net.attach("client").unwrap();
    let server = spawn(
        wasock_guests::STD_ECHO_SERVER,
        &["0.0.0.0:7000", "1"],
        on(server_host),
    );
    let Some(addr) = server
        .wait_for_line("listening on ", Duration::from_secs(60))
        .await
    else {
        let r = server.finish().await;
        panic!("the server never printed `listening on ADDRESS`\n{r}");
    };
    assert_eq!(addr, "0.0.0.0:7000");
    let client = run(
        wasock_guests::STD_ECHO_CLIENT,
        &["server:7000", "hello", "over the virtual wire"],
        on(client_host),
    )
    .await;
    let server = server.finish().await;
    assert!(
        client.stdout.contains("received: over the virtual wire\n"),
        "{client}\nthe server:\n{server}"
    );
    client.assert_passed();
    server.assert_exit_zero();
    assert!(
        server.stdout.contains("connection 1 from 10.0.0.2:"),
        "the server sees the client host's address\n{server}"
    );
}

/// A client on a host of its own cannot reach another host's loopback: its own is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_hosts_loopback_is_out_of_reach() {
    let net = VirtualNetwork::new();
    let server = spawn(
        wasock_guests::STD_ECHO_SERVER,
        &["127.0.0.1:7000", "1"],
        on(net.attach("server").unwrap()),
    );
    server
        .wait_for_line("listening on ", Duration::from_secs(60))
        .await
        .expect("the server listens");
    let client = run(
        wasock_guests::STD_ECHO_CLIENT,
        &["127.0.0.1:7000", "hello"],
        on(net.attach("client").unwrap()),
    )
    .await;
    assert!(
        !matches!(client.result, common::Outcome::Exit(0)),
        "the client reached another host's loopback\n{client}"
    );
    assert!(
        client.stderr.contains("ConnectionRefused") || client.stderr.contains("refused"),
        "{client}"
    );
    // The server is still waiting for a client: end it by connecting from its own host.
    drop(server);
}

/// The loopback benchmark guest (bulk and round trips, both ends in one guest) completes on
/// both backends; `BENCHMARKS.md` has its figures from release builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_benchmark_runs_on_both_backends() {
    for sockets in [common::allow_all(), allow_all_virtual()] {
        let r = run(wasock_guests::STD_LOOPBACK_BENCH, &["1", "200"], sockets).await;
        r.assert_exit_zero();
        assert!(r.stdout.contains("bulk: 1 MB in "), "{r}");
        assert!(r.stdout.contains("round trips: 200 in "), "{r}");
    }
}

/// The limits hold on the virtual network as on the OS's: the socket limit at creation and
/// accept, the lookup limit, and the connect timeout against a full listener queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_as_on_the_os() {
    use wasock::limits::{Denial, Limits};
    let cases: [(&[&str], Limits, Denial); 3] = [
        (
            &["sockets", "6"],
            Limits {
                max_sockets: Some(6),
                ..Limits::default()
            },
            Denial::SocketLimit,
        ),
        (
            &["lookups"],
            Limits {
                max_lookups: 0,
                ..Limits::default()
            },
            Denial::LookupLimit,
        ),
        (
            &["connect-timeout"],
            Limits {
                connect_timeout: Some(Duration::from_millis(300)),
                ..Limits::default()
            },
            Denial::ConnectTimeout,
        ),
    ];
    for (args, limits, denial) in cases {
        let host = VirtualNetwork::new().attach("guest").unwrap();
        let sockets = WasockCtx::builder()
            .allow_all_network(true)
            .allow_ip_name_lookup(true)
            .limits(limits)
            .virtual_host(host)
            .build();
        let counters = sockets.counters();
        run(wasock_guests::RAW_LIMITS, args, sockets)
            .await
            .assert_passed();
        let stats = counters.stats();
        assert!(stats.denied_by[&denial] >= 1, "{args:?}: {stats:?}");
        assert_eq!(stats.sockets_open, 0, "{args:?}: {stats:?}");
    }
}
