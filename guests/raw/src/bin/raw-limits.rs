//! raw-limits: the per-instance socket limit, run by the host with `max_sockets` = argv[1].
//! Sockets are counted from creation ("`new-socket-limit`: The new socket resource could not be
//! created because of a system limit"), TCP and UDP alike, and the count falls when they are
//! dropped. An `accept` at the limit fails with `new-socket-limit` and leaves the connection
//! queued, so it succeeds once a socket is dropped.

use guest_support::{check_eq, expect_err, expect_ok, fail, finish, start};
use raw::{
    ErrorCode as E, IpAddressFamily as Family, Network, create_tcp_socket, create_udp_socket,
    instance_network, local_addr_tcp, new_tcp, read_exact, tcp_accept, tcp_connect, tcp_listener,
    write_all,
};

fn main() {
    start("raw-limits");
    let limit: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        Some(Ok(n)) if n >= 4 => n,
        _ => fail(
            "raw-limits: argument",
            "expected the socket limit (at least 4)",
        ),
    };
    let net = instance_network();
    creation_is_counted(limit);
    udp_counts_too(limit);
    accept_at_the_limit(&net, limit);
    // Everything above was dropped: the full budget is back.
    creation_is_counted(limit);
    finish();
}

/// Exactly `limit` sockets can exist; the next creation is `new-socket-limit`; dropping one
/// makes room for one.
fn creation_is_counted(limit: usize) {
    let mut held: Vec<_> = (0..limit)
        .map(|i| new_tcp(&format!("limit: socket {i}"), Family::Ipv4))
        .collect();
    expect_err(
        "limit: one TCP socket too many",
        create_tcp_socket(Family::Ipv6).map(drop),
        E::NewSocketLimit,
    );
    held.pop();
    let again = expect_ok("limit: room after a drop", create_tcp_socket(Family::Ipv6));
    check_eq(
        "limit: family of the new socket",
        again.address_family(),
        Family::Ipv6,
    );
}

/// UDP sockets share the same budget as TCP sockets.
fn udp_counts_too(limit: usize) {
    let _tcp: Vec<_> = (0..limit - 1)
        .map(|i| new_tcp(&format!("udp budget: tcp {i}"), Family::Ipv4))
        .collect();
    let _udp = expect_ok("udp budget: last slot", create_udp_socket(Family::Ipv4));
    expect_err(
        "udp budget: one UDP socket too many",
        create_udp_socket(Family::Ipv4).map(drop),
        E::NewSocketLimit,
    );
}

/// A listener at the limit cannot accept; the connection waits in the queue until a socket
/// is dropped, and then works.
fn accept_at_the_limit(net: &Network, limit: usize) {
    let listener = tcp_listener("accept limit: listener", net, Family::Ipv4);
    let addr = local_addr_tcp("accept limit: address", &listener);
    let mut idle: Vec<_> = (0..limit - 2)
        .map(|i| new_tcp(&format!("accept limit: idle {i}"), Family::Ipv4))
        .collect();
    let client = new_tcp("accept limit: client", Family::Ipv4);
    let (client_in, client_out) = expect_ok(
        "accept limit: connect",
        tcp_connect("accept limit: connect", &client, net, addr),
    );
    expect_err(
        "accept limit: accept at the limit",
        listener.accept().map(drop),
        E::NewSocketLimit,
    );
    idle.pop();
    let (server, server_in, server_out) = expect_ok(
        "accept limit: accept after a drop",
        tcp_accept("accept limit: accept after a drop", &listener),
    );
    write_all("accept limit: client writes", &client_out, b"queued");
    check_eq(
        "accept limit: the queued connection works",
        read_exact("accept limit: server reads", &server_in, 6),
        b"queued".to_vec(),
    );
    write_all("accept limit: server writes", &server_out, b"ok");
    check_eq(
        "accept limit: reply",
        read_exact("accept limit: client reads", &client_in, 2),
        b"ok".to_vec(),
    );
    drop((
        server_in, server_out, server, client_in, client_out, client, listener,
    ));
}
