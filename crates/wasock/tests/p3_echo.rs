//! A std-like WASI 0.3 echo pair under wasock, on the OS and on the virtual network:
//! `p3-echo-server` (a task per connection, wit-bindgen's `spawn_local`) and `p3-echo-client`
//! (sends while it reads the echo, then ends its stream and waits for the server's end). One
//! client alone, then several at once while another one's connection stays open half-way: the
//! server serves them all concurrently, each gets its own bytes back, and nothing stays open.
//! And the pair across hosts, with one half on stock `wasmtime-wasi` p3.

mod common;

use std::time::Duration;

use common::{run, spawn};
use wasock::{VirtualHost, VirtualNetwork, WasockCtx};

const SERVER: &str = wasock_guests::P3_ECHO_SERVER;
const CLIENT: &str = wasock_guests::P3_ECHO_CLIENT;

/// An allow-all context on `host` of a virtual network, or on the OS.
fn ctx(host: Option<&VirtualHost>) -> WasockCtx {
    host.map_or_else(common::allow_all, common::allow_all_on)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_pair_serves_clients_concurrently_on_both_backends() {
    let host = VirtualNetwork::new()
        .attach("guest")
        .expect("a fresh network");
    for (backend, host) in [("os", None), ("virtual", Some(host))] {
        let sockets = ctx(host.as_ref());
        let counters = sockets.counters();
        let sizes = ["32", "128", "512", "1024"];
        let connections = 2 + sizes.len();
        let server = spawn(SERVER, &["127.0.0.1:0", &connections.to_string()], sockets);
        let Some(addr) = server
            .wait_for_line("listening on ", Duration::from_secs(60))
            .await
        else {
            panic!(
                "{backend}: no `listening on ADDRESS`\n{}",
                server.finish().await
            );
        };

        // One client alone.
        run(CLIENT, &[&addr, "256"], ctx(host.as_ref()))
            .await
            .assert_passed_count();

        // A client that stops half-way for a while, and meanwhile several at once: they are
        // all served before it goes on, so the server does not serve one at a time.
        let slow = spawn(CLIENT, &[&addr, "64", "4096", "1500"], ctx(host.as_ref()));
        assert!(
            slow.wait_for_line("pausing after", Duration::from_secs(60))
                .await
                .is_some(),
            "{backend}: the slow client never got half-way\n{}",
            slow.finish().await
        );
        let parallel: Vec<_> = sizes
            .iter()
            .zip(["7", "1000", "16384", "65536"])
            .map(|(kib, chunk)| spawn(CLIENT, &[&addr, kib, chunk], ctx(host.as_ref())))
            .collect();
        for client in parallel {
            let r = client.finish().await;
            assert!(r.stdout.contains("echoed "), "{backend}\n{r}");
            r.assert_passed_count();
        }
        assert!(
            !slow.stdout_now().contains("echoed "),
            "{backend}: the slow client was to be still half-way\n{}",
            slow.stdout_now()
        );
        slow.finish().await.assert_passed_count();

        let server = server.finish().await;
        server.assert_exit_zero();
        assert!(
            server
                .stdout
                .contains(&format!("served {connections} connections, 0 failed")),
            "{backend}\n{server}"
        );
        let stats = counters.stats();
        assert_eq!(stats.sockets_open, 0, "{backend}: {stats:?}");
        assert_eq!(
            stats.sockets_created,
            1 + connections as u64,
            "{backend}: {stats:?}"
        );
        assert!(
            stats.sockets_peak >= 3,
            "{backend}: the listener and two connections open at once at least: {stats:?}"
        );
        println!("{backend}: {stats:?}");
    }
}

/// The pair across hosts: the server on stock `wasmtime-wasi` 48's p3 sockets, the client on
/// wasock (and the other way round), over the OS's loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_pair_across_wasock_and_the_reference() {
    use common::reference_p3::spawn_reference_p3;
    let server = spawn_reference_p3(SERVER, &["127.0.0.1:0", "1"], &[]);
    let Some(addr) = server
        .wait_for_line("listening on ", Duration::from_secs(60))
        .await
    else {
        panic!("no `listening on ADDRESS`\n{}", server.finish().await);
    };
    run(CLIENT, &[&addr, "512"], ctx(None))
        .await
        .assert_passed_count();
    server.finish().await.assert_exit_zero();

    let server = spawn(SERVER, &["127.0.0.1:0", "1"], ctx(None));
    let Some(addr) = server
        .wait_for_line("listening on ", Duration::from_secs(60))
        .await
    else {
        panic!("no `listening on ADDRESS`\n{}", server.finish().await);
    };
    common::reference_p3::run_reference_p3(CLIENT, &[&addr, "512"], &[])
        .await
        .assert_passed_count();
    server.finish().await.assert_exit_zero();
}
