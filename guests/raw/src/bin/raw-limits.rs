//! raw-limits: the per-instance limits, each hit by one mode (argv[1]) while the host runs the
//! guest with that limit set:
//! - `sockets N` (`max_sockets` = N): sockets are counted from creation ("`new-socket-limit`:
//!   The new socket resource could not be created because of a system limit"), TCP and UDP
//!   alike, and the count falls when they are dropped. An `accept` at the limit fails with
//!   `new-socket-limit` and leaves the connection queued, so it succeeds once a socket is dropped.
//! - `lookups` (`max_lookups` = 0): a lookup past the limit is `temporary-resolver-failure`.
//! - `connect-timeout` (a short connect timeout): a connect that cannot complete (the listener's
//!   queue is full, so the kernel drops the SYN) ends in `timeout` and leaves the socket closed.

use guest_support::{check_eq, expect_err, expect_ok, fail, finish, start};
use raw::wasi::sockets::ip_name_lookup::resolve_addresses;
use raw::{
    ErrorCode as E, IpAddress, IpAddressFamily as Family, Network, create_tcp_socket,
    create_udp_socket, instance_network, lo4, local_addr_tcp, new_tcp, read_exact, tcp_accept,
    tcp_bind, tcp_connect, tcp_listen, tcp_listener, write_all,
};

fn main() {
    start("raw-limits");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let net = instance_network();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["sockets", n] => {
            let limit: usize = match n.parse() {
                Ok(n) if n >= 4 => n,
                _ => fail(
                    "raw-limits: argument",
                    "expected the socket limit (at least 4)",
                ),
            };
            creation_is_counted(limit);
            udp_counts_too(limit);
            accept_at_the_limit(&net, limit);
            // Everything above was dropped: the full budget is back.
            creation_is_counted(limit);
        }
        ["lookups"] => lookup_past_the_limit(&net),
        ["connect-timeout"] => connect_times_out(&net),
        _ => fail(
            "raw-limits: arguments",
            "expected `sockets N`, `lookups` or `connect-timeout`",
        ),
    }
    finish();
}

/// With no lookup slots, a lookup fails with `temporary-resolver-failure` (not a hang). The
/// name is one no hosts file holds (those are answered at once, without a slot), and with no slot
/// it never reaches a resolver.
fn lookup_past_the_limit(net: &Network) {
    let stream = expect_ok(
        "lookups: resolve-addresses",
        resolve_addresses(net, "past-the-limit.invalid"),
    );
    expect_err(
        "lookups: past the limit",
        stream.resolve_next_address(),
        E::TemporaryResolverFailure,
    );
    // IP literals need no lookup, so no slot.
    let literal = expect_ok("lookups: literal", resolve_addresses(net, "127.0.0.1"));
    check_eq(
        "lookups: a literal still resolves",
        literal.resolve_next_address(),
        Ok(Some(IpAddress::Ipv4((127, 0, 0, 1)))),
    );
}

/// Fills a listener's queue (backlog 1, never accepting) until a connect cannot complete; that
/// connect must end in `timeout`, after which the socket is closed.
fn connect_times_out(net: &Network) {
    let listener = new_tcp("timeout: listener", Family::Ipv4);
    expect_ok("timeout: backlog 1", listener.set_listen_backlog_size(1));
    expect_ok(
        "timeout: bind",
        tcp_bind("timeout: bind", &listener, net, lo4(0)),
    );
    expect_ok("timeout: listen", tcp_listen("timeout: listen", &listener));
    let addr = local_addr_tcp("timeout: address", &listener);
    let mut queued = Vec::new();
    for i in 0..8 {
        let client = new_tcp(&format!("timeout: client {i}"), Family::Ipv4);
        match tcp_connect("timeout: connect", &client, net, addr) {
            Ok(streams) => queued.push((client, streams)),
            Err(E::Timeout) => {
                expect_err(
                    "timeout: the socket is closed after a timeout",
                    client.local_address(),
                    E::InvalidState,
                );
                return;
            }
            Err(e) => fail("timeout: connect", format!("got {e:?}, want ok or timeout")),
        }
    }
    fail(
        "timeout: a connect to a full queue",
        format!("{} connects completed; none timed out", queued.len()),
    );
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
