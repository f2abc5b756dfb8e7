//! Guests written as tokio applications: `#[tokio::main]`, `tokio::net` and `tokio::time`,
//! with mio's reactor waiting on every socket at once through wasi-libc's `poll` (guests/
//! tokio-guests). They run on the OS's sockets and on a virtual network; tests/differential.rs
//! also runs them on the reference.

mod common;

use common::run;

/// Runs `tokio-echo` with `args` on both backends; it passes with its fixed count.
async fn tokio_echo(args: &[&str]) {
    for (backend, sockets, localhost) in common::on_both_backends() {
        println!("{backend}:");
        run(wasock_guests::TOKIO_ECHO, args, sockets)
            .await
            .assert_passed_count_with(localhost);
    }
}

/// 20 connections of 4 messages each (up to 192 KiB, so both ends wait on write readiness), a
/// refused connect, timers and UDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_with_timers_and_udp() {
    tokio_echo(&[]).await;
}

/// 150 connections at once: every `poll` of the guest's reactor carries all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_at_once() {
    tokio_echo(&["150", "2"]).await;
}
