//! Drop order: the `raw-drop-order` guest drops sockets, streams, pollables, datagram streams,
//! networks and lookups in every order `wasi:io` allows and checks the behaviour README
//! "Behaviour worth knowing" documents, without a trap. After it, the host's fds and
//! open-socket counter are back at their baseline. Its own test binary (fd counting).

mod common;

use std::time::Duration;

use common::{allow_all, run, settle_fds};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_order_behaves_and_leaks_nothing() {
    // Warm-up run: compiles the guest and lets lazily opened process fds appear.
    run(wasock_guests::RAW_DROP_ORDER, &[], allow_all())
        .await
        .assert_passed_count();
    let baseline = settle_fds(usize::MAX, Duration::from_secs(2)).await;

    let sockets = allow_all();
    let counters = sockets.counters();
    let r = run(wasock_guests::RAW_DROP_ORDER, &[], sockets).await;
    r.assert_passed_count();
    let stats = counters.stats();
    assert_eq!(stats.sockets_open, 0, "every socket was dropped: {stats:?}");
    // Writers that were dropped unflushed may still be delivering for a moment.
    let after = settle_fds(baseline, Duration::from_secs(10)).await;
    println!("drop-order: fds baseline {baseline}, after {after}; {stats:?}");
    assert!(
        after <= baseline,
        "fd leak: baseline {baseline}, after {after}"
    );
}
