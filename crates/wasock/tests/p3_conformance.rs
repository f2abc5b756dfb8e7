//! The WASI 0.3 conformance guests (`raw-p3-tcp`, `raw-p3-udp`, `raw-p3-lookup`) under wasock, on the OS
//! and on the virtual network: every check passes, exactly as many as `EXPECTED_CHECKS` says.
//! The guests assert what `wasi:sockets@0.3.0` says (tests/p3_reference.rs runs them on the
//! reference host, with its deviations listed).

mod common;

use common::{on_both_backends, spawn_env};

/// Runs `guest` on both backends with every check recorded: none may fail, and the count must
/// be its `EXPECTED_CHECKS`.
async fn passes_on_both_backends(guest: &str) {
    for (backend, sockets, _) in on_both_backends() {
        let run = spawn_env(guest, &[], &[("GUEST_CHECK_LOG", "1")], sockets)
            .finish()
            .await;
        let failed: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| l.contains("=> FAILED"))
            .collect();
        assert!(failed.is_empty(), "{backend}: {}\n{run}", failed.join("\n"));
        let n = run.assert_passed_count();
        println!("{backend}: {} ran {n} checks", run.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_tcp_passes_on_both_backends() {
    passes_on_both_backends(wasock_guests::RAW_P3_TCP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_lookup_passes_on_both_backends() {
    passes_on_both_backends(wasock_guests::RAW_P3_LOOKUP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_udp_passes_on_both_backends() {
    passes_on_both_backends(wasock_guests::RAW_P3_UDP).await;
}
