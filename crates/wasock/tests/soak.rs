//! Soak: the `raw-soak` guest opens and closes N sockets (TCP and UDP, bound, streaming,
//! listening, connected pairs over loopback). While it runs the host's fd count stays flat;
//! after it, fds and the open-socket counter are back at their baseline.
//!
//! N is `WASOCK_SOAK_N` (default [`DEFAULT_N`] = 100 000, a few seconds in the dev profile). Its own test binary, so that no other test
//! opens fds in this process meanwhile.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{allow_all, fd_count, run, settle_fds, spawn};

const DEFAULT_N: u64 = 100_000;
/// fds the host may hold at once beyond its baseline while the guest runs (a few sockets).
const FD_SLACK: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_returns_to_baseline() {
    let n: u64 = std::env::var("WASOCK_SOAK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_N);

    // Warm-up: compiles the guest and opens whatever the process keeps for good.
    run(wasock_guests::RAW_SOAK, &["200"], allow_all())
        .await
        .assert_passed();
    let baseline = settle_fds(usize::MAX, Duration::from_secs(2)).await;

    let sockets = allow_all();
    let counters = sockets.counters();
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(fd_count(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let started = Instant::now();
    let r = spawn(wasock_guests::RAW_SOAK, &[&n.to_string(), "600"], sockets)
        .finish()
        .await;
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    r.assert_passed();

    let stats = counters.stats();
    let after = settle_fds(baseline, Duration::from_secs(10)).await;
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "soak: {} sockets in {elapsed:.1?}; fds: baseline {baseline}, peak {peak}, after {after}; \
         sockets peak {}",
        stats.sockets_created, stats.sockets_peak
    );
    assert!(stats.sockets_created >= n, "{stats:?}");
    assert_eq!(stats.sockets_open, 0, "every socket was dropped: {stats:?}");
    assert!(stats.sockets_peak <= 8, "a handful at once: {stats:?}");
    assert!(
        peak <= baseline + FD_SLACK,
        "fds grew while the guest ran: baseline {baseline}, peak {peak}"
    );
    assert!(
        after <= baseline,
        "fd leak: baseline {baseline}, after {after}"
    );
}
