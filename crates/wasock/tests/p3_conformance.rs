//! The WASI 0.3 conformance guests (`raw-p3-tcp`, `raw-p3-udp`, `raw-p3-lookup`) under wasock,
//! on the OS and on the virtual network: every check passes, exactly as many as
//! `EXPECTED_CHECKS` says. The guests assert what `wasi:sockets@0.3.0` says
//! (tests/p3_reference.rs runs them on the reference).

mod common;

use common::{on_both_backends, spawn_env};

/// Runs the 0.3 guest at `path` on both backends with every check logged: no check fails and
/// the count is the guest's in `EXPECTED_CHECKS`. (The lookup guest's count does not depend on
/// how many addresses `localhost` has: the virtual network answers 127.0.0.1 and ::1, the OS
/// its hosts file.)
async fn passes_on_both_backends(path: &str) {
    for (backend, sockets, localhost) in on_both_backends() {
        println!("{backend}: running {}", common::guest_name(path));
        let run = spawn_env(path, &[], &[("GUEST_CHECK_LOG", "1")], sockets)
            .finish()
            .await;
        let failed: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| l.contains("=> FAILED"))
            .collect();
        assert!(failed.is_empty(), "{backend}: {}\n{run}", failed.join("\n"));
        let n = run.assert_passed_count_with(localhost);
        println!("{backend}: {} ran {n} checks", run.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_tcp_passes_on_both_backends() {
    passes_on_both_backends(wasock_guests::RAW_P3_TCP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_udp_passes_on_both_backends() {
    passes_on_both_backends(wasock_guests::RAW_P3_UDP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_p3_lookup_passes_on_both_backends() {
    passes_on_both_backends(wasock_guests::RAW_P3_LOOKUP).await;
}
