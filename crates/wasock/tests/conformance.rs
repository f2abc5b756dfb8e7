//! Conformance guests: raw `wasi:sockets@0.2.12` bindings exercising every function in
//! every state (see guests/raw/src/bin/*.rs for the individual checks).

mod common;

use common::{allow_all, on_both_backends, run};

/// Runs `guest` on the OS's sockets and on a virtual network: the same checks pass on both.
async fn on_both(guest: &str) {
    for (backend, sockets, localhost) in on_both_backends() {
        println!("{backend}:");
        run(guest, &[], sockets)
            .await
            .assert_passed_count_with(localhost);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_tcp() {
    on_both(wasock_guests::RAW_TCP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_udp() {
    on_both(wasock_guests::RAW_UDP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_lookup() {
    on_both(wasock_guests::RAW_LOOKUP).await;
}

/// `wasi:io/poll` over TCP stream pollables (wasock answers these from the host's own state).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_poll() {
    on_both(wasock_guests::RAW_POLL).await;
}

/// `poll`: "This function traps if either: - the list is empty, ..."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_of_an_empty_list_traps() {
    run(wasock_guests::RAW_POLL, &["empty"], allow_all())
        .await
        .assert_trapped();
}

/// "Calling `send` with more datagrams than [check-send] has permitted will trap."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_send_over_permit_traps() {
    let r = run(wasock_guests::RAW_UDP_TRAP, &["over-permit"], allow_all()).await;
    r.assert_trapped();
    assert!(
        r.stdout.contains("sending"),
        "the guest trapped before reaching the send\n{r}"
    );
}

/// "Implementations must trap if either `check-send` was not called or ..."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_send_without_permit_traps() {
    let r = run(wasock_guests::RAW_UDP_TRAP, &["no-permit"], allow_all()).await;
    r.assert_trapped();
    assert!(
        r.stdout.contains("sending"),
        "the guest trapped before reaching the send\n{r}"
    );
}

/// Deny by default: without `allow_all_network`, binding is refused with
/// `access-denied`, which the guest reports as a failed check (exit 1, no trap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_is_denied_by_default() {
    let r = run(
        wasock_guests::RAW_TCP,
        &[],
        wasock::WasockCtx::builder().build(),
    )
    .await;
    assert!(
        matches!(r.result, common::Outcome::Exit(1)),
        "expected exit code 1\n{r}"
    );
    assert!(
        r.stderr.contains("access-denied"),
        "expected an access-denied failure\n{r}"
    );
}
