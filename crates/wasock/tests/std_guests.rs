//! Guests written against Rust's `std::net` only, acting like ordinary programs.

mod common;

use std::time::Duration;

use common::{allow_all, run, spawn};

/// The echo server and client run concurrently in two stores: the server prints the
/// address it bound, the client connects to it and checks every echo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_server_and_client() {
    let server = spawn(
        wasock_guests::STD_ECHO_SERVER,
        &["127.0.0.1:0", "1"],
        allow_all(),
    );
    let Some(addr) = server
        .wait_for_line("listening on ", Duration::from_secs(60))
        .await
    else {
        let r = server.finish().await;
        panic!("the server never printed `listening on ADDRESS`\n{r}");
    };
    assert!(
        addr.starts_with("127.0.0.1:"),
        "unexpected address {addr:?}"
    );

    let messages = [
        "hello",
        "wasi sockets",
        "a longer line with some more words",
    ];
    let mut args = vec![addr.as_str()];
    args.extend(messages);
    let client = run(wasock_guests::STD_ECHO_CLIENT, &args, allow_all()).await;
    let server = server.finish().await;
    assert!(
        matches!(client.result, common::Outcome::Exit(0)) && client.summary_count().is_some(),
        "the client failed\n{client}\nthe server:\n{server}"
    );
    client.assert_passed_count();
    for m in messages {
        assert!(
            client.stdout.contains(&format!("sent: {m}\n")),
            "missing `sent: {m}`\n{client}"
        );
        assert!(
            client.stdout.contains(&format!("received: {m}\n")),
            "missing `received: {m}`\n{client}"
        );
    }
    server.assert_exit_zero();
    assert!(
        server
            .stdout
            .contains("std-echo-server: served 1 connection(s)"),
        "{server}"
    );
    let echoed: usize = messages.iter().map(|m| m.len() + 1).sum();
    assert!(
        server
            .stdout
            .contains(&format!("connection 1 closed, echoed {echoed} bytes")),
        "{server}"
    );
}

/// Runs `guest` with `args` on the OS's sockets and on a virtual network.
async fn on_both(guest: &str, args: &[&str]) {
    for (backend, sockets, localhost) in common::on_both_backends() {
        println!("{backend}:");
        run(guest, args, sockets)
            .await
            .assert_passed_count_with(localhost);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_echo() {
    on_both(wasock_guests::STD_UDP_ECHO, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections() {
    on_both(wasock_guests::STD_MANY, &["50"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localhost_lookup() {
    on_both(wasock_guests::STD_LOCALHOST, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback() {
    on_both(wasock_guests::STD_IPV6, &[]).await;
}
